//! The events webhooks are told about, and the JSON body each delivery carries.
//!
//! An event has an id that stays the same however often it is delivered or detected: random for
//! events raised in the request path, derived from the transaction hash and log index for chain
//! events, so a chain event seen again after a restart or a reorganisation keeps its id.

use alloy::primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The kinds of events a webhook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A transaction or signature request was refused by the sidecar's policy.
    TransactionRefused,
    /// The Custody contract recorded a withdrawal request.
    CustodyWithdrawalRequested,
    /// The access manager granted a role.
    RoleGranted,
    /// The permissioning follower fell behind the node by more than the threshold, or caught
    /// up again (`data.state`).
    FollowerLagging,
}

impl EventKind {
    /// The event's name, as in the configuration and the `X-Ecrop-Event` header.
    pub fn name(self) -> &'static str {
        match self {
            Self::TransactionRefused => "transaction_refused",
            Self::CustodyWithdrawalRequested => "custody_withdrawal_requested",
            Self::RoleGranted => "role_granted",
            Self::FollowerLagging => "follower_lagging",
        }
    }
}

/// One event, ready to be delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Stable id of the event (hex); see the module docs.
    pub id: String,
    /// Kind of event.
    pub event: EventKind,
    /// When the sidecar raised or noticed the event (RFC 3339, UTC).
    pub time: String,
    /// Event-specific fields.
    pub data: Value,
}

/// A fresh random id (128 bits, hex).
fn random_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

pub use crate::clock::now_rfc3339;

/// Where on chain an event was emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOrigin {
    /// Emitting contract.
    pub contract: Address,
    /// Block number.
    pub block: u64,
    /// Block hash.
    pub block_hash: B256,
    /// Transaction hash.
    pub tx: B256,
    /// Index of the log in its block.
    pub log_index: u64,
}

impl LogOrigin {
    /// The event id of a chain event: the first 16 bytes of
    /// SHA-256(kind ‖ transaction hash ‖ log index), hex.
    fn event_id(&self, kind: EventKind) -> String {
        let mut hash = Sha256::new();
        hash.update(kind.name().as_bytes());
        hash.update(self.tx.as_slice());
        hash.update(self.log_index.to_be_bytes());
        hex::encode(&hash.finalize()[..16])
    }

    fn fields(&self) -> Value {
        json!({
            "contract": self.contract,
            "block": self.block,
            "blockHash": self.block_hash,
            "transactionHash": self.tx,
            "logIndex": self.log_index,
        })
    }
}

/// Fields of the Custody contract's `WithdrawalRequested` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalRequest {
    /// Withdrawal id.
    pub withdrawal_id: U256,
    /// Custody client id.
    pub client_id: B256,
    /// Token withdrawn.
    pub asset: Address,
    /// Receiving address.
    pub destination: Address,
    /// Amount, in the token's smallest unit.
    pub amount: U256,
    /// Hash of the travel-rule record.
    pub travel_rule_hash: B256,
    /// Account that asked.
    pub requester: Address,
    /// Approvals needed before execution.
    pub approvals_required: u8,
    /// Delay after the last approval, in seconds.
    pub timelock_delay: u32,
}

/// Fields of the access manager's `RoleGranted` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    /// Role id.
    pub role_id: u64,
    /// Account granted the role.
    pub account: Address,
    /// Execution delay of the grant, in seconds.
    pub delay: u32,
    /// When the grant takes effect (unix seconds).
    pub since: u64,
    /// Whether the account was not a member before.
    pub new_member: bool,
}

impl Event {
    fn new(id: String, event: EventKind, data: Value) -> Self {
        Self { id, event, time: now_rfc3339(), data }
    }

