//! The Besu allowlist sync against a fake Besu built from Besu's documented `PERM` API (Besu
//! itself cannot run here): initial fill, additions, removals, the no-op when in sync, refused
//! entries, fixed nodes, Besu down then up, and the permissions file for cold starts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/fake_besu.rs"]
mod fake_besu;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use alloy::primitives::Address;
use ecrop::permissioning::{
    besu_sync::{BesuClient, ConfigFiles, Desired, SyncError, SyncReport, Syncer, run},
    enode::Enode,
};
use fake_besu::{FakeBesu, Lists};
use tokio::sync::watch;

fn enode(n: u8, port: u16) -> Enode {
    format!("enode://{}@127.0.0.1:{port}", hex::encode([n; 64])).parse().unwrap()
}

fn account(n: u8) -> Address {
    Address::repeat_byte(n)
}

fn lower(a: Address) -> String {
    format!("0x{}", hex::encode(a))
}

fn syncer(url: &str, files: ConfigFiles) -> Syncer {
    Syncer::new(BesuClient::new(url).unwrap(), files, true, true)
}

async fn fake() -> FakeBesu {
    FakeBesu::start(Arc::new(Mutex::new(Lists::default()))).await
}

#[tokio::test]
async fn initial_sync_fills_besu_with_one_call_per_list_and_writes_the_file() {
    let besu = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("permissions_config.toml");
    let files = ConfigFiles { nodes: Some(file.clone()), accounts: Some(file.clone()) };
    let desired =
        Desired::new(7, [enode(1, 30303), enode(2, 30304)], [account(0xaa), account(0xbb)]);

    let report = syncer(&besu.url, files).sync_once(&desired).await.unwrap();

    assert_eq!(report.added_nodes.len(), 2);
    assert_eq!(report.added_accounts, vec![lower(account(0xaa)), lower(account(0xbb))]);
    assert_eq!(report.change_calls, 2);
    assert!(report.file_written);
    {
        let lists = besu.lists.lock().unwrap();
        assert_eq!(
            lists.node_urls(),
            [enode(1, 30303).to_string(), enode(2, 30304).to_string()].into()
        );
        assert_eq!(lists.account_set(), [account(0xaa), account(0xbb)].into());
        let calls: Vec<String> = lists.change_calls().into_iter().map(|(m, _)| m).collect();
        assert_eq!(calls, ["perm_addNodesToAllowlist", "perm_addAccountsToAllowlist"]);
        // Params are one list, as Besu documents ("params":[["enode://…", …]]).
        assert_eq!(
            lists.change_calls()[1].1,
            serde_json::json!([[lower(account(0xaa)), lower(account(0xbb))]])
        );
    }

    let content = std::fs::read_to_string(&file).unwrap();
    let expected = format!(
        "# Written by the ecrop sidecar from the consortium's permissioning contracts.\n\
         # Changes made here are overwritten; change the contracts through `ecrop perm propose`.\n\
         accounts-allowlist=[\"{}\",\"{}\"]\n\
         nodes-allowlist=[\"{}\",\"{}\"]\n",
        lower(account(0xaa)),
        lower(account(0xbb)),
        enode(1, 30303),
        enode(2, 30304)
    );
    assert_eq!(content, expected);
    besu.stop().await;
}

#[tokio::test]
async fn additions_and_removals_change_only_the_difference() {
    let besu = fake().await;
    let sync = syncer(&besu.url, ConfigFiles::default());
    sync.sync_once(&Desired::new(1, [enode(1, 1), enode(2, 2)], [account(1), account(2)]))
        .await
        .unwrap();
    besu.lists.lock().unwrap().calls.clear();

    // Node 3 and account 3 join, node 1 and account 1 leave.
    let next = Desired::new(2, [enode(2, 2), enode(3, 3)], [account(2), account(3)]);
    let report = sync.sync_once(&next).await.unwrap();

    assert_eq!(report.added_nodes, vec![enode(3, 3).to_string()]);
    assert_eq!(report.removed_nodes, vec![enode(1, 1).to_string()]);
    assert_eq!(report.added_accounts, vec![lower(account(3))]);
    assert_eq!(report.removed_accounts, vec![lower(account(1))]);
    {
        let lists = besu.lists.lock().unwrap();
        assert_eq!(lists.node_urls(), [enode(2, 2).to_string(), enode(3, 3).to_string()].into());
        assert_eq!(lists.account_set(), [account(2), account(3)].into());
        let calls: Vec<(String, serde_json::Value)> = lists.change_calls();
        assert_eq!(
            calls,
            vec![
                ("perm_addNodesToAllowlist".into(), serde_json::json!([[enode(3, 3).to_string()]])),
                (
                    "perm_removeNodesFromAllowlist".into(),
                    serde_json::json!([[enode(1, 1).to_string()]])
                ),
                ("perm_addAccountsToAllowlist".into(), serde_json::json!([[lower(account(3))]])),
                (
                    "perm_removeAccountsFromAllowlist".into(),
                    serde_json::json!([[lower(account(1))]])
                ),
            ]
        );
    }
    besu.stop().await;
}

