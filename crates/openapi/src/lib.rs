//! The OpenAPI document of the worker's HTTP API (`public/openapi.json`), host only: the schemas
//! of every body and answer come from the core's own types (`lumiqtrace_core::openapi`, derived
//! with utoipa); the paths, which the core answers from one router with no handler per route,
//! are declared here. `cargo run -p lumiqtrace-openapi` writes the file; this crate's test fails
//! while the committed file and the types disagree.
//!
//! The paths are JSON built by the small helpers below rather than utoipa's path model, which
//! has no `required` on a response header and no `const`; both are in the contract.

use lumiqtrace_core::api::GITHUB_ROUTE;
use lumiqtrace_core::error::ApiError;
use lumiqtrace_core::forward::FORWARDED_METHODS;
use lumiqtrace_core::openapi;
use lumiqtrace_core::record::PROJECT_ID_PATTERN;
use serde_json::{json, Map, Value};
use utoipa::openapi::{RefOr, Schema};

/// Where the document is written, from the workspace root.
pub const OUTPUT: &str = "public/openapi.json";

/// The document as JSON.
pub fn document() -> Value {
    let mut schemas = Map::new();
    for (name, schema) in openapi::components() {
        schemas.insert(name, to_json(schema));
    }
    let codes = schemas
        .get_mut("Error")
        .and_then(|e| e.pointer_mut("/properties/error/properties/code/enum"))
        .expect("the Error schema lists its codes");
    *codes = error_codes().into();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "LumiqTrace edge key authorizer",
            "version": "1.0.0",
            "description": "Ingest routes authenticate LumiqTrace SDK traffic with project API keys (`lqt_` + 64 lowercase hex). Admin routes create, list, rotate and revoke keys. Leaked keys revoke themselves: GitHub's secret-scanning partner endpoint and an admin report route. Every error is `{\"error\": {\"code\", \"message\"}}`."
        },
        "servers": [{ "url": "/" }],
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A project API key: `lqt_` + 64 lowercase hex"
                },
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The worker's ADMIN_TOKEN secret (the operator: every organization), at least 32 characters (`openssl rand -hex 32`); or an organization admin token (`lqta_` + 64 lowercase hex), with which every admin route acts inside its organization only and anything outside it answers 404"
                }
            },
            "schemas": schemas
        },
        "paths": paths()
    })
}

/// [`document`] as the file holds it: pretty JSON, keys sorted, a final newline.
pub fn render() -> String {
    let text = serde_json::to_string_pretty(&document()).expect("the document is JSON");
    text + "\n"
}

