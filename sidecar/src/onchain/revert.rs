//! Explaining reverts: the contracts' custom errors, `Error(string)` and `Panic(uint256)`,
//! decoded from revert data into `Name(field: value, …)`.

use std::collections::HashMap;

use alloy::{
    dyn_abi::{DynSolType, DynSolValue, JsonAbiExt},
    json_abi::{Error, JsonAbi},
    primitives::{FixedBytes, hex},
};

/// Selector of the compiler's `Error(string)`.
const ERROR_STRING: FixedBytes<4> = FixedBytes([0x08, 0xc3, 0x79, 0xa0]);
/// Selector of the compiler's `Panic(uint256)`.
const PANIC: FixedBytes<4> = FixedBytes([0x4e, 0x48, 0x7b, 0x71]);

/// Custom errors of every contract the operator works with, by selector.
#[derive(Debug, Default, Clone)]
pub struct ErrorBook {
    errors: HashMap<FixedBytes<4>, Error>,
}

impl ErrorBook {
    /// An empty book (only `Error(string)` and `Panic(uint256)` are known).
    pub fn new() -> Self {
        Self::default()
    }

    /// The errors of every contract among `names` found in `artifacts` (missing ones are
    /// skipped: their reverts are then shown as hex).
    pub fn from_artifacts(artifacts: &super::Artifacts, names: &[&str]) -> Self {
        let mut book = Self::new();
        for name in names {
            if let Ok(artifact) = artifacts.get(name) {
                book.add(&artifact.abi);
            }
        }
        book
    }

    /// Adds every error of `abi`.
    pub fn add(&mut self, abi: &JsonAbi) {
        for error in abi.errors() {
            self.errors.entry(error.selector()).or_insert_with(|| error.clone());
        }
    }

    /// Explains revert `data`; unknown data is shown as hex.
    pub fn explain(&self, data: &[u8]) -> String {
        let Some(selector) = data.get(..4) else {
            return if data.is_empty() {
                "no reason given".to_owned()
            } else {
                format!("revert data 0x{}", hex::encode(data))
            };
        };
        let selector = FixedBytes::<4>::from_slice(selector);
        let body = &data[4..];

        // Error(string) and Panic(uint256), the compiler's own.
        if selector == ERROR_STRING
            && let Ok(DynSolValue::String(text)) = DynSolType::String.abi_decode(body)
        {
            return text;
        }
        if selector == PANIC
            && let Ok(DynSolValue::Uint(code, _)) = DynSolType::Uint(256).abi_decode(body)
        {
            return format!("panic 0x{code:x}");
        }

        let Some(error) = self.errors.get(&selector) else {
            return format!("unknown error 0x{}", hex::encode(data));
        };
        match error.abi_decode_input(body) {
            Ok(values) => {
                let fields: Vec<String> = error
                    .inputs
                    .iter()
                    .zip(values.iter())
                    .map(|(param, value)| {
                        let shown = enum_name(param.internal_type.as_ref(), value)
                            .unwrap_or_else(|| format_value(value));
                        if param.name.is_empty() {
                            shown
                        } else {
                            format!("{}: {}", param.name, shown)
                        }
                    })
                    .collect();
                format!("{}({})", error.name, fields.join(", "))
            }
            Err(_) => format!("{} (undecodable data 0x{})", error.name, hex::encode(body)),
        }
    }
}

/// A value as an operator reads it: numbers in decimal, addresses checksummed, bytes in hex,
/// short fixed byte strings that are printable (such as ISINs) as text.
pub fn format_value(value: &DynSolValue) -> String {
    match value {
        DynSolValue::Bool(b) => b.to_string(),
        DynSolValue::Int(i, _) => i.to_string(),
        DynSolValue::Uint(u, _) => u.to_string(),
        DynSolValue::Address(a) => a.to_checksum(None),
        DynSolValue::FixedBytes(word, size) => {
            let bytes = &word[..*size];
            let printable = bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ');
            if *size <= 16 && printable {
                String::from_utf8_lossy(bytes).into_owned()
            } else {
                format!("0x{}", hex::encode(bytes))
            }
        }
        DynSolValue::Bytes(b) => format!("0x{}", hex::encode(b)),
        DynSolValue::String(s) => s.clone(),
        DynSolValue::Function(f) => format!("0x{}", hex::encode(f.as_slice())),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) => {
            format!("[{}]", items.iter().map(format_value).collect::<Vec<_>>().join(", "))
        }
        DynSolValue::CustomStruct { tuple: items, .. } | DynSolValue::Tuple(items) => {
            format!("({})", items.iter().map(format_value).collect::<Vec<_>>().join(", "))
        }
        #[allow(unreachable_patterns)]
        _ => format!("{value:?}"),
    }
}

