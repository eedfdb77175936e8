//! GitHub secret-scanning request authenticity: the `Github-Public-Key-Signature` header
//! (base64 of an ASN.1 DER ECDSA P-256 / SHA-256 signature over the raw body) checked against the
//! key named by `Github-Public-Key-Identifier` in GitHub's public-keys document. The `p256`
//! crate reads the signature and the PEM keys and verifies; this module holds the document, a
//! cache with a bounded lifetime (time passed in) and the order of checks. The document's
//! download sits behind [`KeysFetcher`] (the worker's `fetch`).

use crate::time::Millis;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, Engine as _};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;
use serde::Deserialize;
use std::cell::RefCell;
use std::rc::Rc;

/// Names the key that signed the request (header names are case-insensitive).
pub const KEY_ID_HEADER: &str = "github-public-key-identifier";
/// Base64 of the DER signature over the raw body.
pub const SIGNATURE_HEADER: &str = "github-public-key-signature";
/// GitHub's public-keys document, used when `GITHUB_KEYS_URL` is not set.
pub const DEFAULT_KEYS_URL: &str = "https://api.github.com/meta/public_keys/secret_scanning";
/// A fetched document is used for this long (1 hour), then fetched again.
pub const KEYS_TTL_MS: Millis = 60 * 60 * 1000;
/// At most one download per this interval (60 s) per isolate, whatever callers send: an unknown
/// key id refreshes the document (GitHub may have added a key) but cannot make us hammer GitHub.
pub const MIN_FETCH_INTERVAL_MS: Millis = 60 * 1000;
/// When a refresh fails, a document up to this old (24 hours) still verifies its own keys.
pub const MAX_STALE_MS: Millis = 24 * 60 * 60 * 1000;
/// A public-keys document larger than this (64 KiB) is refused.
pub const MAX_KEYS_DOCUMENT: usize = 64 * 1024;

/// Standard base64 (RFC 4648 §4) with `=` padding optional, as the signature header is read.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a GitHub request is not accepted as GitHub's. Mapped to HTTP in `error.rs`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing Github-Public-Key-Identifier or Github-Public-Key-Signature header")]
    Missing,
    #[error("Github-Public-Key-Identifier names no key in GitHub's public-keys document")]
    UnknownKey,
    #[error("Github-Public-Key-Signature does not verify for this body")]
    Invalid,
    /// The document could not be fetched or read: the caller should answer 503 (GitHub retries).
    #[error("GitHub's public keys are unavailable: {0}")]
    KeysUnavailable(String),
}

/// Downloads GitHub's public-keys document (its text).
#[allow(async_fn_in_trait)] // single-threaded Workers runtime: no `Send` bound wanted
pub trait KeysFetcher {
    async fn fetch(&self) -> Result<String, SignatureError>;
}

/// The `Github-Public-Key-Signature` header as a signature: base64 (padded or not) of a strict
/// ASN.1 DER `ECDSA-Sig-Value` whose `r` and `s` are valid P-256 scalars. `None` otherwise.
pub fn decode_signature(header: &str) -> Option<Signature> {
    let der = BASE64.decode(header.trim()).ok()?;
    Signature::from_der(&der).ok()
}

/// The key inside a `-----BEGIN PUBLIC KEY-----` PEM block, if it is a P-256 key (the only kind
/// GitHub publishes for secret scanning).
pub fn key_from_pem(pem: &str) -> Option<VerifyingKey> {
    VerifyingKey::from_public_key_pem(pem.trim()).ok()
}

/// GitHub's signing keys: identifier → key. Every listed key verifies, current or not (a report
/// signed just before GitHub rotates must still pass).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeys(Vec<(String, VerifyingKey)>);

/// `{"public_keys":[{"key_identifier","key": PEM,"is_current"}]}` (other fields ignored).
#[derive(Deserialize)]
struct Document {
    public_keys: Vec<ListedKey>,
}

#[derive(Deserialize)]
struct ListedKey {
    key_identifier: String,
    key: String,
}

