//! The `[signing]` section as written in the configuration file, and its translation into a
//! [`SigningPolicy`]: addresses, selectors, function signatures and value caps are parsed and
//! checked here, once, so that a mistake stops the sidecar at start with the rule's name.

use std::collections::{BTreeMap, HashMap, HashSet};

use alloy::{
    dyn_abi::DynSolType,
    json_abi::Function,
    primitives::{Address, Selector, U256, keccak256},
};
use serde::{Deserialize, Deserializer};

use super::{DefaultRule, KeyPolicy, SigningPolicy, TargetPolicy};
use crate::config::ConfigError;

/// `[signing]` section of the configuration file.
///
/// ```toml
/// [signing]
/// default = "allow"                       # keys without an entry: "allow" (default) or "deny"
///
/// [signing.keys.0x5B38Da6a701c568545dCfcB03FcB875f56beddC4]
/// clients = ["treasury-app", "ops"]       # absent: any client
/// messages = false                        # eth_sign, personal_sign, typed data; absent: true
/// max_value = "10000000000000000000"      # wei per transaction, decimal or 0x; absent: no cap
/// contract_creation = false               # absent: true
///
/// [[signing.keys.0x5B38Da6a701c568545dCfcB03FcB875f56beddC4.targets]]
/// address = "0xd9145CCE52D386f254917e481eB44e9943F39138"
/// functions = ["transfer(address,uint256)", "0x095ea7b3"]   # absent: any call
/// max_value = "0"
/// ```
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningFile {
    /// What happens to keys without an entry in `keys`: `allow` (the default, so a sidecar
    /// without a `[signing]` section signs as before) or `deny`.
    pub default: Option<DefaultRule>,
    /// Rules per key, by the key's address (lowercase or EIP-55 checksummed).
    #[serde(default)]
    pub keys: BTreeMap<String, KeyFile>,
}

/// `[signing.keys.ADDRESS]`: the rules of one key. Every rule left out allows.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// Client ids that may use the key; absent: any client. A request without an
    /// authenticated client matches no list.
    pub clients: Option<Vec<String>>,
    /// Whether the key signs messages and typed data (`eth_sign`, `personal_sign`,
    /// `eth_signTypedData_v4`); absent: yes.
    pub messages: Option<bool>,
    /// Largest value of one transaction, in wei; absent: no cap.
    pub max_value: Option<ValueText>,
    /// Whether the key signs transactions without a recipient (contract creations); absent:
    /// yes. Creations are not subject to `targets`.
    pub contract_creation: Option<bool>,
    /// Recipients the key may send to; absent: any. An empty list allows no call at all.
    pub targets: Option<Vec<TargetFile>>,
}

/// `[[signing.keys.ADDRESS.targets]]`: one recipient a key may send to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFile {
    /// The recipient's address (lowercase or EIP-55 checksummed).
    pub address: String,
    /// Functions that may be called, as signatures (`transfer(address,uint256)`) or 4-byte
    /// selectors (`0xa9059cbb`); absent: any call, including plain value transfers. With a
    /// list, a transaction whose input is shorter than a selector is refused.
    pub functions: Option<Vec<String>>,
    /// Largest value of one transaction to this recipient, in wei; the key's `max_value`
    /// applies as well.
    pub max_value: Option<ValueText>,
}

/// A wei amount as written: a string holding a decimal or `0x` hexadecimal number, or a TOML
/// integer. Checked when the policy is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueText(pub String);

