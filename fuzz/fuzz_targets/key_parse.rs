//! Fuzz target: `key::ApiKey::parse`. A key is accepted exactly when it is `lqt_` + 64 lowercase
//! hex (checked against an independent oracle, both ways); an accepted key hashes to 64 hex
//! and shows `lqt_` + 8 hex. Never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lumiqtrace_core::key::{is_well_formed, ApiKey, KeyHash};

fn oracle(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 68
        && &b[..4] == b"lqt_"
        && b[4..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for input in [text.as_ref(), text.trim()] {
        let parsed = ApiKey::parse(input);
        assert_eq!(
            parsed.is_ok(),
            oracle(input),
            "parse disagrees on {input:?}"
        );
        assert_eq!(is_well_formed(input), oracle(input));
        if let Ok(key) = parsed {
            assert_eq!(key.expose(), input);
            let hash = key.hash();
            assert!(KeyHash::from_hex(hash.as_str()).is_some());
            assert_eq!(key.display_prefix(), &input[..12]);
            assert!(
                !format!("{key:?}").contains(&input[4..]),
                "Debug leaks the key"
            );
        }
    }
    // Hex-shaped inputs reach the interesting branch far more often than raw bytes do.
    let mut shaped = String::from("lqt_");
    shaped.extend(
        data.iter()
            .take(64)
            .map(|b| b"0123456789abcdefABCDEFgx \n"[usize::from(*b) % 26] as char),
    );
    assert_eq!(
        ApiKey::parse(&shaped).is_ok(),
        oracle(&shaped),
        "{shaped:?}"
    );
});
