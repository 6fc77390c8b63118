//! Signing policy per key: which clients may use a key, for which targets and functions it
//! signs, whether it signs messages and contract creations, and value caps.
//!
//! The policy is read from the `[signing]` section ([`SigningFile`]) once at start and is pure:
//! no I/O, no state, no logging. The wallet asks it after a request is complete enough to
//! judge (sender, recipient, value, input known) and before the token is touched or a nonce
//! taken, so a refusal costs nothing and changes nothing. Fails closed: a key restricted to
//! named clients refuses a request without an authenticated client. A refusal names the rule
//! as the configuration file spells it ([`PolicyRefusal::rule`]).
//!
//! Keys without an entry follow `signing.default`: `allow` unless configured otherwise, so a
//! configuration without a `[signing]` section signs exactly as before.

mod file;

use std::collections::{HashMap, HashSet};

use alloy::primitives::{Address, Selector, U256};
use serde::{Deserialize, Serialize};

pub use self::file::{
    KeyFile, SigningFile, TargetFile, ValueText, parse_address, parse_function, parse_value,
};
use crate::api::Caller;

/// Rule name of `[signing] default`, used when a key without an entry is refused.
pub const DEFAULT_RULE: &str = "signing.default";

/// What happens to keys without an entry in `[signing.keys]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultRule {
    /// They sign anything (the default).
    #[default]
    Allow,
    /// They sign nothing.
    Deny,
}

/// Why the policy refused to sign: the rule, named as in the configuration file
/// (`signing.keys.0xAbC….targets[0xDeF…].functions`), and a sentence with the values that
/// broke it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("refused by signing policy rule ({rule}): {reason}")]
pub struct PolicyRefusal {
    /// The rule's path in the configuration file.
    pub rule: String,
    /// What the request did that the rule does not allow.
    pub reason: String,
}

/// The signing policy of every key; the default allows everything.
#[derive(Debug, Clone, Default)]
pub struct SigningPolicy {
    default: DefaultRule,
    keys: HashMap<Address, KeyPolicy>,
}

/// The compiled rules of one key.
#[derive(Debug, Clone)]
struct KeyPolicy {
    /// `signing.keys.ADDRESS` as written in the file.
    rule: String,
    clients: Option<HashSet<String>>,
    messages: bool,
    max_value: Option<U256>,
    contract_creation: bool,
    targets: Option<HashMap<Address, TargetPolicy>>,
}

/// The compiled rules of one target of a key.
#[derive(Debug, Clone)]
struct TargetPolicy {
    /// `signing.keys.ADDRESS.targets[TARGET]` as written in the file.
    rule: String,
    functions: Option<HashSet<Selector>>,
    max_value: Option<U256>,
}

impl SigningPolicy {
    /// Number of keys with an entry.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// What keys without an entry do.
    pub fn default_rule(&self) -> DefaultRule {
        self.default
    }

    /// Checks a transaction `from` a key: the clients, then contract creation or the target
    /// and its functions, then the target's and the key's value caps. `to` is `None` for a
    /// contract creation; `input` is the call data.
    pub fn check_transaction(
        &self,
        caller: Option<&Caller>,
        from: Address,
        to: Option<Address>,
        input: &[u8],
        value: U256,
    ) -> Result<(), PolicyRefusal> {
        let Some(key) = self.key(from)? else {
            return Ok(());
        };
        key.check_client(caller)?;

        match to {
            None if !key.contract_creation => {
                return Err(refusal(
                    format!("{}.contract_creation", key.rule),
                    "this key does not sign contract creations".into(),
                ));
            }
            None => {}
            Some(to) => {
                if let Some(targets) = &key.targets {
                    let Some(target) = targets.get(&to) else {
                        return Err(refusal(
                            format!("{}.targets", key.rule),
                            format!("recipient ({to}) is not among the key's targets"),
                        ));
                    };
                    target.check(to, input, value)?;
                }
            }
        }

        check_cap(&key.rule, key.max_value, value)
    }

    /// Checks a message or typed-data signature with `from`'s key: the clients, then whether
    /// the key signs messages at all.
    pub fn check_message(
        &self,
        caller: Option<&Caller>,
        from: Address,
    ) -> Result<(), PolicyRefusal> {
        let Some(key) = self.key(from)? else {
            return Ok(());
        };
        key.check_client(caller)?;
        if !key.messages {
            return Err(refusal(
                format!("{}.messages", key.rule),
                "this key does not sign messages or typed data".into(),
            ));
        }
        Ok(())
    }