impl<'de> Deserialize<'de> for ValueText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = ValueText;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an amount of wei: a decimal or 0x string, or a non-negative integer")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ValueText, E> {
                Ok(ValueText(text.to_owned()))
            }

            fn visit_u64<E: serde::de::Error>(self, number: u64) -> Result<ValueText, E> {
                Ok(ValueText(number.to_string()))
            }

            fn visit_i64<E: serde::de::Error>(self, number: i64) -> Result<ValueText, E> {
                if number < 0 {
                    return Err(E::custom(format!("an amount cannot be negative ({number})")));
                }
                Ok(ValueText(number.to_string()))
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

/// Length of a function selector in bytes.
const SELECTOR_LEN: usize = 4;

impl SigningPolicy {
    /// Builds the policy from the `[signing]` section.
    ///
    /// Fails with [`ConfigError::Invalid`] naming the rule (`signing.keys.ADDRESS.max_value`)
    /// and what is wrong with it: an address that is neither lowercase nor correctly
    /// checksummed, the same key or target listed twice, a malformed selector or signature, an
    /// amount that is not a number or exceeds 256 bits, an empty client id.
    pub fn from_file(file: &SigningFile) -> Result<Self, ConfigError> {
        let mut keys = HashMap::with_capacity(file.keys.len());
        let mut written: HashMap<Address, &str> = HashMap::new();
        for (text, key) in &file.keys {
            let rule = format!("signing.keys.{text}");
            let address = parse_address(text).map_err(|problem| invalid(&rule, &problem))?;
            if let Some(first) = written.insert(address, text) {
                return Err(invalid(&rule, &format!("the same key as signing.keys.{first}")));
            }
            keys.insert(address, key_policy(rule, key)?);
        }
        Ok(Self { default: file.default.unwrap_or_default(), keys })
    }
}

fn key_policy(rule: String, key: &KeyFile) -> Result<KeyPolicy, ConfigError> {
    let clients = match &key.clients {
        None => None,
        Some(list) => {
            let mut set = HashSet::with_capacity(list.len());
            for client in list {
                if client.trim().is_empty() || client.trim() != client {
                    return Err(invalid(
                        &format!("{rule}.clients"),
                        &format!("client id ({client:?}) is empty or has surrounding spaces"),
                    ));
                }
                set.insert(client.clone());
            }
            Some(set)
        }
    };
    let max_value = optional_value(&format!("{rule}.max_value"), key.max_value.as_ref())?;

    let targets = match &key.targets {
        None => None,
        Some(list) => {
            let mut targets = HashMap::with_capacity(list.len());
            for target in list {
                let address = parse_address(&target.address).map_err(|problem| {
                    invalid(&format!("{rule}.targets"), &format!("address {problem}"))
                })?;
                let name = format!("{rule}.targets[{}]", target.address);
                let policy = target_policy(name, target)?;
                if targets.insert(address, policy).is_some() {
                    return Err(invalid(
                        &format!("{rule}.targets"),
                        &format!("target ({address}) is listed twice"),
                    ));
                }
            }
            Some(targets)
        }
    };

    Ok(KeyPolicy {
        rule,
        clients,
        messages: key.messages.unwrap_or(true),
        max_value,
        contract_creation: key.contract_creation.unwrap_or(true),
        targets,
    })
}

fn target_policy(rule: String, target: &TargetFile) -> Result<TargetPolicy, ConfigError> {
    let functions = match &target.functions {
        None => None,
        Some(list) => {
            let mut set = HashSet::with_capacity(list.len());
            for entry in list {
                let selector = parse_function(entry)
                    .map_err(|problem| invalid(&format!("{rule}.functions"), &problem))?;
                set.insert(selector);
            }
            Some(set)
        }
    };
    let max_value = optional_value(&format!("{rule}.max_value"), target.max_value.as_ref())?;
    Ok(TargetPolicy { rule, functions, max_value })
}

fn invalid(rule: &str, problem: &str) -> ConfigError {
    ConfigError::Invalid(format!("{rule}: {problem}"))
}

fn optional_value(rule: &str, value: Option<&ValueText>) -> Result<Option<U256>, ConfigError> {
    value.map(|text| parse_value(&text.0).map_err(|problem| invalid(rule, &problem))).transpose()
}

/// Parses an address written `0x` + 40 hex digits, either all lowercase or with a valid
/// EIP-55 checksum. Capitals that do not make the checksum are refused: likely a typo.
pub fn parse_address(text: &str) -> Result<Address, String> {
    let Some(hex) = text.strip_prefix("0x") else {
        return Err(format!("({text}) must start with 0x"));
    };
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("({text}) is not 0x and 40 hex digits"));
    }
    if hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Address::parse_checksummed(text, None)
            .map_err(|_| format!("({text}) is neither lowercase nor EIP-55 checksummed"));
    }
    text.parse().map_err(|e| format!("({text}) is not an address: {e}"))
}