impl PublicKeys {
    /// Parses GitHub's document. Keys that are not P-256 PEM are skipped; a document with none
    /// usable is an error.
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        if text.len() > MAX_KEYS_DOCUMENT {
            return Err(SignatureError::KeysUnavailable(format!(
                "document over {MAX_KEYS_DOCUMENT} bytes"
            )));
        }
        let document: Document = crate::json_object::from_str(text)
            .map_err(|e| SignatureError::KeysUnavailable(format!("document: {e}")))?;
        let listed = document.public_keys.into_iter();
        let keys: Vec<_> = listed
            .filter_map(|k| Some((k.key_identifier, key_from_pem(&k.key)?)))
            .collect();
        if keys.is_empty() {
            return Err(SignatureError::KeysUnavailable(
                "document lists no P-256 public key".into(),
            ));
        }
        Ok(Self(keys))
    }

    pub fn get(&self, key_id: &str) -> Option<&VerifyingKey> {
        let found = self.0.iter().find(|(id, _)| id == key_id);
        found.map(|(_, key)| key)
    }
}

/// The last document fetched and when, and when a download was last tried. Lives per isolate
/// in the worker; every decision takes `now`.
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: Option<(Rc<PublicKeys>, Millis)>,
    last_fetch: Option<Millis>,
}

impl KeyCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The document if it is younger than `max_age` at `now`.
    fn keys(&self, now: Millis, max_age: Millis) -> Option<Rc<PublicKeys>> {
        let (keys, at) = self.keys.as_ref()?;
        (now.saturating_sub(*at) < max_age).then(|| Rc::clone(keys))
    }

    fn may_fetch(&self, now: Millis) -> bool {
        self.last_fetch
            .is_none_or(|at| now.saturating_sub(at) >= MIN_FETCH_INTERVAL_MS)
    }
}

/// Checks GitHub's request signatures: a fetcher for the document and the isolate's cache.
pub struct GitHubSignatures<'c, F> {
    pub fetcher: F,
    pub cache: &'c RefCell<KeyCache>,
}

impl<F: KeysFetcher> GitHubSignatures<'_, F> {
    /// Accepts the request only if both headers are present, the signature is well-formed DER,
    /// the key id is in GitHub's document and the signature verifies over `body` exactly.
    /// Malformed headers are refused before any download.
    pub async fn authenticate(
        &self,
        key_id: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: Millis,
    ) -> Result<(), SignatureError> {
        let (key, signature) = self.signing_key(key_id, signature, now).await?;
        match key.verify(body, &signature) {
            Ok(()) => Ok(()),
            Err(_) => Err(SignatureError::Invalid),
        }
    }

    /// The checks of [`authenticate`](Self::authenticate) that need no body: both headers
    /// present, the signature well-formed DER, the key id in GitHub's document. The shell runs
    /// them before it reads the body, so a request that cannot be GitHub's is not read.
    pub async fn check_headers(
        &self,
        key_id: Option<&str>,
        signature: Option<&str>,
        now: Millis,
    ) -> Result<(), SignatureError> {
        self.signing_key(key_id, signature, now).await.map(drop)
    }

    /// The named key and the decoded signature.
    async fn signing_key(
        &self,
        key_id: Option<&str>,
        signature: Option<&str>,
        now: Millis,
    ) -> Result<(VerifyingKey, Signature), SignatureError> {
        fn present(header: Option<&str>) -> Option<&str> {
            header.map(str::trim).filter(|v| !v.is_empty())
        }
        let (Some(key_id), Some(signature)) = (present(key_id), present(signature)) else {
            return Err(SignatureError::Missing);
        };
        let signature = decode_signature(signature).ok_or(SignatureError::Invalid)?;
        let key = self.public_key(key_id, now).await?;
        Ok((key, signature))
    }

    /// The key named `key_id`: from the cached document while it is fresh; otherwise (or when
    /// the id is unknown to it) from a new download, at most one per [`MIN_FETCH_INTERVAL_MS`];
    /// when that fails, from a document up to [`MAX_STALE_MS`] old. No `RefCell` borrow is held
    /// across the download, so concurrent requests in one isolate cannot collide.
    async fn public_key(&self, key_id: &str, now: Millis) -> Result<VerifyingKey, SignatureError> {
        let found = |keys: &PublicKeys| keys.get(key_id).copied();
        let fresh = self.cache.borrow().keys(now, KEYS_TTL_MS);
        if let Some(key) = fresh.as_deref().and_then(found) {
            return Ok(key);
        }
        let stale = self.cache.borrow().keys(now, MAX_STALE_MS);
        if !self.cache.borrow().may_fetch(now) {
            return match (stale.as_deref().and_then(found), fresh) {
                (Some(key), _) => Ok(key),
                (None, Some(_)) => Err(SignatureError::UnknownKey),
                (None, None) => Err(SignatureError::KeysUnavailable(
                    "last download failed less than a minute ago".into(),
                )),
            };
        }
        self.cache.borrow_mut().last_fetch = Some(now);
        let fetched = match self.fetcher.fetch().await {
            Ok(text) => PublicKeys::parse(&text),
            Err(e) => Err(e),
        };
        match fetched {
            Ok(keys) => {
                let key = found(&keys).ok_or(SignatureError::UnknownKey);
                self.cache.borrow_mut().keys = Some((Rc::new(keys), now));
                key
            }
            Err(e) => stale.as_deref().and_then(found).ok_or(e),
        }
    }
}

