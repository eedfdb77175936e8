//! Request bodies: read up to a limit (admin writes, leak reports), or read and dropped when the
//! answer does not need them. The only module that reads a body.

use futures_util::StreamExt;
use lumiqtrace_core::error::ApiError;
use worker::{ByteStream, Request};

/// Reads at most `limit` bytes of body; a larger one is refused without buffering it all
/// (`Content-Length` over the limit is refused before reading, the rest is drained).
/// No body at all reads as empty.
pub async fn read_limited(req: &Request, limit: usize) -> Result<Vec<u8>, ApiError> {
    let declared = req.headers().get("content-length").ok().flatten();
    if declared
        .and_then(|n| n.trim().parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64)
    {
        discard(req).await;
        return Err(ApiError::BodyTooLarge(limit));
    }
    let Some(mut stream) = stream(req) else {
        return Ok(Vec::new());
    };
    let mut body = Vec::new();
    let mut too_large = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidBody(format!("unreadable body: {e}")))?;
        // Past the limit, read on without keeping anything (see `discard`).
        too_large |= body.len() + chunk.len() > limit;
        if !too_large {
            body.extend_from_slice(&chunk);
        }
    }
    match too_large {
        true => Err(ApiError::BodyTooLarge(limit)),
        false => Ok(body),
    }
}

/// Reads and drops a request body the worker answers without using. In workerd, answering
/// while the body is still unread can fail the next request on the same keep-alive connection
/// (seen locally: `fetch failed` on about 1 follow-up request in 8).
pub async fn discard(req: &Request) {
    if let Some(mut stream) = stream(req) {
        while let Some(Ok(_)) = stream.next().await {}
    }
}

/// The body as a stream, if there is one still unread (a locked stream cannot be read again).
/// Taken from the runtime's request (`Request::inner`) so that reading it needs no `&mut`:
/// the request's headers stay borrowed meanwhile.
fn stream(req: &Request) -> Option<ByteStream> {
    let body = req.inner().body().filter(|body| !body.locked())?;
    Some(ByteStream::from(body))
}
