//! Fuzz target: the serde decoders that read outside JSON. Never panics. Stored records and the
//! change log's entries (`json_object` into `KeyRecord`, `Project`, `AuditEvent`, `Change`,
//! `Write`; lists of changes and writes; `Conflict`) decode only from JSON objects, records
//! nested in them too (serde's derive alone would also read a struct from the array of its
//! fields), and round-trip. The admin leak report decodes only from an object with exactly
//! `keys` (strings) and `source`, GitHub's report only from an array of objects with a string
//! `token`; both refuse more than 1,000 entries, and neither refusal quotes a key from the body.
//! GitHub's public-keys document decodes only from an object.
//!
//! Oracles: the input's first character says whether a decoder that succeeded read an object or
//! an array; serde_json's `Value`, when it parses the input, shows the nesting. (`Value` alone is
//! no oracle of success: decoders skip unknown fields without checking, e.g., number ranges.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use lumiqtrace_core::changes::{Change, Conflict, Write};
use lumiqtrace_core::json_object::{from_slice, from_str};
use lumiqtrace_core::key::is_well_formed;
use lumiqtrace_core::leaks::{parse_admin_report, parse_github_report, LeakError};
use lumiqtrace_core::record::{AuditEvent, KeyRecord, Project};
use lumiqtrace_core::signature::PublicKeys;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// The input's first character after whitespace.
fn opens(data: &[u8]) -> Option<u8> {
    data.iter().copied().find(|b| !b" \t\n\r".contains(b))
}

/// What decodes writes back and reads the same.
fn round_trips<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    decoded: &T,
    read: fn(&str) -> Result<T, serde_json::Error>,
) {
    let text = serde_json::to_string(decoded).expect("our types always encode");
    assert_eq!(&read(&text).expect("reads back"), decoded);
}

/// Decodes as `T` (with `json_object`) only from an object.
fn object_only<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    data: &[u8],
) -> Option<T> {
    let decoded = from_slice::<T>(data).ok()?;
    assert_eq!(opens(data), Some(b'{'), "a non-object decoded");
    round_trips(&decoded, from_str::<T>);
    Some(decoded)
}

/// Decodes as a list of `T` (plain serde_json) only from an array of objects.
fn objects_only<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    data: &[u8],
    value: Option<&Value>,
    record_field: &str,
) {
    let Ok(decoded) = serde_json::from_slice::<Vec<T>>(data) else {
        return;
    };
    assert_eq!(opens(data), Some(b'['), "a list from a non-array");
    round_trips(&decoded, |t| serde_json::from_str::<Vec<T>>(t));
    for item in value.and_then(Value::as_array).into_iter().flatten() {
        assert!(
            item[record_field].is_object(),
            "a record not an object: {item}"
        );
    }
}

/// Every well-formed key the input holds: none may appear in a refusal.
fn keys_in(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let found = text
        .match_indices("lqt_")
        .filter_map(|(i, _)| text.get(i..i + 68));
    found
        .filter(|k| is_well_formed(k))
        .map(str::to_owned)
        .collect()
}

fn refusal_quotes_no_key(err: &LeakError, keys: &[String]) {
    let shown = err.to_string();
    assert!(keys.iter().all(|k| !shown.contains(k.as_str())), "{shown}");
}

fuzz_target!(|data: &[u8]| {
    let value = serde_json::from_slice::<Value>(data).ok();
    let value = value.as_ref();
    let object = value.and_then(Value::as_object);

    object_only::<KeyRecord>(data);
    object_only::<Project>(data);
    object_only::<AuditEvent>(data);
    if object_only::<Change>(data).is_some() {
        if let Some(o) = object {
            assert!(o["record"].is_object(), "a record not an object");
        }
    }
    if object_only::<Write>(data).is_some() {
        if let Some(o) = object {
            assert!(o["next"].is_object(), "next not an object");
            assert!(o.get("prev").is_none_or(|p| p.is_null() || p.is_object()));
        }
    }
    // The Durable Object's stored entry of one key, and its commit request.
    objects_only::<Change>(data, value, "record");
    objects_only::<Write>(data, value, "next");
    if let Ok(conflict) = serde_json::from_slice::<Conflict>(data) {
        assert_eq!(opens(data), Some(b'['), "a conflict from a non-array");
        let items = value.and_then(Value::as_array).into_iter().flatten();
        for item in items {
            assert!(item.is_object(), "a record not an object: {item}");
        }
        round_trips(&conflict, |t| serde_json::from_str::<Conflict>(t));
    }

    let keys = keys_in(data);
    match parse_admin_report(data) {
        Ok(report) => {
            assert_eq!(opens(data), Some(b'{'), "an admin report from a non-object");
            if let Some(o) = object {
                assert_eq!(o.len(), 2, "only keys and source");
                let listed = o["keys"].as_array().expect("keys is an array");
                assert!(listed.len() <= 1_000 && listed.iter().all(Value::is_string));
                assert!(o["source"].is_string());
                assert!(report.findings.len() <= listed.len());
            }
        }
        Err(e) => refusal_quotes_no_key(&e, &keys),
    }
    match parse_github_report(data) {
        Ok(report) => {
            assert_eq!(opens(data), Some(b'['), "a GitHub report from a non-array");
            assert!(report.findings.len() <= 1_000);
            if let Some(matches) = value.and_then(Value::as_array) {
                assert!(matches.len() <= 1_000);
                for m in matches {
                    assert!(m.is_object() && m["token"].is_string(), "{m}");
                }
            }
        }
        Err(e) => refusal_quotes_no_key(&e, &keys),
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if PublicKeys::parse(text).is_ok() {
            assert_eq!(opens(data), Some(b'{'), "a keys document from a non-object");
        }
    }
});