    /// A transaction or signature request refused by the sidecar: who asked (`client`), with
    /// which `method`, from which `account` to which `target` (absent for a creation or a
    /// message signature), and the `reason` naming the rule that refused.
    pub fn transaction_refused(
        client: &str,
        method: &str,
        account: Option<Address>,
        target: Option<Address>,
        reason: &str,
    ) -> Self {
        Self::new(
            random_id(),
            EventKind::TransactionRefused,
            json!({
                "client": client,
                "method": method,
                "account": account,
                "target": target,
                "reason": reason,
            }),
        )
    }

    /// A withdrawal request recorded by the Custody contract. Amounts and ids are decimal
    /// strings (they do not fit a JSON number).
    pub fn custody_withdrawal_requested(origin: &LogOrigin, request: &WithdrawalRequest) -> Self {
        let mut data = origin.fields();
        let fields = json!({
            "withdrawalId": request.withdrawal_id.to_string(),
            "clientId": request.client_id,
            "asset": request.asset,
            "destination": request.destination,
            "amount": request.amount.to_string(),
            "travelRuleHash": request.travel_rule_hash,
            "requester": request.requester,
            "approvalsRequired": request.approvals_required,
            "timelockDelay": request.timelock_delay,
        });
        merge(&mut data, fields);
        Self::new(
            origin.event_id(EventKind::CustodyWithdrawalRequested),
            EventKind::CustodyWithdrawalRequested,
            data,
        )
    }

    /// A role grant recorded by the access manager.
    pub fn role_granted(origin: &LogOrigin, grant: &RoleGrant) -> Self {
        let mut data = origin.fields();
        let fields = json!({
            "roleId": grant.role_id.to_string(),
            "account": grant.account,
            "delay": grant.delay,
            "since": grant.since,
            "newMember": grant.new_member,
        });
        merge(&mut data, fields);
        Self::new(origin.event_id(EventKind::RoleGranted), EventKind::RoleGranted, data)
    }

    /// The follower's lag crossed the threshold: `lagging` when it went above, else it came
    /// back within. `synced` is `None` while the follower has no state.
    pub fn follower_lagging(
        lagging: bool,
        lag: u64,
        threshold: u64,
        synced: Option<u64>,
        head: Option<u64>,
    ) -> Self {
        Self::new(
            random_id(),
            EventKind::FollowerLagging,
            json!({
                "state": if lagging { "lagging" } else { "recovered" },
                "lagBlocks": lag,
                "maxLagBlocks": threshold,
                "syncedBlock": synced,
                "headBlock": head,
            }),
        )
    }
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        into.extend(from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_event_ids_are_stable() {
        let origin = LogOrigin {
            contract: Address::repeat_byte(1),
            block: 7,
            block_hash: B256::repeat_byte(2),
            tx: B256::repeat_byte(3),
            log_index: 4,
        };
        let grant = RoleGrant {
            role_id: 5,
            account: Address::repeat_byte(6),
            delay: 0,
            since: 9,
            new_member: true,
        };
        let a = Event::role_granted(&origin, &grant);
        let moved = LogOrigin { block: 8, block_hash: B256::repeat_byte(9), ..origin };
        let b = Event::role_granted(&moved, &grant);
        assert_eq!(a.id, b.id, "a reorganised copy keeps its id");
        let other = LogOrigin { log_index: 5, ..origin };
        assert_ne!(a.id, Event::role_granted(&other, &grant).id);
        assert_eq!(a.data["roleId"], "5");
        assert_eq!(a.data["logIndex"], 4);
    }

    #[test]
    fn refused_event_names_the_rule() {
        let event = Event::transaction_refused(
            "app",
            "eth_sendTransaction",
            Some(Address::repeat_byte(1)),
            None,
            "rule value_cap",
        );
        assert_eq!(event.event.name(), "transaction_refused");
        assert_eq!(event.data["reason"], "rule value_cap");
        assert!(event.data["target"].is_null());
        assert_eq!(event.id.len(), 32);
        assert_ne!(event.id, Event::transaction_refused("app", "m", None, None, "r").id);
    }
}