/// Variant names of the platform's enums that appear in its errors, by enum name; ABIs carry
/// an enum's name but not its variants.
const ENUMS: [(&str, &[&str]); 5] = [
    (
        "EntryKind",
        &["Transfer", "Instructed", "Forced", "Recovery", "Reversal", "Issue", "Redemption"],
    ),
    ("WithdrawalStatus", &["None", "Pending", "Approved", "Executed", "Cancelled"]),
    ("ChangeStatus", &["None", "Pending", "Applied", "Cancelled"]),
    (
        "ExecutionCheck",
        &[
            "Ok",
            "WithdrawalUnknown",
            "AwaitingApprovals",
            "AlreadyClosed",
            "Paused",
            "ClientFrozen",
            "TimeLocked",
            "DestinationNotAllowed",
            "DailyLimitExceeded",
        ],
    ),
    ("SecurityStatus", &["None", "Active", "Suspended", "Closed"]),
];

/// `Name (n)` for an enum-typed value whose enum the platform defines.
fn enum_name(
    internal: Option<&alloy::json_abi::InternalType>,
    value: &DynSolValue,
) -> Option<String> {
    let alloy::json_abi::InternalType::Enum { ty, .. } = internal? else { return None };
    let DynSolValue::Uint(n, _) = value else { return None };
    let index = usize::try_from(*n).ok()?;
    enum_variant(ty, index).map(|name| format!("{name} ({index})"))
}

/// The name of variant `index` of the platform's enum `enum_name` (e.g. `ExecutionCheck`).
pub fn enum_variant(enum_name: &str, index: usize) -> Option<&'static str> {
    if enum_name == "ReasonCode" {
        return super::register::REASON_CODES.get(index).map(|(name, _)| *name);
    }
    let (_, names) = ENUMS.iter().find(|(name, _)| *name == enum_name)?;
    names.get(index).copied()
}

/// The fields of a tuple or struct value (structs decode as named tuples).
pub fn tuple_fields(value: &DynSolValue) -> Option<&[DynSolValue]> {
    match value {
        DynSolValue::Tuple(items) | DynSolValue::CustomStruct { tuple: items, .. } => Some(items),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_custom_errors_with_field_names() {
        let abi: JsonAbi = serde_json::from_str(
            r#"[{"type":"error","name":"RegisterHolderFrozen","inputs":[{"name":"holder","type":"address"},{"name":"isin","type":"bytes12"}]}]"#,
        )
        .unwrap();
        let mut book = ErrorBook::new();
        book.add(&abi);
        let error = abi.errors().next().unwrap();
        let holder = alloy::primitives::Address::repeat_byte(0x11);
        let mut isin = [0u8; 32];
        isin[..12].copy_from_slice(b"DE0007164600");
        let data = error
            .abi_encode_input(&[
                DynSolValue::Address(holder),
                DynSolValue::FixedBytes(isin.into(), 12),
            ])
            .unwrap();
        assert_eq!(
            book.explain(&data),
            format!(
                "RegisterHolderFrozen(holder: {}, isin: DE0007164600)",
                holder.to_checksum(None)
            )
        );
    }

    #[test]
    fn names_enum_values() {
        let abi: JsonAbi = serde_json::from_str(
            r#"[{"type":"error","name":"RegisterMovementRefused","inputs":[{"name":"reason","type":"uint8","internalType":"enum ISecuritiesRegister.ReasonCode"},{"name":"n","type":"uint8","internalType":"uint8"}]}]"#,
        )
        .unwrap();
        let mut book = ErrorBook::new();
        book.add(&abi);
        let error = abi.errors().next().unwrap();
        let data = error
            .abi_encode_input(&[
                DynSolValue::Uint(alloy::primitives::U256::from(14), 8),
                DynSolValue::Uint(alloy::primitives::U256::from(14), 8),
            ])
            .unwrap();
        assert_eq!(
            book.explain(&data),
            "RegisterMovementRefused(reason: ReceiverNotRegistered (14), n: 14)"
        );
    }

    #[test]
    fn explains_builtin_and_unknown_reverts() {
        let book = ErrorBook::new();
        let mut data = vec![0x08, 0xc3, 0x79, 0xa0];
        data.extend(DynSolValue::String("too late".into()).abi_encode());
        assert_eq!(book.explain(&data), "too late");
        let mut panic = vec![0x4e, 0x48, 0x7b, 0x71];
        panic.extend(DynSolValue::Uint(alloy::primitives::U256::from(0x11), 256).abi_encode());
        assert_eq!(book.explain(&panic), "panic 0x11");
        assert_eq!(book.explain(&[0xde, 0xad, 0xbe, 0xef]), "unknown error 0xdeadbeef");
        assert_eq!(book.explain(&[]), "no reason given");
    }
}