fn paths() -> Value {
    let verify = op("Check an API key", "apiKey")
        .param(project_header())
        .answer("200", "The key works", schema("Grant"))
        .merge(ingest_refusals());
    let ingest = op(
        "Ingest trace data (forwarded to INGEST_ORIGIN, or 202 without one)",
        "apiKey",
    )
    .describe(FORWARDED)
    .param(project_header())
    .body(false, "*/*", json!({}))
    .merge(ingest_answers());
    let project_ingest = op(
        "Ingest into a named project: the key's project must match",
        "apiKey",
    )
    .describe(FORWARDED)
    .param(json!({
        "name": "project_id",
        "in": "path",
        "required": true,
        "schema": { "type": "string", "pattern": PROJECT_ID_PATTERN },
        "description": "The key's own project (any other is `403 project_mismatch`). The origin must not rely on it: it gets the project as `X-LumiqTrace-Project-Id`."
    }))
    .body(false, "*/*", json!({}))
    .merge(ingest_answers());

    let list_projects = admin_op("List projects (an organization admin: its organization's)")
        .param(org_filter())
        .answer("200", "Projects", listing("projects", "Project"))
        .error("400", "`invalid_org_id`")
        .error("404", "`org_not_found`");
    let create_project = admin_op("Create a project")
        .body(true, JSON, schema("NewProject"))
        .answer("201", "Created", schema("Project"))
        .error("400", "Bad body, id, name or `invalid_rotation_period`")
        .error(
            "404",
            "`org_id` names no organization this caller sees (`org_not_found`)",
        )
        .error("409", "`project_exists`");
    let create_key = admin_op("Create a key: the full key is in this response only")
        .param(path_param("project_id"))
        .body(true, JSON, schema("NewKey"))
        .answer("201", "Created", schema("IssuedKey"))
        .error(
            "400",
            "Bad body, name, `invalid_expires_at` or `invalid_environment`",
        )
        .error("404", "`project_not_found`");
    let update_project = admin_op("Set a project's settings: its rotation policy")
        .param(path_param("project_id"))
        .body(true, JSON, schema("ProjectSettings"))
        .answer("200", "Updated", schema("Project"))
        .error("400", "Bad body or period (`invalid_rotation_period`)")
        .error("404", "`project_not_found`");
    let list_keys = admin_op("List keys, newest first")
        .param(project_filter())
        .param(json!({
            "name": "environment",
            "in": "query",
            "required": false,
            "schema": { "type": "string", "pattern": openapi::environment_input_pattern() },
            "description": "Only keys with this environment label (compared lowercased)"
        }))
        .param(json!({
            "name": "rotation_due",
            "in": "query",
            "required": false,
            "schema": { "enum": ["true", "false"] },
            "description": "Only keys due (`true`) or not due (`false`) for rotation under their project's `rotation_period_days`"
        }))
        .answer("200", "Keys", listing("keys", "KeyView"))
        .error("400", "`invalid_project_id`, `invalid_environment`, `invalid_query`")
        .error("404", "`project_not_found`");
    let report_leaked = Op::new("Report leaked keys (internal scanners, support, incident response)", "adminToken")
        .describe("Same classification, revocation and answer as the GitHub endpoint; `source` becomes the revocation reason, as given. A key named twice is one entry of the answer and one revocation.")
        .body(true, JSON, schema("LeakReport"))
        .answer("200", "Every distinct token classified; keys that still worked are now revoked", schema("LeakFeedback"))
        .error("400", "Bad body or source (`invalid_json`, `invalid_body`, `unknown_field`, `invalid_source`, `unsupported_content_type`)")
        .merge(admin_refusals())
        .error("413", "Body over 1 MiB or more than 1,000 keys (`payload_too_large`): nothing revoked")
        .error("503", "Storage unavailable (`unavailable`), or more live keys than one request may revoke (`report_incomplete`: send the same report again)");
    let get_key = admin_op("One key")
        .param(path_param("key_id"))
        .answer("200", "The key", schema("KeyView"))
        .error("404", "`key_not_found`");
    let usage = admin_op("A key's verifications per UTC day, the last 30 days (granted, and refused by code)")
        .describe("Counted by each isolate and reported every `USAGE_FLUSH_SECONDS` (default 20 s): a verification shows here within that interval plus one Durable Object request. Refusals that name no known key (`missing_key`, `malformed_key`, `invalid_key`) are not counted.")
        .param(path_param("key_id"))
        .answer("200", "30 days, oldest first", schema("UsageView"))
        .error("404", "`key_not_found`");
    let rotate = admin_op("Rotate: a new key now, the old one works until its grace ends")
        .param(path_param("key_id"))
        .body(false, JSON, schema("RotateInput"))
        .answer("201", "Rotated", schema("RotatedKey"))
        .error("400", "Bad body or `invalid_expires_at`")
        .error("404", "`key_not_found`")
        .error("409", "`key_not_rotatable`");
    let revoke = admin_op("Revoke at once (idempotent)")
        .param(path_param("key_id"))
        .body(false, JSON, to_json(openapi::empty_body()))
        .answer("200", "Revoked", schema("KeyView"))
        .error("400", "Bad body")
        .error("404", "`key_not_found`");
    let audit = admin_op("Audit events, newest first")
        .param(project_filter())
        .param(org_filter())
        .answer("200", "Events", listing("events", "AuditEvent"))
        .error("400", "`invalid_project_id`, `invalid_org_id`")
        .error("404", "The project or organization is not visible to this caller (`project_not_found`, `org_not_found`)");
    let list_orgs = admin_op(
        "Organizations, oldest first (an organization admin sees its own only)",
    )
    .answer("200", "Organizations", listing("orgs", "Organization"));
    let create_org =
        admin_op("Create an organization (operator only: 404 for an organization admin)")
            .body(true, JSON, schema("NewOrg"))
            .answer("201", "Created", schema("Organization"))
            .error(
                "400",
                "Bad body, id or name (`invalid_org_id`, `invalid_name`)",
            )
            .error("404", "Not the operator (`not_found`)")
            .error("409", "`org_exists`");
    let get_org = admin_op("One organization")
        .param(path_param("org_id"))
        .answer("200", "The organization", schema("Organization"))
        .error("404", "`org_not_found`");
    let create_token = admin_op("Create an organization admin token (operator only): the full token is in this response only")
        .param(path_param("org_id"))
        .body(true, JSON, schema("NewAdminToken"))
        .answer("201", "Created", schema("IssuedAdminToken"))
        .error("400", "Bad body or name")
        .error("404", "`org_not_found`, or not the operator (`not_found`)");
    let list_tokens = admin_op("An organization's admin tokens, newest first (operator only)")
        .param(path_param("org_id"))
        .answer("200", "Admin tokens", listing("admin_tokens", "AdminToken"))
        .error("404", "`org_not_found`, or not the operator (`not_found`)");
    let revoke_token = admin_op("Revoke an admin token at once (operator only; idempotent)")
        .param(path_param("admin_token_id"))
        .body(false, JSON, to_json(openapi::empty_body()))
        .answer("200", "Revoked", schema("AdminToken"))
        .error("400", "Bad body")
        .error(
            "404",
            "`admin_token_not_found`, or not the operator (`not_found`)",
        );

    json!({
        "/v1/auth/verify": { "get": verify.get(), "head": verify.head() },
        "/v1/ingest": forwarded(&ingest),
        "/v1/projects/{project_id}/ingest": forwarded(&project_ingest),
        GITHUB_ROUTE: { "post": github().0 },
        "/openapi.json": { "get": {
            "summary": "This document",
            "responses": { "200": answer("OpenAPI 3.1", json!({ "type": "object" })) }
        } },
        "/admin/v1/projects": {
            "get": list_projects.get(),
            "head": list_projects.head(),
            "post": create_project.0
        },
        "/admin/v1/projects/{project_id}": { "patch": update_project.0 },
        "/admin/v1/projects/{project_id}/keys": { "post": create_key.0 },
        "/admin/v1/keys": { "get": list_keys.get(), "head": list_keys.head() },
        "/admin/v1/keys/report-leaked": { "post": report_leaked.0 },
        "/admin/v1/keys/{key_id}": { "get": get_key.get(), "head": get_key.head() },
        "/admin/v1/keys/{key_id}/usage": { "get": usage.get(), "head": usage.head() },
        "/admin/v1/keys/{key_id}/rotate": { "post": rotate.0 },
        "/admin/v1/keys/{key_id}/revoke": { "post": revoke.0 },
        "/admin/v1/audit": { "get": audit.get(), "head": audit.head() },
        "/admin/v1/orgs": {
            "get": list_orgs.get(),
            "head": list_orgs.head(),
            "post": create_org.0
        },
        "/admin/v1/orgs/{org_id}": { "get": get_org.get(), "head": get_org.head() },
        "/admin/v1/orgs/{org_id}/admin-tokens": {
            "get": list_tokens.get(),
            "head": list_tokens.head(),
            "post": create_token.0
        },
        "/admin/v1/admin-tokens/{admin_token_id}/revoke": { "post": revoke_token.0 }
    })
}

