//! Every refusal the service can give, and its one mapping to HTTP status, code and JSON body.
//! 5xx bodies are generic; their details go only to the log.

use crate::record::KeyStatus;
use crate::repo::RepoError;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing API key: send `Authorization: Bearer lqt_…`")]
    MissingKey,
    #[error("malformed API key: expected `Authorization: Bearer lqt_` followed by 64 lowercase hex characters")]
    MalformedKey,
    #[error("unknown API key")]
    InvalidKey,
    #[error("this API key has been revoked")]
    KeyRevoked,
    /// A rotated key after its grace period, or a key past its `expires_at`: one refusal.
    #[error("this API key has expired: its expiry date passed, or it was rotated and its grace period has ended")]
    KeyExpired,
    #[error("this API key belongs to another project")]
    ProjectMismatch,
    /// An ingest path or query outside its one canonical spelling (see `forward::CanonicalPath`).
    #[error("the request path or query is not in canonical form: {0}")]
    NonCanonicalPath(&'static str),
    /// An admin request without an `Authorization` header.
    #[error("admin routes need `Authorization: Bearer <ADMIN_TOKEN>`")]
    AdminMissingToken,
    /// An admin request whose `Authorization` is not `Bearer <ADMIN_TOKEN>`.
    #[error("admin routes need `Authorization: Bearer <ADMIN_TOKEN>`")]
    AdminUnauthorized,
    /// The deployment's `ADMIN_TOKEN` is unset or too short (the reason, for the log only): the
    /// caller gets what a wrong token gets, so it learns nothing about the configuration.
    #[error("admin routes need `Authorization: Bearer <ADMIN_TOKEN>`")]
    AdminDisabled(&'static str),
    /// The caller sent exactly the configured `ADMIN_TOKEN`, which is too short to be accepted.
    #[error("this deployment's ADMIN_TOKEN is shorter than {} characters, so the admin API refuses it; make a new one with `openssl rand -hex 32` and set it (`npx wrangler secret put ADMIN_TOKEN`; locally ADMIN_TOKEN=… in .dev.vars)", crate::api::MIN_ADMIN_TOKEN_CHARS)]
    AdminTokenTooShort,
    /// Too many failed admin sign-ins from this client (429 with `Retry-After`, in seconds).
    #[error("too many failed admin sign-ins from this client; try again in {0} seconds")]
    TooManyAttempts(u32),
    #[error("no such route")]
    NotFound,
    #[error("method not allowed on this route; allowed: {0}")]
    MethodNotAllowed(&'static str),
    #[error("no project with this id")]
    ProjectNotFound,
    #[error("no key with this id")]
    KeyNotFound,
    #[error("a project with this id already exists")]
    ProjectExists,
    #[error("no organization with this id")]
    OrgNotFound,
    #[error("an organization with this id already exists")]
    OrgExists,
    #[error("organization id must match ^[a-z0-9][a-z0-9-]{{0,62}}$")]
    InvalidOrgId,
    #[error("no admin token with this id")]
    AdminTokenNotFound,
    #[error("only active keys can be rotated; this key is {0}")]
    KeyNotRotatable(&'static str),
    #[error("the key changed concurrently; read it again and retry")]
    Conflict,
    #[error("name must be 1 to 64 printable characters")]
    InvalidName,
    #[error("project id must match ^[a-z0-9][a-z0-9-]{{0,62}}$")]
    InvalidProjectId,
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("request body has an unknown field: {0}")]
    UnknownField(String),
    #[error("request body does not match the schema: {0}")]
    InvalidBody(String),
    #[error("request body must be sent with `Content-Type: application/json`")]
    UnsupportedContentType,
    #[error("request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// A leak report over 1 MiB or 1,000 entries (413): nothing was revoked.
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("source must be 1 to 200 characters, none of them control characters")]
    InvalidSource,
    #[error("missing Github-Public-Key-Identifier or Github-Public-Key-Signature header")]
    MissingSignature,
    #[error("Github-Public-Key-Identifier names no key in GitHub's public-keys document")]
    UnknownSigningKey,
    #[error("Github-Public-Key-Signature does not verify for this body")]
    InvalidSignature,
    /// GitHub's public keys could not be fetched or used (503: GitHub retries).
    #[error("GitHub's public keys are unavailable")]
    SigningKeysUnavailable(String),
    /// A leak report with more live keys than one request may revoke (503: send it again).
    #[error("{0}")]
    ReportIncomplete(String),
    #[error("the ingest origin could not be reached")]
    UpstreamUnavailable(String),
    #[error("the service is temporarily unavailable")]
    Unavailable(#[source] RepoError),
    #[error("internal error")]
    Internal(String),
    /// `expires_at` is not an RFC 3339 date-time from 1970 on.
    #[error("expires_at must be an RFC 3339 date-time, e.g. 2027-01-31T00:00:00Z")]
    InvalidExpiresAt,
    #[error("environment must be development, staging, production, or a label of 1 to 32 characters a-z, 0-9 and -, starting with a letter or digit")]
    InvalidEnvironment,
    #[error("rotation_period_days must be a whole number from 1 to 3650, or null")]
    InvalidRotationPeriod,
    /// A query parameter the route knows, with a value it does not take.
    #[error("invalid query parameter: {0}")]
    InvalidQuery(&'static str),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        use ApiError::*;
        match self {
            MissingKey | MalformedKey | InvalidKey | KeyRevoked | KeyExpired
            | AdminMissingToken | AdminUnauthorized | AdminDisabled(_) | MissingSignature
            | UnknownSigningKey | InvalidSignature => 401,
            PayloadTooLarge(_) => 413,
            SigningKeysUnavailable(_) | ReportIncomplete(_) => 503,
            ProjectMismatch | AdminTokenTooShort => 403,
            TooManyAttempts(_) => 429,
            NotFound | ProjectNotFound | KeyNotFound | OrgNotFound | AdminTokenNotFound => 404,
            MethodNotAllowed(_) => 405,
            ProjectExists | OrgExists | KeyNotRotatable(_) | Conflict => 409,
            InvalidName
            | InvalidProjectId
            | InvalidOrgId
            | InvalidJson(_)
            | UnknownField(_)
            | InvalidBody(_)
            | UnsupportedContentType
            | BodyTooLarge(_)
            | InvalidSource
            | NonCanonicalPath(_)
            | InvalidExpiresAt
            | InvalidEnvironment
            | InvalidRotationPeriod
            | InvalidQuery(_) => 400,
            Internal(_) => 500,
            UpstreamUnavailable(_) => 502,
            Unavailable(_) => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            MissingKey => "missing_key",
            MalformedKey => "malformed_key",
            InvalidKey => "invalid_key",
            KeyRevoked => "key_revoked",
            KeyExpired => "key_expired",
            ProjectMismatch => "project_mismatch",
            NonCanonicalPath(_) => "non_canonical_path",
            AdminMissingToken | AdminUnauthorized | AdminDisabled(_) => "admin_unauthorized",
            AdminTokenTooShort => "admin_token_too_short",
            TooManyAttempts(_) => "too_many_attempts",
            NotFound => "not_found",
            MethodNotAllowed(_) => "method_not_allowed",
            ProjectNotFound => "project_not_found",
            KeyNotFound => "key_not_found",
            ProjectExists => "project_exists",
            OrgNotFound => "org_not_found",
            OrgExists => "org_exists",
            InvalidOrgId => "invalid_org_id",
            AdminTokenNotFound => "admin_token_not_found",
            KeyNotRotatable(_) => "key_not_rotatable",
            Conflict => "conflict",
            InvalidName => "invalid_name",
            InvalidProjectId => "invalid_project_id",
            InvalidJson(_) => "invalid_json",
            UnknownField(_) => "unknown_field",
            InvalidBody(_) => "invalid_body",
            UnsupportedContentType => "unsupported_content_type",
            BodyTooLarge(_) => "body_too_large",
            PayloadTooLarge(_) => "payload_too_large",
            InvalidSource => "invalid_source",
            MissingSignature => "missing_signature",
            UnknownSigningKey => "unknown_signing_key",
            InvalidSignature => "invalid_signature",
            SigningKeysUnavailable(_) => "unavailable",
            ReportIncomplete(_) => "report_incomplete",
            UpstreamUnavailable(_) => "upstream_unavailable",
            Unavailable(_) => "unavailable",
            Internal(_) => "internal",
            InvalidExpiresAt => "invalid_expires_at",
            InvalidEnvironment => "invalid_environment",
            InvalidRotationPeriod => "invalid_rotation_period",
            InvalidQuery(_) => "invalid_query",
        }
    }

    /// Every [`ApiError::code`], each once, in the order of the variants: the values the
    /// OpenAPI document lists for `error.code`.
    pub fn codes() -> Vec<&'static str> {
        let mut codes: Vec<&'static str> = Vec::new();
        for code in Self::one_of_each().iter().map(ApiError::code) {
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        codes
    }

    /// One value of each variant.
    fn one_of_each() -> Vec<ApiError> {
        use ApiError::*;
        let all = vec![
            MissingKey,
            MalformedKey,
            InvalidKey,
            KeyRevoked,
            KeyExpired,
            ProjectMismatch,
            NonCanonicalPath(""),
            AdminMissingToken,
            AdminUnauthorized,
            AdminDisabled(""),
            AdminTokenTooShort,
            TooManyAttempts(0),
            NotFound,
            MethodNotAllowed(""),
            ProjectNotFound,
            KeyNotFound,
            ProjectExists,
            OrgNotFound,
            OrgExists,
            InvalidOrgId,
            AdminTokenNotFound,
            KeyNotRotatable(""),
            Conflict,
            InvalidName,
            InvalidProjectId,
            InvalidJson(String::new()),
            UnknownField(String::new()),
            InvalidBody(String::new()),
            UnsupportedContentType,
            BodyTooLarge(0),
            PayloadTooLarge(String::new()),
            InvalidSource,
            MissingSignature,
            UnknownSigningKey,
            InvalidSignature,
            SigningKeysUnavailable(String::new()),
            ReportIncomplete(String::new()),
            UpstreamUnavailable(String::new()),
            Unavailable(RepoError::Store(crate::store::StoreError(String::new()))),
            Internal(String::new()),
            InvalidExpiresAt,
            InvalidEnvironment,
            InvalidRotationPeriod,
            InvalidQuery(""),
        ];
        // No wildcard: a new variant does not compile until it is listed here and above.
        for e in &all {
            match e {
                MissingKey
                | MalformedKey
                | InvalidKey
                | KeyRevoked
                | KeyExpired
                | ProjectMismatch
                | NonCanonicalPath(_)
                | AdminMissingToken
                | AdminUnauthorized
                | AdminDisabled(_)
                | AdminTokenTooShort
                | TooManyAttempts(_)
                | NotFound
                | MethodNotAllowed(_)
                | ProjectNotFound
                | KeyNotFound
                | ProjectExists
                | OrgNotFound
                | OrgExists
                | InvalidOrgId
                | AdminTokenNotFound
                | KeyNotRotatable(_)
                | Conflict
                | InvalidName
                | InvalidProjectId
                | InvalidJson(_)
                | UnknownField(_)
                | InvalidBody(_)
                | UnsupportedContentType
                | BodyTooLarge(_)
                | PayloadTooLarge(_)
                | InvalidSource
                | MissingSignature
                | UnknownSigningKey
                | InvalidSignature
                | SigningKeysUnavailable(_)
                | ReportIncomplete(_)
                | UpstreamUnavailable(_)
                | Unavailable(_)
                | Internal(_)
                | InvalidExpiresAt
                | InvalidEnvironment
                | InvalidRotationPeriod
                | InvalidQuery(_) => {}
            }
        }
        all
    }

    /// The `Allow` header of a 405.
    pub fn allow(&self) -> Option<&'static str> {
        match self {
            ApiError::MethodNotAllowed(allow) => Some(allow),
            _ => None,
        }
    }

    /// The `WWW-Authenticate` challenge of a 401 (RFC 9110 §11.6.1: every 401 carries one),
    /// one fixed value per variant. Bearer routes follow RFC 6750 §3: a request that sent no
    /// `Authorization` gets the bare challenge (§3.1: no error code when the request lacks any
    /// authentication information); one that sent credentials that are not a working key or
    /// admin token, in whatever scheme, gets `error="invalid_token"`. Ingest and admin differ
    /// only in their realm. GitHub's route authenticates by signature, not by a bearer token:
    /// its refusals carry the bare ingest challenge.
    pub fn www_authenticate(&self) -> Option<&'static str> {
        use ApiError::*;
        match self {
            MissingKey | MissingSignature | UnknownSigningKey | InvalidSignature => {
                Some(r#"Bearer realm="lumiqtrace""#)
            }
            MalformedKey | InvalidKey | KeyRevoked | KeyExpired => {
                Some(r#"Bearer realm="lumiqtrace", error="invalid_token""#)
            }
            AdminMissingToken => Some(r#"Bearer realm="lumiqtrace-admin""#),
            AdminUnauthorized | AdminDisabled(_) => {
                Some(r#"Bearer realm="lumiqtrace-admin", error="invalid_token""#)
            }
            _ => None,
        }
    }

    /// The `Retry-After` header of a 429, in seconds.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            ApiError::TooManyAttempts(seconds) => Some(*seconds),
            _ => None,
        }
    }

    /// `{"error": {"code", "message"}}`. Server-side failures say nothing about their cause.
    pub fn body(&self) -> String {
        let message = match self {
            ApiError::Unavailable(_)
            | ApiError::Internal(_)
            | ApiError::SigningKeysUnavailable(_) => {
                "the service could not complete this request; try again".to_owned()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: &message,
            },
        };
        // Two strings: nothing serde_json could refuse, but no unwrap on the answer path.
        serde_json::to_string(&body).unwrap_or_else(|_| {
            r#"{"error":{"code":"internal","message":"internal error"}}"#.to_owned()
        })
    }

    /// What the operator's log gets for server-side failures and a misconfigured `ADMIN_TOKEN`
    /// (never a key or a token: none reaches here).
    pub fn log_detail(&self) -> Option<String> {
        match self {
            ApiError::Unavailable(e) => Some(format!("{}: {e}", self.code())),
            ApiError::AdminDisabled(reason) => Some(format!("admin API refused: {reason}")),
            ApiError::Internal(e)
            | ApiError::UpstreamUnavailable(e)
            | ApiError::SigningKeysUnavailable(e) => Some(format!("{}: {e}", self.code())),
            _ => None,
        }
    }
}

/// `{"error": {"code", "message"}}`: every refusal's body.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Error))]
#[serde(deny_unknown_fields)]
pub(crate) struct ErrorBody<'a> {
    #[cfg_attr(feature = "openapi", schema(inline))]
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub(crate) struct ErrorDetail<'a> {
    /// One of [`ApiError::codes`].
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::error_code))]
    code: &'static str,
    message: &'a str,
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        ApiError::Unavailable(e)
    }
}

