//! `ecrop perm` end to end: deploy the permissioning contracts with three HSM accounts as
//! founding members, propose and approve additions and removals of nodes, accounts,
//! validators and members, check thresholds and expiry, and read `list` and `status`; on a
//! real anvil chain with every transaction signed in a SoftHSM2 token by the sidecar. Also the
//! exact errors for malformed enode URLs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/fake_besu.rs"]
mod fake_besu;

use std::{
    path::PathBuf,
    process::Command,
    sync::{Arc, Mutex},
};

use common::{DevNet, ECROP, OperatorCli};
use fake_besu::{FakeBesu, Lists};
use serde_json::{Value, json};

const ARTIFACTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../permissioning/out");
const ID1: &str = "6f8a80d14311c39f35f516fa664deaaaa13e85b2f7493f37f6144d86991ec012937307647bd3b9a82abe2974e1407241d54947bbb39763a4cac9f77166ad92a0";
const ID2: &str = "2feb33b3c6c4a8f77d84a5ce44954e83e5f163e7a65f7f7a7fec499ceb0ddd76a46ef635408c513d64c076470eac86b7f2c8ae4fcd112cb28ce82c0d64ec2c94";

/// The operator CLI against `net`, with the permissioning artifacts.
fn operator(net: &DevNet) -> OperatorCli {
    assert!(
        PathBuf::from(ARTIFACTS).join("ConsortiumGovernance.sol").is_dir(),
        "permissioning artifacts missing in {ARTIFACTS}; run `forge build` in permissioning/ (scripts/test does)"
    );
    let deployment = net.dir.path().join("permissioning.json");
    OperatorCli::new(
        &[
            ("ECROP_RPC_URL", &net.endpoint),
            ("ECROP_PERM_DEPLOYMENT", deployment.to_str().unwrap()),
            ("ECROP_PERM_ARTIFACTS", ARTIFACTS),
        ],
        net.dir.path(),
    )
}

fn enode(id: &str, port: u16) -> String {
    format!("enode://{id}@127.0.0.1:{port}")
}

