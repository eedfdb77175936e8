//! Request bodies: read up to a limit (admin writes, leak reports), read and dropped when the
//! answer does not need them, or left unread when the request is refused. The only module that
//! reads a body.

use futures_util::StreamExt;
use js_sys::futures::JsFuture;
use lumiqtrace_core::error::ApiError;
use worker::{ByteStream, Request};

/// A refused body that says it is at most this many bytes (64 KiB) is read and dropped rather
/// than cancelled (see [`refuse`]).
const DRAIN_LIMIT: u64 = 64 * 1024;

/// Reads at most `limit` bytes of body. A larger one is refused when its `Content-Length` says
/// so, before a byte is kept (see [`refuse`]), else as soon as it crosses `limit`: the rest is
/// cancelled unread. No body at all reads as empty.
pub async fn read_limited(req: &Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    if declared_length(req).is_some_and(|n| n > limit as u64) {
        refuse(req).await;
        return Err(ApiError::BodyTooLarge(limit));
    }
    let Some(mut stream) = stream(req) else {
        return Ok(Vec::new());
    };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidBody(format!("unreadable body: {e}")))?;
        if body.len() + chunk.len() > limit {
            // Dropping the stream cancels the rest of the body (wasm-streams' `IntoStream`).
            drop(stream);
            return Err(ApiError::BodyTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads and drops a request body the worker answers without using. In workerd, answering
/// while the body is still unread can fail the next request on the same keep-alive connection
/// (seen locally: `fetch failed` on about 1 follow-up request in 8).
async fn discard(req: &Request) {
    if let Some(mut stream) = stream(req) {
        while let Some(Ok(_)) = stream.next().await {}
    }
}

/// Leaves a body the worker refuses (an unauthenticated caller's, or one whose `Content-Length`
/// is over the route's limit) without keeping any of it. One whose `Content-Length` is at most
/// [`DRAIN_LIMIT`] is read to its end and dropped: a body left unread fails the next request on
/// the same keep-alive connection in workerd behind the assets router (`wrangler dev`, the
/// tests: about 1 follow-up in 5; none once it is read). Any other (larger, or of unknown
/// length) is cancelled unread: the runtime stops taking it from the client.
pub async fn refuse(req: &Request) {
    if declared_length(req).is_some_and(|n| n <= DRAIN_LIMIT) {
        discard(req).await;
    } else if let Some(body) = req.inner().body().filter(|body| !body.locked()) {
        // A failed cancel leaves nothing to do: the answer goes out either way.
        let _ = JsFuture::from(body.cancel()).await;
    }
}

/// The request's `Content-Length`, if it has a valid one.
fn declared_length(req: &Request) -> Option<u64> {
    let declared = req.headers().get("content-length").ok().flatten()?;
    declared.trim().parse().ok()
}

/// The body as a stream, if there is one still unread (a locked stream cannot be read again).
/// Taken from the runtime's request (`Request::inner`) so that reading it needs no `&mut`:
/// the request's headers stay borrowed meanwhile.
fn stream(req: &Request) -> Option<ByteStream> {
    let body = req.inner().body().filter(|body| !body.locked())?;
    Some(ByteStream::from(body))
}