const JSON: &str = "application/json";

const FORWARDED: &str = "Forwarded to `INGEST_ORIGIN` when it is set: the same method, body, and path and query exactly as received (accepted only in canonical form, see 400). Only these request headers are passed on: `Accept`, `Accept-Encoding`, `Content-Encoding`, `Content-Length`, `Content-Type`, `Idempotency-Key`, `traceparent`, `tracestate`, `User-Agent`; every other one, `Authorization` and any `X-LumiqTrace-*` the client sent included, is dropped, and the worker sets `X-LumiqTrace-Project-Id` and `X-LumiqTrace-Key-Id` from the key. The origin must take the project from `X-LumiqTrace-Project-Id`, never from the path or query. The origin's answer is passed back as it is (a redirect too: it is not followed), with `Cache-Control: no-store`.";

/// `POST /v1/secret-scanning/github`: authenticated by GitHub's signature, not a bearer token.
fn github() -> Op {
    Op(json!({
        "summary": "GitHub secret-scanning partner endpoint: revoke leaked keys",
        "description": "Tokens matching `lqt_[0-9a-f]{64}` that GitHub found in public code. Authenticated by GitHub's signature (ECDSA P-256 / SHA-256 over the raw body, key from `GITHUB_KEYS_URL`). A key that works (active or in grace) is revoked at once, with an audit event naming the URL (the first one, when GitHub lists the token in several places: each distinct token is one entry of the answer and one revocation): `true_positive`; a revoked or expired key: `true_positive`, unchanged; anything else: `false_positive`. Idempotent.",
        "parameters": [
            {
                "name": "Github-Public-Key-Identifier",
                "in": "header",
                "required": true,
                "schema": { "type": "string" }
            },
            {
                "name": "Github-Public-Key-Signature",
                "in": "header",
                "required": true,
                "schema": { "type": "string" },
                "description": "Base64 of the ASN.1 DER ECDSA signature over the raw body"
            }
        ],
        "responses": {}
    }))
    .body(true, JSON, schema("GitHubReport"))
        .answer(
            "200",
            "Every distinct token classified; keys that still worked are now revoked",
            schema("LeakFeedback"),
        )
        .error("400", "Not a JSON array of matches (`invalid_json`, `invalid_body`)")
        .error("401", "Missing headers, unknown key identifier or a signature that does not verify (`missing_signature`, `unknown_signing_key`, `invalid_signature`): nothing revoked, nothing looked up")
        .header("401", "WWW-Authenticate", json!({
            "description": "Always the bare challenge: this route is authenticated by GitHub's signature, not a bearer token",
            "required": true,
            "schema": { "const": "Bearer realm=\"lumiqtrace\"" }
        }))
        .error("405", "`method_not_allowed`")
        .header("405", "Allow", json!({
            "description": "The methods the route takes",
            "required": true,
            "schema": { "type": "string" }
        }))
        .error("413", "Body over 1 MiB or more than 1,000 entries (`payload_too_large`): nothing revoked")
        .error("503", "GitHub's public keys unavailable (`unavailable`), storage unavailable, or more live keys than one request may revoke (`report_incomplete`: the first ones are revoked; send the report again)")
}