    /// The key's entry; `None` when it has none and the default allows; a refusal when it has
    /// none and the default denies.
    fn key(&self, from: Address) -> Result<Option<&KeyPolicy>, PolicyRefusal> {
        match (self.keys.get(&from), self.default) {
            (Some(key), _) => Ok(Some(key)),
            (None, DefaultRule::Allow) => Ok(None),
            (None, DefaultRule::Deny) => Err(refusal(
                DEFAULT_RULE.into(),
                format!("key ({from}) has no entry in signing.keys and the default is deny"),
            )),
        }
    }
}

impl KeyPolicy {
    fn check_client(&self, caller: Option<&Caller>) -> Result<(), PolicyRefusal> {
        let Some(clients) = &self.clients else {
            return Ok(());
        };
        let rule = || format!("{}.clients", self.rule);
        match caller {
            None => Err(refusal(
                rule(),
                "this key is restricted to named clients and the request has no authenticated \
                 client"
                    .into(),
            )),
            Some(caller) if !clients.contains(&caller.client) => {
                Err(refusal(rule(), format!("client ({}) may not use this key", caller.client)))
            }
            Some(_) => Ok(()),
        }
    }
}

impl TargetPolicy {
    fn check(&self, to: Address, input: &[u8], value: U256) -> Result<(), PolicyRefusal> {
        if let Some(functions) = &self.functions {
            let rule = || format!("{}.functions", self.rule);
            let Some(selector) = input.get(..4) else {
                return Err(refusal(
                    rule(),
                    format!(
                        "the call to ({to}) carries no function selector (input of {} bytes)",
                        input.len()
                    ),
                ));
            };
            let selector = Selector::from_slice(selector);
            if !functions.contains(&selector) {
                return Err(refusal(
                    rule(),
                    format!("function ({selector}) is not allowed on ({to})"),
                ));
            }
        }
        check_cap(&self.rule, self.max_value, value)
    }
}

fn check_cap(rule: &str, cap: Option<U256>, value: U256) -> Result<(), PolicyRefusal> {
    match cap {
        Some(cap) if value > cap => Err(refusal(
            format!("{rule}.max_value"),
            format!("value ({value} wei) is above the cap ({cap} wei)"),
        )),
        _ => Ok(()),
    }
}