/// Parses a function as a 4-byte selector (`0x` + 8 hex digits) or a signature such as
/// `transfer(address,uint256)`. Signatures may carry parameter names and short type names
/// (`uint`); the selector is taken over the canonical types (`uint256`), as Solidity does.
pub fn parse_function(text: &str) -> Result<Selector, String> {
    if let Some(hex) = text.strip_prefix("0x") {
        if hex.len() != 2 * SELECTOR_LEN || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("selector ({text}) is not 0x and 8 hex digits"));
        }
        return text.parse().map_err(|e| format!("selector ({text}): {e}"));
    }
    let function =
        Function::parse(text).map_err(|e| format!("function signature ({text}): {e}"))?;
    let mut types = Vec::with_capacity(function.inputs.len());
    for input in &function.inputs {
        let written = input.selector_type();
        let ty = DynSolType::parse(&written).map_err(|e| {
            format!("function signature ({text}): parameter type ({written}) unknown: {e}")
        })?;
        types.push(ty.sol_type_name().into_owned());
    }
    let canonical = format!("{}({})", function.name, types.join(","));
    Ok(Selector::from_slice(&keccak256(canonical.as_bytes())[..SELECTOR_LEN]))
}

/// Parses an amount of wei: decimal digits, or `0x` and hex digits; at most 2^256-1.
pub fn parse_value(text: &str) -> Result<U256, String> {
    let (digits, radix) = match text.strip_prefix("0x") {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    let valid = match radix {
        16 => digits.bytes().all(|b| b.is_ascii_hexdigit()),
        _ => digits.bytes().all(|b| b.is_ascii_digit()),
    };
    if digits.is_empty() || !valid {
        return Err(format!("amount ({text}) is not a decimal or 0x number of wei"));
    }
    U256::from_str_radix(digits, radix).map_err(|_| format!("amount ({text}) exceeds 2^256-1"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::config::FileConfig;

    const KEY: &str = "0x5b38da6a701c568545dcfcb03fcb875f56beddc4";
    const KEY_CHECKSUM: &str = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4";

    fn build(toml: &str) -> Result<SigningPolicy, String> {
        let file = FileConfig::parse(toml)?;
        SigningPolicy::from_file(&file.signing).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_the_documented_example() {
        let policy = build(&format!(
            r#"
            [signing]
            default = "deny"
            [signing.keys.{KEY_CHECKSUM}]
            clients = ["treasury-app", "ops"]
            messages = false
            max_value = "10000000000000000000"
            contract_creation = false
            [[signing.keys.{KEY_CHECKSUM}.targets]]
            address = "0xd9145CCE52D386f254917e481eB44e9943F39138"
            functions = ["transfer(address,uint256)", "0x095ea7b3"]
            max_value = 0
            "#
        ))
        .unwrap();
        assert_eq!(policy.default, DefaultRule::Deny);
        let key = &policy.keys[&KEY.parse::<Address>().unwrap()];
        assert_eq!(key.rule, format!("signing.keys.{KEY_CHECKSUM}"));
        assert_eq!(key.max_value, Some(U256::from(10u64).pow(U256::from(19u64))));
        assert!(!key.messages && !key.contract_creation);
        let targets = key.targets.as_ref().unwrap();
        let target = targets.values().next().unwrap();
        assert_eq!(target.max_value, Some(U256::ZERO));
        let functions = target.functions.as_ref().unwrap();
        assert!(functions.contains(&Selector::from([0xa9, 0x05, 0x9c, 0xbb])));
        assert!(functions.contains(&Selector::from([0x09, 0x5e, 0xa7, 0xb3])));
    }

    #[test]
    fn absent_rules_allow() {
        let policy = build(&format!("[signing.keys.{KEY}]\n")).unwrap();
        assert_eq!(policy.default, DefaultRule::Allow);
        let key = &policy.keys[&KEY.parse::<Address>().unwrap()];
        assert!(key.messages && key.contract_creation);
        assert!(key.clients.is_none() && key.targets.is_none() && key.max_value.is_none());
        assert!(build("").unwrap().keys.is_empty());
    }

    #[test]
    fn signatures_become_canonical_selectors() {
        let transfer = Selector::from([0xa9, 0x05, 0x9c, 0xbb]);
        assert_eq!(parse_function("transfer(address,uint256)").unwrap(), transfer);
        assert_eq!(parse_function("transfer(address to, uint amount)").unwrap(), transfer);
        assert_eq!(
            parse_function("function transfer(address to, uint256 amount) returns (bool)").unwrap(),
            transfer
        );
        assert_eq!(parse_function("0xA9059CBB").unwrap(), transfer);
        // A tuple parameter: keccak256("f((uint256,address)[])")[..4].
        let expected = &keccak256("f((uint256,address)[])")[..4];
        assert_eq!(parse_function("f((uint,address)[])").unwrap().as_slice(), expected);
    }

    #[test]
    fn refuses_bad_addresses() {
        let cases = [
            ("0x5b38da6a701c568545dcfcb03fcb875f56beddc", "is not 0x and 40 hex digits"),
            ("5b38da6a701c568545dcfcb03fcb875f56beddc4", "must start with 0x"),
            (
                "0x5B38Da6a701c568545dCfcB03FcB875f56beddc4",
                "is neither lowercase nor EIP-55 checksummed",
            ),
            (
                "0x5B38DA6A701C568545DCFCB03FCB875F56BEDDC4",
                "is neither lowercase nor EIP-55 checksummed",
            ),
            ("0x5b38da6a701c568545dcfcb03fcb875f56beddzz", "is not 0x and 40 hex digits"),
        ];
        for (text, expected) in cases {
            let err = build(&format!("[signing.keys.{text}]\n")).unwrap_err();
            assert_eq!(err, format!("config invalid: signing.keys.{text}: ({text}) {expected}"));
        }
        let err =
            build(&format!("[[signing.keys.{KEY}.targets]]\naddress = \"0xabc\"\nmax_value = 1\n"))
                .unwrap_err();
        assert_eq!(
            err,
            format!(
                "config invalid: signing.keys.{KEY}.targets: address (0xabc) is not 0x and 40 \
                 hex digits"
            )
        );
    }

    #[test]
    fn refuses_a_key_or_target_twice() {
        let err =
            build(&format!("[signing.keys.{KEY}]\n[signing.keys.{KEY_CHECKSUM}]\n")).unwrap_err();
        assert_eq!(
            err,
            format!(
                "config invalid: signing.keys.{KEY}: the same key as signing.keys.{KEY_CHECKSUM}"
            )
        );
        let target = "0xd9145cce52d386f254917e481eb44e9943f39138";
        let err = build(&format!(
            "[[signing.keys.{KEY}.targets]]\naddress = \"{target}\"\n\
             [[signing.keys.{KEY}.targets]]\naddress = \"0xd9145CCE52D386f254917e481eB44e9943F39138\"\n"
        ))
        .unwrap_err();
        assert_eq!(
            err,
            format!(
                "config invalid: signing.keys.{KEY}.targets: target \
                 (0xd9145CCE52D386f254917e481eB44e9943F39138) is listed twice"
            )
        );
    }

    #[test]
    fn refuses_bad_functions() {
        let target = "0xd9145cce52d386f254917e481eb44e9943f39138";
        let rule = format!("signing.keys.{KEY}.targets[{target}].functions");
        let cases = [
            ("0xa9059c", "selector (0xa9059c) is not 0x and 8 hex digits".to_owned()),
            ("0xa9059cbbff", "selector (0xa9059cbbff) is not 0x and 8 hex digits".to_owned()),
            ("0xzz059cbb", "selector (0xzz059cbb) is not 0x and 8 hex digits".to_owned()),
        ];
        for (function, expected) in cases {
            let err = build(&format!(
                "[[signing.keys.{KEY}.targets]]\naddress = \"{target}\"\nfunctions = [\"{function}\"]\n"
            ))
            .unwrap_err();
            assert_eq!(err, format!("config invalid: {rule}: {expected}"));
        }
        for function in ["transfer(adress,uint256)", "transfer(address,uint256", "", "trans fer()"]
        {
            let err = build(&format!(
                "[[signing.keys.{KEY}.targets]]\naddress = \"{target}\"\nfunctions = [\"{function}\"]\n"
            ))
            .unwrap_err();
            assert!(
                err.starts_with(&format!(
                    "config invalid: {rule}: function signature ({function})"
                )),
                "{function}: {err}"
            );
        }
    }

    #[test]
    fn refuses_bad_amounts() {
        let too_big = format!("0x1{}", "0".repeat(64));
        let cases = [
            ("\"ten\"", "amount (ten) is not a decimal or 0x number of wei"),
            ("\"-1\"", "amount (-1) is not a decimal or 0x number of wei"),
            ("\"1.5\"", "amount (1.5) is not a decimal or 0x number of wei"),
            ("\"\"", "amount () is not a decimal or 0x number of wei"),
            ("\"0x\"", "amount (0x) is not a decimal or 0x number of wei"),
            ("\" 1\"", "amount ( 1) is not a decimal or 0x number of wei"),
            ("\"1_000\"", "amount (1_000) is not a decimal or 0x number of wei"),
        ];
        for (value, expected) in cases {
            let err = build(&format!("[signing.keys.{KEY}]\nmax_value = {value}\n")).unwrap_err();
            assert_eq!(err, format!("config invalid: signing.keys.{KEY}.max_value: {expected}"));
        }
        let err = build(&format!("[signing.keys.{KEY}]\nmax_value = \"{too_big}\"\n")).unwrap_err();
        assert_eq!(
            err,
            format!(
                "config invalid: signing.keys.{KEY}.max_value: amount ({too_big}) exceeds 2^256-1"
            )
        );
        let max = format!("0x{}", "f".repeat(64));
        assert_eq!(parse_value(&max).unwrap(), U256::MAX);
        assert_eq!(parse_value("0x10").unwrap(), U256::from(16));

        let err = build(&format!("[signing.keys.{KEY}]\nmax_value = -5\n")).unwrap_err();
        assert!(err.contains("an amount cannot be negative (-5)"), "{err}");
        let err = build(&format!("[signing.keys.{KEY}]\nmax_value = 1.5\n")).unwrap_err();
        assert!(err.contains("expected an amount of wei"), "{err}");
    }

    #[test]
    fn refuses_unknown_keys_and_bad_kinds() {
        let err = build("[signing]\ndefualt = \"deny\"\n").unwrap_err();
        assert!(err.contains("unknown field `defualt`"), "{err}");
        let err = build(&format!("[signing.keys.{KEY}]\nmax_wei = \"1\"\n")).unwrap_err();
        assert!(err.contains("unknown field `max_wei`"), "{err}");
        let err = build(&format!(
            "[[signing.keys.{KEY}.targets]]\naddress = \"{KEY}\"\nselectors = []\n"
        ))
        .unwrap_err();
        assert!(err.contains("unknown field `selectors`"), "{err}");
        let err = build("[signing]\ndefault = \"maybe\"\n").unwrap_err();
        assert!(err.contains("unknown variant `maybe`"), "{err}");
        let err = build(&format!("[[signing.keys.{KEY}.targets]]\nfunctions = []\n")).unwrap_err();
        assert!(err.contains("missing field `address`"), "{err}");
    }

    #[test]
    fn refuses_empty_client_ids() {
        for client in ["", " ops"] {
            let err =
                build(&format!("[signing.keys.{KEY}]\nclients = [\"{client}\"]\n")).unwrap_err();
            assert_eq!(
                err,
                format!(
                    "config invalid: signing.keys.{KEY}.clients: client id ({client:?}) is empty \
                     or has surrounding spaces"
                )
            );
        }
    }
}