#[tokio::test]
async fn a_sync_when_already_in_sync_changes_nothing() {
    let besu = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let files = ConfigFiles {
        nodes: Some(dir.path().join("nodes.toml")),
        accounts: Some(dir.path().join("accounts.toml")),
    };
    let sync = syncer(&besu.url, files);
    let desired = Desired::new(3, [enode(1, 1)], [account(1)]);
    assert!(sync.sync_once(&desired).await.unwrap().file_written);
    besu.lists.lock().unwrap().calls.clear();

    let again = sync.sync_once(&desired).await.unwrap();

    assert_eq!(again, SyncReport { block: 3, ..SyncReport::default() });
    {
        let lists = besu.lists.lock().unwrap();
        assert!(lists.change_calls().is_empty(), "{:?}", lists.calls);
        assert_eq!(lists.calls.len(), 2, "one read per list");
    }
    // Separate files hold one key each.
    let nodes = std::fs::read_to_string(dir.path().join("nodes.toml")).unwrap();
    assert!(nodes.ends_with(&format!("nodes-allowlist=[\"{}\"]\n", enode(1, 1))));
    assert!(!nodes.contains("accounts-allowlist"));
    let accounts = std::fs::read_to_string(dir.path().join("accounts.toml")).unwrap();
    assert!(accounts.ends_with(&format!("accounts-allowlist=[\"{}\"]\n", lower(account(1)))));
    besu.stop().await;
}

#[tokio::test]
async fn entries_edited_by_hand_on_besu_are_put_back() {
    let besu = fake().await;
    let sync = syncer(&besu.url, ConfigFiles::default());
    let desired = Desired::new(1, [enode(1, 1)], [account(1)]);
    sync.sync_once(&desired).await.unwrap();
    {
        // An operator adds a node and an account and removes ours.
        let mut l = besu.lists.lock().unwrap();
        l.nodes = vec![enode(9, 9)];
        l.accounts = vec![lower(account(9)).to_uppercase().replace("0X", "0x")];
    }

    let report = sync.sync_once(&desired).await.unwrap();

    assert_eq!(report.removed_nodes, vec![enode(9, 9).to_string()]);
    assert_eq!(report.added_nodes, vec![enode(1, 1).to_string()]);
    assert_eq!(report.removed_accounts.len(), 1);
    {
        let l = besu.lists.lock().unwrap();
        assert_eq!(l.node_urls(), [enode(1, 1).to_string()].into());
        assert_eq!(l.account_set(), [account(1)].into());
    }
    besu.stop().await;
}

#[tokio::test]
async fn refused_entries_are_reported_while_the_others_are_applied() {
    let besu = fake().await;
    let fixed = enode(5, 5);
    {
        let mut l = besu.lists.lock().unwrap();
        l.nodes.push(fixed.clone());
        l.fixed.insert(fixed.clone());
    }
    let named: Enode =
        format!("enode://{}@node-7.bank.example:30303", hex::encode([7u8; 64])).parse().unwrap();
    let desired = Desired::new(1, [enode(1, 1), named.clone()], []);

    let report = syncer(&besu.url, ConfigFiles::default()).sync_once(&desired).await.unwrap();

    // Besu without DNS support refuses host names; the batch is split to find the culprit.
    assert_eq!(report.added_nodes, vec![enode(1, 1).to_string()]);
    assert_eq!(report.rejected, vec![(named.to_string(), fake_besu::NODE_INVALID.to_owned())]);
    assert_eq!(report.kept_fixed, vec![fixed.to_string()]);
    assert_eq!(
        besu.lists.lock().unwrap().node_urls(),
        [enode(1, 1).to_string(), fixed.to_string()].into()
    );
    besu.stop().await;
}