fn refusal(rule: String, reason: String) -> PolicyRefusal {
    PolicyRefusal { rule, reason }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use alloy::primitives::address;

    use super::*;
    use crate::config::FileConfig;

    const KEY: Address = address!("0x5B38Da6a701c568545dCfcB03FcB875f56beddC4");
    const KEY_TEXT: &str = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4";
    const OPEN: Address = address!("0x00000000000000000000000000000000000000aa");
    const TOKEN: Address = address!("0xd9145cce52d386f254917e481eb44e9943f39138");
    const VAULT: Address = address!("0x00000000000000000000000000000000000000bb");
    const STRANGER: Address = address!("0x00000000000000000000000000000000000000cc");
    /// `transfer(address,uint256)`.
    const TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
    /// `approve(address,uint256)`.
    const APPROVE: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];

    fn policy(default: &str) -> SigningPolicy {
        let text = format!(
            r#"
            [signing]
            default = "{default}"
            [signing.keys.{KEY_TEXT}]
            clients = ["treasury-app", "ops"]
            messages = false
            max_value = "1000"
            contract_creation = false
            [[signing.keys.{KEY_TEXT}.targets]]
            address = "0xd9145cce52d386f254917e481eb44e9943f39138"
            functions = ["transfer(address,uint256)"]
            max_value = "0x64"
            [[signing.keys.{KEY_TEXT}.targets]]
            address = "0x00000000000000000000000000000000000000bb"
            [signing.keys.0x00000000000000000000000000000000000000aa]
            "#
        );
        SigningPolicy::from_file(&FileConfig::parse(&text).unwrap().signing).unwrap()
    }

    fn caller(client: &str) -> Caller {
        Caller { client: client.into(), role: "any".into() }
    }

    fn call(selector: [u8; 4]) -> Vec<u8> {
        let mut input = selector.to_vec();
        input.extend_from_slice(&[0; 64]);
        input
    }

    fn rule_of(result: Result<(), PolicyRefusal>) -> String {
        result.unwrap_err().rule
    }

    fn key_rule(suffix: &str) -> String {
        format!("signing.keys.{KEY_TEXT}{suffix}")
    }

    #[test]
    fn allows_a_listed_client_and_refuses_others() {
        let policy = policy("allow");
        let ops = caller("ops");
        assert_eq!(policy.check_transaction(Some(&ops), KEY, Some(VAULT), &[], U256::ZERO), Ok(()));
        assert_eq!(
            policy.check_transaction(
                Some(&caller("treasury-app")),
                KEY,
                Some(VAULT),
                &[],
                U256::ZERO
            ),
            Ok(())
        );

        let refused = policy
            .check_transaction(Some(&caller("web")), KEY, Some(VAULT), &[], U256::ZERO)
            .unwrap_err();
        assert_eq!(refused.rule, key_rule(".clients"));
        assert_eq!(refused.reason, "client (web) may not use this key");
        assert_eq!(
            refused.to_string(),
            format!(
                "refused by signing policy rule (signing.keys.{KEY_TEXT}.clients): client (web) \
                 may not use this key"
            )
        );
        // Client ids are compared exactly.
        let upper = caller("OPS");
        assert_eq!(
            rule_of(policy.check_transaction(Some(&upper), KEY, Some(VAULT), &[], U256::ZERO)),
            key_rule(".clients")
        );
    }

    #[test]
    fn refuses_a_restricted_key_without_caller() {
        let policy = policy("allow");
        let refused =
            policy.check_transaction(None, KEY, Some(VAULT), &[], U256::ZERO).unwrap_err();
        assert_eq!(refused.rule, key_rule(".clients"));
        assert!(refused.reason.contains("no authenticated client"), "{}", refused.reason);
        assert_eq!(rule_of(policy.check_message(None, KEY)), key_rule(".clients"));
        // A key without a clients list serves requests without a caller.
        assert_eq!(policy.check_transaction(None, OPEN, Some(VAULT), &[], U256::from(7)), Ok(()));
        assert_eq!(policy.check_message(None, OPEN), Ok(()));
    }

    #[test]
    fn refuses_messages_when_the_key_signs_none() {
        let policy = policy("allow");
        let refused = policy.check_message(Some(&caller("ops")), KEY).unwrap_err();
        assert_eq!(refused.rule, key_rule(".messages"));
        assert_eq!(refused.reason, "this key does not sign messages or typed data");
        // The clients rule is checked first.
        assert_eq!(rule_of(policy.check_message(Some(&caller("web")), KEY)), key_rule(".clients"));
    }

    #[test]
    fn caps_the_value_per_key() {
        let policy = policy("allow");
        let ops = caller("ops");
        for allowed in [0u64, 999, 1000] {
            assert_eq!(
                policy.check_transaction(Some(&ops), KEY, Some(VAULT), &[], U256::from(allowed)),
                Ok(()),
                "{allowed}"
            );
        }
        let refused = policy
            .check_transaction(Some(&ops), KEY, Some(VAULT), &[], U256::from(1001))
            .unwrap_err();
        assert_eq!(refused.rule, key_rule(".max_value"));
        assert_eq!(refused.reason, "value (1001 wei) is above the cap (1000 wei)");
        assert_eq!(
            rule_of(policy.check_transaction(Some(&ops), KEY, Some(VAULT), &[], U256::MAX)),
            key_rule(".max_value")
        );
    }

    #[test]
    fn caps_the_value_per_target() {
        let policy = policy("allow");
        let ops = caller("ops");
        let transfer = call(TRANSFER);
        for allowed in [0u64, 99, 100] {
            assert_eq!(
                policy.check_transaction(
                    Some(&ops),
                    KEY,
                    Some(TOKEN),
                    &transfer,
                    U256::from(allowed)
                ),
                Ok(())
            );
        }
        let refused = policy
            .check_transaction(Some(&ops), KEY, Some(TOKEN), &transfer, U256::from(101))
            .unwrap_err();
        let target = "signing.keys.0x5B38Da6a701c568545dCfcB03FcB875f56beddC4.targets\
                      [0xd9145cce52d386f254917e481eb44e9943f39138]";
        assert_eq!(refused.rule, format!("{target}.max_value"));
        assert_eq!(refused.reason, "value (101 wei) is above the cap (100 wei)");
        // Above both caps: the target's, the narrower rule, is named.
        assert_eq!(
            rule_of(policy.check_transaction(
                Some(&ops),
                KEY,
                Some(TOKEN),
                &transfer,
                U256::from(5000)
            )),
            format!("{target}.max_value")
        );
    }

    #[test]
    fn refuses_contract_creation_when_off() {
        let policy = policy("allow");
        let ops = caller("ops");
        let refused = policy.check_transaction(Some(&ops), KEY, None, &[0x60, 0x80], U256::ZERO);
        let refused = refused.unwrap_err();
        assert_eq!(refused.rule, key_rule(".contract_creation"));
        assert_eq!(refused.reason, "this key does not sign contract creations");
        // Creations are not subject to targets, but to the key's cap.
        assert_eq!(policy.check_transaction(None, OPEN, None, &[0x60], U256::ZERO), Ok(()));
    }

    #[test]
    fn refuses_a_target_not_listed() {
        let policy = policy("allow");
        let refused = policy
            .check_transaction(Some(&caller("ops")), KEY, Some(STRANGER), &[], U256::ZERO)
            .unwrap_err();
        assert_eq!(refused.rule, key_rule(".targets"));
        assert_eq!(
            refused.reason,
            "recipient (0x00000000000000000000000000000000000000cc) is not among the key's targets"
        );
        // A target without a function list takes any call and plain transfers.
        assert_eq!(
            policy.check_transaction(
                Some(&caller("ops")),
                KEY,
                Some(VAULT),
                &call(APPROVE),
                U256::ONE
            ),
            Ok(())
        );
    }

    #[test]
    fn checks_the_function_selector() {
        let policy = policy("allow");
        let ops = caller("ops");
        let target = "signing.keys.0x5B38Da6a701c568545dCfcB03FcB875f56beddC4.targets\
                      [0xd9145cce52d386f254917e481eb44e9943f39138]";
        assert_eq!(
            policy.check_transaction(Some(&ops), KEY, Some(TOKEN), &call(TRANSFER), U256::ZERO),
            Ok(())
        );
        // The selector alone is enough: arguments are not the policy's business.
        assert_eq!(
            policy.check_transaction(Some(&ops), KEY, Some(TOKEN), &TRANSFER, U256::ZERO),
            Ok(())
        );

        let refused = policy
            .check_transaction(Some(&ops), KEY, Some(TOKEN), &call(APPROVE), U256::ZERO)
            .unwrap_err();
        assert_eq!(refused.rule, format!("{target}.functions"));
        assert_eq!(
            refused.reason,
            "function (0x095ea7b3) is not allowed on (0xd9145CCE52D386f254917e481eB44e9943F39138)"
        );
    }

    #[test]
    fn refuses_input_shorter_than_a_selector() {
        let policy = policy("allow");
        let ops = caller("ops");
        for input in [&[][..], &TRANSFER[..1], &TRANSFER[..3]] {
            let refused = policy
                .check_transaction(Some(&ops), KEY, Some(TOKEN), input, U256::ZERO)
                .unwrap_err();
            assert!(refused.rule.ends_with("].functions"), "{}", refused.rule);
            assert_eq!(
                refused.reason,
                format!(
                    "the call to (0xd9145CCE52D386f254917e481eB44e9943F39138) carries no \
                     function selector (input of {} bytes)",
                    input.len()
                )
            );
        }
    }

    #[test]
    fn default_allow_signs_for_keys_without_entry() {
        let policy = policy("allow");
        assert_eq!(policy.default_rule(), DefaultRule::Allow);
        assert_eq!(policy.check_transaction(None, STRANGER, None, &[1, 2], U256::MAX), Ok(()));
        assert_eq!(policy.check_message(None, STRANGER), Ok(()));
        let empty = SigningPolicy::default();
        assert_eq!(empty.key_count(), 0);
        assert_eq!(empty.check_transaction(None, KEY, Some(TOKEN), &[], U256::MAX), Ok(()));
        assert_eq!(empty.check_message(None, KEY), Ok(()));
    }

    #[test]
    fn default_deny_refuses_keys_without_entry() {
        let policy = policy("deny");
        let refused =
            policy.check_transaction(Some(&caller("ops")), STRANGER, Some(VAULT), &[], U256::ZERO);
        let refused = refused.unwrap_err();
        assert_eq!(refused.rule, "signing.default");
        assert_eq!(
            refused.reason,
            "key (0x00000000000000000000000000000000000000cc) has no entry in signing.keys and \
             the default is deny"
        );
        assert_eq!(rule_of(policy.check_message(None, STRANGER)), "signing.default");
        // Keys with an entry are judged by it, even an empty one.
        assert_eq!(policy.check_transaction(None, OPEN, Some(STRANGER), &[], U256::MAX), Ok(()));
        assert_eq!(policy.check_message(None, OPEN), Ok(()));
    }

    #[test]
    fn an_empty_target_list_allows_no_call() {
        let text = format!("[signing.keys.{KEY_TEXT}]\ntargets = []\n");
        let policy = SigningPolicy::from_file(&FileConfig::parse(&text).unwrap().signing).unwrap();
        assert_eq!(
            rule_of(policy.check_transaction(None, KEY, Some(VAULT), &[], U256::ZERO)),
            key_rule(".targets")
        );
        assert_eq!(policy.check_transaction(None, KEY, None, &[0x60], U256::ZERO), Ok(()));
    }
}
