//! The signer against a real SoftHSM2 token.
//!
//! All tests share one SoftHSM2 configuration, created on first use in a temporary directory
//! under cargo's target tmpdir: SoftHSM reads `SOFTHSM2_CONF` once, when the module is
//! initialised, and a module is initialised once per process. Each test uses its own token
//! label. Without SoftHSM2 these tests fail with a message saying so; they never pass
//! silently.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use alloy::consensus::transaction::SignerRecoverable;
use alloy::consensus::{TxEnvelope, TypedTransaction};
use alloy::dyn_abi::TypedData;
use alloy::eips::eip2718::{Decodable2718, Encodable2718};
use alloy::network::TxSigner;
use alloy::primitives::{Address, B256};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::Signer;
use ecrop::signer::{
    HsmSigner, KeyInfo, Keyring, KeyringStatus, PinSource, Token, TokenConfig, address_of,
};
use secrecy::SecretString;

/// Module used unless `ECROP_PKCS11_MODULE` names another (scripts/env.sh sets it).
const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const SO_PIN: &str = "so-pin-0000";
const USER_PIN: &str = "user-pin-1234";
/// Prefix of the per-run SoftHSM directory under cargo's target tmpdir.
const DIR_PREFIX: &str = "ecrop-softhsm-";
/// Environment variable holding the user PIN for tests that read it from the environment.
const PIN_ENV: &str = "ECROP_TEST_HSM_USER_PIN";

struct Hsm {
    module: PathBuf,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

fn hsm() -> &'static Hsm {
    static HSM: OnceLock<Hsm> = OnceLock::new();
    HSM.get_or_init(|| {
        let module = std::env::var_os("ECROP_PKCS11_MODULE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MODULE));
        assert!(
            module.exists(),
            "SoftHSM2 PKCS#11 module not found at {}: install softhsm2 (scripts/bootstrap does) \
             or set ECROP_PKCS11_MODULE",
            module.display()
        );

        remove_stale_dirs();
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();

        // SAFETY: this runs once, inside `OnceLock::get_or_init`, before any test touches the
        // PKCS#11 module or the PIN variable: every test calls `hsm()` first, and other test
        // threads wait on the lock rather than read the environment.
        unsafe {
            std::env::set_var("SOFTHSM2_CONF", &conf);
            std::env::set_var(PIN_ENV, USER_PIN);
        }
        Hsm { module, root: dir.path().to_path_buf(), _dir: dir }
    })
}

/// Age after which a SoftHSM directory left by an earlier run is removed. The static holding
/// the directory is never dropped, so each run leaves one behind; an hour is far longer than
/// any run of this file, so a concurrent run's directory is never touched.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(env!("CARGO_TARGET_TMPDIR")) else { return };
    for entry in entries.flatten() {
        let stale = entry.file_name().to_string_lossy().starts_with(DIR_PREFIX)
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_AFTER));
        if stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// Initialises a fresh token and returns its config (PIN from the environment).
fn new_token(label: &str) -> TokenConfig {
    let hsm = hsm();
    Token::initialize(&hsm.module, label, &secret(SO_PIN), &secret(USER_PIN)).unwrap();
    TokenConfig {
        module: hsm.module.clone(),
        token_label: label.into(),
        pin: PinSource::Env(PIN_ENV.into()),
    }
}

fn open_new_token(label: &str) -> Token {
    Token::open(&new_token(label)).unwrap()
}

fn recover(signature: &alloy::primitives::Signature, hash: &B256) -> Address {
    signature.recover_address_from_prehash(hash).unwrap()
}

#[test]
fn initialises_token_and_lists_generated_keys() {
    let hsm = hsm();
    let cfg = new_token("t-list");
    assert!(Token::exists(&hsm.module, "t-list").unwrap());
    assert!(!Token::exists(&hsm.module, "t-list-absent").unwrap());

    let token = Token::open(&cfg).unwrap();
    assert!(token.keys().unwrap().is_empty());
    let beta = token.generate_key("beta").unwrap();
    let alpha = token.generate_key("alpha").unwrap();

    let keys = token.keys().unwrap();
    assert_eq!(keys, vec![alpha.clone(), beta.clone()], "sorted by label");
    for key in &keys {
        assert_eq!(key.public_key[0], 0x04);
        assert_eq!(key.address, address_of(&key.public_key));
    }
    assert_ne!(alpha.address, beta.address);

    // A second handle on the same token sees the same keys.
    assert_eq!(Token::open(&cfg).unwrap().keys().unwrap(), keys);
}

#[test]
fn refuses_second_token_with_same_label() {
    let hsm = hsm();
    new_token("t-twice");
    let err =
        Token::initialize(&hsm.module, "t-twice", &secret(SO_PIN), &secret(USER_PIN)).unwrap_err();
    assert_eq!(err.to_string(), "token already exists (t-twice)");
}

#[test]
fn private_keys_are_sensitive_and_never_extractable() {
    let token = open_new_token("t-protect");
    let key = token.generate_key("validator").unwrap();
    let protection = token.key_protection(&key).unwrap();
    assert!(protection.token);
    assert!(protection.private);
    assert!(protection.sensitive);
    assert!(!protection.extractable);
    assert!(protection.always_sensitive);
    assert!(protection.never_extractable);
}