/// Refusals every API-key route gives.
fn ingest_refusals() -> Op {
    Op(json!({ "responses": {} }))
        .error("400", "The path or query is not in its one canonical spelling (`non_canonical_path`): the path must start with `/v1/` and hold only non-empty segments of letters, digits, `-`, `.`, `_` and `~` (no percent-escapes, `\\`, `;`, `.` or `..` segments); a segment mentioning `project` must be exactly `projects`, followed by a project id; no query parameter name may mention `project` (after percent-decoding, in any case). Refused before anything is looked up or forwarded.")
        .error("401", "Missing, malformed, unknown, revoked or expired key")
        .header("401", "WWW-Authenticate", challenge(
            "lumiqtrace",
            "RFC 6750 §3: without an `Authorization` header (`missing_key`), the bare challenge; with a malformed, unknown, revoked or expired key, `error=\"invalid_token\"`",
        ))
        .error("403", "The request names another project (`project_mismatch`)")
        .error("503", "Storage unavailable: never a 2xx (`unavailable`)")
}

/// An ingest call's answers: 202 when there is no origin, or the refusals.
fn ingest_answers() -> Op {
    ingest_refusals()
        .answer(
            "202",
            "Accepted (no INGEST_ORIGIN configured)",
            schema("Accepted"),
        )
        .error(
            "405",
            "A method the worker does not forward (`method_not_allowed`)",
        )
        .header(
            "405",
            "Allow",
            json!({
                "description": "The methods an ingest call is forwarded with",
                "required": true,
                "schema": { "const": FORWARDED_METHODS }
            }),
        )
        .error("502", "Ingest origin unreachable (`upstream_unavailable`)")
}

/// An ingest route as every method in [`FORWARDED_METHODS`] reaches it: the same answers; a
/// body (optional) for those that carry one, none for `GET` and `HEAD`.
fn forwarded(ingest: &Op) -> Value {
    let mut ops = Map::new();
    for method in FORWARDED_METHODS.split(", ") {
        let op = match method {
            "GET" | "HEAD" => {
                let mut get = ingest.get();
                get.as_object_mut().map(|o| o.remove("requestBody"));
                let get = Op(get);
                if method == "GET" {
                    get.get()
                } else {
                    get.head()
                }
            }
            _ => ingest.get(),
        };
        ops.insert(method.to_lowercase(), op);
    }
    Value::Object(ops)
}

/// Refusals every admin route gives.
fn admin_refusals() -> Op {
    Op(json!({ "responses": {} }))
        .error("401", "Missing, wrong or revoked admin token (`admin_unauthorized`)")
        .header("401", "WWW-Authenticate", challenge(
            "lumiqtrace-admin",
            "RFC 6750 §3: without an `Authorization` header, the bare challenge; with credentials that are not the admin token, `error=\"invalid_token\"`",
        ))
        .error("403", "The caller sent this deployment's ADMIN_TOKEN, which is shorter than 32 characters and so refused on every admin route; the message says how to make a new one (`admin_token_too_short`)")
        .error("429", "Too many failed admin sign-ins from this client (`CF-Connecting-IP`); every admin call from it, the right token included, is refused until `Retry-After` seconds have passed (`too_many_attempts`)")
        .header("429", "Retry-After", json!({
            "description": "Seconds to wait",
            "schema": { "type": "string", "pattern": "^[0-9]+$" }
        }))
}

