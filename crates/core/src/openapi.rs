//! The OpenAPI schemas of every request body and answer the API has (feature `openapi`, host
//! only: `crates/openapi` assembles the document, and the wasm build never compiles utoipa).
//! The types derive theirs; the functions here are the field schemas a derive cannot read off
//! a Rust type: patterns and bounds, built from the constants the code itself checks against.
//!
//! Answer types that are only serialized still carry `#[serde(deny_unknown_fields)]`: serde
//! ignores it when serializing, utoipa reads it as `additionalProperties: false`, so the schema
//! says the answer has no other field. A type's doc comment is its schema's description.

use crate::api::{
    Accepted, IssuedAdminToken, IssuedKey, NewAdminToken, NewKey, NewOrg, NewProject, NoInput,
    ProjectSettings, RotateInput, RotatedKey,
};
use crate::error::{ApiError, ErrorBody};
use crate::key::{DISPLAY_HEX_LEN, KEY_PREFIX, ORG_TOKEN_PREFIX, SECRET_HEX_LEN};
use crate::leaks::MAX_SOURCE_CHARS;
use crate::leaks::{AdminReport, Feedback, GitHubMatch, MAX_REASON_BYTES, MAX_REPORT_ENTRIES};
use crate::record::{AdminTokenView, AuditView, Grant, KeyStatus, KeyView, OrgView, ProjectView};
use crate::record::{ENVIRONMENT_PATTERN, MAX_NAME_CHARS, PROJECT_ID_PATTERN};
use crate::usage::{DayView, Refusals, UsageView};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder};
use utoipa::openapi::schema::{SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// The `components.schemas` of the document: `(name, schema)`, in a fixed order.
pub fn components() -> Vec<(String, RefOr<Schema>)> {
    fn named<T: ToSchema>() -> (String, RefOr<Schema>) {
        (T::name().into_owned(), T::schema())
    }
    const FEEDBACK: &str =
        "GitHub's secret-scanning feedback: one entry per distinct token reported, never the token";
    let leak_feedback = (ArrayBuilder::new().items(Feedback::schema())).description(Some(FEEDBACK));
    let github_report = ArrayBuilder::new()
        .items(GitHubMatch::schema())
        .max_items(Some(MAX_REPORT_ENTRIES));
    vec![
        named::<ErrorBody>(),
        named::<Grant>(),
        named::<Accepted>(),
        named::<ProjectView>(),
        named::<NewProject>(),
        named::<NewKey>(),
        named::<KeyView>(),
        named::<IssuedKey>(),
        named::<RotatedKey>(),
        named::<AuditView>(),
        ("LeakFeedback".into(), leak_feedback.into()),
        ("GitHubReport".into(), github_report.into()),
        named::<AdminReport>(),
        named::<OrgView>(),
        named::<NewOrg>(),
        named::<AdminTokenView>(),
        named::<NewAdminToken>(),
        named::<IssuedAdminToken>(),
        named::<ProjectSettings>(),
        named::<RotateInput>(),
        named::<UsageView>(),
        named::<DayView>(),
        named::<Refusals>(),
    ]
}

/// The body of revoke: nothing, or `{}`.
pub fn empty_body() -> RefOr<Schema> {
    NoInput::schema()
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// An `enum` without a `type`: every value is of the type it shows.
fn one_of<I: IntoIterator<Item = V>, V: Into<serde_json::Value>>(values: I) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .enum_values(Some(values))
}

/// A key's environment label as stored ([`crate::record::normalize_environment`]), or `null`.
pub fn environment() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(ENVIRONMENT_PATTERN))
        .description(Some(
            "Where the key is used: `development`, `staging`, `production`, or a custom label",
        ))
}

/// An environment label as sent: what [`crate::record::normalize_environment`] accepts
/// (surrounding Unicode whitespace trimmed, ASCII letters lowercased), as a regular expression.
pub fn environment_input_pattern() -> String {
    let space = class_of(char::is_whitespace);
    format!("^[{space}]*[A-Za-z0-9][A-Za-z0-9-]{{0,31}}[{space}]*$")
}

/// An environment label in a request body ([`environment_input_pattern`]).
pub fn environment_input() -> ObjectBuilder {
    string()
        .pattern(Some(environment_input_pattern()))
        .description(Some(
            "`development`, `staging`, `production` or a custom label: surrounding whitespace is \
         trimmed and letters lowercased, then 1 to 32 of a-z, 0-9 and `-`, not starting with `-`",
        ))
}

/// A project id, as [`crate::record::is_valid_project_id`] accepts it.
pub fn project_id() -> ObjectBuilder {
    string().pattern(Some(PROJECT_ID_PATTERN))
}

/// A stored display name (a project's or a key's).
pub fn name() -> ObjectBuilder {
    string()
        .min_length(Some(1))
        .max_length(Some(MAX_NAME_CHARS))
}

