//! GitHub secret-scanning request authenticity: the `Github-Public-Key-Signature` header
//! (base64 of an ASN.1 DER ECDSA P-256 / SHA-256 signature over the raw body) checked against the
//! key named by `Github-Public-Key-Identifier` in GitHub's public-keys document. Pure: base64,
//! DER → raw `r‖s`, PEM → SPKI, the document, a cache with a bounded lifetime (time passed in),
//! and the order of checks. The ECDSA verify itself sits behind [`SignatureVerifier`] (WebCrypto
//! in the worker, the `p256` crate in host tests) and the document's download behind
//! [`KeysFetcher`].

use crate::time::Millis;
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

/// DER `SubjectPublicKeyInfo` of an uncompressed P-256 key, up to the point: 27 bytes of
/// `SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING 00 04 … }`, then X‖Y.
const P256_SPKI_PREFIX: [u8; 27] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
];
const P256_SPKI_LEN: usize = P256_SPKI_PREFIX.len() + 64;

/// Why a GitHub request is not accepted as GitHub's. Mapped to HTTP in `src/error.rs`.
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
    /// The platform's crypto failed (not: the signature is wrong).
    #[error("signature check failed: {0}")]
    Platform(String),
}

/// ECDSA P-256 / SHA-256 verification.
#[allow(async_fn_in_trait)] // single-threaded Workers runtime: no `Send` bound wanted
pub trait SignatureVerifier {
    /// Whether `signature` (raw `r‖s`, 32 bytes each, as WebCrypto wants it) is a signature of
    /// `message` by `spki` (a DER SubjectPublicKeyInfo that [`spki_from_pem`] accepted).
    /// `Err` only when the check itself could not run.
    async fn verify(
        &self,
        spki: &[u8],
        signature: &[u8; 64],
        message: &[u8],
    ) -> Result<bool, SignatureError>;
}

/// Downloads GitHub's public-keys document (its text).
#[allow(async_fn_in_trait)]
pub trait KeysFetcher {
    async fn fetch(&self) -> Result<String, SignatureError>;
}

/// Standard base64 (RFC 4648 §4), `=` padding optional; ASCII whitespace is skipped (PEM
/// lines). `None` for any other character, data after padding, or non-zero leftover bits.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let (mut acc, mut bits, mut chars, mut pad) = (0u32, 0u32, 0usize, 0usize);
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                pad += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        if pad > 0 {
            return None;
        }
        chars += 1;
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    let padding_ok = pad == 0 || (pad <= 2 && (chars + pad) % 4 == 0);
    (bits < 6 && acc == 0 && padding_ok).then_some(out)
}

/// An ASN.1 DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` for P-256 as the raw
/// `r‖s` (64 bytes) that WebCrypto verifies. Strict DER: short-form lengths, minimal positive
/// non-zero integers of at most 32 bytes (plus a sign byte), nothing after the sequence.
/// `None` for anything else; never panics, whatever the input.
pub fn der_to_raw(der: &[u8]) -> Option<[u8; 64]> {
    let (&tag, rest) = der.split_first()?;
    let (&len, body) = rest.split_first()?;
    if tag != 0x30 || len >= 0x80 || usize::from(len) != body.len() {
        return None;
    }
    let mut raw = [0u8; 64];
    let (r, s) = raw.split_at_mut(32);
    let rest = der_integer(body, r)?;
    let rest = der_integer(rest, s)?;
    rest.is_empty().then_some(raw)
}

/// Reads one DER INTEGER into `out` (right-aligned); returns what follows it.
fn der_integer<'a>(input: &'a [u8], out: &mut [u8]) -> Option<&'a [u8]> {
    let (&tag, rest) = input.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let len = usize::from(len);
    if tag != 0x02 || len == 0 || len > rest.len() {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    let magnitude = match content {
        [first, ..] if first & 0x80 != 0 => return None, // negative
        [0, next, ..] if next & 0x80 == 0 => return None, // not minimal
        [0, tail @ ..] => tail,
        all => all,
    };
    if magnitude.is_empty() || magnitude.len() > out.len() {
        return None; // zero, or wider than the curve
    }
    let start = out.len() - magnitude.len();
    out[start..].copy_from_slice(magnitude);
    Some(rest)
}

/// The DER SubjectPublicKeyInfo inside a `-----BEGIN PUBLIC KEY-----` PEM block, if it is an
/// uncompressed P-256 key (the only kind GitHub publishes for secret scanning).
pub fn spki_from_pem(pem: &str) -> Option<Vec<u8>> {
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN PUBLIC KEY-----")?
        .strip_suffix("-----END PUBLIC KEY-----")?;
    let der = base64_decode(body)?;
    (der.len() == P256_SPKI_LEN && der.starts_with(&P256_SPKI_PREFIX)).then_some(der)
}

