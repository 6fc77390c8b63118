//! Contract events decoded by the contract's ABI into named fields.

use std::collections::{BTreeMap, HashMap};

use alloy::{
    dyn_abi::{DynSolValue, EventExt},
    json_abi::{Event, JsonAbi},
    primitives::{Address, B256, U256},
    rpc::types::Log,
};

use super::ChainError;

/// One decoded event.
#[derive(Debug, Clone)]
pub struct NamedEvent {
    /// Event name.
    pub name: String,
    /// Block it was emitted in.
    pub block: u64,
    /// Position in the block.
    pub log_index: u64,
    /// Transaction hash.
    pub tx: B256,
    /// Fields by parameter name.
    pub fields: BTreeMap<String, DynSolValue>,
}

/// Decodes every log of `logs` that matches an event of `abi`; others are skipped.
pub fn decode_logs(abi: &JsonAbi, logs: &[Log]) -> Vec<NamedEvent> {
    let by_topic: HashMap<B256, &Event> =
        abi.events().filter(|e| !e.anonymous).map(|e| (e.selector(), e)).collect();
    let mut out = Vec::with_capacity(logs.len());
    for log in logs {
        let Some(topic) = log.topic0() else { continue };
        let Some(event) = by_topic.get(topic) else { continue };
        let Ok(decoded) = event.decode_log(log.data()) else { continue };
        let mut indexed = decoded.indexed.into_iter();
        let mut body = decoded.body.into_iter();
        let mut fields = BTreeMap::new();
        for param in &event.inputs {
            let value = if param.indexed { indexed.next() } else { body.next() };
            if let Some(value) = value {
                fields.insert(param.name.clone(), value);
            }
        }
        out.push(NamedEvent {
            name: event.name.clone(),
            block: log.block_number.unwrap_or_default(),
            log_index: log.log_index.unwrap_or_default(),
            tx: log.transaction_hash.unwrap_or_default(),
            fields,
        });
    }
    out.sort_by_key(|e| (e.block, e.log_index));
    out
}

impl NamedEvent {
    fn field(&self, name: &str) -> Result<&DynSolValue, ChainError> {
        self.fields.get(name).ok_or_else(|| ChainError::Decode {
            function: self.name.clone(),
            reason: format!("event lacks field {name}"),
        })
    }

    fn mismatch(&self, name: &str, ty: &str) -> ChainError {
        ChainError::Decode {
            function: self.name.clone(),
            reason: format!("field {name} is not {ty}"),
        }
    }

    /// An address field.
    pub fn address(&self, name: &str) -> Result<Address, ChainError> {
        match self.field(name)? {
            DynSolValue::Address(a) => Ok(*a),
            _ => Err(self.mismatch(name, "an address")),
        }
    }

    /// An unsigned integer field (any width, enums included).
    pub fn uint(&self, name: &str) -> Result<U256, ChainError> {
        match self.field(name)? {
            DynSolValue::Uint(v, _) => Ok(*v),
            _ => Err(self.mismatch(name, "an unsigned integer")),
        }
    }

    /// An unsigned integer field that fits in `u64`.
    pub fn u64(&self, name: &str) -> Result<u64, ChainError> {
        u64::try_from(self.uint(name)?).map_err(|_| self.mismatch(name, "a 64-bit number"))
    }

    /// A boolean field.
    pub fn bool(&self, name: &str) -> Result<bool, ChainError> {
        match self.field(name)? {
            DynSolValue::Bool(b) => Ok(*b),
            _ => Err(self.mismatch(name, "a boolean")),
        }
    }

    /// A fixed-size bytes field, its significant bytes.
    pub fn fixed_bytes(&self, name: &str) -> Result<Vec<u8>, ChainError> {
        match self.field(name)? {
            DynSolValue::FixedBytes(word, size) => Ok(word[..*size].to_vec()),
            _ => Err(self.mismatch(name, "fixed bytes")),
        }
    }

    /// A string field.
    pub fn string(&self, name: &str) -> Result<String, ChainError> {
        match self.field(name)? {
            DynSolValue::String(s) => Ok(s.clone()),
            _ => Err(self.mismatch(name, "a string")),
        }
    }
}