#[tokio::test]
async fn besu_down_is_a_transient_error_and_the_file_is_still_written() {
    let port = ecrop::dev::free_port().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("permissions_config.toml");
    let files = ConfigFiles { nodes: Some(file.clone()), accounts: Some(file.clone()) };
    let sync = syncer(&format!("http://127.0.0.1:{port}"), files);

    let err = sync.sync_once(&Desired::new(1, [enode(1, 1)], [account(1)])).await.unwrap_err();

    assert!(matches!(err, SyncError::Unreachable { .. }), "{err}");
    assert!(err.is_transient());
    assert!(err.to_string().starts_with(&format!("besu unreachable (http://127.0.0.1:{port}): ")));
    // A node started now reads the current lists from the file.
    let content = std::fs::read_to_string(&file).unwrap();
    assert!(content.contains(&enode(1, 1).to_string()));
    assert!(content.contains(&lower(account(1))));
}

#[tokio::test]
async fn the_driver_retries_until_besu_is_up_and_follows_changes() {
    let port = ecrop::dev::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let (desired_tx, desired_rx) =
        watch::channel(Some(Desired::new(1, [enode(1, 1)], [account(1)])));
    let (reports_tx, mut reports) = watch::channel(None);
    let (stop_tx, stop_rx) = watch::channel(false);
    let driver = tokio::spawn(run(
        syncer(&url, ConfigFiles::default()),
        desired_rx,
        |d: &Option<Desired>| d.clone(),
        reports_tx,
        stop_rx,
    ));

    // Besu is down: the driver reports the failure and keeps trying.
    let first = wait_report(&mut reports, |r| r.is_err()).await;
    assert!(first.unwrap_err().starts_with("besu unreachable"));

    // Besu comes up on its port: the next attempt (backoff 0.5 s, then 1 s, ...) fills it.
    let lists = Arc::new(Mutex::new(Lists::default()));
    let besu =
        FakeBesu::start_on(format!("127.0.0.1:{port}").parse().unwrap(), lists.clone()).await;
    let done = wait_report(&mut reports, |r| r.is_ok()).await.unwrap();
    assert_eq!(done.added_nodes, vec![enode(1, 1).to_string()]);
    assert_eq!(lists.lock().unwrap().account_set(), [account(1)].into());

    // A change of the desired lists is applied at once.
    desired_tx.send_replace(Some(Desired::new(2, [enode(2, 2)], [account(1)])));
    let changed =
        wait_report(&mut reports, |r| r.as_ref().is_ok_and(|r| r.block == 2)).await.unwrap();
    assert_eq!(changed.removed_nodes, vec![enode(1, 1).to_string()]);
    assert_eq!(lists.lock().unwrap().node_urls(), [enode(2, 2).to_string()].into());

    stop_tx.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), driver).await.unwrap().unwrap();
    besu.stop().await;
}

async fn wait_report(
    reports: &mut watch::Receiver<Option<Result<SyncReport, String>>>,
    want: impl Fn(&Result<SyncReport, String>) -> bool,
) -> Result<SyncReport, String> {
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(r) = reports.borrow_and_update().as_ref().filter(|r| want(r)) {
                return r.clone();
            }
            reports.changed().await.unwrap();
        }
    })
    .await;
    found.expect("no matching sync report within 20 s")
}

#[tokio::test]
async fn a_node_without_the_perm_api_gets_a_clear_error() {
    // An endpoint that knows none of the PERM methods, as Besu without --rpc-http-api=PERM.
    let server = jsonrpsee::server::Server::builder().build("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.start(jsonrpsee::RpcModule::new(()));
    let url = format!("http://{addr}");

    let err = syncer(&url, ConfigFiles::default())
        .sync_once(&Desired::new(1, [enode(1, 1)], []))
        .await
        .unwrap_err();

    assert_eq!(
        err.to_string(),
        format!(
            "besu does not offer perm_getNodesAllowlist ({url}); enable the PERM api with --rpc-http-api=...,PERM"
        )
    );
    assert!(!err.is_transient());
    handle.stop().unwrap();
}
