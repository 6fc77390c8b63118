//! `ecrop genesis`: QBFT extra data against Besu's documented example, enode derivation
//! against a known key, the network definition, and the command end to end with SoftHSM2
//! tokens in temporary directories.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use alloy::primitives::{Address, address, hex};
use ecrop::config::FileConfig;
use ecrop::genesis::{NetworkDefinition, QbftExtraData, enode_id, enode_url};
use ecrop::signer::address_of;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::Value;

const ECROP: &str = env!("CARGO_BIN_EXE_ecrop");

/// `extraData` of the block-header validator selection example in Besu's QBFT documentation
/// ("Configure QBFT consensus", genesis file), with its four validators.
const BESU_DOC_EXTRA_DATA: &str = "0xf87aa00000000000000000000000000000000000000000000000000000000000000000f8549464a702e6263b7297a96638cac6ae65e6541f4169943923390ad55e90c237593b3b0e401f3b08a0318594aefdb9a738c9f433e5b6b212a6d62f6370c2f69294c7eeb9a4e00ce683cf93039b212648e01c6c6b78c080c0";

/// `extraData` of the contract validator selection example on the same page: no validators.
const BESU_DOC_EXTRA_DATA_CONTRACT: &str =
    "0xe5a00000000000000000000000000000000000000000000000000000000000000000c0c080c0";

const BESU_DOC_VALIDATORS: [Address; 4] = [
    address!("64a702e6263b7297a96638cac6ae65e6541f4169"),
    address!("3923390ad55e90c237593b3b0e401f3b08a03185"),
    address!("aefdb9a738c9f433e5b6b212a6d62f6370c2f692"),
    address!("c7eeb9a4e00ce683cf93039b212648e01c6c6b78"),
];

/// The secp256k1 generator point G, uncompressed: the public key of private key 1.
const GENERATOR: &str = "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8";

fn module() -> String {
    let module = std::env::var("ECROP_PKCS11_MODULE")
        .unwrap_or_else(|_| "/usr/lib/softhsm/libsofthsm2.so".into());
    assert!(
        Path::new(&module).exists(),
        "PKCS#11 module missing ({module}); run scripts/bootstrap, which installs softhsm2"
    );
    module
}

#[test]
fn extra_data_matches_besu_documentation_example() {
    let ours = QbftExtraData::genesis(BESU_DOC_VALIDATORS.to_vec());
    assert_eq!(hex::encode_prefixed(ours.encode()), BESU_DOC_EXTRA_DATA);

    let decoded = QbftExtraData::decode(&hex::decode(BESU_DOC_EXTRA_DATA).unwrap()).unwrap();
    assert_eq!(decoded, ours);
    assert_eq!(decoded.validators, BESU_DOC_VALIDATORS);
    assert_eq!(decoded.round, 0);
    assert!(decoded.seals.is_empty());
}

#[test]
fn extra_data_without_validators_matches_contract_selection_example() {
    let ours = QbftExtraData::genesis(Vec::new());
    assert_eq!(hex::encode_prefixed(ours.encode()), BESU_DOC_EXTRA_DATA_CONTRACT);
    let decoded =
        QbftExtraData::decode(&hex::decode(BESU_DOC_EXTRA_DATA_CONTRACT).unwrap()).unwrap();
    assert_eq!(decoded, ours);
}

#[test]
fn refuses_extra_data_with_a_vote() {
    // The documentation example with the vote list [validator 1, 0xff] in place of [].
    let mut vote = vec![0xd7, 0x94];
    vote.extend_from_slice(BESU_DOC_VALIDATORS[0].as_slice());
    vote.extend_from_slice(&[0x81, 0xff]);
    let mut bytes = hex::decode(BESU_DOC_EXTRA_DATA).unwrap();
    let at = bytes.len() - 3;
    bytes.splice(at..at + 1, vote);
    bytes[1] += 23;
    let error = QbftExtraData::decode(&bytes).unwrap_err();
    assert_eq!(error.to_string(), "qbft extra data invalid: carries a vote; genesis has none");
}