/// Test doubles shared with `leaks` tests: a signer that makes GitHub-style headers, and a
/// fetcher serving a fixed document.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::{EncodePublicKey, LineEnding};
    use std::cell::Cell;

    /// A P-256 key pair standing in for one of GitHub's.
    pub struct TestSigner {
        pub key_id: String,
        key: SigningKey,
    }

    impl TestSigner {
        pub fn new(seed: u8, key_id: &str) -> Self {
            let mut secret = [seed; 32];
            secret[0] = 1; // below the curve order whatever the seed
            Self {
                key_id: key_id.into(),
                key: SigningKey::from_slice(&secret).unwrap(),
            }
        }

        /// `Github-Public-Key-Signature` for `body`: base64 of the DER signature.
        pub fn sign(&self, body: &[u8]) -> String {
            let signature: Signature = self.key.sign(body);
            STANDARD.encode(signature.to_der().as_bytes())
        }

        /// The PEM GitHub's document would list for this key (64-character lines).
        pub fn pem(&self) -> String {
            let public = self.key.verifying_key();
            public.to_public_key_pem(LineEnding::LF).unwrap()
        }
    }

    /// GitHub's public-keys document listing these signers.
    pub fn document(signers: &[&TestSigner]) -> String {
        let keys: Vec<_> = signers
            .iter()
            .map(|s| {
                serde_json::json!({ "key_identifier": s.key_id, "key": s.pem(), "is_current": true })
            })
            .collect();
        serde_json::json!({ "public_keys": keys }).to_string()
    }

    /// A [`KeysFetcher`] serving a document that tests can change or break; counts downloads.
    pub struct StaticKeys {
        pub document: RefCell<Result<String, SignatureError>>,
        pub fetches: Cell<usize>,
    }

    impl StaticKeys {
        pub fn new(document: String) -> Self {
            Self {
                document: RefCell::new(Ok(document)),
                fetches: Cell::new(0),
            }
        }
    }

    impl KeysFetcher for &StaticKeys {
        async fn fetch(&self) -> Result<String, SignatureError> {
            self.fetches.set(self.fetches.get() + 1);
            self.document.borrow().clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use p256::pkcs8::EncodePublicKey;
    use pollster::block_on;

    // GitHub's documented example (secret-scanning partner program, Python sample): key id
    // 90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a.
    const GITHUB_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9MJJHnMfn2+H4xL4YaPDA4RpJqUq\nkCmRCBnYERxZanmcpzQSXs1X/AljlKkbJ8qpVIW4clayyef9gWhFbNHWAA==\n-----END PUBLIC KEY-----\n";
    const GITHUB_BODY: &[u8] = br#"[{"token":"some_token","type":"some_type","url":"some_url"}]"#;
    const GITHUB_SIGNATURE: &str = "MEUCIQDKZokqnCjrRtw0tni+2Ltvl/uiMJ1EGumEsp1BsNr32AIgQY1YXD2nlj+XNfGK4rBfkMJ1JDOQcYXxa2sY8FNkrKc=";
    const MINUTE: Millis = 60_000;

    fn verify(pem: &str, signature_b64: &str, body: &[u8]) -> bool {
        let key = key_from_pem(pem).unwrap();
        let signature = decode_signature(signature_b64).unwrap();
        key.verify(body, &signature).is_ok()
    }

    fn der(signature_b64: &str) -> Vec<u8> {
        STANDARD.decode(signature_b64).unwrap()
    }

    #[test]
    fn githubs_documented_example_verifies_and_a_changed_byte_does_not() {
        assert!(verify(GITHUB_PEM, GITHUB_SIGNATURE, GITHUB_BODY));
        let mut tampered = GITHUB_BODY.to_vec();
        tampered[12] ^= 1;
        assert!(!verify(GITHUB_PEM, GITHUB_SIGNATURE, &tampered));
    }

    #[test]
    fn der_signature_becomes_left_padded_r_and_s() {
        // 0x00 sign byte before r (high bit set), s one byte short of 32.
        let mut der = vec![0x30, 0x44, 0x02, 0x21, 0x00, 0x80];
        der.extend([0x11; 31]);
        der.extend([0x02, 0x1f, 0x7f]);
        der.extend([0x22; 30]);
        let raw = der_to_raw(&der).unwrap();
        let header = STANDARD.encode(&der);
        let decoded: Option<[u8; 64]> = decode_signature(&header).map(|s| s.to_bytes().into());
        assert_eq!(decoded, Some(raw));
        assert_eq!(raw[0], 0x80);
        assert_eq!(&raw[1..32], &[0x11; 31]);
        assert_eq!(&raw[32..34], &[0x00, 0x7f]);
        assert_eq!(&raw[34..], &[0x22; 30]);
    }

    /// The signature as the raw `r‖s` p256 reads from DER (64 bytes), if it reads one.
    fn der_to_raw(der: &[u8]) -> Option<[u8; 64]> {
        let signature = Signature::from_der(der).ok()?;
        Some(signature.to_bytes().into())
    }

    #[test]
    fn non_der_signatures_are_refused() {
        let good = der(GITHUB_SIGNATURE);
        assert!(der_to_raw(&good).is_some());
        let mut cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0x30],
            vec![0x30, 0x00],
            good[..good.len() - 1].to_vec(),
            [good.as_slice(), &[0]].concat(), // trailing byte
            [&[0x31], &good[1..]].concat(),   // not a SEQUENCE
            vec![0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01], // r = 0
            vec![0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01], // r negative
            vec![0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01], // r not minimal
            vec![0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01], // long-form length
        ];
        let mut wide = vec![0x30, 0x27, 0x02, 0x22, 0x00];
        wide.extend([0x80; 33]); // r of 33 bytes
        wide.extend([0x02, 0x01, 0x01]);
        cases.push(wide);
        for case in cases {
            assert_eq!(der_to_raw(&case), None, "{case:02x?}");
        }
    }

    /// Deterministic fuzzing: random bytes and single-byte mutations of valid signatures never
    /// panic, and whatever is accepted re-encodes to the same DER (accepting means parsing).
    #[test]
    fn der_parser_survives_random_and_mutated_input() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let signer = TestSigner::new(3, "k");
        let valid: Vec<Vec<u8>> = (0..32u8).map(|i| der(&signer.sign(&[i]))).collect();
        for round in 0..200_000 {
            let input = if round % 2 == 0 {
                let len = (next() % 80) as usize;
                (0..len).map(|_| next() as u8).collect::<Vec<_>>()
            } else {
                let mut v = valid[round % valid.len()].clone();
                let at = (next() as usize) % v.len();
                v[at] = next() as u8;
                v
            };
            if let Some(raw) = der_to_raw(&input) {
                assert_eq!(raw_to_der(&raw), input);
            }
        }
        for v in &valid {
            assert_eq!(&raw_to_der(&der_to_raw(v).unwrap()), v);
        }
    }

    /// The DER a strict encoder makes from `r‖s` (test oracle).
    fn raw_to_der(raw: &[u8; 64]) -> Vec<u8> {
        let int = |half: &[u8]| {
            let start = half.iter().position(|b| *b != 0).unwrap_or(31);
            let mut v = half[start..].to_vec();
            if v[0] & 0x80 != 0 {
                v.insert(0, 0);
            }
            [vec![0x02, v.len() as u8], v].concat()
        };
        let body = [int(&raw[..32]), int(&raw[32..])].concat();
        [vec![0x30, body.len() as u8], body].concat()
    }

    #[test]
    fn signature_header_is_base64_padded_or_not_of_der() {
        let unpadded = GITHUB_SIGNATURE.trim_end_matches('=');
        assert_ne!(unpadded, GITHUB_SIGNATURE);
        for header in [GITHUB_SIGNATURE, unpadded, &format!(" {GITHUB_SIGNATURE} ")] {
            assert!(verify(GITHUB_PEM, header, GITHUB_BODY), "{header}");
        }
        let url_safe = GITHUB_SIGNATURE.replace('+', "-").replace('/', "_");
        assert_ne!(url_safe, GITHUB_SIGNATURE);
        let wrapped = format!("{}\n{}", &GITHUB_SIGNATURE[..40], &GITHUB_SIGNATURE[40..]);
        let trailing = format!("{GITHUB_SIGNATURE}x");
        // Base64 of something that is not DER, bad base64, another alphabet, data after it.
        for bad in ["aGk=", "!!", "", "a", &url_safe, &wrapped, &trailing] {
            assert!(decode_signature(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn pem_must_hold_a_p256_public_key() {
        let key = key_from_pem(GITHUB_PEM).unwrap();
        assert_eq!(key.to_public_key_der().unwrap().as_bytes().len(), 91);
        let signer = TestSigner::new(7, "k");
        assert!(key_from_pem(&signer.pem()).is_some());
        let no_armor = GITHUB_PEM.replace("PUBLIC KEY", "CERTIFICATE");
        let truncated = GITHUB_PEM.replace("AA==", "");
        // An RSA key's SPKI (first bytes of any 2048-bit key) is not P-256.
        let rsa = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----";
        for bad in [
            no_armor.as_str(),
            &truncated,
            rsa,
            "",
            "-----BEGIN PUBLIC KEY-----",
        ] {
            assert_eq!(key_from_pem(bad), None, "{bad}");
        }
    }

    #[test]
    fn keys_document_lists_usable_keys_and_skips_others() {
        let doc = serde_json::json!({ "public_keys": [
            { "key_identifier": "rsa", "key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "is_current": false },
            { "key_identifier": "gh", "key": GITHUB_PEM, "is_current": true },
        ]});
        let keys = PublicKeys::parse(&doc.to_string()).unwrap();
        assert!(keys.get("gh").is_some());
        assert!(keys.get("rsa").is_none());
        for bad in [
            "{}",
            "not json",
            r#"{"public_keys": []}"#,
            r#"{"public_keys": [{"key_identifier": "x", "key": "junk"}]}"#,
        ] {
            assert!(
                matches!(
                    PublicKeys::parse(bad),
                    Err(SignatureError::KeysUnavailable(_))
                ),
                "{bad}"
            );
        }
        let huge = format!(r#"{{"public_keys": [], "pad": "{}"}}"#, "x".repeat(70_000));
        assert!(PublicKeys::parse(&huge).is_err());
    }

    struct Setup {
        signer: TestSigner,
        fetcher: StaticKeys,
        cache: RefCell<KeyCache>,
    }

    impl Setup {
        fn new() -> Self {
            let signer = TestSigner::new(5, "key-1");
            let fetcher = StaticKeys::new(document(&[&signer]));
            Self {
                signer,
                fetcher,
                cache: RefCell::new(KeyCache::new()),
            }
        }

        fn check(
            &self,
            key_id: &str,
            signature: &str,
            body: &[u8],
            now: Millis,
        ) -> Result<(), SignatureError> {
            let github = GitHubSignatures {
                fetcher: &self.fetcher,
                cache: &self.cache,
            };
            block_on(github.authenticate(Some(key_id), Some(signature), body, now))
        }
    }

    #[test]
    fn signed_body_is_accepted_and_the_document_is_fetched_once() {
        let s = Setup::new();
        let body = b"[]";
        assert_eq!(s.check("key-1", &s.signer.sign(body), body, 0), Ok(()));
        assert_eq!(
            s.check("key-1", &s.signer.sign(body), body, 10 * MINUTE),
            Ok(())
        );
        assert_eq!(s.fetcher.fetches.get(), 1);
    }

    #[test]
    fn tampered_body_wrong_key_and_garbage_signature_are_refused() {
        let s = Setup::new();
        let other = TestSigner::new(9, "key-1");
        let sig = s.signer.sign(b"[1]");
        assert_eq!(
            s.check("key-1", &sig, b"[2]", 0),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            s.check("key-1", &other.sign(b"[1]"), b"[1]", 0),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            s.check("key-1", "!!", b"[1]", 0),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            s.check("key-1", "aGk=", b"[1]", 0),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn missing_or_malformed_headers_are_refused_without_a_download() {
        let s = Setup::new();
        let github = GitHubSignatures {
            fetcher: &s.fetcher,
            cache: &s.cache,
        };
        let sig = s.signer.sign(b"[]");
        for (id, sig) in [
            (None, Some(sig.as_str())),
            (Some("key-1"), None),
            (Some(" "), Some(&sig)),
        ] {
            let result = block_on(github.authenticate(id, sig, b"[]", 0));
            assert_eq!(result, Err(SignatureError::Missing));
        }
        assert_eq!(
            s.check("key-1", "MEQ=", b"[]", 0),
            Err(SignatureError::Invalid)
        );
        assert_eq!(s.fetcher.fetches.get(), 0);
    }

    #[test]
    fn headers_are_checked_without_the_body_as_authenticate_checks_them() {
        let s = Setup::new();
        let github = GitHubSignatures {
            fetcher: &s.fetcher,
            cache: &s.cache,
        };
        let sig = s.signer.sign(b"[]");
        let cases = [
            (None, Some(sig.as_str()), Err(SignatureError::Missing)),
            (
                Some("key-1"),
                Some("not base64!"),
                Err(SignatureError::Invalid),
            ),
            (Some("key-1"), Some("MEQ="), Err(SignatureError::Invalid)),
            (Some("nope"), Some(&sig), Err(SignatureError::UnknownKey)),
            (Some("key-1"), Some(&sig), Ok(())),
        ];
        for (id, signature, expected) in cases {
            assert_eq!(block_on(github.check_headers(id, signature, 0)), expected);
        }
        // Well-formed headers of a known key pass whatever body follows; the body is checked
        // by `authenticate`, which finds the document cached.
        assert_eq!(
            s.check("key-1", &sig, b"[1]", 1),
            Err(SignatureError::Invalid)
        );
        assert_eq!(s.fetcher.fetches.get(), 1);
    }

    #[test]
    fn unknown_key_id_refetches_at_most_once_a_minute() {
        let s = Setup::new();
        let sig = s.signer.sign(b"[]");
        assert_eq!(s.check("key-1", &sig, b"[]", 0), Ok(()));
        assert_eq!(
            s.check("nope", &sig, b"[]", 1),
            Err(SignatureError::UnknownKey)
        );
        assert_eq!(
            s.check("nope", &sig, b"[]", 2),
            Err(SignatureError::UnknownKey)
        );
        assert_eq!(s.fetcher.fetches.get(), 1, "no refetch within a minute");
        // GitHub adds a key: after a minute an unknown id refreshes the document.
        let added = TestSigner::new(6, "key-2");
        *s.fetcher.document.borrow_mut() = Ok(document(&[&s.signer, &added]));
        assert_eq!(
            s.check("key-2", &added.sign(b"[]"), b"[]", 2 * MINUTE),
            Ok(())
        );
        assert_eq!(s.fetcher.fetches.get(), 2);
    }

    #[test]
    fn document_expires_and_a_failed_refresh_falls_back_to_a_recent_one() {
        let s = Setup::new();
        let sig = s.signer.sign(b"[]");
        assert_eq!(s.check("key-1", &sig, b"[]", 0), Ok(()));
        *s.fetcher.document.borrow_mut() = Err(SignatureError::KeysUnavailable("down".into()));
        // Past its lifetime: refetched; the download fails; the day-old document still serves.
        assert_eq!(s.check("key-1", &sig, b"[]", KEYS_TTL_MS), Ok(()));
        assert_eq!(s.fetcher.fetches.get(), 2);
        // Past the stale bound: refused with 503's error, not accepted on old keys.
        assert!(matches!(
            s.check("key-1", &sig, b"[]", MAX_STALE_MS + 1),
            Err(SignatureError::KeysUnavailable(_))
        ));
    }

    #[test]
    fn no_document_at_all_is_unavailable_and_retried_after_a_minute() {
        let s = Setup::new();
        *s.fetcher.document.borrow_mut() = Ok("{}".into());
        let sig = s.signer.sign(b"[]");
        assert!(matches!(
            s.check("key-1", &sig, b"[]", 0),
            Err(SignatureError::KeysUnavailable(_))
        ));
        assert!(matches!(
            s.check("key-1", &sig, b"[]", 1),
            Err(SignatureError::KeysUnavailable(_))
        ));
        assert_eq!(s.fetcher.fetches.get(), 1);
        *s.fetcher.document.borrow_mut() = Ok(document(&[&s.signer]));
        assert_eq!(s.check("key-1", &sig, b"[]", MINUTE), Ok(()));
    }
}
