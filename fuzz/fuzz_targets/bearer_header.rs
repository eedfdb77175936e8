//! Fuzz target: `verify::bearer_key`, the `Authorization` header parser. Never panics; an empty
//! header is `missing_key`, anything else refused is `malformed_key`; an accepted key is exactly
//! `lqt_` + 64 lowercase hex and is what the header carried after a `Bearer` scheme.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lumiqtrace_core::verify::bearer_key;
// The key_parse target checks `is_well_formed` against an independent oracle.
use lumiqtrace_core::key::is_well_formed as well_formed;

fn check(header: &str) {
    match bearer_key(Some(header)) {
        Ok(key) => {
            let key = key.expose();
            assert!(well_formed(key), "accepted a malformed key from {header:?}");
            let value = header.trim();
            assert!(value.ends_with(key), "{header:?}");
            let scheme = value.split(' ').next().unwrap_or_default();
            assert!(scheme.eq_ignore_ascii_case("bearer"), "{header:?}");
        }
        Err(e) => {
            let code = e.code();
            let expected = if header.trim().is_empty() {
                "missing_key"
            } else {
                "malformed_key"
            };
            assert_eq!(code, expected, "{header:?}");
            assert_eq!(e.status(), 401);
            // Refusals never echo the presented key.
            let body = e.body();
            for (i, _) in header.match_indices("lqt_") {
                if let Some(candidate) = header.get(i..i + 68) {
                    assert!(!well_formed(candidate) || !body.contains(candidate));
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check(&text);
    // The same bytes as a key after a (fuzzed) scheme: covers the accepting path.
    check(&format!("Bearer {text}"));
    assert_eq!(bearer_key(None).unwrap_err().code(), "missing_key");
});