#[test]
fn enode_of_private_key_one_is_the_generator_point() {
    let secret = k256::SecretKey::from_slice(&{
        let mut one = [0u8; 32];
        one[31] = 1;
        one
    })
    .unwrap();
    let point = secret.public_key().to_encoded_point(false);
    assert_eq!(hex::encode(point.as_bytes()), GENERATOR);

    let public_key: [u8; 65] = hex::decode(GENERATOR).unwrap().try_into().unwrap();
    assert_eq!(enode_id(&public_key).unwrap(), &GENERATOR[2..]);
    assert_eq!(
        enode_url(&public_key, "10.0.0.1".parse().unwrap(), 30303).unwrap(),
        format!("enode://{}@10.0.0.1:30303", &GENERATOR[2..])
    );
    // Private key 1's well-known address.
    assert_eq!(address_of(&public_key), address!("7e5f4552091a69125d5dfcb7b8c2659029395bdf"));
}

#[test]
fn refuses_a_key_that_is_not_uncompressed() {
    let mut public_key: [u8; 65] = hex::decode(GENERATOR).unwrap().try_into().unwrap();
    public_key[0] = 0x02;
    assert_eq!(
        enode_id(&public_key).unwrap_err().to_string(),
        "public key invalid (first byte 0x02, expected 0x04)"
    );
    public_key[0] = 0x04;
    public_key[64] ^= 1;
    assert_eq!(
        enode_id(&public_key).unwrap_err().to_string(),
        "public key invalid (not a point on secp256k1)"
    );
}

#[test]
fn example_network_definition_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../genesis/network.toml");
    let def = NetworkDefinition::load(&path).unwrap();
    assert_eq!(def.validators.len(), 4);
    assert_eq!(def.members.len(), 4);
    assert!(!def.admins.is_empty());
}

#[test]
fn refuses_duplicate_validator_names() {
    let text = small_definition("127.0.0.1").replace("name = \"beta\"", "name = \"alpha\"");
    let def = NetworkDefinition::parse(&text).unwrap();
    assert_eq!(
        def.checked().unwrap_err().to_string(),
        "network definition invalid: validator name (alpha) appears twice"
    );
}

#[test]
fn refuses_unknown_keys() {
    let text = small_definition("127.0.0.1").replace("chain_id", "chainid");
    let error = NetworkDefinition::parse(&text).unwrap_err();
    assert!(error.contains("unknown field `chainid`"), "{error}");
}

fn small_definition(host: &str) -> String {
    format!(
        r#"admins = ["0x2000000000000000000000000000000000000001"]

[network]
name = "test"
chain_id = 4242
block_period_seconds = 1
epoch_length = 100
request_timeout_seconds = 4
account_balance_ether = 5

[[validators]]
name = "alpha"
host = "{host}"
p2p_port = 30311
rpc_port = 8611
sidecar_port = 8711

[[validators]]
name = "beta"
host = "{host}"
p2p_port = 30312
rpc_port = 8612
sidecar_port = 8712

[[members]]
name = "Alpha Bank"
account = "0x1000000000000000000000000000000000000001"

[contracts]
artifacts = "{artifacts}"
"#,
        artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/out").display()
    )
}

