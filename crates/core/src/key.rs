//! API key format: generation, strict parsing, the stored SHA-256 identity and the display prefix.
//!
//! A key is `lqt_` followed by 64 lowercase hex characters (32 bytes from the CSPRNG:
//! `crypto.getRandomValues` in the worker, the OS on the host). Only [`KeyHash`] is ever stored.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Every key starts with this.
pub const KEY_PREFIX: &str = "lqt_";
pub(crate) const SECRET_HEX_LEN: usize = 64;
/// Length of a full key: `lqt_` + 64 hex.
pub const KEY_LEN: usize = KEY_PREFIX.len() + SECRET_HEX_LEN;
/// Hex characters of the secret shown in listings after `lqt_`.
pub(crate) const DISPLAY_HEX_LEN: usize = 8;

/// A plaintext API key. It is shown once, at creation; its `Debug` is redacted and it has no
/// `Serialize`, so it cannot end up in a log line or a stored record by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

/// The input is not exactly `lqt_` + 64 lowercase hex characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("API keys are `lqt_` followed by 64 lowercase hex characters")]
pub struct MalformedKey;

impl ApiKey {
    /// A fresh key from 32 bytes of the platform CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        Ok(Self::from_secret_bytes(&random_bytes::<32>()?))
    }

    /// The key made of these secret bytes (deterministic; tests and [`ApiKey::generate`]).
    pub fn from_secret_bytes(bytes: &[u8; 32]) -> Self {
        Self(format!("{KEY_PREFIX}{}", hex::encode(bytes)))
    }

    /// Strict parse: exactly `lqt_` + 64 lowercase hex, nothing around it.
    pub fn parse(input: &str) -> Result<Self, MalformedKey> {
        if is_well_formed(input) {
            Ok(Self(input.to_owned()))
        } else {
            Err(MalformedKey)
        }
    }

    /// The stored identity: hex SHA-256 of the full key string.
    pub fn hash(&self) -> KeyHash {
        KeyHash(sha256_hex(&self.0))
    }

    /// `lqt_` + the first 8 hex characters: what listings show.
    pub fn display_prefix(&self) -> String {
        self.0[..KEY_PREFIX.len() + DISPLAY_HEX_LEN].to_owned()
    }

    /// The plaintext, for the one response that hands the key to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Every organization admin token starts with this: never a valid [`ApiKey`] (one more
/// character before the hex), so neither is ever taken for the other.
pub const ORG_TOKEN_PREFIX: &str = "lqta_";
/// Length of a full organization admin token: `lqta_` + 64 hex.
pub const ORG_TOKEN_LEN: usize = ORG_TOKEN_PREFIX.len() + SECRET_HEX_LEN;

/// A plaintext organization admin token (`lqta_` + 64 lowercase hex, 32 bytes from the CSPRNG):
/// shown once, at creation; redacted `Debug`, no `Serialize`. Only its SHA-256 is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct OrgAdminToken(String);

impl OrgAdminToken {
    /// A fresh token from 32 bytes of the platform CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        Ok(Self::from_secret_bytes(&random_bytes::<32>()?))
    }

    /// The token made of these secret bytes (deterministic; tests and [`Self::generate`]).
    pub fn from_secret_bytes(bytes: &[u8; 32]) -> Self {
        Self(format!("{ORG_TOKEN_PREFIX}{}", hex::encode(bytes)))
    }

    /// Strict parse: exactly `lqta_` + 64 lowercase hex; `None` for anything else.
    pub fn parse(input: &str) -> Option<Self> {
        let hex = input.strip_prefix(ORG_TOKEN_PREFIX)?;
        (input.len() == ORG_TOKEN_LEN
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| Self(input.to_owned()))
    }

    /// The stored identity: hex SHA-256 of the full token string.
    pub fn hash(&self) -> KeyHash {
        KeyHash(sha256_hex(&self.0))
    }

    /// `lqta_` + the first 8 hex characters: what listings show.
    pub fn display_prefix(&self) -> String {
        self.0[..ORG_TOKEN_PREFIX.len() + DISPLAY_HEX_LEN].to_owned()
    }

    /// The plaintext, for the one response that hands the token to the operator.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OrgAdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OrgAdminToken(<redacted>)")
    }
}

