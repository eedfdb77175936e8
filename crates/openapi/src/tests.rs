//! The committed public/openapi.json against the generated document and the core's types.

use super::*;

/// The committed document, parsed.
fn committed() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(OUTPUT);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{OUTPUT}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{OUTPUT}: {e}"))
}

#[test]
fn the_committed_document_is_what_the_types_generate() {
    let (committed, generated) = (committed(), document());
    assert!(
        committed == generated,
        "{OUTPUT} differs from what the types generate: run `cargo run -p lumiqtrace-openapi` \
         and commit the file"
    );
}

/// Every `$ref` names a schema the document has (ajv refuses the document otherwise).
#[test]
fn every_reference_resolves() {
    fn refs<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
        match value {
            Value::Object(map) => {
                out.extend(map.get("$ref").and_then(Value::as_str));
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(list) => list.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let doc = document();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 20, "{found:?}");
    for reference in found {
        let pointer = reference.strip_prefix('#').expect("a local reference");
        assert!(doc.pointer(pointer).is_some(), "{reference} names nothing");
    }
}

/// The pattern at `pointer` in the document, compiled (Rust's regex reads these as ECMA-262
/// with the `u` flag does, which is how ajv compiles them).
fn pattern(pointer: &str) -> regex::Regex {
    let doc = document();
    let text = doc.pointer(pointer).and_then(Value::as_str);
    regex::Regex::new(text.unwrap_or_else(|| panic!("no pattern at {pointer}"))).unwrap()
}

/// Strings around every whitespace and control character, and around the length bounds.
fn samples() -> Vec<String> {
    let mut out = Vec::new();
    for c in (char::MIN..='\u{3100}').chain(['\u{1F600}', '\u{10FFFF}']) {
        out.extend([
            c.to_string(),
            format!("a{c}"),
            format!("{c}a"),
            format!("a{c}b"),
            format!("{c}a{c}"),
            format!("{}{c}y", "x".repeat(62)),
            format!("{}{c}", "x".repeat(63)),
        ]);
    }
    for n in [0, 1, 62, 63, 64, 65, 198, 199, 200, 201] {
        out.extend([
            "é".repeat(n),
            format!(" {}\u{3000}", "q".repeat(n)),
            "\u{1F600}".repeat(n),
        ]);
    }
    out
}

#[test]
fn name_patterns_accept_exactly_what_normalize_name_does() {
    use lumiqtrace_core::record::normalize_name;
    let new_project = pattern("/components/schemas/NewProject/properties/name/pattern");
    let new_key = pattern("/components/schemas/NewKey/properties/name/pattern");
    let samples = samples();
    for name in &samples {
        let accepted = normalize_name(name).is_some();
        assert_eq!(new_project.is_match(name), accepted, "{name:?}");
        assert_eq!(new_key.is_match(name), accepted, "{name:?}");
    }
    assert!(
        samples
            .iter()
            .filter(|s| normalize_name(s).is_some())
            .count()
            > 1000
    );
}

#[test]
fn source_pattern_accepts_exactly_what_the_leak_report_does() {
    use lumiqtrace_core::leaks::{parse_admin_report, LeakError};
    let source = pattern("/components/schemas/LeakReport/properties/source/pattern");
    for text in samples() {
        let body = json!({ "keys": [], "source": text }).to_string();
        let accepted = match parse_admin_report(body.as_bytes()) {
            Ok(_) => true,
            Err(LeakError::InvalidSource) => false,
            Err(e) => panic!("{text:?}: {e}"),
        };
        assert_eq!(source.is_match(&text), accepted, "{text:?}");
    }
}

#[test]
fn key_and_project_patterns_agree_with_the_code() {
    use lumiqtrace_core::key::{is_well_formed, ApiKey};
    use lumiqtrace_core::record::is_valid_project_id;
    let key = ApiKey::from_secret_bytes(&[0xab; 32]);
    let full = pattern("/components/schemas/IssuedKey/properties/key/pattern");
    let rotated = pattern("/components/schemas/RotatedKey/properties/key/pattern");
    let prefix = pattern("/components/schemas/KeyView/properties/prefix/pattern");
    let upper = key.expose().to_uppercase().replace("LQT_", "lqt_");
    for text in [
        key.expose(),
        &key.expose()[1..],
        &upper,
        &format!("{}0", key.expose()),
    ] {
        assert_eq!(full.is_match(text), is_well_formed(text), "{text}");
        assert_eq!(rotated.is_match(text), is_well_formed(text), "{text}");
    }
    assert!(prefix.is_match(&key.display_prefix()));
    assert!(!prefix.is_match(key.expose()));
    let project = pattern("/components/schemas/Project/properties/id/pattern");
    for id in [
        "web-app",
        "a",
        "0",
        "a-",
        &"a".repeat(63),
        "",
        "-a",
        "Web",
        "a_b",
        &"a".repeat(64),
    ] {
        assert_eq!(project.is_match(id), is_valid_project_id(id), "{id:?}");
    }
}

#[test]
fn environment_patterns_accept_exactly_what_normalize_environment_does() {
    use lumiqtrace_core::record::normalize_environment;
    let body = pattern("/components/schemas/NewKey/properties/environment/pattern");
    let doc = document();
    let query = (doc["paths"]["/admin/v1/keys"]["get"]["parameters"].as_array())
        .and_then(|ps| ps.iter().find(|p| p["name"] == "environment"))
        .and_then(|p| p["schema"]["pattern"].as_str())
        .map(|p| regex::Regex::new(p).unwrap())
        .expect("the environment query parameter has a pattern");
    let mut texts = samples();
    texts.extend(
        [
            "production",
            " Staging ",
            "\u{2003}",
            "",
            "-dev",
            "eu-canary",
            "EU_1",
            "a",
        ]
        .map(str::to_owned),
    );
    texts.extend([
        "x".repeat(32),
        "x".repeat(33),
        format!("\u{3000}{}\t", "Q".repeat(32)),
    ]);
    for text in &texts {
        let accepted = normalize_environment(text).is_some();
        assert_eq!(body.is_match(text), accepted, "{text:?}");
        assert_eq!(query.is_match(text), accepted, "{text:?}");
    }
}
