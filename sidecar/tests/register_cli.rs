//! The operator CLI for the register, end to end: deploy, roles, investors, securities,
//! movements, instructions, extracts and exports, on a real anvil chain with every
//! transaction signed in a real SoftHSM2 token by the sidecar.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::{DevNet, OperatorCli};
use serde_json::Value;

const ISIN: &str = "DE0007164600";

/// The operator CLI against `net`, with the platform's artifacts and matrix files.
fn operator(net: &DevNet) -> OperatorCli {
    let artifacts = concat!(env!("CARGO_MANIFEST_DIR"), "/../contracts/out");
    assert!(
        PathBuf::from(artifacts).join("SecuritiesRegister.sol").is_dir(),
        "contract artifacts missing in {artifacts}; run `forge build` in contracts/ (scripts/test does)"
    );
    let deployment = net.dir.path().join("deployment.json");
    let matrix = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contracts/matrix.json,",
        env!("CARGO_MANIFEST_DIR"),
        "/../contracts/custody.matrix.json"
    );
    OperatorCli::new(
        &[
            ("ECROP_RPC_URL", &net.endpoint),
            ("ECROP_DEPLOYMENT", deployment.to_str().unwrap()),
            ("ECROP_ARTIFACTS", artifacts),
            ("ECROP_MATRIX", matrix),
        ],
        net.dir.path(),
    )
}

