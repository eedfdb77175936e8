//! What the three Durable Objects (`KeyChanges`, `AdminTokens`, `KeyUsage`) share: the worker's
//! call to one of them, and the plain answers they give. One copy of each in the wasm.

use wasm_bindgen::JsValue;
use worker::{Method, Request, RequestInit, Response, Result, Stub};

/// One call to an object: `method` on `url` (the host names the object, the path its route),
/// with `body` as text; its status and body text.
pub async fn call(
    stub: &Stub,
    method: Method,
    url: &str,
    body: Option<String>,
) -> Result<(u16, String)> {
    let mut init = RequestInit::new();
    init.with_method(method).with_body(body.map(JsValue::from));
    let req = Request::new_with_init(url, &init)?;
    let mut res = stub.fetch_with_request(req).await?;
    let text = res.text().await?;
    Ok((res.status_code(), text))
}

/// An object's answer: `status` with `body` (JSON text).
pub fn reply(status: u16, body: String) -> Result<Response> {
    Ok(Response::builder()
        .with_status(status)
        .fixed(body.into_bytes()))
}

/// 400 `{"error": "…"}`: a body that does not decode.
pub fn bad_request(error: serde_json::Error) -> Result<Response> {
    reply(
        400,
        serde_json::json!({ "error": error.to_string() }).to_string(),
    )
}
