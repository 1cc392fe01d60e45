//! The ARM contract the fakes and tests check bodies against:
//! `tests/fixtures/schema-2025-12-01.json`, parsed once per process, with one
//! compiled validator per model built from only the `$defs` that model reaches
//! (compiling all 1.2 MB of definitions per body is slow).
#![allow(dead_code)]

use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The whole schema document.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/schema-2025-12-01.json"
        );
        let text = std::fs::read_to_string(path).expect("schema fixture is readable");
        serde_json::from_str(&text).expect("schema fixture is JSON")
    })
}

/// Every violation of `value` as `$defs/<model>` (empty when valid).
pub fn violations(model: &str, value: &Value) -> Vec<String> {
    validator(model)
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// The `$defs` model `x-operations` names for an operation's request body.
pub fn request_model(operation: &str) -> Option<String> {
    let request = &document()["x-operations"][operation]["request"];
    request["schema"]["$ref"]
        .as_str()
        .map(|r| r.trim_start_matches("#/$defs/").to_string())
        .or_else(|| request["model"].as_str().map(str::to_string))
}

fn validator(model: &str) -> Arc<jsonschema::Validator> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(model.to_string())
        .or_insert_with(|| {
            let schema = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$ref": format!("#/$defs/{model}"),
                "$defs": reachable_defs(model),
            });
            Arc::new(jsonschema::validator_for(&schema).expect("schema compiles"))
        })
        .clone()
}

/// Only the `$defs` reachable from `root`.
fn reachable_defs(root: &str) -> Value {
    let defs = &document()["$defs"];
    let mut out = serde_json::Map::new();
    let mut todo = vec![root.to_string()];
    while let Some(name) = todo.pop() {
        if out.contains_key(&name) {
            continue;
        }
        let Some(def) = defs.get(&name) else { continue };
        collect_refs(def, &mut todo);
        out.insert(name, def.clone());
    }
    Value::Object(out)
}

fn collect_refs(v: &Value, todo: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child.as_str()) {
                    ("$ref", Some(r)) => {
                        if let Some(name) = r.strip_prefix("#/$defs/") {
                            todo.push(name.to_string());
                        }
                    }
                    _ => collect_refs(child, todo),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_refs(i, todo)),
        _ => {}
    }
}