impl From<crate::record::NotRotatable> for ApiError {
    fn from(e: crate::record::NotRotatable) -> Self {
        ApiError::KeyNotRotatable(match e.0 {
            KeyStatus::Active => "active",
            KeyStatus::Grace => "already rotating",
            KeyStatus::Expired => "expired",
            KeyStatus::Revoked => "revoked",
        })
    }
}

impl From<crate::signature::SignatureError> for ApiError {
    fn from(e: crate::signature::SignatureError) -> Self {
        use crate::signature::SignatureError::*;
        match e {
            Missing => ApiError::MissingSignature,
            UnknownKey => ApiError::UnknownSigningKey,
            Invalid => ApiError::InvalidSignature,
            KeysUnavailable(detail) => ApiError::SigningKeysUnavailable(detail),
        }
    }
}

impl From<crate::leaks::LeakError> for ApiError {
    fn from(e: crate::leaks::LeakError) -> Self {
        use crate::leaks::LeakError;
        match e {
            LeakError::BodyTooLarge | LeakError::TooManyEntries(_) => {
                ApiError::PayloadTooLarge(e.to_string())
            }
            LeakError::InvalidJson(detail) => ApiError::InvalidJson(detail),
            LeakError::InvalidBody(detail) => ApiError::InvalidBody(detail),
            LeakError::UnknownField => ApiError::UnknownField(e.to_string()),
            LeakError::InvalidSource => ApiError::InvalidSource,
            LeakError::Signature(e) => e.into(),
            LeakError::Incomplete { .. } => ApiError::ReportIncomplete(e.to_string()),
            LeakError::Store(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn storage_failure_is_503_with_a_generic_body() {
        let err = ApiError::from(RepoError::Store(StoreError("kv binding KEYS: boom".into())));
        assert_eq!(err.status(), 503);
        assert!(!err.body().contains("boom"));
        assert!(err.log_detail().unwrap().contains("boom"));
    }

    #[test]
    fn leak_report_refusals_map_to_413_401_400_and_503() {
        use crate::leaks::LeakError;
        use crate::signature::SignatureError;
        let cases = [
            (LeakError::BodyTooLarge, 413, "payload_too_large"),
            (LeakError::TooManyEntries(1001), 413, "payload_too_large"),
            (LeakError::InvalidSource, 400, "invalid_source"),
            (LeakError::InvalidBody("x".into()), 400, "invalid_body"),
            (SignatureError::Missing.into(), 401, "missing_signature"),
            (
                SignatureError::UnknownKey.into(),
                401,
                "unknown_signing_key",
            ),
            (SignatureError::Invalid.into(), 401, "invalid_signature"),
            (
                LeakError::Incomplete {
                    revoked: 442,
                    pending: 558,
                },
                503,
                "report_incomplete",
            ),
        ];
        for (leak, status, code) in cases {
            let err = ApiError::from(leak);
            assert_eq!((err.status(), err.code()), (status, code));
        }
        let down = ApiError::from(LeakError::from(SignatureError::KeysUnavailable(
            "dns".into(),
        )));
        assert_eq!((down.status(), down.code()), (503, "unavailable"));
        assert!(!down.body().contains("dns") && down.log_detail().unwrap().contains("dns"));
        let more = ApiError::from(LeakError::Incomplete {
            revoked: 442,
            pending: 558,
        });
        assert!(more.body().contains("send the same report again"));
    }

    #[test]
    fn every_401_carries_a_challenge_and_only_sent_credentials_name_an_error() {
        use crate::signature::SignatureError;
        let bare = [
            ApiError::MissingKey,
            ApiError::AdminMissingToken,
            SignatureError::Missing.into(),
            SignatureError::UnknownKey.into(),
            SignatureError::Invalid.into(),
        ];
        let invalid = [
            ApiError::MalformedKey,
            ApiError::InvalidKey,
            ApiError::KeyRevoked,
            ApiError::KeyExpired,
            ApiError::AdminUnauthorized,
            ApiError::AdminDisabled("ADMIN_TOKEN is not set"),
        ];
        let cases = (bare.iter().map(|e| (e, false))).chain(invalid.iter().map(|e| (e, true)));
        for (err, named) in cases {
            assert_eq!(err.status(), 401, "{err:?}");
            let challenge = err.www_authenticate().unwrap();
            assert!(
                challenge.starts_with("Bearer realm=\"lumiqtrace"),
                "{challenge}"
            );
            let suffix = challenge.ends_with(r#", error="invalid_token""#);
            assert_eq!(suffix, named, "{err:?}: {challenge}");
        }
        let admin = ApiError::AdminUnauthorized.www_authenticate().unwrap();
        assert!(admin.contains("lumiqtrace-admin"));
        assert_eq!(ApiError::ProjectMismatch.www_authenticate(), None);
        assert_eq!(ApiError::NotFound.www_authenticate(), None);
    }

    #[test]
    fn refusals_are_json_with_code_and_message() {
        assert_eq!(
            ApiError::MethodNotAllowed("GET").body(),
            r#"{"error":{"code":"method_not_allowed","message":"method not allowed on this route; allowed: GET"}}"#
        );
        let body: serde_json::Value = serde_json::from_str(&ApiError::KeyRevoked.body()).unwrap();
        assert_eq!(body["error"]["code"], "key_revoked");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"));
        assert_eq!(ApiError::KeyRevoked.status(), 401);
    }
}
