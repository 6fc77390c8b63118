//! Bounds on EIP-712 typed data from dApps, checked before anything is parsed into types or
//! hashed: hashing walks the type graph and the message recursively, so unbounded input could
//! exhaust the stack or keep a worker busy for seconds.
//!
//! The limits are far above what real signing requests use (a permit, an order, a register
//! instruction: a handful of types with a handful of fields, nesting of two or three).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Deepest JSON nesting accepted anywhere in the request.
pub const MAX_JSON_DEPTH: usize = 32;
/// Most JSON values (objects, arrays and scalars) in the request.
pub const MAX_JSON_NODES: usize = 20_000;
/// Most struct types.
pub const MAX_TYPES: usize = 64;
/// Most fields per struct type.
pub const MAX_FIELDS: usize = 64;
/// Longest type string, e.g. `Order[2][]`.
pub const MAX_TYPE_LEN: usize = 128;
/// Most array dimensions on one field.
pub const MAX_ARRAY_DIMS: usize = 4;
/// Longest chain of struct types referring to struct types.
pub const MAX_TYPE_DEPTH: usize = 16;

/// Checks `value` (the typed data object) against the limits; the error says which one.
pub fn check_bounds(value: &Value) -> Result<(), String> {
    // Size and depth of the JSON, without recursion.
    let mut stack = vec![(value, 1usize)];
    let mut nodes = 0usize;
    while let Some((v, depth)) = stack.pop() {
        nodes += 1;
        if nodes > MAX_JSON_NODES {
            return Err(format!("more than {MAX_JSON_NODES} values"));
        }
        if depth > MAX_JSON_DEPTH {
            return Err(format!("nested deeper than {MAX_JSON_DEPTH}"));
        }
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, depth + 1))),
            _ => {}
        }
    }

    let Some(types) = value.get("types").and_then(Value::as_object) else {
        return Err("types missing".into());
    };
    if types.len() > MAX_TYPES {
        return Err(format!("more than {MAX_TYPES} types"));
    }
    let mut refs: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, fields) in types {
        let Some(fields) = fields.as_array() else {
            return Err(format!("type {name} is not a list of fields"));
        };
        if fields.len() > MAX_FIELDS {
            return Err(format!("type {name} has more than {MAX_FIELDS} fields"));
        }
        let entry = refs.entry(name.as_str()).or_default();
        for field in fields {
            let ty = field.get("type").and_then(Value::as_str).unwrap_or_default();
            if ty.len() > MAX_TYPE_LEN {
                return Err(format!(
                    "a field type of {name} is longer than {MAX_TYPE_LEN} characters"
                ));
            }
            if ty.matches('[').count() > MAX_ARRAY_DIMS {
                return Err(format!(
                    "a field type of {name} has more than {MAX_ARRAY_DIMS} array dimensions"
                ));
            }
            let base = ty.split('[').next().unwrap_or_default();
            if types.contains_key(base) {
                entry.insert(base);
            }
        }
    }

    // Longest reference chain, by iterative deepening over the (small, bounded) graph.
    let mut depth: BTreeMap<&str, usize> = refs.keys().map(|k| (*k, 1)).collect();
    for _ in 0..=MAX_TYPE_DEPTH {
        let mut changed = false;
        for (name, children) in &refs {
            let below = children.iter().filter(|c| *c != name).map(|c| depth[c]).max().unwrap_or(0);
            let d = below + 1;
            if d > depth[name] {
                depth.insert(name, d);
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
    }
    Err(format!("types refer to each other deeper than {MAX_TYPE_DEPTH} levels (or in a cycle)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: usize) -> Value {
        let mut types = serde_json::Map::new();
        types.insert("EIP712Domain".into(), json!([{"name": "name", "type": "string"}]));
        for i in 0..n {
            let next = if i + 1 < n { format!("T{}", i + 1) } else { "uint256".into() };
            types.insert(format!("T{i}"), json!([{"name": "x", "type": next}]));
        }
        json!({"types": types, "primaryType": "T0", "domain": {"name": "x"}, "message": {}})
    }

    #[test]
    fn accepts_ordinary_typed_data() {
        assert_eq!(check_bounds(&chain(5)), Ok(()));
    }

    #[test]
    fn refuses_deep_type_chains_and_cycles() {
        assert!(check_bounds(&chain(40)).unwrap_err().contains("deeper than 16"));
        let cyclic = json!({"types": {"A": [{"name": "b", "type": "B"}], "B": [{"name": "a", "type": "A[]"}]}});
        assert!(check_bounds(&cyclic).unwrap_err().contains("or in a cycle"));
    }

    #[test]
    fn refuses_many_array_dimensions_and_long_types() {
        let dims =
            json!({"types": {"A": [{"name": "x", "type": format!("uint8{}", "[]".repeat(50))}]}});
        assert!(check_bounds(&dims).unwrap_err().contains("array dimensions"));
        let long = json!({"types": {"A": [{"name": "x", "type": "u".repeat(200)}]}});
        assert!(check_bounds(&long).unwrap_err().contains("longer than"));
    }

    #[test]
    fn refuses_deep_or_huge_json() {
        let mut deep = json!(1);
        for _ in 0..100 {
            deep = json!([deep]);
        }
        let value = json!({"types": {}, "message": deep});
        assert!(check_bounds(&value).unwrap_err().contains("nested deeper"));
        let wide = json!({"types": {}, "message": vec![1; 30_000]});
        assert!(check_bounds(&wide).unwrap_err().contains("more than 20000 values"));
    }
}
