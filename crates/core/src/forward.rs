//! What an authorized ingest call may carry on to `INGEST_ORIGIN`: the one canonical spelling of
//! its path and query ([`CanonicalPath`]), which the project check and the forward both use, and
//! the request headers passed through ([`FORWARDED_HEADERS`]).
//!
//! Why one spelling: the worker, the runtime building the outbound URL (WHATWG URL parsing:
//! `%2e%2e` is a `..` segment, `\` is `/`) and the origin's own router each read a path their
//! own way. A path that any of them could read as naming another project than the one checked
//! is refused (400 `non_canonical_path`) rather than rewritten, so what is forwarded is exactly
//! what was checked. The origin should still take the project from the
//! `X-LumiqTrace-Project-Id` header the worker sets, never from the path or query.

use crate::error::ApiError;

/// The methods an ingest call may be forwarded with, as `Allow` lists them. Any other (`DELETE`,
/// `TRACE`, `CONNECT`, `OPTIONS`, an unknown token) is `405 method_not_allowed` before the key is
/// looked up: ingest sends data, deletes nothing, and a gateway has no business relaying the
/// others; the contract documents exactly these.
pub const FORWARDED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH";

/// Whether `method` is one of [`FORWARDED_METHODS`] (methods are case-sensitive, RFC 9110 §9.1).
pub fn is_forwarded_method(method: &str) -> bool {
    FORWARDED_METHODS.split(", ").any(|m| m == method)
}

/// Request headers passed on to the origin (lowercase). Every other header the client sent is
/// dropped: cookies, `Authorization`, and every `X-LumiqTrace-*` (the worker sets its own
/// `X-LumiqTrace-Project-Id` and `X-LumiqTrace-Key-Id`).
pub const FORWARDED_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "content-encoding",
    "content-length",
    "content-type",
    "idempotency-key",
    "traceparent",
    "tracestate",
    "user-agent",
];

const PREFIX: &str = "/v1/";
const PROJECTS: &str = "projects";

/// The path and query of an ingest call, accepted only when canonical (as the runtime hands
/// them over, still percent-encoded), and unchanged:
///
/// - the path starts with `/v1/`; each of its segments is non-empty, is not `.` or `..`, and is
///   made of RFC 3986 unreserved characters only (`A-Z a-z 0-9 - . _ ~`): no `%` escape at all,
///   no `\`, no `;` parameters;
/// - a segment that contains `project` in any case is exactly `projects`, and a project id
///   segment follows it (or is itself such a segment's project id): `/v1/Projects/…`,
///   `/v1/project/…` and `/v1/projects` are refused;
/// - no query parameter's name mentions `project`, in any case, once the query is
///   percent-decoded as often as it decodes and split at `&` and `;`, ignoring every character
///   but letters and digits (`project_id`, `projectId`, `Project`, `p%72oject-id`…).
///
/// The project ids the path names ([`CanonicalPath::named_projects`]) are the segments after
/// each `projects` segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalPath {
    /// The path, then `?` and the query if there is one.
    target: String,
    path_len: usize,
}

impl CanonicalPath {
    /// `path` (with its leading `/`) and `query` (without its `?`) as the shell read them from the
    /// request URL. Errors: 400 `non_canonical_path`, saying which rule the request broke.
    pub fn parse(path: &str, query: Option<&str>) -> Result<Self, ApiError> {
        let refuse = |rule| Err(ApiError::NonCanonicalPath(rule));
        let Some(rest) = path.strip_prefix(PREFIX) else {
            return refuse("the path must start with /v1/");
        };
        let segments: Vec<&str> = rest.split('/').collect();
        for (i, segment) in segments.iter().enumerate() {
            if segment.is_empty() {
                return refuse("the path has an empty segment (`//` or a trailing `/`)");
            }
            if matches!(*segment, "." | "..") {
                return refuse("the path has a `.` or `..` segment");
            }
            if !segment.bytes().all(is_unreserved) {
                return refuse(
                    "the path may only hold letters, digits, `-`, `.`, `_` and `~` between its \
                     slashes: no percent-escapes, `\\` or `;`",
                );
            }
            let names_project = i > 0 && segments[i - 1] == PROJECTS;
            if *segment == PROJECTS && i + 1 == segments.len() {
                return refuse("`projects` must be followed by a project id");
            }
            if *segment != PROJECTS && !names_project && mentions_project(segment.bytes()) {
                return refuse("a path segment naming projects must be exactly `projects`");
            }
        }
        if let Some(query) = query {
            if query_names_a_project(query) {
                return refuse(
                    "the query must not name a project: the project is the key's own, sent to \
                     the origin as X-LumiqTrace-Project-Id",
                );
            }
        }
        let target = match query {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        };
        Ok(Self {
            target,
            path_len: path.len(),
        })
    }

    /// The path, starting `/v1/`.
    pub fn path(&self) -> &str {
        &self.target[..self.path_len]
    }

    /// The query without its `?`, if the request had one.
    pub fn query(&self) -> Option<&str> {
        self.target.get(self.path_len + 1..)
    }

    /// The path and query together: what the forward appends to `INGEST_ORIGIN`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The project ids the path names: the segment after each `projects` segment.
    pub fn named_projects(&self) -> impl Iterator<Item = &str> {
        let segments = self.path()[PREFIX.len()..].split('/');
        let next = segments.clone().skip(1);
        segments
            .zip(next)
            .filter(|(segment, _)| *segment == PROJECTS)
            .map(|(_, id)| id)
    }
}

/// RFC 3986 section 2.3 unreserved characters.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Whether the letters and digits of `text`, lowercased, contain `project`.
fn mentions_project(text: impl Iterator<Item = u8>) -> bool {
    let folded: Vec<u8> = text
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| b.to_ascii_lowercase())
        .collect();
    folded.windows(7).any(|w| w == b"project")
}

/// Whether any parameter name of `query`, percent-decoded until nothing more decodes (so a
/// double-encoded `%2526` counts as `&` too), mentions `project` (see [`mentions_project`]).
fn query_names_a_project(query: &str) -> bool {
    let mut decoded = query.as_bytes().to_vec();
    loop {
        let again: Vec<u8> = percent_encoding::percent_decode(&decoded).collect();
        if again == decoded {
            break;
        }
        decoded = again;
    }
    decoded.split(|&b| b == b'&' || b == b';').any(|pair| {
        let name = pair.split(|&b| b == b'=').next().unwrap_or_default();
        mentions_project(name.iter().copied())
    })
}

#[cfg(test)]
mod tests;