/// GitHub's signing keys: identifier → DER SPKI. Every listed key verifies, current or not
/// (a report signed just before GitHub rotates must still pass).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeys(Vec<(String, Vec<u8>)>);

impl PublicKeys {
    /// Parses `{"public_keys":[{"key_identifier","key": PEM,"is_current"}]}`. Keys that are not
    /// P-256 PEM are skipped; a document with none usable is an error.
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        if text.len() > MAX_KEYS_DOCUMENT {
            return Err(SignatureError::KeysUnavailable(format!(
                "document over {MAX_KEYS_DOCUMENT} bytes"
            )));
        }
        let read = |doc: crate::json::Value| -> Result<_, crate::json::JsonError> {
            let listed: Vec<crate::json::Value> = doc.into_object()?.required("public_keys")?;
            let mut keys = Vec::new();
            for key in listed {
                let mut key = key.into_object()?;
                let id: String = key.required("key_identifier")?;
                let pem: String = key.required("key")?;
                keys.extend(spki_from_pem(&pem).map(|der| (id, der)));
            }
            Ok(keys)
        };
        let keys = crate::json::parse(text.as_bytes())
            .and_then(read)
            .map_err(|e| SignatureError::KeysUnavailable(format!("document: {e}")))?;
        if keys.is_empty() {
            return Err(SignatureError::KeysUnavailable(
                "document lists no P-256 public key".into(),
            ));
        }
        Ok(Self(keys))
    }

    pub fn get(&self, key_id: &str) -> Option<&[u8]> {
        let found = self.0.iter().find(|(id, _)| id == key_id);
        found.map(|(_, spki)| spki.as_slice())
    }
}

/// The last document fetched and when, and when a download was last tried. Lives per isolate
/// in the worker (`src/webcrypto.rs`); every decision takes `now`.
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

/// Checks GitHub's request signatures: a verifier, a fetcher and the isolate's cache.
pub struct GitHubSignatures<'c, V, F> {
    pub verifier: V,
    pub fetcher: F,
    pub cache: &'c RefCell<KeyCache>,
}

impl<V: SignatureVerifier, F: KeysFetcher> GitHubSignatures<'_, V, F> {
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
        let (spki, raw) = self.signing_key(key_id, signature, now).await?;
        match self.verifier.verify(&spki, &raw, body).await? {
            true => Ok(()),
            false => Err(SignatureError::Invalid),
        }
    }

    /// The checks of [`authenticate`](Self::authenticate) that need no body: both headers
    /// present, the signature well-formed DER, the key id in GitHub's document. `entry` runs
    /// them before it reads the body, so a request that cannot be GitHub's is not read.
    pub async fn check_headers(
        &self,
        key_id: Option<&str>,
        signature: Option<&str>,
        now: Millis,
    ) -> Result<(), SignatureError> {
        self.signing_key(key_id, signature, now).await.map(drop)
    }

    /// The named key's SPKI and the signature as raw `r‖s`.
    async fn signing_key(
        &self,
        key_id: Option<&str>,
        signature: Option<&str>,
        now: Millis,
    ) -> Result<(Vec<u8>, [u8; 64]), SignatureError> {
        fn present(header: Option<&str>) -> Option<&str> {
            header.map(str::trim).filter(|v| !v.is_empty())
        }
        let (Some(key_id), Some(signature)) = (present(key_id), present(signature)) else {
            return Err(SignatureError::Missing);
        };
        let der = base64_decode(signature).ok_or(SignatureError::Invalid)?;
        let raw = der_to_raw(&der).ok_or(SignatureError::Invalid)?;
        let spki = self.public_key(key_id, now).await?;
        Ok((spki, raw))
    }

    /// The key named `key_id`: from the cached document while it is fresh; otherwise (or when
    /// the id is unknown to it) from a new download, at most one per [`MIN_FETCH_INTERVAL_MS`];
    /// when that fails, from a document up to [`MAX_STALE_MS`] old. No `RefCell` borrow is held
    /// across the download, so concurrent requests in one isolate cannot collide.
    async fn public_key(&self, key_id: &str, now: Millis) -> Result<Vec<u8>, SignatureError> {
        let found = |keys: &PublicKeys| keys.get(key_id).map(<[u8]>::to_vec);
        let fresh = self.cache.borrow().keys(now, KEYS_TTL_MS);
        if let Some(spki) = fresh.as_deref().and_then(found) {
            return Ok(spki);
        }
        let stale = self.cache.borrow().keys(now, MAX_STALE_MS);
        if !self.cache.borrow().may_fetch(now) {
            return match (stale.as_deref().and_then(found), fresh) {
                (Some(spki), _) => Ok(spki),
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
                let spki = found(&keys).ok_or(SignatureError::UnknownKey);
                self.cache.borrow_mut().keys = Some((Rc::new(keys), now));
                spki
            }
            Err(e) => stale.as_deref().and_then(found).ok_or(e),
        }
    }
}