#[test]
fn consortium_governs_nodes_accounts_validators_and_members_through_the_cli() {
    let net = DevNet::start(4);
    let cli = operator(&net);
    let [a, b, c, d] = [0, 1, 2, 3].map(|i| net.accounts[i].to_checksum(None));
    let (a, b, c, d) = (a.as_str(), b.as_str(), c.as_str(), d.as_str());

    // Deploy: three founders, 1/2 threshold (2 of 3), short lifetime so expiry is cheap.
    let deploy = [
        "perm",
        "deploy",
        "--member",
        &format!("{a}=Bank A"),
        "--member",
        &format!("{b}=Bank B"),
        "--member",
        &format!("{c}=Bank C"),
        "--validator",
        a,
        "--proposal-lifetime",
        "30",
        "--activation-delay",
        "2",
    ];
    let first = cli.json(a, &deploy);
    assert_eq!(first["deployed"].as_array().unwrap().len(), 4, "{first}");
    assert_eq!(first["bound"], true);
    let again = cli.json(a, &deploy);
    assert_eq!(again["deployed"], json!([]));
    assert_eq!(again["kept"].as_array().unwrap().len(), 4);
    assert_eq!(again["bound"], false);
    assert_eq!(again["contracts"], first["contracts"]);

    // A node: proposed by A (1 of 2), approved by B: executed.
    let node1 = enode(ID1, 30303);
    let proposed = cli.json(
        a,
        &[
            "perm",
            "propose",
            "add-node",
            "--enode",
            &node1,
            "--owner",
            a,
            "--sidecar-endpoint",
            "https://sidecar-a.bank.example:8545",
        ],
    );
    assert_eq!(proposed["proposalId"], 1);
    assert_eq!(proposed["approvals"], 1);
    assert_eq!(proposed["threshold"], 2);
    assert_eq!(proposed["executed"], false);
    let status = cli.json(a, &["perm", "status", "--proposal", "1"]);
    let p1 = &status["proposals"][0];
    assert_eq!(p1["state"], "open");
    assert_eq!(p1["kind"], "add-node");
    assert_eq!(p1["details"]["enode"], node1);
    assert_eq!(p1["approvals"], 1);
    assert_eq!(p1["threshold"], 2);
    let human = cli.ok(a, &["perm", "status"]);
    assert!(human.contains("#1    add-node         1/2  open until block "), "{human}");
    assert!(human.contains(&format!("add node {node1} owned by {a}")), "{human}");

    let approved = cli.json(b, &["perm", "approve", "--proposal", "1"]);
    assert_eq!(approved["executed"], true);
    assert_eq!(approved["approvals"], 2);
    let effective = approved["effectiveBlock"].as_u64().unwrap();
    assert_eq!(effective, approved["block"].as_u64().unwrap() + 2, "activation delay 2");

    // Lists before and after the activation block.
    let before = cli.json(a, &["perm", "list", "--block", &(effective - 1).to_string()]);
    assert_eq!(before["nodes"][0]["state"], format!("from block {effective}"));
    let at = cli.json(a, &["perm", "list", "--block", &effective.to_string()]);
    let listed = &at["nodes"][0];
    assert_eq!(listed["enode"], node1);
    assert_eq!(listed["state"], "in force");
    assert_eq!(listed["owner"], a);
    assert_eq!(listed["sidecarEndpoint"], "https://sidecar-a.bank.example:8545");
    assert_eq!(at["members"].as_array().unwrap().len(), 3);
    assert_eq!(at["validators"][0]["validator"], a);
    assert_eq!(at["validators"][0]["state"], "in force");

    // An account limited to two targets, with a requested activation block.
    let target1 = "0x00000000000000000000000000000000000000A1";
    let target2 = "0x00000000000000000000000000000000000000a2";
    let head = cli.json(a, &["perm", "status"])["block"].as_u64().unwrap();
    let at_block = (head + 10).to_string();
    let acc = cli.json(
        b,
        &[
            "perm",
            "propose",
            "add-account",
            "--account",
            d,
            "--owner",
            b,
            "--target",
            target1,
            "--target",
            target2,
            "--activation-block",
            &at_block,
        ],
    );
    let acc_id = acc["proposalId"].as_u64().unwrap().to_string();
    let done = cli.json(c, &["perm", "approve", "--proposal", &acc_id]);
    assert_eq!(done["effectiveBlock"].as_u64().unwrap(), head + 10);

    // A validator owned by C.
    let val = cli.json(c, &["perm", "propose", "add-validator", "--validator", d, "--owner", c]);
    let val_id = val["proposalId"].as_u64().unwrap().to_string();
    assert_eq!(cli.json(a, &["perm", "approve", "--proposal", &val_id])["executed"], true);

    // Double approval and approval of an executed proposal are refused with the contract's error.
    let second =
        cli.json(a, &["perm", "propose", "add-node", "--enode", &enode(ID2, 30304), "--owner", b]);
    let second_id = second["proposalId"].as_u64().unwrap();
    assert_eq!(
        cli.fails(a, &["perm", "approve", "--proposal", &second_id.to_string()]),
        format!(
            "error: ConsortiumGovernance.approve reverted: GovernanceAlreadyApproved(proposalId: {second_id}, member: {a})"
        )
    );
    assert_eq!(
        cli.fails(c, &["perm", "approve", "--proposal", &acc_id]),
        format!(
            "error: ConsortiumGovernance.approve reverted: GovernanceProposalNotOpen(proposalId: {acc_id}, state: 2)"
        )
    );
    // A non-member cannot propose.
    assert_eq!(
        cli.fails(d, &["perm", "propose", "remove-validator", "--validator", a]),
        format!(
            "error: ConsortiumGovernance.proposeRemoveValidator reverted: GovernanceNotMember(caller: {d})"
        )
    );

    // A fourth member: the threshold becomes 3 of 4.
    let member =
        cli.json(a, &["perm", "propose", "add-member", "--account", d, "--name", "Bank D"]);
    let member_id = member["proposalId"].as_u64().unwrap().to_string();
    assert_eq!(cli.json(b, &["perm", "approve", "--proposal", &member_id])["executed"], true);
    let status = cli.json(a, &["perm", "status"]);
    assert_eq!(status["members"], 4);
    assert_eq!(status["threshold"], 3);

    // Besu's local allowlists follow the contracts: a stale node goes, node 1 and account D
    // (in force once its activation block is mined) come; the file is written for cold starts.
    let mined = common_call(&net.endpoint, "anvil_mine", json!(["0xa"]));
    assert!(mined.get("error").is_none(), "{mined}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let lists = Arc::new(Mutex::new(Lists::default()));
    lists.lock().unwrap().nodes.push(enode(ID2, 30399).parse().unwrap());
    let besu = runtime.block_on(FakeBesu::start(lists.clone()));
    let file = net.dir.path().join("permissions_config.toml");
    let sync = [
        "perm",
        "sync-besu",
        "--besu-url",
        &besu.url,
        "--permissions-file",
        file.to_str().unwrap(),
    ];
    let report = cli.json(a, &sync);
    assert_eq!(report["added_nodes"], json!([node1]));
    assert_eq!(report["removed_nodes"], json!([enode(ID2, 30399)]));
    assert_eq!(report["added_accounts"], json!([d.to_lowercase()]));
    assert_eq!(report["file_written"], true);
    let content = std::fs::read_to_string(&file).unwrap();
    assert!(content.contains(&format!("nodes-allowlist=[\"{node1}\"]\n")), "{content}");
    assert!(content.contains(&format!("accounts-allowlist=[\"{}\"]\n", d.to_lowercase())));
    assert_eq!(cli.ok(a, &sync), format!("besu already in sync with block {}\n", report["block"]));
    runtime.block_on(besu.stop());

    // Removing node 1 needs 3 of 4 now: two approvals are one short and do not execute.
    let remove = cli.json(d, &["perm", "propose", "remove-node", "--enode", &node1]);
    let remove_id = remove["proposalId"].as_u64().unwrap().to_string();
    assert_eq!(remove["threshold"], 3);
    let short = cli.json(a, &["perm", "approve", "--proposal", &remove_id]);
    assert_eq!(short["approvals"], 2);
    assert_eq!(short["executed"], false);
    let listed = cli.json(a, &["perm", "list"]);
    assert_eq!(listed["nodes"][0]["state"], "in force");
    let third = cli.json(b, &["perm", "approve", "--proposal", &remove_id]);
    assert_eq!(third["executed"], true);
    let end = third["effectiveBlock"].as_u64().unwrap();
    let listed = cli.json(a, &["perm", "list"]);
    assert_eq!(listed["nodes"][0]["state"], format!("in force until {end}"));
    let later = cli.json(a, &["perm", "list", "--block", &end.to_string()]);
    assert_eq!(later["nodes"][0]["state"], "removed");

    // Removals of the account and the validator (proposer plus two approvals).
    for (kind, flag, who) in
        [("remove-account", "--account", d), ("remove-validator", "--validator", d)]
    {
        let id = cli.json(a, &["perm", "propose", kind, flag, who])["proposalId"]
            .as_u64()
            .unwrap()
            .to_string();
        cli.ok(b, &["perm", "approve", "--proposal", &id]);
        assert_eq!(cli.json(c, &["perm", "approve", "--proposal", &id])["executed"], true);
    }
    let human = cli.ok(a, &["perm", "list"]);
    assert!(human.contains("members (4)"), "{human}");
    assert!(human.contains(&format!("  {d}  Bank D  (since block ")), "{human}");
    assert!(human.contains(&format!("  {d}  owner {b}  2 targets  ")), "{human}");

    // Expiry: the second node proposal lapses after 30 blocks.
    let mined = common_call(&net.endpoint, "anvil_mine", json!(["0x20"]));
    assert!(mined.get("error").is_none(), "{mined}");
    let status = cli.json(a, &["perm", "status", "--proposal", &second_id.to_string()]);
    assert_eq!(status["proposals"][0]["state"], "expired");
    assert_eq!(
        cli.fails(b, &["perm", "approve", "--proposal", &second_id.to_string()]),
        format!(
            "error: ConsortiumGovernance.approve reverted: GovernanceProposalNotOpen(proposalId: {second_id}, state: 4)"
        )
    );
    let open = cli.json(a, &["perm", "status", "--open"]);
    assert_eq!(open["proposals"], json!([]));
}

fn common_call(url: &str, method: &str, params: Value) -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(common::call(url, method, params))
}