#[test]
fn refuses_duplicate_key_label() {
    let token = open_new_token("t-dup");
    token.generate_key("dup").unwrap();
    let err = token.generate_key("dup").unwrap_err();
    assert_eq!(err.to_string(), "key already exists (dup)");
    assert_eq!(token.keys().unwrap().len(), 1);
}

#[test]
fn signatures_recover_to_the_key_with_low_s() {
    let token = open_new_token("t-sign");
    let key = token.generate_key("signer").unwrap();
    let mut parities = [0u32; 2];
    for _ in 0..300 {
        let hash = B256::from(rand::random::<[u8; 32]>());
        let signature = token.sign_prehash(&key, &hash).unwrap();
        assert!(signature.normalize_s().is_none(), "s is high for hash {hash}");
        assert_eq!(recover(&signature, &hash), key.address);
        parities[usize::from(signature.v())] += 1;
    }
    assert!(parities[0] > 0 && parities[1] > 0, "both parities occur: {parities:?}");
}

fn request(json: &str) -> TypedTransaction {
    serde_json::from_str::<TransactionRequest>(json).unwrap().build_typed_tx().unwrap()
}

async fn sign_and_recover(signer: &HsmSigner, mut tx: TypedTransaction) -> TxEnvelope {
    let signature = signer.sign_transaction(&mut tx).await.unwrap();
    let raw = tx.into_envelope(signature).encoded_2718();
    let decoded = TxEnvelope::decode_2718(&mut raw.as_slice()).unwrap();
    assert_eq!(decoded.recover_signer().unwrap(), signer.key().address);
    decoded
}

#[tokio::test(flavor = "multi_thread")]
async fn hsm_signer_signs_every_transaction_type() {
    let token = open_new_token("t-txs");
    let key = token.generate_key("dapp").unwrap();
    let signer = HsmSigner::new(token, key.clone()).with_chain_id(Some(1337));
    let from = key.address;
    let to = "0x3535353535353535353535353535353535353535";

    // Legacy without chain id: the signer's applies (EIP-155).
    let legacy = request(&format!(
        r#"{{"from":"{from}","to":"{to}","gas":"0x5208","gasPrice":"0x3b9aca00",
            "value":"0x1","nonce":"0x0"}}"#
    ));
    assert!(matches!(legacy, TypedTransaction::Legacy(_)));
    let signed = sign_and_recover(&signer, legacy).await;
    let TxEnvelope::Legacy(signed) = signed else { panic!("not legacy") };
    assert_eq!(signed.tx().chain_id, Some(1337));

    let slot = B256::with_last_byte(1);
    let eip2930 = request(&format!(
        r#"{{"from":"{from}","to":"{to}","gas":"0x7530","gasPrice":"0x3b9aca00","value":"0x2",
            "nonce":"0x1","chainId":"0x539",
            "accessList":[{{"address":"{to}","storageKeys":["{slot}"]}}]}}"#
    ));
    assert!(matches!(eip2930, TypedTransaction::Eip2930(_)));
    assert!(matches!(sign_and_recover(&signer, eip2930).await, TxEnvelope::Eip2930(_)));

    // Typed requests need their chain id filled before building: alloy's builder defaults a
    // missing one to 1, which the signer would then refuse as a mismatch.
    let eip1559 = request(&format!(
        r#"{{"from":"{from}","to":"{to}","gas":"0x5208","maxFeePerGas":"0x77359400",
            "maxPriorityFeePerGas":"0x3b9aca00","value":"0x3","nonce":"0x2","chainId":"0x539",
            "input":"0xdeadbeef"}}"#
    ));
    assert!(matches!(eip1559, TypedTransaction::Eip1559(_)));
    assert!(matches!(sign_and_recover(&signer, eip1559).await, TxEnvelope::Eip1559(_)));

    // A transaction for another chain is refused before anything is signed.
    let mut foreign = request(&format!(
        r#"{{"from":"{from}","to":"{to}","gas":"0x5208","maxFeePerGas":"0x77359400",
            "maxPriorityFeePerGas":"0x3b9aca00","nonce":"0x3","chainId":"0x1"}}"#
    ));
    let err = signer.sign_transaction(&mut foreign).await.unwrap_err();
    assert!(
        matches!(err, alloy::signers::Error::TransactionChainIdMismatch { signer: 1337, tx: 1 }),
        "{err}"
    );
}

