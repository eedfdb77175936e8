//! The worker's side of GitHub signature checks (wasm32 only): ECDSA P-256 verify through the
//! platform's WebCrypto (`crypto.subtle.importKey("spki", …)` + `verify`, so no Rust crypto
//! crate ships in the bundle), GitHub's public-keys document fetched from `GITHUB_KEYS_URL`,
//! and the isolate-level [`KeyCache`] that `signature` bounds in time. Both platform calls are
//! a few lines of JavaScript imported once: cheaper in wasm than the same calls made through
//! `web_sys`/`worker` bindings step by step.

use crate::promise;
use crate::signature::{
    GitHubSignatures, KeyCache, KeysFetcher, SignatureError, SignatureVerifier, DEFAULT_KEYS_URL,
    MAX_KEYS_DOCUMENT,
};
use js_sys::Promise;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

/// The var naming the public-keys document (tests point it at a local stub).
const KEYS_URL_VAR: &str = "GITHUB_KEYS_URL";

// Inputs are views into wasm memory: they are copied (`slice()`) before the first `await`.
// `cf.cacheTtl`: Cloudflare's edge cache keeps the document 5 minutes for all isolates of a
// location, so isolates starting up do not each call GitHub's rate-limited API.
#[wasm_bindgen(inline_js = r#"
export async function p256Verify(spki, signature, message) {
  const [k, s, m] = [spki.slice(), signature.slice(), message.slice()];
  const key = await crypto.subtle.importKey("spki", k, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, s, m);
}
export async function fetchText(url, limit) {
  const init = { headers: { accept: "application/json", "user-agent": "lumiqtrace-authorizer" }, cf: { cacheTtl: 300, cacheEverything: true } };
  const response = await fetch(url, init);
  if (response.status !== 200) throw new Error(`answered ${response.status}`);
  const text = await response.text();
  if (text.length > limit) throw new Error(`larger than ${limit} bytes`);
  return text;
}
"#)]
extern "C" {
    #[wasm_bindgen(catch, js_name = p256Verify)]
    fn p256_verify(spki: &[u8], signature: &[u8], message: &[u8]) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_name = fetchText)]
    fn fetch_text(url: &str, limit: u32) -> Result<Promise, JsValue>;
}

thread_local! {
    /// One cache per isolate (wasm32 has one thread); leaked once so requests can borrow it.
    static CACHE: &'static RefCell<KeyCache> = Box::leak(Box::default());
}

/// The signature checker the GitHub route uses: WebCrypto, the document at `keys_url` (the
/// `GITHUB_KEYS_URL` var; GitHub's own when unset) and this isolate's cache.
pub fn github_signatures(keys_url: Option<&str>) -> GitHubSignatures<'static, WebCrypto, HttpKeys> {
    let url = keys_url.unwrap_or(DEFAULT_KEYS_URL).trim().to_owned();
    GitHubSignatures {
        verifier: WebCrypto,
        fetcher: HttpKeys { url },
        cache: CACHE.with(|cache| *cache),
    }
}

/// Awaits a promise from the helpers above; a rejection becomes its message.
async fn settle(call: Result<Promise, JsValue>) -> Result<JsValue, String> {
    promise::settle(call)
        .await
        .map_err(|e| promise::error_text(&e))
}

/// [`SignatureVerifier`] over `crypto.subtle`.
pub struct WebCrypto;

impl SignatureVerifier for WebCrypto {
    async fn verify(
        &self,
        spki: &[u8],
        signature: &[u8; 64],
        message: &[u8],
    ) -> Result<bool, SignatureError> {
        let verdict = settle(p256_verify(spki, signature, message)).await;
        let verdict = verdict.map_err(|e| SignatureError::Platform(format!("WebCrypto: {e}")))?;
        Ok(verdict.as_bool() == Some(true))
    }
}

/// [`KeysFetcher`] over `fetch`: `GET` with the `User-Agent` GitHub's API requires.
pub struct HttpKeys {
    pub url: String,
}

impl KeysFetcher for HttpKeys {
    async fn fetch(&self) -> Result<String, SignatureError> {
        let url = &self.url;
        let failed = |e| SignatureError::KeysUnavailable(format!("{url}: {e}"));
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(failed(format!("{KEYS_URL_VAR} is not an http(s) URL")));
        }
        let text = settle(fetch_text(url, MAX_KEYS_DOCUMENT as u32)).await;
        text.map_err(failed)?
            .as_string()
            .ok_or_else(|| failed("not text".into()))
    }
}