#[test]
fn malformed_enodes_are_refused_with_the_exact_reason() {
    let args = |url: &str| {
        let output = Command::new(ECROP)
            .args([
                "perm",
                "propose",
                "add-node",
                "--owner",
                "0x0000000000000000000000000000000000000001",
            ])
            .args(["--enode", url])
            .env("ECROP_PERM_DEPLOYMENT", "/nonexistent/permissioning.json")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "clap refuses bad values with code 2");
        String::from_utf8_lossy(&output.stderr).lines().next().unwrap_or_default().to_owned()
    };
    let cases = [
        (
            format!("enode://{}@127.0.0.1:30303", &ID1[..127]),
            "node id must be 128 hex characters (got 127)",
        ),
        (format!("enode://{ID1}@::1:30303"), "ipv6 address must be in brackets, e.g. [::1] (::1)"),
        (format!("enode://{ID1}@127.0.0.1:65536"), "port must be a number from 1 to 65535 (65536)"),
        (
            format!("enode://{ID1}@127.0.0.1:30303?foo=1"),
            "only the discport query parameter is allowed (foo=1)",
        ),
        (format!("enode://{ID1}@127.0.0.1:30303/x"), "enode url must not have a path (/x)"),
        (
            format!("enode://{ID1}@bank_a.example:30303"),
            "invalid host name (bank_a.example): only letters, digits, hyphens and dots are allowed",
        ),
    ];
    for (url, reason) in cases {
        assert_eq!(
            args(&url),
            format!("error: invalid value '{url}' for '--enode <ENODE>': {reason}"),
        );
    }
}