#[test]
fn register_keeper_daily_work_through_the_cli() {
    let net = DevNet::start(4);
    let cli = operator(&net);
    let [admin, issuer, alice, bob] = [0, 1, 2, 3].map(|i| net.accounts[i].to_checksum(None));
    let (admin, issuer, alice, bob) =
        (admin.as_str(), issuer.as_str(), alice.as_str(), bob.as_str());

    // Deployment is idempotent.
    let first = cli.json(admin, &["contracts", "deploy"]);
    assert_eq!(first["deployed"].as_array().unwrap().len(), 5);
    assert!(first["functions_set"].as_u64().unwrap() > 0);
    let sensitive =
        cli.json(admin, &["contracts", "call", "EcropAccessManager", "isRoleSensitive", "2"]);
    assert_eq!(sensitive["0"], "true", "REGISTER_KEEPER grants need four eyes after bootstrap");
    let again = cli.json(admin, &["contracts", "deploy"]);
    assert_eq!(again["deployed"].as_array().unwrap().len(), 0);
    assert_eq!(again["functions_set"], 0);
    assert_eq!(again["contracts"], first["contracts"]);

    // Nothing restricted works before a role is granted, and the refusal is explained.
    let err = cli.fails(
        admin,
        &[
            "register",
            "onboard",
            "--holder-id",
            "INV-A",
            "--country",
            "DE",
            "--kyc-expiry",
            "+30d",
            "--wallet",
            alice,
        ],
    );
    assert!(
        err.contains("InvestorRegistry.registerInvestor reverted: AccessManagedUnauthorized"),
        "{err}"
    );

    cli.ok(admin, &["roles", "grant", "--role", "register-keeper", "--account", admin]);
    cli.ok(
        admin,
        &["roles", "grant", "--role", "COMPLIANCE_OFFICER", "--account", admin, "--expiry", "+30d"],
    );
    cli.ok(admin, &["roles", "grant", "--role", "ISSUER_AGENT", "--account", issuer]);
    let err = cli.fails(admin, &["roles", "grant", "--role", "janitor", "--account", issuer]);
    assert!(err.contains("known roles: PLATFORM_ADMIN"), "{err}");
    let roles = cli.json(admin, &["roles", "list"]);
    assert!(
        roles
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["role"] == "ISSUER_AGENT" && r["active"] == true),
        "{roles}"
    );

    cli.ok(
        admin,
        &[
            "register",
            "onboard",
            "--holder-id",
            "INV-A",
            "--country",
            "de",
            "--kyc-expiry",
            "+30d",
            "--wallet",
            alice,
        ],
    );
    cli.ok(
        admin,
        &[
            "register",
            "onboard",
            "--holder-id",
            "INV-B",
            "--country",
            "FR",
            "--kyc-expiry",
            "2030-01-01",
            "--wallet",
            bob,
        ],
    );
    let err = cli.fails(
        admin,
        &[
            "register",
            "onboard",
            "--holder-id",
            "INV-C",
            "--country",
            "Germany",
            "--kyc-expiry",
            "+1d",
            "--wallet",
            bob,
        ],
    );
    assert!(err.contains("country must be an ISO 3166 two-letter code (Germany)"), "{err}");

    // Onboarding can be rerun (each step done once) and refuses a wallet of another investor.
    let rerun = [
        "register",
        "onboard",
        "--holder-id",
        "INV-B",
        "--country",
        "FR",
        "--kyc-expiry",
        "2030-01-01",
        "--wallet",
        bob,
    ];
    cli.ok(admin, &rerun);
    let err = cli.fails(
        admin,
        &[
            "register",
            "onboard",
            "--holder-id",
            "INV-Z",
            "--country",
            "FR",
            "--kyc-expiry",
            "+1d",
            "--wallet",
            bob,
        ],
    );
    assert!(err.contains("already belongs to another investor"), "{err}");
    let err = cli.fails(
        admin,
        &[
            "register",
            "onboard",
            "--holder-id",
            "INV-Z",
            "--country",
            "FR",
            "--kyc-expiry",
            "2001-01-01",
            "--wallet",
            bob,
        ],
    );
    assert!(err.contains("KYC expiry must lie in the future"), "{err}");

    // A security needs the issuer's consent to exactly this entry.
    let terms = cli.dir.join("terms.txt");
    std::fs::write(&terms, "terms of the bond").unwrap();
    let create = [
        "register",
        "create-security",
        "--isin",
        ISIN,
        "--issuer",
        issuer,
        "--nominal",
        "100",
        "--volume",
        "1000000",
        "--terms",
        terms.to_str().unwrap(),
        "--terms-uri",
        "https://terms.invalid/1",
    ];
    let err = cli.fails(admin, &create);
    let digest =
        err.split("--digest ").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    cli.ok(issuer, &["register", "consent", "--digest", &digest]);
    cli.ok(admin, &create);
    let err = cli.fails(
        admin,
        &[
            "register",
            "create-security",
            "--isin",
            "DE0007164601",
            "--issuer",
            issuer,
            "--nominal",
            "1",
            "--volume",
            "1",
            "--terms-hash",
            &digest,
            "--terms-uri",
            "x",
        ],
    );
    assert!(err.contains("check digit does not match"), "{err}");

    // Issue needs consent too.
    let issue = ["register", "issue", "--isin", ISIN, "--holder", alice, "--amount", "1000"];
    let err = cli.fails(admin, &issue);
    let digest =
        err.split("--digest ").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    cli.ok(issuer, &["register", "consent", "--digest", &digest]);
    cli.ok(admin, &issue);
    let after_issue = cli.json(admin, &["contracts", "call", "SecuritiesRegister", "entryCount"]);
    let issue_block: u64 = {
        let out = cli.json(admin, &["register", "extract", "--holder", alice]);
        assert_eq!(out["holdings"][0]["holding"]["balance"], "1000", "{out}");
        out["block"].as_u64().unwrap()
    };
    assert_eq!(after_issue["0"], "1");

    // Pre-checks explain themselves.
    let check = cli.json(
        admin,
        &[
            "register",
            "check",
            "--isin",
            ISIN,
            "--sender",
            alice,
            "--receiver",
            bob,
            "--amount",
            "1500",
        ],
    );
    assert_eq!(check["reason"], "InsufficientBalance");
    assert_eq!(check["code"], 10);

    // Restriction and pledge reduce the free balance.
    cli.ok(
        admin,
        &[
            "register",
            "restrict",
            "--isin",
            ISIN,
            "--holder",
            alice,
            "--amount",
            "300",
            "--reason-code",
            "7",
            "--authority",
            "BaFin order 12",
        ],
    );
    cli.ok(
        admin,
        &[
            "register",
            "pledge",
            "--isin",
            ISIN,
            "--holder",
            alice,
            "--amount",
            "200",
            "--beneficiary",
            bob,
        ],
    );
    let check = cli.json(
        admin,
        &[
            "register",
            "check",
            "--isin",
            ISIN,
            "--sender",
            alice,
            "--receiver",
            bob,
            "--amount",
            "600",
        ],
    );
    assert_eq!(check["reason"], "InsufficientFreeBalance");
    let err = cli.fails(
        admin,
        &[
            "register",
            "restrict",
            "--isin",
            ISIN,
            "--holder",
            alice,
            "--amount",
            "600",
            "--reason-code",
            "1",
            "--authority",
            "x",
        ],
    );
    assert!(err.contains("RegisterFreeBalanceTooLow"), "{err}");

    // A signed instruction: signed by the holder's HSM key, submitted and executed by the keeper.
    let file = cli.dir.join("instruction.json");
    cli.ok(
        alice,
        &[
            "instruction",
            "sign",
            "--isin",
            ISIN,
            "--to",
            bob,
            "--amount",
            "100",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    let err = cli.fails(
        alice,
        &[
            "instruction",
            "sign",
            "--isin",
            ISIN,
            "--to",
            bob,
            "--amount",
            "7",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    assert!(err.contains("is never overwritten"), "{err}");
    let submitted = cli.json(admin, &["instruction", "submit", "--file", file.to_str().unwrap()]);
    assert_eq!(submitted["instructionId"], 0);
    let err = cli.fails(admin, &["instruction", "submit", "--file", file.to_str().unwrap()]);
    assert!(err.contains("InstructionBook.submit reverted"), "replay must be refused: {err}");
    let executed = cli.json(admin, &["instruction", "execute"]);
    assert_eq!(executed["instructions"][0]["executed"], true, "{executed}");
    // A tampered instruction file is refused.
    let mut tampered: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    tampered["amount"] = Value::String("0x3e7".into());
    std::fs::write(&file, tampered.to_string()).unwrap();
    let err = cli.fails(admin, &["instruction", "submit", "--file", file.to_str().unwrap()]);
    assert!(err.contains("reverted"), "{err}");
    std::fs::write(&file, "{not json").unwrap();
    let err = cli.fails(admin, &["instruction", "submit", "--file", file.to_str().unwrap()]);
    assert!(err.contains("is not a signed instruction"), "{err}");

    // Forced transfer with a document, then its reversal.
    let order = cli.dir.join("order.pdf");
    std::fs::write(&order, "court order 4711").unwrap();
    let forced = cli.json(
        admin,
        &[
            "register",
            "force-transfer",
            "--isin",
            ISIN,
            "--sender",
            bob,
            "--receiver",
            alice,
            "--amount",
            "50",
            "--reason",
            "court-order",
            "--document",
            order.to_str().unwrap(),
        ],
    );
    let entry = forced["entryId"].as_u64().unwrap().to_string();
    let reversed = cli.json(
        admin,
        &["register", "reverse", "--entry", &entry, "--document", order.to_str().unwrap()],
    );
    assert_eq!(reversed["reverses"].as_u64().unwrap().to_string(), entry);

    let doc = format!("0x{}", "11".repeat(32));
    let err = cli.fails(
        admin,
        &[
            "register",
            "force-transfer",
            "--isin",
            ISIN,
            "--sender",
            bob,
            "--receiver",
            bob,
            "--amount",
            "1",
            "--reason",
            "court-order",
            "--document-hash",
            &doc,
        ],
    );
    assert!(err.contains("nothing would move"), "{err}");
    let err = cli
        .fails(admin, &["register", "issue", "--isin", ISIN, "--holder", admin, "--amount", "5"]);
    assert!(err.contains("the register would refuse this: 14 ReceiverNotRegistered"), "{err}");

    // Unauthorised: the holder cannot act as register keeper.
    let err = cli.fails(bob, &["register", "freeze", "--isin", ISIN, "--holder", alice]);
    assert!(err.contains("AccessManagedUnauthorized"), "{err}");

    // Extract and export agree with the contract; a past block shows the past.
    let extract = cli.json(admin, &["register", "extract", "--holder", alice]);
    let holding = &extract["holdings"][0]["holding"];
    assert_eq!(holding["balance"], "900", "900 after sending 100: {extract}");
    assert_eq!(holding["restricted"], "300");
    assert_eq!(holding["encumbered"], "200");
    let text = cli.ok(admin, &["register", "extract", "--holder", alice]);
    assert!(text.contains("Register extract") && text.contains("pledge"), "{text}");

    let out_dir = cli.dir.join("export");
    let now = cli.json(admin, &["register", "export", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(now["verified"], true);
    let past = cli.json(
        admin,
        &[
            "register",
            "export",
            "--block",
            &issue_block.to_string(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    let snapshot: Value =
        serde_json::from_str(&std::fs::read_to_string(past["json"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(snapshot["securities"][ISIN]["total_supply"], "1000");
    assert_eq!(snapshot["securities"][ISIN]["holdings"].as_object().unwrap().len(), 1);
    let csv = std::fs::read_to_string(past["csv"].as_str().unwrap()).unwrap();
    assert!(csv.starts_with("isin,kind,currency,holder,balance"), "{csv}");
    assert_eq!(csv.lines().count(), 2, "{csv}");
    let err = cli
        .fails(admin, &["register", "export", "--block", "1", "--out", out_dir.to_str().unwrap()]);
    assert!(err.contains("before the register was deployed"), "{err}");
    let err = cli.fails(admin, &["register", "export", "--block", "99999999"]);
    assert!(err.contains("is in the future"), "{err}");
}

#[test]
fn four_eyes_for_sensitive_grants_after_bootstrap() {
    let net = DevNet::start(3);
    let cli = operator(&net);
    let [admin, second, keeper] = [0, 1, 2].map(|i| net.accounts[i].to_checksum(None));
    let (admin, second, keeper) = (admin.as_str(), second.as_str(), keeper.as_str());
    cli.ok(admin, &["contracts", "deploy"]);
    cli.ok(admin, &["roles", "grant", "--role", "PLATFORM_ADMIN", "--account", second]);
    cli.ok(admin, &["roles", "finish-bootstrap"]);

    // A sensitive grant is now a proposal; its author cannot approve it, another admin can.
    let proposed =
        cli.json(admin, &["roles", "grant", "--role", "REGISTER_KEEPER", "--account", keeper]);
    let id = proposed["proposalId"].to_string();
    let err = cli.fails(admin, &["roles", "approve", "--proposal", &id]);
    assert!(err.contains("AccessManagerSelfApproval"), "{err}");
    let before = cli.json(admin, &["roles", "list"]);
    assert!(!before.as_array().unwrap().iter().any(|r| r["role"] == "REGISTER_KEEPER"), "{before}");
    cli.ok(second, &["roles", "approve", "--proposal", &id]);
    let after = cli.json(admin, &["roles", "list"]);
    assert!(
        after
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["role"] == "REGISTER_KEEPER" && r["active"] == true),
        "{after}"
    );

    // A grant that has expired stops working without any transaction.
    let err = cli.fails(
        admin,
        &["roles", "grant", "--role", "AUDITOR", "--account", keeper, "--expiry", "1"],
    );
    assert!(err.contains("AccessManagerGrantExpiryInPast"), "{err}");
}

#[test]
fn custody_withdrawals_through_the_cli() {
    let net = DevNet::start(4);
    let cli = operator(&net);
    let [officer, approver1, approver2, investor] =
        [0, 1, 2, 3].map(|i| net.accounts[i].to_checksum(None));
    let (officer, approver1, approver2, investor) =
        (officer.as_str(), approver1.as_str(), approver2.as_str(), investor.as_str());

    let deployed = cli.json(officer, &["contracts", "deploy"]);
    let custody = deployed["contracts"]["Custody"].as_str().unwrap().to_owned();
    for (role, account) in [
        ("REGISTER_KEEPER", officer),
        ("COMPLIANCE_OFFICER", officer),
        ("CUSTODY_OFFICER", officer),
        ("CUSTODY_APPROVER", officer),
        ("ISSUER_AGENT", approver1),
        ("CUSTODY_APPROVER", approver1),
        ("CUSTODY_APPROVER", approver2),
    ] {
        cli.ok(officer, &["roles", "grant", "--role", role, "--account", account]);
    }

    // A security whose units the officer holds and the custody contract may receive.
    cli.ok(
        officer,
        &[
            "register",
            "onboard",
            "--holder-id",
            "CUSTODIAN",
            "--country",
            "DE",
            "--kyc-expiry",
            "+30d",
            "--wallet",
            officer,
            "--wallet",
            &custody,
        ],
    );
    cli.ok(
        officer,
        &[
            "register",
            "onboard",
            "--holder-id",
            "INV-D",
            "--country",
            "DE",
            "--kyc-expiry",
            "+30d",
            "--wallet",
            investor,
        ],
    );
    let terms = cli.dir.join("terms.txt");
    std::fs::write(&terms, "terms").unwrap();
    let create = [
        "register",
        "create-security",
        "--isin",
        ISIN,
        "--issuer",
        approver1,
        "--nominal",
        "1",
        "--volume",
        "1000000",
        "--terms",
        terms.to_str().unwrap(),
        "--terms-uri",
        "u",
    ];
    let digest = |err: String| {
        err.split("--digest ").nth(1).unwrap().split_whitespace().next().unwrap().to_owned()
    };
    cli.ok(approver1, &["register", "consent", "--digest", &digest(cli.fails(officer, &create))]);
    cli.ok(officer, &create);
    let issue = ["register", "issue", "--isin", ISIN, "--holder", officer, "--amount", "1000"];
    cli.ok(approver1, &["register", "consent", "--digest", &digest(cli.fails(officer, &issue))]);
    cli.ok(officer, &issue);
    let security =
        cli.json(officer, &["contracts", "call", "SecuritiesRegister", "security", ISIN]);
    let token = security["0"]
        .as_str()
        .unwrap()
        .trim_start_matches('(')
        .split(',')
        .next()
        .unwrap()
        .to_owned();

    cli.ok(
        officer,
        &[
            "custody",
            "policy",
            "--asset",
            &token,
            "--approvals",
            "2",
            "--daily-limit",
            "500",
            "--timelock-threshold",
            "300",
            "--timelock-secs",
            "3600",
        ],
    );
    cli.ok(officer, &["custody", "open", "--client", "C1"]);
    cli.ok(
        officer,
        &["custody", "deposit", "--client", "C1", "--asset", &token, "--amount", "400"],
    );

    // The address book changes only with a second person's approval.
    let travel = cli.dir.join("travel.json");
    std::fs::write(
        &travel,
        r#"{"originator": {"name": "C1 GmbH"}, "beneficiary": {"name": "D", "account": "x"}}"#,
    )
    .unwrap();
    let request = [
        "custody",
        "request",
        "--client",
        "C1",
        "--asset",
        &token,
        "--amount",
        "100",
        "--destination",
        investor,
        "--travel-rule",
        travel.to_str().unwrap(),
    ];
    let err = cli.fails(officer, &request);
    assert!(err.contains("reverted"), "destination not yet approved: {err}");
    let change = cli.json(
        officer,
        &["custody", "destinations", "propose", "--client", "C1", "--destination", investor],
    );
    let change_id = change["changeId"].to_string();
    let err = cli.fails(officer, &["custody", "destinations", "approve", "--change", &change_id]);
    assert!(err.contains("reverted"), "the proposer cannot approve: {err}");
    cli.ok(approver1, &["custody", "destinations", "approve", "--change", &change_id]);
    let listed = cli.json(officer, &["custody", "destinations", "list", "--client", "C1"]);
    assert_eq!(listed["destinations"][0].as_str().unwrap(), investor);

    // Travel-rule data: only the hash goes on chain, and a file without parties is refused.
    let bad = cli.dir.join("bad.json");
    std::fs::write(&bad, r#"{"originator": {}}"#).unwrap();
    let mut bad_request = request.to_vec();
    *bad_request.last_mut().unwrap() = bad.to_str().unwrap();
    let err = cli.fails(officer, &bad_request);
    assert!(err.contains("lacks the beneficiary object"), "{err}");

    let requested = cli.json(officer, &request);
    let id = requested["withdrawalId"].to_string();
    let expected_hash = ecrop::cli::custody::travel_rule_hash(&travel).unwrap();
    assert_eq!(requested["travelRuleHash"].as_str().unwrap(), expected_hash.to_string());
    let err = cli.fails(officer, &["custody", "approve", "--withdrawal", &id]);
    assert!(err.contains("reverted"), "the requester cannot approve: {err}");
    let err = cli.fails(officer, &["custody", "execute", "--withdrawal", &id]);
    assert!(err.contains("cannot be executed now: AwaitingApprovals"), "{err}");
    cli.ok(approver1, &["custody", "approve", "--withdrawal", &id]);
    cli.ok(approver2, &["custody", "approve", "--withdrawal", &id]);
    cli.ok(officer, &["custody", "execute", "--withdrawal", &id]);

    // Above the threshold the time lock holds; compliance cancels during it.
    let mut big = request.to_vec();
    big[7] = "250";
    let first_big = cli.json(officer, &big)["withdrawalId"].to_string();
    big[7] = "301";
    let err = cli.fails(officer, &big);
    assert!(err.contains("reverted"), "300 left, 250 reserved: {err}");
    cli.ok(approver1, &["custody", "approve", "--withdrawal", &first_big]);
    cli.ok(approver2, &["custody", "approve", "--withdrawal", &first_big]);
    cli.ok(
        officer,
        &["custody", "cancel", "--withdrawal", &first_big, "--reason", "sanctions hit"],
    );
    let err = cli.fails(officer, &["custody", "execute", "--withdrawal", &first_big]);
    assert!(err.contains("AlreadyClosed"), "{err}");

    // The statement is rebuilt from events and checked against the contract.
    let statement = cli.json(officer, &["custody", "statement", "--client", "C1"]);
    assert_eq!(statement["positions"][0]["balance"], "300", "{statement}");
    assert_eq!(statement["positions"][0]["reserved"], "0");
    let kinds: Vec<&str> = statement["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"deposit"), "{kinds:?}");
    assert!(kinds.contains(&"withdrawal") && kinds.contains(&"release"), "{kinds:?}");
    let text = cli.ok(officer, &["custody", "statement", "--client", "C1"]);
    assert!(text.contains("closing positions (checked against the contract)"), "{text}");
}

#[test]
fn reason_codes_match_the_contracts_readme() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../contracts/README.md"))
            .unwrap();
    for (code, (name, ground)) in ecrop::cli::register::REASON_CODES.iter().enumerate() {
        let row = format!("| {code} | `{name}` | {ground} |");
        assert!(readme.contains(&row), "contracts/README.md lacks {row}");
    }
}