/// An admin operation with the refusals every admin route gives, storage's 503 included.
fn admin_op(summary: &str) -> Op {
    op(summary, "adminToken")
        .merge(admin_refusals())
        .error("503", "Storage unavailable, or an organization admin token that cannot be checked (`unavailable`)")
}

/// RFC 6750's two challenges of a realm: bare (no credentials), and `invalid_token`.
fn challenge(realm: &str, description: &str) -> Value {
    let bare = format!("Bearer realm=\"{realm}\"");
    let invalid = format!("{bare}, error=\"invalid_token\"");
    json!({ "description": description, "required": true, "schema": { "enum": [bare, invalid] } })
}

fn project_header() -> Value {
    json!({
        "name": "X-LumiqTrace-Project-Id",
        "in": "header",
        "required": false,
        "schema": { "type": "string", "pattern": PROJECT_ID_PATTERN }
    })
}

fn project_filter() -> Value {
    json!({
        "name": "project_id",
        "in": "query",
        "required": false,
        "schema": { "type": "string", "pattern": PROJECT_ID_PATTERN }
    })
}

fn org_filter() -> Value {
    json!({
        "name": "org_id",
        "in": "query",
        "required": false,
        "schema": { "type": "string", "pattern": PROJECT_ID_PATTERN }
    })
}

fn path_param(name: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } })
}

fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// `{"<field>": [<item>, ...]}`: how the admin API answers a list.
fn listing(field: &str, item: &str) -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": [field],
        "properties": { field: { "type": "array", "items": schema(item) } }
    })
}

fn answer(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { JSON: { "schema": schema } } })
}

fn to_json(schema: RefOr<Schema>) -> Value {
    serde_json::to_value(schema).expect("a schema is JSON")
}

fn op(summary: &str, security: &str) -> Op {
    Op::new(summary, security)
}

/// One operation, as JSON, built a response at a time.
struct Op(Value);

impl Op {
    fn new(summary: &str, security: &str) -> Self {
        Op(json!({ "summary": summary, "security": [{ security: [] }], "responses": {} }))
    }

    fn field(&mut self, name: &str) -> &mut Value {
        let object = self.0.as_object_mut().expect("an operation is an object");
        object.entry(name).or_insert(Value::Null)
    }

    fn describe(mut self, description: &str) -> Self {
        *self.field("description") = description.into();
        self
    }

    fn param(mut self, parameter: Value) -> Self {
        let params = self.field("parameters");
        match params.as_array_mut() {
            Some(list) => list.push(parameter),
            None => *params = json!([parameter]),
        }
        self
    }

    fn body(mut self, required: bool, media_type: &str, schema: Value) -> Self {
        *self.field("requestBody") =
            json!({ "required": required, "content": { media_type: { "schema": schema } } });
        self
    }

    fn answer(mut self, status: &str, description: &str, body: Value) -> Self {
        self.field("responses")[status] = answer(description, body);
        self
    }

    fn error(self, status: &str, description: &str) -> Self {
        self.answer(status, description, schema("Error"))
    }

    fn header(mut self, status: &str, name: &str, header: Value) -> Self {
        self.field("responses")[status]["headers"][name] = header;
        self
    }

    /// Adds `other`'s responses (and nothing else of it).
    fn merge(mut self, other: Op) -> Self {
        if let Value::Object(responses) = &other.0["responses"] {
            for (status, response) in responses {
                self.field("responses")[status.as_str()] = response.clone();
            }
        }
        self
    }

    fn get(&self) -> Value {
        self.0.clone()
    }

    /// The same operation asked with `HEAD`: the same statuses and headers, no body.
    fn head(&self) -> Value {
        let mut head = self.0.clone();
        let summary = format!("{} (headers only)", head["summary"].as_str().unwrap_or(""));
        head["summary"] = summary.into();
        head["description"] = "Answered as `GET` is (RFC 9110 §9.3.2): the same status and header fields, including `Content-Type`, and no body.".into();
        if let Some(responses) = head["responses"].as_object_mut() {
            for response in responses.values_mut() {
                if let Some(response) = response.as_object_mut() {
                    response.remove("content");
                }
            }
        }
        head
    }
}

/// Every code an error answer can carry.
pub fn error_codes() -> Vec<String> {
    ApiError::codes().into_iter().map(String::from).collect()
}

#[cfg(test)]
mod tests;
