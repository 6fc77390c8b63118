//! The `ecrop` command line as an operator uses it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{ECROP, require_tools};

fn ecrop(args: &[&str]) -> std::process::Output {
    Command::new(ECROP).args(args).output().expect("running ecrop")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_explains_every_subcommand() {
    for (args, needles) in [
        (&["--help"][..], &["serve", "keys", "dev", "--config", "--log-format"][..]),
        (
            &["serve", "--help"],
            &["--listen", "--upstream", "--pin-file", "--pin-env", "config: rpc.listen"],
        ),
        (&["keys", "generate", "--help"], &["--label", "sensitive and can never be"]),
        (&["keys", "list", "--help"], &["--json"]),
        (&["dev", "--help"], &["--rpc-port", "--data-dir", "--demo", "reuses the token"]),
    ] {
        let output = ecrop(args);
        assert!(output.status.success(), "{args:?}");
        let help = text(&output.stdout);
        for needle in needles {
            assert!(help.contains(needle), "{args:?} help lacks {needle:?}:\n{help}");
        }
    }
}

#[test]
fn pin_is_never_a_command_line_argument() {
    let output = ecrop(&["serve", "--pin", "1234"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("unexpected argument '--pin'"));
}

#[test]
fn config_file_errors_are_exact_and_hide_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ecrop.toml");
    std::fs::write(&path, "[hsm]\npin = \"123456\"\n").unwrap();
    let output = ecrop(&["--config", path.to_str().unwrap(), "serve"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "error: config file invalid ({}): line 2, column 1: unknown field `pin`",
            path.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("123456"), "secret echoed: {stderr}");

    let output = ecrop(&["--config", "/nonexistent/ecrop.toml", "serve"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("error: config file not readable (/nonexistent/ecrop.toml)")
    );

    let output = ecrop(&["serve", "--upstream", "ftp://node"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("upstream url (ftp://node): scheme must be http or https")
    );
}

#[test]
fn keys_generate_and_list_through_the_cli() {
    require_tools();
    let net = common::DevNet::start(1);
    let conf = net.data_dir().join("softhsm2.conf");
    let pin = net.data_dir().join("user.pin");
    let run = |args: &[&str]| {
        Command::new(ECROP)
            .args(args)
            .args(["--token-label", "ecrop-dev", "--pin-file", pin.to_str().unwrap()])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .unwrap()
    };

    let output = run(&["keys", "generate", "--label", "treasury", "--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let key: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(key["label"], "treasury");
    let address = key["address"].as_str().unwrap().to_owned();

    let output = run(&["keys", "list"]);
    let listing = text(&output.stdout);
    assert!(listing.starts_with("label"), "{listing}");
    assert!(listing.contains("dev-0") && listing.contains(&address), "{listing}");

    let output = run(&["keys", "generate", "--label", "treasury"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("treasury"), "{}", text(&output.stderr));

    let output = run(&["keys", "list", "--json"]);
    let keys: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(keys.len(), 2);
    for key in keys {
        let public =
            hex::decode(key["public_key"].as_str().unwrap().trim_start_matches("0x")).unwrap();
        let derived = alloy::primitives::Address::from_raw_public_key(&public[1..]);
        assert_eq!(derived.to_checksum(None), key["address"].as_str().unwrap());
    }
}

#[test]
fn dev_demo_succeeds_and_a_rerun_reuses_the_token() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let demo = || {
        let port = ecrop::dev::free_port().unwrap().to_string();
        Command::new(ECROP)
            .args(["dev", "--demo", "--keys", "2", "--rpc-port", &port, "--data-dir"])
            .arg(&data)
            .output()
            .unwrap()
    };
    let first = demo();
    assert!(first.status.success(), "{}\n{}", text(&first.stdout), text(&first.stderr));
    let stdout = text(&first.stdout);
    assert!(stdout.contains("demo: ok"), "{stdout}");
    assert!(text(&first.stderr).contains("generating key dev-1 in the token (2/2)"));

    let accounts = |out: &str| -> Vec<String> {
        out.lines().filter(|l| l.trim_start().starts_with("dev-")).map(str::to_owned).collect()
    };
    let second = demo();
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(accounts(&text(&second.stdout)), accounts(&stdout), "keys were not reused");
    assert!(!text(&second.stderr).contains("generating key"), "{}", text(&second.stderr));
    assert!(!text(&second.stderr).contains("creating token"));
}

#[test]
fn dev_without_anvil_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(ECROP)
        .args(["dev", "--demo", "--anvil", "/nonexistent/anvil", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("error: anvil could not be started (/nonexistent/anvil): not found"),
        "{stderr}"
    );
}

#[test]
fn dev_refuses_a_taken_port() {
    require_tools();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(ECROP)
        .args(["dev", "--demo", "--keys", "1", "--rpc-port", &port, "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("port {port} is taken? choose another with --rpc-port")),
        "{stderr}"
    );
}
