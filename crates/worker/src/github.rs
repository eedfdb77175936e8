//! GitHub's secret-scanning public keys for the GitHub route: the document fetched with
//! `worker::Fetch` from `GITHUB_KEYS_URL` (GitHub's own when unset) and this isolate's
//! [`KeyCache`] of it. The ECDSA P-256 check itself is the core's (`p256`).

use lumiqtrace_core::signature::{
    GitHubSignatures, KeyCache, KeysFetcher, SignatureError, DEFAULT_KEYS_URL, MAX_KEYS_DOCUMENT,
};
use std::cell::RefCell;
use std::rc::Rc;
use worker::{CfProperties, Fetch, Headers, Request, RequestInit};

/// The var naming the public-keys document (tests point it at a local stub).
const KEYS_URL_VAR: &str = "GITHUB_KEYS_URL";
/// Seconds Cloudflare's edge cache keeps the document for every isolate of a location, so
/// isolates starting up do not each call GitHub's rate-limited API.
const EDGE_CACHE_SECONDS: i32 = 300;

thread_local! {
    /// One cache per isolate, shared by its requests.
    static CACHE: Rc<RefCell<KeyCache>> = Rc::default();
}

/// This isolate's key cache (the checker borrows it for one request).
pub fn cache() -> Rc<RefCell<KeyCache>> {
    CACHE.with(Rc::clone)
}

/// The signature checker the GitHub route uses: the document at `keys_url` and `cache`.
pub fn signatures<'c>(
    keys_url: Option<&str>,
    cache: &'c RefCell<KeyCache>,
) -> GitHubSignatures<'c, HttpKeys> {
    let url = keys_url.unwrap_or(DEFAULT_KEYS_URL).trim().to_owned();
    GitHubSignatures {
        fetcher: HttpKeys { url },
        cache,
    }
}

/// [`KeysFetcher`] over `fetch`: `GET` with the `User-Agent` GitHub's API requires.
pub struct HttpKeys {
    pub url: String,
}

impl HttpKeys {
    async fn download(&self) -> Result<String, String> {
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            return Err(format!("{KEYS_URL_VAR} is not an http(s) URL"));
        }
        let headers = Headers::new();
        let set = |name, value| headers.set(name, value).map_err(|e| e.to_string());
        set("accept", "application/json")?;
        set("user-agent", "lumiqtrace-authorizer")?;
        let mut cf = CfProperties::new();
        cf.cache_ttl = Some(EDGE_CACHE_SECONDS);
        cf.cache_everything = Some(true);
        // The worker crate sends every `cf` field, an unset cache key as "": name the usual one.
        cf.cache_key = Some(self.url.clone());
        let mut init = RequestInit::new();
        init.with_headers(headers).with_cf_properties(cf);
        let request = Request::new_with_init(&self.url, &init).map_err(|e| e.to_string())?;
        let mut response = Fetch::Request(request)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status_code() != 200 {
            return Err(format!("answered {}", response.status_code()));
        }
        let text = response.text().await.map_err(|e| e.to_string())?;
        if text.len() > MAX_KEYS_DOCUMENT {
            return Err(format!("larger than {MAX_KEYS_DOCUMENT} bytes"));
        }
        Ok(text)
    }
}

impl KeysFetcher for HttpKeys {
    async fn fetch(&self) -> Result<String, SignatureError> {
        self.download()
            .await
            .map_err(|e| SignatureError::KeysUnavailable(format!("{}: {e}", self.url)))
    }
}