/// A display name as sent: what [`crate::record::normalize_name`] accepts.
pub fn new_name() -> ObjectBuilder {
    trimmed_text(MAX_NAME_CHARS, "")
}

/// The admin leak report's `source`: what `leaks::parse_admin_report` accepts.
pub fn source() -> ObjectBuilder {
    let what =
        "Who found the keys, e.g. an incident or scanner name; shown as the revocation reason. ";
    trimmed_text(MAX_SOURCE_CHARS, what)
}

/// A string that, once `str::trim` drops its surrounding whitespace (Unicode `White_Space`),
/// is 1 to `max` characters, none of them a control character (`char::is_control`, Unicode
/// `Cc`). The character classes are read off those two functions.
fn trimmed_text(max: usize, what: &str) -> ObjectBuilder {
    let space = class_of(char::is_whitespace);
    let control = class_of(char::is_control);
    let end = format!("[^{space}{control}]");
    let pattern = format!(
        "^[{space}]*{end}(?:[^{control}]{{0,{inner}}}{end})?[{space}]*$",
        inner = max - 2
    );
    let description = format!(
        "{what}Surrounding whitespace (Unicode White_Space) is trimmed; what is left is 1 to \
         {max} characters, none of them a control character (Unicode Cc)"
    );
    string()
        .min_length(Some(1))
        .pattern(Some(pattern))
        .description(Some(description))
}

/// The characters `pick` accepts, as the inside of a regular expression's `[...]`, in ranges.
fn class_of(pick: fn(char) -> bool) -> String {
    let mut ranges: Vec<(char, char)> = Vec::new();
    for c in (char::MIN..=char::MAX).filter(|&c| pick(c)) {
        match ranges.last_mut() {
            Some((_, last)) if u32::from(*last) + 1 == u32::from(c) => *last = c,
            _ => ranges.push((c, c)),
        }
    }
    let escape = |c: char| format!("\\u{:04x}", u32::from(c));
    (ranges.iter())
        .map(|&(first, last)| match first == last {
            true => escape(first),
            false => format!("{}-{}", escape(first), escape(last)),
        })
        .collect()
}

/// The status of a key that works: [`crate::record::authorize`] grants only these.
pub fn granted_status() -> ObjectBuilder {
    let statuses = [KeyStatus::Active, KeyStatus::Grace];
    one_of(statuses.map(|s| serde_json::to_value(s).unwrap_or_default()))
}

/// A key's display prefix ([`crate::key::ApiKey::display_prefix`]).
pub fn key_prefix() -> ObjectBuilder {
    string().pattern(Some(format!("^{KEY_PREFIX}[0-9a-f]{{{DISPLAY_HEX_LEN}}}$")))
}

/// A full key ([`crate::key::is_well_formed`]).
pub fn full_key() -> ObjectBuilder {
    string()
        .pattern(Some(format!("^{KEY_PREFIX}[0-9a-f]{{{SECRET_HEX_LEN}}}$")))
        .description(Some("The full key: shown in this response only"))
}

/// An admin token's display prefix ([`crate::key::OrgAdminToken::display_prefix`]).
pub fn admin_token_prefix() -> ObjectBuilder {
    string().pattern(Some(format!(
        "^{ORG_TOKEN_PREFIX}[0-9a-f]{{{DISPLAY_HEX_LEN}}}$"
    )))
}

/// A full organization admin token ([`crate::key::OrgAdminToken::parse`]).
pub fn full_admin_token() -> ObjectBuilder {
    string()
        .pattern(Some(format!(
            "^{ORG_TOKEN_PREFIX}[0-9a-f]{{{SECRET_HEX_LEN}}}$"
        )))
        .description(Some("The full admin token: shown in this response only"))
}

/// `revoked_reason`: bounded by [`MAX_REASON_BYTES`] (bytes once JSON-escaped, so never more
/// characters than that).
pub fn revoked_reason() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(MAX_REASON_BYTES))
        .description(Some(
            "Why it was revoked, when known: a leak report names who found it and where",
        ))
}

/// A token's SHA-256, hex (a [`crate::key::KeyHash`]).
pub fn token_hash() -> ObjectBuilder {
    string()
        .pattern(Some("^[0-9a-f]{64}$"))
        .description(Some("SHA-256 of the token, hex"))
}

/// The admin leak report's `keys`.
pub fn reported_keys() -> ArrayBuilder {
    ArrayBuilder::new()
        .items(string())
        .max_items(Some(MAX_REPORT_ENTRIES))
}

/// `"accepted": true`.
pub fn always_true() -> ObjectBuilder {
    one_of([true])
}

/// `error.code`: one of [`ApiError::codes`].
pub fn error_code() -> ObjectBuilder {
    string().enum_values(Some(ApiError::codes()))
}