/// True when `input` is exactly `lqt_` + 64 lowercase hex characters.
pub fn is_well_formed(input: &str) -> bool {
    input.len() == KEY_LEN
        && input.starts_with(KEY_PREFIX)
        && input.as_bytes()[KEY_PREFIX.len()..]
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Hex SHA-256 of a full key: the only form of a key that storage ever holds. In JSON, a
/// string of 64 lowercase hex characters; anything else does not decode.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyHash(String);

/// A stored hash that is not 64 lowercase hex characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a key hash is 64 lowercase hex characters")]
pub struct MalformedHash;

impl TryFrom<String> for KeyHash {
    type Error = MalformedHash;

    fn try_from(hex: String) -> Result<Self, MalformedHash> {
        Self::from_hex(&hex).ok_or(MalformedHash)
    }
}

impl From<KeyHash> for String {
    fn from(hash: KeyHash) -> String {
        hash.0
    }
}

impl KeyHash {
    /// Accepts 64 lowercase hex characters (a hash read back from storage).
    pub fn from_hex(hex: &str) -> Option<Self> {
        (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(hex.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `N` bytes from the platform CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

/// Lowercase hex SHA-256 of `text`: a key's stored identity, and the `token_hash` GitHub gets
/// back for any reported token.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ApiKey {
        ApiKey::from_secret_bytes(&[0xab; 32])
    }

    #[test]
    fn generated_key_is_lqt_and_64_lowercase_hex() {
        let key = ApiKey::generate().unwrap();
        assert_eq!(key.expose().len(), 68);
        assert!(is_well_formed(key.expose()));
        assert_eq!(ApiKey::parse(key.expose()), Ok(key));
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(ApiKey::generate().unwrap(), ApiKey::generate().unwrap());
    }

    #[test]
    fn parse_accepts_exact_format() {
        let text = format!("lqt_{}", "0123456789abcdef".repeat(4));
        assert_eq!(ApiKey::parse(&text).unwrap().expose(), text);
    }

    #[test]
    fn parse_rejects_everything_else() {
        let good = sample().expose().to_owned();
        let cases = [
            String::new(),
            "lqt_".into(),
            good[..67].into(),
            format!("{good}0"),
            good.to_uppercase(),
            good.replacen("lqt_", "LQT_", 1),
            good.replacen("lqt_", "lqk_", 1),
            format!(" {good}"),
            format!("{}\n", &good[..67]),
            format!("lqt_{}g", "a".repeat(63)),
            format!("lqt_{}A", "a".repeat(63)),
            format!("lqt_{}é", "a".repeat(62)),
        ];
        for case in cases {
            assert_eq!(ApiKey::parse(&case), Err(MalformedKey), "{case:?}");
        }
    }

    #[test]
    fn hash_is_sha256_hex_of_full_key() {
        // python3 -c "import hashlib; print(hashlib.sha256(('lqt_' + 'ab' * 32).encode()).hexdigest())"
        let expected = "1390a4612605238d932b445eb56c0145e0e0e0f6dc944ce494f3ca65f5bc901c";
        let hash = sample().hash();
        assert_eq!(hash.as_str().len(), 64);
        assert_eq!(KeyHash::from_hex(hash.as_str()), Some(hash.clone()));
        assert_eq!(hash.as_str(), expected);
    }

    #[test]
    fn display_prefix_is_lqt_and_eight_hex() {
        assert_eq!(sample().display_prefix(), "lqt_abababab");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = sample();
        let shown = format!("{key:?}");
        assert!(!shown.contains("abab"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn org_tokens_and_api_keys_are_never_taken_for_each_other() {
        let token = OrgAdminToken::from_secret_bytes(&[0xab; 32]);
        assert_eq!(token.expose().len(), 69);
        assert_eq!(OrgAdminToken::parse(token.expose()), Some(token.clone()));
        assert_eq!(ApiKey::parse(token.expose()), Err(MalformedKey));
        assert_eq!(OrgAdminToken::parse(sample().expose()), None);
        assert_eq!(OrgAdminToken::parse(&token.expose().to_uppercase()), None);
        assert_eq!(OrgAdminToken::parse(&token.expose()[..68]), None);
        assert_eq!(token.display_prefix(), "lqta_abababab");
        assert!(!format!("{token:?}").contains("abab"));
        assert_ne!(
            OrgAdminToken::generate().unwrap(),
            OrgAdminToken::generate().unwrap()
        );
    }

    #[test]
    fn key_hash_rejects_non_hex() {
        assert_eq!(KeyHash::from_hex("zz"), None);
        assert_eq!(KeyHash::from_hex(&"A".repeat(64)), None);
    }

    #[test]
    fn key_hash_is_a_hex_string_in_json_and_nothing_else_decodes() {
        let hash = sample().hash();
        let text = serde_json::to_string(&hash).unwrap();
        assert_eq!(text, format!("\"{}\"", hash.as_str()));
        assert_eq!(serde_json::from_str::<KeyHash>(&text).unwrap(), hash);
        let upper = format!("\"{}\"", hash.as_str().to_uppercase());
        for bad in ["\"zz\"", upper.as_str(), "7", "null"] {
            assert!(serde_json::from_str::<KeyHash>(bad).is_err(), "{bad}");
        }
    }
}