fn run_genesis(definition: &Path, out: &Path, module: &str) -> std::process::Output {
    Command::new(ECROP)
        .args(["genesis", "--network"])
        .arg(definition)
        .arg("--out")
        .arg(out)
        .env("ECROP_PKCS11_MODULE", module)
        .env_remove("SOFTHSM2_CONF")
        .env("ECROP_LOG", "warn")
        .output()
        .expect("running ecrop genesis")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn generates_a_network_from_hsm_keys_and_reuses_them() {
    let module = module();
    let dir = tempfile::tempdir().unwrap();
    let definition = dir.path().join("network.toml");
    std::fs::write(&definition, small_definition("127.0.0.1")).unwrap();
    let out = dir.path().join("out");

    let first = run_genesis(&definition, &out, &module);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{stdout}{}", String::from_utf8_lossy(&first.stderr));
    assert!(stdout.contains("[1/2] generating key node in token alpha"), "{stdout}");
    assert!(stdout.contains("[2/2] generating key node in token beta"), "{stdout}");

    // Keys and addresses as the nodes report them.
    let mut addresses = Vec::new();
    let mut enodes = Vec::new();
    for name in ["alpha", "beta"] {
        let node = read_json(&out.join("nodes").join(name).join("node.json"));
        let public_key: [u8; 65] =
            hex::decode(node["publicKey"].as_str().unwrap()).unwrap().try_into().unwrap();
        let address: Address = node["address"].as_str().unwrap().parse().unwrap();
        assert_eq!(address_of(&public_key), address);
        assert_eq!(
            node["enode"].as_str().unwrap(),
            enode_url(
                &public_key,
                "127.0.0.1".parse().unwrap(),
                if name == "alpha" { 30311 } else { 30312 }
            )
            .unwrap()
        );
        addresses.push(address);
        enodes.push(node["enode"].clone());

        for pin in ["user.pin", "so.pin"] {
            let mode = std::fs::metadata(out.join("nodes").join(name).join("hsm").join(pin))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}/{pin}");
        }
        assert!(out.join("nodes").join(name).join("token").join("token.object").exists());
    }
    assert_ne!(addresses[0], addresses[1]);

    // Genesis: QBFT parameters, validators in extraData, free gas, funded accounts.
    let genesis = read_json(&out.join("genesis.json"));
    assert_eq!(genesis["config"]["chainId"], 4242);
    assert_eq!(genesis["config"]["qbft"]["blockperiodseconds"], 1);
    assert_eq!(genesis["config"]["qbft"]["epochlength"], 100);
    assert_eq!(genesis["config"]["qbft"]["requesttimeoutseconds"], 4);
    assert_eq!(genesis["config"]["zeroBaseFee"], true);
    assert_eq!(genesis["config"]["londonBlock"], 0);
    assert_eq!(genesis["difficulty"], "0x1");
    assert_eq!(genesis["mixHash"], ecrop::genesis::BFT_MIX_HASH);
    let extra =
        QbftExtraData::decode(&hex::decode(genesis["extraData"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(extra.validators, addresses);
    let five_ether = "0x4563918244f40000";
    for account in
        ["0x1000000000000000000000000000000000000001", "0x2000000000000000000000000000000000000001"]
    {
        assert_eq!(genesis["alloc"][account]["balance"], five_ether, "{account}");
    }

    // The platform in alloc, deployed by the first admin from nonce 0.
    let admin = address!("2000000000000000000000000000000000000001");
    assert_eq!(genesis["alloc"][admin.to_string()]["nonce"], "0x5");
    let deployment = read_json(&out.join("deployment.json"));
    assert_eq!(deployment["chain_id"], 4242);
    let manager = admin.create(0);
    let recorded: Address =
        deployment["contracts"]["EcropAccessManager"].as_str().unwrap().parse().unwrap();
    assert_eq!(recorded, manager);
    let entry = &genesis["alloc"][manager.to_string()];
    assert!(entry["code"].as_str().unwrap().len() > 2);
    assert!(!entry["storage"].as_object().unwrap().is_empty());
    assert!(stdout.contains(&format!("pre-deployed EcropAccessManager at {manager}")), "{stdout}");

    assert_eq!(read_json(&out.join("static-nodes.json")), Value::Array(enodes));

    // Besu configuration: only options Besu documents, RPC on loopback, free gas.
    let besu: toml::Table =
        std::fs::read_to_string(out.join("nodes/alpha/besu/config.toml")).unwrap().parse().unwrap();
    let documented = [
        "data-path",
        "genesis-file",
        "static-nodes-file",
        "discovery-enabled",
        "p2p-host",
        "p2p-port",
        "rpc-http-enabled",
        "rpc-http-host",
        "rpc-http-port",
        "rpc-http-api",
        "host-allowlist",
        "min-gas-price",
        "permissions-nodes-config-file-enabled",
        "permissions-nodes-config-file",
        "permissions-accounts-config-file-enabled",
        "permissions-accounts-config-file",
    ];
    for key in besu.keys() {
        assert!(documented.contains(&key.as_str()), "undocumented besu option {key}");
    }
    assert_eq!(besu["rpc-http-host"].as_str(), Some("127.0.0.1"));
    assert_eq!(besu["rpc-http-port"].as_integer(), Some(8611));
    assert_eq!(besu["p2p-port"].as_integer(), Some(30311));
    assert_eq!(besu["min-gas-price"].as_integer(), Some(0));
    let apis = besu["rpc-http-api"].as_array().unwrap();
    assert!(apis.iter().any(|a| a.as_str() == Some("PERM")));
    let genesis_file = Path::new(besu["genesis-file"].as_str().unwrap());
    assert_eq!(genesis_file, std::fs::canonicalize(&out).unwrap().join("genesis.json"));

    let permissions: toml::Table =
        std::fs::read_to_string(out.join("nodes/alpha/besu/permissions_config.toml"))
            .unwrap()
            .parse()
            .unwrap();
    assert_eq!(permissions["nodes-allowlist"].as_array().unwrap().len(), 2);
    assert_eq!(permissions["accounts-allowlist"].as_array().unwrap().len(), 2);

    // Sidecar configuration: the sidecar's own parser accepts it.
    let sidecar =
        FileConfig::parse(&std::fs::read_to_string(out.join("nodes/beta/ecrop.toml")).unwrap())
            .unwrap();
    assert_eq!(sidecar.rpc.listen, Some("127.0.0.1:8712".parse().unwrap()));
    assert_eq!(sidecar.upstream.url.as_deref(), Some("http://127.0.0.1:8612"));
    assert_eq!(sidecar.hsm.token_label.as_deref(), Some("beta"));
    let pin_file = sidecar.hsm.pin_file.unwrap();
    assert!(pin_file.ends_with("nodes/beta/hsm/user.pin") && pin_file.exists());

    // A rerun reuses the tokens and keys: same validators, same genesis.
    let second = run_genesis(&definition, &out, &module);
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{stdout}{}", String::from_utf8_lossy(&second.stderr));
    assert!(stdout.contains("[1/2] reusing key node of token alpha"), "{stdout}");
    assert!(!stdout.contains("generating"), "{stdout}");
    assert_eq!(read_json(&out.join("genesis.json")), genesis);

    // `--json`: the result on stdout for machines, progress on stderr.
    let third = Command::new(ECROP)
        .args(["genesis", "--json", "--network"])
        .arg(&definition)
        .arg("--out")
        .arg(&out)
        .env("ECROP_PKCS11_MODULE", &module)
        .env_remove("SOFTHSM2_CONF")
        .env("ECROP_LOG", "warn")
        .output()
        .unwrap();
    assert!(third.status.success(), "{}", String::from_utf8_lossy(&third.stderr));
    let summary: Value = serde_json::from_slice(&third.stdout).unwrap();
    assert_eq!(summary["chainId"], 4242);
    assert_eq!(summary["validators"][1]["name"], "beta");
    let manager_json: Address =
        summary["contracts"]["EcropAccessManager"].as_str().unwrap().parse().unwrap();
    assert_eq!(manager_json, manager);
    assert!(
        String::from_utf8_lossy(&third.stderr).contains("[2/2] reusing key node of token beta")
    );
}

#[test]
fn fails_loudly_without_the_pkcs11_module() {
    let dir = tempfile::tempdir().unwrap();
    let definition = dir.path().join("network.toml");
    std::fs::write(&definition, small_definition("127.0.0.1")).unwrap();
    let output = run_genesis(&definition, &dir.path().join("out"), "/nonexistent/libsofthsm2.so");
    assert!(!output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim_end(),
        "error: pkcs#11 module missing (/nonexistent/libsofthsm2.so); run scripts/bootstrap, \
         which installs softhsm2"
    );
}

/// The platform's constructors executed with revm leave exactly the code and storage that a
/// live deployment of the same contracts by the same account leaves on anvil.
#[tokio::test(flavor = "multi_thread")]
async fn predeployed_platform_equals_a_live_deployment() {
    use alloy::dyn_abi::DynSolValue;
    use alloy::providers::Provider;
    use ecrop::genesis::{execute_constructors, platform_creations};
    use ecrop::onchain::{Artifacts, Client, ErrorBook, PLATFORM_CONTRACTS};

    let artifacts = Artifacts::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/out"));
    let net = common::DevNet::start(1);
    let deployer = net.accounts[0];
    let client = Client::new(&net.endpoint, Some(deployer), ErrorBook::new()).unwrap();
    let chain_id = client.chain_id().await.unwrap();

    // Live: the same constructor arguments `ecrop contracts deploy` uses, through the sidecar.
    let mut live = Vec::new();
    for name in PLATFORM_CONTRACTS {
        let at = |nonce: u64| DynSolValue::Address(deployer.create(nonce));
        let args = match name {
            "EcropAccessManager" => vec![DynSolValue::Address(deployer)],
            "InvestorRegistry" | "Custody" => vec![at(0)],
            "SecuritiesRegister" => vec![at(0), at(1)],
            "InstructionBook" => vec![at(0), at(2)],
            other => panic!("unexpected platform contract {other}"),
        };
        let sent = client.deploy(&artifacts.get(name).unwrap(), &args).await.unwrap();
        live.push(sent.contract_address.unwrap());
    }

    let predeployed = execute_constructors(
        chain_id,
        deployer,
        &platform_creations(&artifacts, deployer).unwrap(),
    )
    .unwrap();
    assert_eq!(predeployed.len(), PLATFORM_CONTRACTS.len());
    let provider = client.provider();
    for (contract, address) in predeployed.iter().zip(&live) {
        assert_eq!(contract.address, *address, "{}", contract.name);
        let code = provider.get_code_at(*address).await.unwrap();
        assert_eq!(contract.code, code, "{} code", contract.name);
        assert!(
            !contract.storage.is_empty() || contract.name == "Custody",
            "{} wrote nothing",
            contract.name
        );
        for (slot, value) in &contract.storage {
            let on_chain = provider.get_storage_at(*address, (*slot).into()).await.unwrap();
            assert_eq!(
                alloy::primitives::B256::from(on_chain),
                *value,
                "{} slot {slot}",
                contract.name
            );
        }
    }
}

/// docker-compose.yml, checked statically (no Docker engine here): four validators on the
/// pinned official Besu image, each with a sidecar from the repository's Dockerfile, its own
/// token, loopback-only ports, and addresses and paths that match genesis/network.toml.
#[test]
fn compose_stack_matches_the_network_definition() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(repo.join("docker-compose.yml")).unwrap();
    let mut compose: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    compose.apply_merge().unwrap();
    let def = NetworkDefinition::load(&repo.join("genesis/network.toml")).unwrap();
    let root = def.nodes.root.clone().unwrap();
    assert!(repo.join("Dockerfile").exists());
    let dockerfile = std::fs::read_to_string(repo.join("Dockerfile")).unwrap();
    for line in dockerfile.lines().filter(|l| l.starts_with("COPY ") && !l.contains("--from")) {
        for source in line.split_whitespace().skip(1).collect::<Vec<_>>().split_last().unwrap().1 {
            assert!(repo.join(source).exists(), "Dockerfile copies a missing path ({source})");
        }
    }

    let services = compose["services"].as_mapping().unwrap();
    assert_eq!(services.len(), 2 * def.validators.len());
    let mut tokens = std::collections::HashSet::new();
    for (index, v) in def.validators.iter().enumerate() {
        let besu = &compose["services"][format!("besu-{}", index + 1).as_str()];
        let sidecar = &compose["services"][format!("sidecar-{}", index + 1).as_str()];

        let image = besu["image"].as_str().unwrap();
        let version = image.strip_prefix("hyperledger/besu:").expect("official besu image");
        assert!(
            version.split('.').count() == 3 && version.split('.').all(|p| p.parse::<u32>().is_ok()),
            "besu image not pinned to a release ({image})"
        );
        let address = besu["networks"]["ecrop"]["ipv4_address"].as_str().unwrap();
        assert_eq!(address, v.host.to_string(), "{}", v.name);
        let config = format!("--config-file={}/nodes/{}/besu/config.toml", root.display(), v.name);
        assert_eq!(besu["command"][0].as_str(), Some(config.as_str()));

        for port in besu["ports"].as_sequence().unwrap() {
            let port = port.as_str().unwrap();
            assert!(port.starts_with("127.0.0.1:"), "port not on loopback ({port})");
            assert!(port.ends_with(&format!(":{}", v.sidecar_port)), "only the sidecar ({port})");
        }
        assert!(sidecar.get("ports").is_none(), "sidecar publishes through its besu service");

        assert_eq!(sidecar["build"]["context"].as_str(), Some("."));
        assert_eq!(sidecar["build"]["dockerfile"].as_str(), Some("Dockerfile"));
        let namespace = format!("service:besu-{}", index + 1);
        assert_eq!(sidecar["network_mode"].as_str(), Some(namespace.as_str()));
        let volumes: Vec<&str> =
            sidecar["volumes"].as_sequence().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
        let token = format!("./.ecrop/network/nodes/{}/token:", v.name);
        let own_token: Vec<&&str> = volumes.iter().filter(|m| m.starts_with(&token)).collect();
        assert_eq!(own_token.len(), 1, "{} mounts its own token", v.name);
        assert!(tokens.insert(own_token[0].to_string()));
        assert!(
            volumes.iter().all(|m| m.contains(&format!("/nodes/{}/", v.name))),
            "{} mounts only its own node files ({volumes:?})",
            v.name
        );
    }
}

/// A small network generated into a temporary directory: (directory, output, module path).
fn generated_network() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let module = module();
    let dir = tempfile::tempdir().unwrap();
    let definition = dir.path().join("network.toml");
    std::fs::write(&definition, small_definition("127.0.0.1")).unwrap();
    let out = dir.path().join("out");
    let generated = run_genesis(&definition, &out, &module);
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    (dir, out, module)
}

#[tokio::test]
async fn dev_chain_starts_from_the_generated_genesis() {
    let (dir, out, _) = generated_network();
    let genesis = read_json(&out.join("genesis.json"));
    let deployment = read_json(&out.join("deployment.json"));
    let register = deployment["contracts"]["SecuritiesRegister"].as_str().unwrap().to_owned();

    common::require_tools();
    let port = ecrop::dev::free_port().unwrap();
    let mut command = Command::new(common::ECROP);
    command.args(["dev", "--keys", "1", "--rpc-port", &port.to_string(), "--genesis"]);
    command.arg(out.join("genesis.json")).arg("--data-dir").arg(dir.path().join("dev"));
    let mut proc = common::Proc::spawn(command, dir.path().join("dev.log"));
    let endpoint = proc.wait_line("endpoint").split_whitespace().nth(1).unwrap().to_owned();

    // Same chain and the same contracts at the same addresses, seen through the sidecar.
    let chain = common::call(&endpoint, "eth_chainId", serde_json::json!([])).await;
    assert_eq!(
        u64::from_str_radix(chain["result"].as_str().unwrap().trim_start_matches("0x"), 16)
            .unwrap(),
        genesis["config"]["chainId"].as_u64().unwrap()
    );
    let code =
        common::call(&endpoint, "eth_getCode", serde_json::json!([register, "latest"])).await;
    let code = code["result"].as_str().unwrap();
    assert_eq!(
        code,
        genesis["alloc"][register.to_lowercase().trim_start_matches("0x")]["code"]
            .as_str()
            .unwrap_or(code)
    );
    assert!(code.len() > 1000, "no register code at {register}: {code}");
    assert!(dir.path().join("dev").join("deployment.json").is_file());

    // Operated through the sidecar: an HSM-signed transaction is mined and the register answers.
    let accounts = common::call(&endpoint, "eth_accounts", serde_json::json!([])).await;
    let from = accounts["result"][0].as_str().unwrap().to_owned();
    let sent = common::call(
        &endpoint,
        "eth_sendTransaction",
        serde_json::json!([{"from": from, "to": from, "value": "0x1"}]),
    )
    .await;
    let hash = sent["result"].as_str().unwrap_or_else(|| panic!("{sent}")).to_owned();
    let mut mined = Value::Null;
    for _ in 0..100 {
        mined = common::call(&endpoint, "eth_getTransactionReceipt", serde_json::json!([hash]))
            .await["result"]
            .clone();
        if !mined.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(mined["status"], "0x1", "{mined}");
    // paused() of the pre-deployed register.
    let paused = common::call(
        &endpoint,
        "eth_call",
        serde_json::json!([{"to": register, "data": "0x5c975abb"}, "latest"]),
    )
    .await;
    assert_eq!(paused["result"], format!("0x{}", "0".repeat(64)), "{paused}");
}

#[tokio::test]
async fn key_service_signs_and_agrees_with_the_hsm_node_key() {
    use k256::elliptic_curve::rand_core::OsRng;

    let (dir, out, module) = generated_network();
    let node = read_json(&out.join("nodes").join("alpha").join("node.json"));
    let public_hex = node["publicKey"].as_str().unwrap().trim_start_matches("0x").to_owned();
    let address: Address = node["address"].as_str().unwrap().parse().unwrap();

    let mut command = Command::new(common::ECROP);
    command
        .args([
            "key-service",
            "--listen",
            "127.0.0.1:0",
            "--token-label",
            "alpha",
            "--pkcs11-module",
            &module,
        ])
        .arg("--pin-file")
        .arg(out.join("nodes").join("alpha").join("hsm").join("user.pin"))
        .env("SOFTHSM2_CONF", out.join("hsm").join("softhsm2.conf"));
    let mut proc = common::Proc::spawn(command, dir.path().join("keyservice.log"));
    let url = proc.wait_line("ecrop key service on").split_whitespace().nth(4).unwrap().to_owned();
    let http = reqwest::Client::new();

    assert_eq!(
        http.get(format!("{url}/upcheck")).send().await.unwrap().text().await.unwrap(),
        "OK"
    );
    let keys: Vec<String> = http
        .get(format!("{url}/api/v1/eth1/publicKeys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let identifier = format!("0x{}", &public_hex[public_hex.len() - 128..]);
    assert_eq!(keys, vec![identifier.clone()]);

    // Signing a hash: the signature recovers to the node's address.
    let hash = alloy::primitives::keccak256(b"qbft block");
    let response = http
        .post(format!("{url}/api/v1/eth1/sign/{identifier}"))
        .json(&serde_json::json!({"data": hash}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap();
    let bytes = hex::decode(text.trim_start_matches("0x")).unwrap();
    let signature = alloy::primitives::Signature::try_from(bytes.as_slice()).unwrap();
    assert_eq!(signature.recover_address_from_prehash(&hash).unwrap(), address);

    // ECDH in the token equals the software computation from the peer's side.
    let peer = k256::SecretKey::random(&mut OsRng);
    let peer_public = peer.public_key().to_encoded_point(false);
    let node_public = k256::PublicKey::from_sec1_bytes(
        &hex::decode(&public_hex)
            .map(|b| if b.len() == 64 { [&[4u8][..], &b[..]].concat() } else { b })
            .unwrap(),
    )
    .unwrap();
    let shared = (node_public.to_projective() * *peer.to_nonzero_scalar()).to_affine();
    let expected_x = {
        use k256::elliptic_curve::point::AffineCoordinates;
        shared.x()
    };
    let answer: Value = http
        .post(format!("{url}/api/v1/eth1/ecdh/{identifier}"))
        .json(&serde_json::json!({"publicKey": format!("0x{}", hex::encode(&peer_public.as_bytes()[1..]))}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["secret"], format!("0x{}", hex::encode(expected_x)));

    // Bad input gets a clear refusal.
    let wrong = http
        .post(format!("{url}/api/v1/eth1/sign/0x1234"))
        .json(&serde_json::json!({"data": hash}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 404);
    let short = http
        .post(format!("{url}/api/v1/eth1/sign/{identifier}"))
        .json(&serde_json::json!({"data": "0x1234"}))
        .send()
        .await
        .unwrap();
    assert_eq!(short.status().as_u16(), 400);
    assert_eq!(short.text().await.unwrap(), r#"{"error":"data must be a 32-byte hash (2 bytes)"}"#);
    let off_curve = http
        .post(format!("{url}/api/v1/eth1/ecdh/{identifier}"))
        .json(&serde_json::json!({"publicKey": format!("0x{}", "11".repeat(64))}))
        .send()
        .await
        .unwrap();
    assert_eq!(off_curve.status().as_u16(), 400);
    assert!(proc.is_running());
}
