//! The operator CLI for the register, end to end: deploy, roles, investors, securities,
//! movements, instructions, extracts and exports, on a real anvil chain with every
//! transaction signed in a real SoftHSM2 token by the sidecar.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{path::PathBuf, process::Command};

use common::{DevNet, ECROP};
use serde_json::Value;

const ISIN: &str = "DE0007164600";

struct Cli {
    endpoint: String,
    deployment: PathBuf,
    dir: PathBuf,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Cli {
    fn new(net: &DevNet) -> Self {
        let artifacts = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../contracts/out"));
        assert!(
            artifacts.join("SecuritiesRegister.sol").is_dir(),
            "contract artifacts missing in {}; run `forge build` in contracts/ (scripts/test does)",
            artifacts.display()
        );
        Self {
            endpoint: net.endpoint.clone(),
            deployment: net.dir.path().join("deployment.json"),
            dir: net.dir.path().to_owned(),
        }
    }

    fn run(&self, from: &str, args: &[&str]) -> Out {
        let output = Command::new(ECROP)
            .args(args)
            .args(["--from", from])
            .env("ECROP_RPC_URL", &self.endpoint)
            .env("ECROP_DEPLOYMENT", &self.deployment)
            .env("ECROP_ARTIFACTS", concat!(env!("CARGO_MANIFEST_DIR"), "/../contracts/out"))
            .env("ECROP_MATRIX", concat!(env!("CARGO_MANIFEST_DIR"), "/../contracts/matrix.json"))
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .output()
            .unwrap();
        Out {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn ok(&self, from: &str, args: &[&str]) -> String {
        let out = self.run(from, args);
        assert_eq!(out.code, 0, "ecrop {args:?} failed:\n{}\n{}", out.stdout, out.stderr);
        out.stdout
    }

    fn json(&self, from: &str, args: &[&str]) -> Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        serde_json::from_str(&self.ok(from, &with_json)).unwrap()
    }

    fn fails(&self, from: &str, args: &[&str]) -> String {
        let out = self.run(from, args);
        assert_eq!(out.code, 1, "ecrop {args:?} should fail:\n{}\n{}", out.stdout, out.stderr);
        out.stderr
    }
}

#[test]
fn register_keeper_daily_work_through_the_cli() {
    let net = DevNet::start(4);
    let cli = Cli::new(&net);
    let [admin, issuer, alice, bob] = [0, 1, 2, 3].map(|i| net.accounts[i].to_checksum(None));
    let (admin, issuer, alice, bob) =
        (admin.as_str(), issuer.as_str(), alice.as_str(), bob.as_str());

    // Deployment is idempotent.
    let first = cli.json(admin, &["contracts", "deploy"]);
    assert_eq!(first["deployed"].as_array().unwrap().len(), 4);
    assert!(first["functions_set"].as_u64().unwrap() > 0);
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
    assert!(err.contains("RegisterInvalidIsin") || err.contains("has not consented"), "{err}");

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
    let err = cli.fails(admin, &["register", "export", "--block", "99999999"]);
    assert!(err.contains("is in the future"), "{err}");
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