/// Test doubles shared with `leaks` tests: a `p256` verifier, a signer that makes GitHub-style
/// headers, and a fetcher serving a fixed document.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use p256::ecdsa::signature::{Signer, Verifier};
    use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
    use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
    use std::cell::Cell;

    /// Host implementation of [`SignatureVerifier`] with the `p256` crate.
    pub struct P256Verifier;

    impl SignatureVerifier for P256Verifier {
        async fn verify(
            &self,
            spki: &[u8],
            signature: &[u8; 64],
            message: &[u8],
        ) -> Result<bool, SignatureError> {
            let key = VerifyingKey::from_public_key_der(spki)
                .map_err(|e| SignatureError::Platform(e.to_string()))?;
            let Ok(signature) = Signature::from_slice(signature) else {
                return Ok(false);
            };
            Ok(key.verify(message, &signature).is_ok())
        }
    }

    pub fn base64_encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

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
            base64_encode(signature.to_der().as_bytes())
        }

        /// The PEM GitHub's document would list for this key (64-character lines).
        pub fn pem(&self) -> String {
            let public = p256::PublicKey::from(self.key.verifying_key());
            let der = public.to_public_key_der().unwrap();
            let b64 = base64_encode(der.as_bytes());
            let lines: Vec<&str> = b64
                .as_bytes()
                .chunks(64)
                .map(|l| std::str::from_utf8(l).unwrap())
                .collect();
            format!(
                "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                lines.join("\n")
            )
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
    use pollster::block_on;

    // GitHub's documented example (secret-scanning partner program, Python sample): key id
    // 90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a.
    const GITHUB_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9MJJHnMfn2+H4xL4YaPDA4RpJqUq\nkCmRCBnYERxZanmcpzQSXs1X/AljlKkbJ8qpVIW4clayyef9gWhFbNHWAA==\n-----END PUBLIC KEY-----\n";
    const GITHUB_BODY: &[u8] = br#"[{"token":"some_token","type":"some_type","url":"some_url"}]"#;
    const GITHUB_SIGNATURE: &str = "MEUCIQDKZokqnCjrRtw0tni+2Ltvl/uiMJ1EGumEsp1BsNr32AIgQY1YXD2nlj+XNfGK4rBfkMJ1JDOQcYXxa2sY8FNkrKc=";
    const MINUTE: Millis = 60_000;

    fn verify(pem: &str, signature_b64: &str, body: &[u8]) -> bool {
        let spki = spki_from_pem(pem).unwrap();
        let raw = der_to_raw(&base64_decode(signature_b64).unwrap()).unwrap();
        block_on(P256Verifier.verify(&spki, &raw, body)).unwrap()
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
        assert_eq!(raw[0], 0x80);
        assert_eq!(&raw[1..32], &[0x11; 31]);
        assert_eq!(&raw[32..34], &[0x00, 0x7f]);
        assert_eq!(&raw[34..], &[0x22; 30]);
    }

    #[test]
    fn non_der_signatures_are_refused() {
        let good = base64_decode(GITHUB_SIGNATURE).unwrap();
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
        let valid: Vec<Vec<u8>> = (0..32u8)
            .map(|i| base64_decode(&signer.sign(&[i])).unwrap())
            .collect();
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
    fn base64_decodes_padded_unpadded_and_wrapped_text() {
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(base64_decode("aGk").unwrap(), b"hi");
        assert_eq!(base64_decode("aGVs\nbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("").unwrap(), b"");
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode(&base64_encode(&bytes)).unwrap(), bytes);
        for bad in ["aGk=x", "a", "aGk==", "a===", "aG-k", "aGl=", "é"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn pem_must_hold_a_p256_public_key() {
        let spki = spki_from_pem(GITHUB_PEM).unwrap();
        assert_eq!(spki.len(), 91);
        let signer = TestSigner::new(7, "k");
        assert!(spki_from_pem(&signer.pem()).is_some());
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
            assert_eq!(spki_from_pem(bad), None, "{bad}");
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
                verifier: P256Verifier,
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
            verifier: P256Verifier,
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
            verifier: P256Verifier,
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