const MAIL: &str = r#"{
  "types": {
    "EIP712Domain": [
      {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
      {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
    ],
    "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
    "Mail": [
      {"name": "from", "type": "Person"}, {"name": "to", "type": "Person"},
      {"name": "contents", "type": "string"}
    ]
  },
  "primaryType": "Mail",
  "domain": {"name": "Ether Mail", "version": "1", "chainId": 1,
             "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
  "message": {
    "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
    "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
    "contents": "Hello, Bob!"
  }
}"#;

#[tokio::test(flavor = "multi_thread")]
async fn hsm_signer_signs_eip191_and_eip712() {
    let token = open_new_token("t-msgs");
    let key = token.generate_key("wallet").unwrap();
    let signer = HsmSigner::new(token, key.clone());

    let message = b"ecrop says hello";
    let signature = signer.sign_message(message).await.unwrap();
    assert_eq!(signature.recover_address_from_msg(message).unwrap(), key.address);

    let typed: TypedData = serde_json::from_str(MAIL).unwrap();
    let signature = signer.sign_dynamic_typed_data(&typed).await.unwrap();
    let hash = typed.eip712_signing_hash().unwrap();
    assert_eq!(recover(&signature, &hash), key.address);
}

fn write_pin(path: &Path, pin: &str) {
    std::fs::write(path, format!("{pin}\n")).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_pin_is_reported_and_not_retried_until_it_changes() {
    let hsm = hsm();
    let mut cfg = new_token("t-pin");
    let pin_file = hsm.root.join("t-pin.pin");
    write_pin(&pin_file, "not-the-pin");
    cfg.pin = PinSource::File(pin_file.clone());
    let keyring = Keyring::new(cfg.clone());

    let err = keyring.accounts().await.unwrap_err();
    assert_eq!(err.to_string(), "pin incorrect for token (t-pin)");
    for _ in 0..3 {
        let err = keyring.accounts().await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "pin incorrect for token (t-pin); not retried until the pin changes"
        );
    }
    assert_eq!(
        keyring.status().await,
        KeyringStatus::Unavailable {
            reason: "pin incorrect for token (t-pin); not retried until the pin changes".into()
        }
    );
    assert!(keyring.signer(Address::ZERO).await.is_err());

    // A different wrong PIN is tried once, then held back in turn.
    write_pin(&pin_file, "still-not-the-pin");
    let err = keyring.open().await.unwrap_err();
    assert_eq!(err.to_string(), "pin incorrect for token (t-pin)");
    let err = keyring.open().await.unwrap_err();
    assert!(err.to_string().ends_with("not retried until the pin changes"), "{err}");

    // Fixing the file is enough; no restart.
    write_pin(&pin_file, USER_PIN);
    assert_eq!(keyring.accounts().await.unwrap(), Vec::<KeyInfo>::new());
    assert_eq!(keyring.status().await, KeyringStatus::Ready { keys: 0 });
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_token_module_or_pin_file_give_clear_errors_and_recover() {
    let hsm = hsm();
    let cfg = TokenConfig {
        module: hsm.module.clone(),
        token_label: "t-later".into(),
        pin: PinSource::Env(PIN_ENV.into()),
    };
    let keyring = Keyring::new(cfg.clone());
    let err = keyring.accounts().await.unwrap_err();
    assert_eq!(err.to_string(), "token not found (t-later)");
    assert_eq!(
        keyring.status().await,
        KeyringStatus::Unavailable { reason: "token not found (t-later)".into() }
    );

    // Once the token exists, the same keyring opens it on the next call.
    new_token("t-later");
    let key = Token::open(&cfg).unwrap().generate_key("late").unwrap();
    assert_eq!(keyring.accounts().await.unwrap(), vec![key]);

    let missing_module =
        Keyring::new(TokenConfig { module: "/nonexistent/libpkcs11.so".into(), ..cfg.clone() });
    let err = missing_module.open().await.unwrap_err();
    assert!(
        err.to_string().starts_with("pkcs#11 module not loadable (/nonexistent/libpkcs11.so)"),
        "{err}"
    );

    let pin_file = hsm.root.join("absent.pin");
    let missing_pin = Keyring::new(TokenConfig { pin: PinSource::File(pin_file.clone()), ..cfg });
    let err = missing_pin.open().await.unwrap_err();
    assert!(
        err.to_string().starts_with(&format!("pin file not readable ({})", pin_file.display())),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keyring_finds_keys_generated_after_first_listing() {
    let cfg = new_token("t-refresh");
    let keyring = Keyring::new(cfg.clone());
    assert!(keyring.accounts().await.unwrap().is_empty());

    let key = Token::open(&cfg).unwrap().generate_key("fresh").unwrap();
    let signer = keyring.signer(key.address).await.unwrap();
    assert_eq!(signer.key(), &key);
    assert_eq!(keyring.accounts().await.unwrap(), vec![key]);

    let stranger = Address::repeat_byte(0x42);
    let err = keyring.signer(stranger).await.unwrap_err();
    assert_eq!(err.to_string(), format!("unknown account ({stranger})"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_tasks_sign_concurrently() {
    let cfg = new_token("t-burst");
    let token = Token::open(&cfg).unwrap();
    let keys = [token.generate_key("k1").unwrap(), token.generate_key("k2").unwrap()];
    let keyring = Keyring::new(cfg);

    let mut tasks = Vec::new();
    for i in 0..8 {
        let keyring = keyring.clone();
        let key = keys[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let signer = keyring.signer(key.address).await.unwrap();
            for _ in 0..25 {
                let hash = B256::from(rand::random::<[u8; 32]>());
                let signature = signer.sign_hash(&hash).await.unwrap();
                assert_eq!(recover(&signature, &hash), key.address);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}
