//! The HTTP contract, exercised through [`handle`] with an in-memory store.

use super::*;
use crate::changes::{MemoryFeed, NoFeed, Overlay};
use crate::orgs::{TokenBook, TokenCache};
use crate::repo::Repo;
use crate::store::{MemoryStore, Op};
use crate::usage::MemoryUsage;
use pollster::block_on;
use serde_json::{json, Value};
use std::cell::RefCell;

const TOKEN: &str = "test-admin-token-0123456789abcdef";
const HOUR: Millis = 3_600_000;
const GRACE: Millis = 24 * HOUR;

struct Api<F> {
    store: MemoryStore,
    feed: F,
    overlay: RefCell<Overlay>,
    config: Config,
    book: RefCell<TokenBook>,
    cache: RefCell<TokenCache>,
    tally: RefCell<Tally>,
    usage: MemoryUsage,
}

/// Runs a behaviour test twice: KV alone (overlay off), and with the change log.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn kv_alone() {
                super::$name(super::Api::new());
            }
            #[test]
            fn with_change_log() {
                super::$name(super::Api::logged());
            }
        }
    };
}

struct Answer {
    status: u16,
    json: Value,
    reply: Option<Reply>,
    grant: Option<Grant>,
}

impl Answer {
    fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

impl Api<NoFeed> {
    fn new() -> Self {
        Api::with_feed(NoFeed)
    }
}

impl Api<MemoryFeed> {
    fn logged() -> Self {
        Api::with_feed(MemoryFeed::default())
    }
}

impl<F: ChangeFeed> Api<F> {
    fn with_feed(feed: F) -> Self {
        Self {
            store: MemoryStore::new(),
            feed,
            overlay: RefCell::default(),
            book: RefCell::default(),
            cache: RefCell::default(),
            config: Config {
                admin_token: Some(AdminToken::of(TOKEN)),
                grace_ms: GRACE,
                refresh_ms: 2_000,
                quiet_ms: 15 * 60_000,
            },
            tally: RefCell::default(),
            usage: MemoryUsage::default(),
        }
    }

    fn call(&self, req: HttpRequest<'_>, now: Millis) -> Answer {
        let keys = Keys {
            repo: Repo::new(&self.store),
            feed: &self.feed,
            overlay: &self.overlay,
            actor: &crate::orgs::Actor::Operator,
        };
        let usage = Usage {
            tally: &self.tally,
            source: &self.usage,
        };
        match block_on(handle(
            &keys,
            &usage,
            &self.config,
            &self.tokens(),
            &req,
            now,
        )) {
            Outcome::Reply(reply) => Answer {
                status: reply.status,
                json: serde_json::from_str(&reply.body).expect("every reply is JSON"),
                reply: Some(reply),
                grant: None,
            },
            Outcome::Forward { grant, .. } => Answer {
                status: 0,
                json: Value::Null,
                reply: None,
                grant: Some(grant),
            },
        }
    }

    fn tokens(&self) -> Tokens<'_, RefCell<TokenBook>> {
        Tokens {
            authority: &self.book,
            cache: &self.cache,
        }
    }

    fn admin(&self, method: &str, path: &str, body: &str, now: Millis) -> Answer {
        let auth = format!("Bearer {TOKEN}");
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        self.call(
            HttpRequest {
                method,
                path,
                query,
                authorization: Some(&auth),
                content_type: Some("application/json"),
                body: body.as_bytes(),
                ..Default::default()
            },
            now,
        )
    }

    fn verify(&self, key: &str, now: Millis) -> Answer {
        let auth = format!("Bearer {key}");
        self.call(
            HttpRequest {
                method: "GET",
                path: "/v1/auth/verify",
                authorization: Some(&auth),
                ..Default::default()
            },
            now,
        )
    }

    fn project(&self, id: &str) {
        let body = format!(r#"{{"id":"{id}","name":"Project {id}"}}"#);
        assert_eq!(
            self.admin("POST", "/admin/v1/projects", &body, 0).status,
            201
        );
    }

    /// Creates a key; returns (plaintext, key id).
    fn key(&self, project: &str, name: &str, now: Millis) -> (String, String) {
        let path = format!("/admin/v1/projects/{project}/keys");
        let a = self.admin("POST", &path, &format!(r#"{{"name":"{name}"}}"#), now);
        assert_eq!(a.status, 201, "{}", a.json);
        let key = a.json["key"].as_str().unwrap().to_owned();
        (key, a.json["api_key"]["id"].as_str().unwrap().to_owned())
    }
}

both!(created_key_verifies_with_its_project);
fn created_key_verifies_with_its_project<F: ChangeFeed>(api: Api<F>) {
    api.project("web-app");
    let (key, id) = api.key("web-app", "production-web", 10);
    assert!(is_well_formed(&key));
    let a = api.verify(&key, 20);
    assert_eq!(a.status, 200);
    assert_eq!(a.json["project_id"], "web-app");
    assert_eq!(a.json["key_id"], id.as_str());
    assert_eq!(a.json["key_name"], "production-web");
    assert_eq!(a.json["status"], "active");
    assert_eq!(a.json["grace_expires_at"], Value::Null);
}

both!(create_key_answer_has_key_once_and_a_full_key_view);
fn create_key_answer_has_key_once_and_a_full_key_view<F: ChangeFeed>(api: Api<F>) {
    api.project("web-app");
    let a = api.admin(
        "POST",
        "/admin/v1/projects/web-app/keys",
        r#"{"name":" ci "}"#,
        5,
    );
    assert_eq!(a.status, 201);
    let key = a.json["key"].as_str().unwrap();
    let view = &a.json["api_key"];
    assert_eq!(view["name"], "ci");
    assert_eq!(view["prefix"], &key[..12]);
    assert_eq!(view["status"], "active");
    assert_eq!(view["created_at"], "1970-01-01T00:00:00.005Z");
    for field in [
        "grace_expires_at",
        "revoked_at",
        "rotated_from",
        "rotated_to",
    ] {
        assert_eq!(view[field], Value::Null, "{field}");
    }
    assert_eq!(a.json.as_object().unwrap().len(), 2);
}

both!(list_shows_name_project_prefix_created_but_never_the_key_or_hash);
fn list_shows_name_project_prefix_created_but_never_the_key_or_hash<F: ChangeFeed>(api: Api<F>) {
    api.project("web-app");
    api.project("mobile");
    let (k1, _) = api.key("web-app", "one", 1);
    let (k2, _) = api.key("mobile", "two", 2);
    let all = api.admin("GET", "/admin/v1/keys", "", 3);
    assert_eq!(all.status, 200);
    let keys = all.json["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["name"], "two", "newest first");
    assert_eq!(keys[1]["prefix"], &k1[..12]);
    let text = all.json.to_string();
    for key in [&k1, &k2] {
        assert!(!text.contains(&key[4..]), "plaintext in list");
        let hash = crate::key::ApiKey::parse(key).unwrap().hash();
        assert!(!text.contains(hash.as_str()), "hash in list");
    }
    let web = api.admin("GET", "/admin/v1/keys?project_id=web-app", "", 3);
    assert_eq!(web.json["keys"].as_array().unwrap().len(), 1);
    assert_eq!(web.json["keys"][0]["project_id"], "web-app");
    let bad = api.admin("GET", "/admin/v1/keys?project_id=Bad_Id", "", 3);
    assert_eq!((bad.status, bad.code()), (400, "invalid_project_id"));
}

both!(rotated_key_works_through_grace_then_expires_and_new_key_keeps_working);
fn rotated_key_works_through_grace_then_expires_and_new_key_keeps_working<F: ChangeFeed>(
    api: Api<F>,
) {
    api.project("web-app");
    let (old_key, old_id) = api.key("web-app", "prod", 0);
    let r = api.admin("POST", &format!("/admin/v1/keys/{old_id}/rotate"), "", HOUR);
    assert_eq!(r.status, 201, "{}", r.json);
    let new_key = r.json["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, old_key);
    assert_eq!(r.json["api_key"]["name"], "prod");
    assert_eq!(r.json["api_key"]["project_id"], "web-app");
    assert_eq!(r.json["api_key"]["rotated_from"], old_id.as_str());
    assert_eq!(r.json["previous"]["status"], "grace");
    assert_eq!(r.json["previous"]["rotated_to"], r.json["api_key"]["id"]);
    assert_eq!(
        r.json["previous"]["grace_expires_at"],
        "1970-01-02T01:00:00.000Z"
    );

    let end = HOUR + GRACE;
    let in_grace = api.verify(&old_key, end - 1);
    assert_eq!(in_grace.status, 200);
    assert_eq!(in_grace.json["status"], "grace");
    assert_eq!(
        in_grace.json["grace_expires_at"],
        "1970-01-02T01:00:00.000Z"
    );
    assert_eq!(api.verify(&new_key, end - 1).status, 200);
    let after = api.verify(&old_key, end);
    assert_eq!((after.status, after.code()), (401, "key_expired"));
    assert_eq!(api.verify(&new_key, end).status, 200);
    let view = api.admin("GET", &format!("/admin/v1/keys/{old_id}"), "", end);
    assert_eq!(view.json["status"], "expired");
}

both!(rotating_a_rotating_revoked_or_expired_key_is_409);
fn rotating_a_rotating_revoked_or_expired_key_is_409<F: ChangeFeed>(api: Api<F>) {
    api.project("p");
    let (_, id) = api.key("p", "k", 0);
    let rotate = |now| api.admin("POST", &format!("/admin/v1/keys/{id}/rotate"), "", now);
    assert_eq!(rotate(1).status, 201);
    assert_eq!(rotate(2).code(), "key_not_rotatable");
    assert_eq!(rotate(GRACE + 2).code(), "key_not_rotatable");
    let (_, id2) = api.key("p", "k2", 0);
    api.admin("POST", &format!("/admin/v1/keys/{id2}/revoke"), "", 1);
    let r = api.admin("POST", &format!("/admin/v1/keys/{id2}/rotate"), "", 2);
    assert_eq!((r.status, r.code()), (409, "key_not_rotatable"));
}

both!(revoked_key_is_rejected_at_once_and_revoke_is_idempotent);
fn revoked_key_is_rejected_at_once_and_revoke_is_idempotent<F: ChangeFeed>(api: Api<F>) {
    api.project("p");
    let (key, id) = api.key("p", "k", 0);
    let path = format!("/admin/v1/keys/{id}/revoke");
    let first = api.admin("POST", &path, "", 100);
    assert_eq!(first.status, 200);
    assert_eq!(first.json["status"], "revoked");
    assert_eq!(first.json["revoked_at"], "1970-01-01T00:00:00.100Z");
    let v = api.verify(&key, 100);
    assert_eq!((v.status, v.code()), (401, "key_revoked"));
    let again = api.admin("POST", &path, "{}", 500);
    assert_eq!(again.status, 200);
    assert_eq!(again.json["revoked_at"], first.json["revoked_at"]);
}

both!(revoking_a_key_in_grace_stops_it);
fn revoking_a_key_in_grace_stops_it<F: ChangeFeed>(api: Api<F>) {
    api.project("p");
    let (key, id) = api.key("p", "k", 0);
    api.admin("POST", &format!("/admin/v1/keys/{id}/rotate"), "", 1);
    api.admin("POST", &format!("/admin/v1/keys/{id}/revoke"), "", 2);
    assert_eq!(api.verify(&key, 3).code(), "key_revoked");
}

both!(another_projects_key_is_untouched_by_rotate_and_revoke);
fn another_projects_key_is_untouched_by_rotate_and_revoke<F: ChangeFeed>(api: Api<F>) {
    api.project("a");
    api.project("b");
    let (_, a_id) = api.key("a", "k", 0);
    let (b_key, _) = api.key("b", "k", 0);
    api.admin("POST", &format!("/admin/v1/keys/{a_id}/rotate"), "", 1);
    api.admin("POST", &format!("/admin/v1/keys/{a_id}/revoke"), "", 2);
    let v = api.verify(&b_key, GRACE * 2);
    assert_eq!((v.status, v.json["status"].as_str()), (200, Some("active")));
}

#[test]
fn projects_are_created_listed_and_unique() {
    let api = Api::new();
    let a = api.admin(
        "POST",
        "/admin/v1/projects",
        r#"{"id":"web-app","name":"Web app"}"#,
        7,
    );
    assert_eq!(a.status, 201);
    assert_eq!(a.json["id"], "web-app");
    assert_eq!(a.json["name"], "Web app");
    assert_eq!(a.json["created_at"], "1970-01-01T00:00:00.007Z");
    let dup = api.admin(
        "POST",
        "/admin/v1/projects",
        r#"{"id":"web-app","name":"x"}"#,
        8,
    );
    assert_eq!((dup.status, dup.code()), (409, "project_exists"));
    let list = api.admin("GET", "/admin/v1/projects", "", 9);
    assert_eq!(list.json["projects"].as_array().unwrap().len(), 1);
    let bad = api.admin("POST", "/admin/v1/projects", r#"{"id":"-x","name":"x"}"#, 8);
    assert_eq!((bad.status, bad.code()), (400, "invalid_project_id"));
}

#[test]
fn key_for_unknown_project_is_404_and_bad_names_are_400() {
    let api = Api::new();
    let a = api.admin("POST", "/admin/v1/projects/nope/keys", r#"{"name":"k"}"#, 0);
    assert_eq!((a.status, a.code()), (404, "project_not_found"));
    api.project("p");
    let long = format!(r#"{{"name":"{}"}}"#, "x".repeat(65));
    for body in [r#"{"name":"   "}"#, r#"{"name":"a\u0000b"}"#, long.as_str()] {
        let a = api.admin("POST", "/admin/v1/projects/p/keys", body, 0);
        assert_eq!((a.status, a.code()), (400, "invalid_name"), "{body}");
    }
}

both!(unknown_key_id_is_404);
fn unknown_key_id_is_404<F: ChangeFeed>(api: Api<F>) {
    for (method, path) in [
        ("GET", "/admin/v1/keys/key_nope"),
        ("POST", "/admin/v1/keys/key_nope/rotate"),
        ("POST", "/admin/v1/keys/key_nope/revoke"),
    ] {
        let a = api.admin(method, path, "", 0);
        assert_eq!((a.status, a.code()), (404, "key_not_found"), "{path}");
    }
}

#[test]
fn bad_bodies_are_400_with_clear_codes() {
    let api = Api::new();
    let cases = [
        ("{", Some("application/json"), "invalid_json"),
        ("", Some("application/json"), "invalid_json"),
        (
            r#"{"id":"a","name":"b","x":1}"#,
            Some("application/json"),
            "unknown_field",
        ),
        (
            r#"{"id":1,"name":"b"}"#,
            Some("application/json"),
            "invalid_body",
        ),
        (r#"{"id":"a"}"#, Some("application/json"), "invalid_body"),
        (
            r#"{"id":"a","name":"b"}"#,
            Some("text/plain"),
            "unsupported_content_type",
        ),
        (r#"{"id":"a","name":"b"}"#, None, "unsupported_content_type"),
    ];
    let auth = format!("Bearer {TOKEN}");
    for (body, content_type, code) in cases {
        let req = HttpRequest {
            method: "POST",
            path: "/admin/v1/projects",
            authorization: Some(&auth),
            content_type,
            body: body.as_bytes(),
            ..Default::default()
        };
        let a = api.call(req, 0);
        assert_eq!((a.status, a.code()), (400, code), "{body} {content_type:?}");
    }
    let big = format!(r#"{{"id":"a","name":"{}"}}"#, "x".repeat(MAX_ADMIN_BODY));
    let a = api.admin("POST", "/admin/v1/projects", &big, 0);
    assert_eq!((a.status, a.code()), (400, "body_too_large"));
    let a = api.admin("POST", "/admin/v1/keys/k/revoke", r#"{"why":"x"}"#, 0);
    assert_eq!((a.status, a.code()), (400, "unknown_field"));
    // The leak report route too, without naming the field (it may be a key).
    let leaked = crate::key::ApiKey::from_secret_bytes(&[9; 32]);
    let body = format!(r#"{{"keys":[],"source":"s","{}":1}}"#, leaked.expose());
    let a = api.admin("POST", "/admin/v1/keys/report-leaked", &body, 0);
    assert_eq!((a.status, a.code()), (400, "unknown_field"), "{}", a.json);
    assert!(!a.reply.unwrap().body.contains(leaked.expose()));
    let a = api.call(
        HttpRequest {
            content_type: Some("Application/JSON; charset=utf-8"),
            method: "POST",
            path: "/admin/v1/projects",
            authorization: Some(&auth),
            body: br#"{"id":"ok","name":"Ok"}"#,
            ..Default::default()
        },
        0,
    );
    assert_eq!(a.status, 201);
}

#[test]
fn admin_routes_need_the_admin_token() {
    let api = Api::new();
    let key = crate::key::ApiKey::from_secret_bytes(&[1; 32]);
    let wrong = [
        None,
        Some("Bearer wrong".to_owned()),
        Some(format!("Basic {TOKEN}")),
        Some(format!("Bearer {}", key.expose())),
        Some(format!("Bearer {TOKEN}x")),
    ];
    for auth in &wrong {
        let req = HttpRequest {
            method: "GET",
            path: "/admin/v1/keys",
            authorization: auth.as_deref(),
            ..Default::default()
        };
        let a = api.call(req, 0);
        assert_eq!(
            (a.status, a.code()),
            (401, "admin_unauthorized"),
            "{auth:?}"
        );
        let reply = a.reply.unwrap();
        assert!(reply.www_authenticate.unwrap().contains("Bearer"));
    }
    assert!(
        api.store.log().is_empty(),
        "refused before any storage access"
    );
}

#[test]
fn admin_token_that_looks_like_an_api_key_is_never_accepted() {
    let mut api = Api::new();
    let key = crate::key::ApiKey::from_secret_bytes(&[1; 32]);
    api.config.admin_token = Some(AdminToken::of(key.expose()));
    let auth = format!("Bearer {}", key.expose());
    let req = HttpRequest {
        method: "GET",
        path: "/admin/v1/keys",
        authorization: Some(&auth),
        ..Default::default()
    };
    assert_eq!(api.call(req, 0).code(), "admin_unauthorized");
}

#[test]
fn admin_routes_refuse_everything_without_a_configured_token() {
    let wrong = Api::new().call(admin_get("/admin/v1/keys", Some("Bearer wrong")), 0);
    let wrong = wrong.reply.unwrap();
    for token in [None, Some(AdminToken::of(""))] {
        let mut api = Api::new();
        api.config.admin_token = token;
        let a = api.admin("GET", "/admin/v1/keys", "", 0);
        assert_eq!((a.status, a.code()), (401, "admin_unauthorized"));
        let reply = a.reply.unwrap();
        // The caller learns nothing about the configuration; the operator's log does.
        assert_eq!(
            (reply.status, &reply.body, reply.www_authenticate),
            (wrong.status, &wrong.body, wrong.www_authenticate)
        );
        assert!(reply.log.unwrap().contains("ADMIN_TOKEN is not set"));
    }
}

fn admin_get<'a>(path: &'a str, authorization: Option<&'a str>) -> HttpRequest<'a> {
    HttpRequest {
        method: "GET",
        path,
        authorization,
        ..Default::default()
    }
}

#[test]
fn a_short_admin_token_turns_every_admin_route_away() {
    let wrong = Api::new().call(admin_get("/admin/v1/keys", Some("Bearer wrong")), 0);
    let wrong = wrong.reply.unwrap();
    let anonymous = Api::new().call(admin_get("/admin/v1/keys", None), 0);
    let anonymous = anonymous.reply.unwrap();
    let short = "x".repeat(MIN_ADMIN_TOKEN_CHARS - 1);
    for configured in ["changeme", short.as_str()] {
        let mut api = Api::new();
        api.config.admin_token = Some(AdminToken::of(configured));
        let own = format!("Bearer {configured}");
        for path in ["/admin/v1/keys", "/admin/v1/projects", "/admin/v1/audit"] {
            // Its holder is told what is wrong and how to make a good one.
            let a = api.call(admin_get(path, Some(&own)), 0);
            assert_eq!(
                (a.status, a.code()),
                (403, "admin_token_too_short"),
                "{path}"
            );
            let message = a.json["error"]["message"].as_str().unwrap();
            assert!(message.contains("openssl rand -hex 32"), "{message}");
            // Anyone else gets what a wrong token gets; the reason goes to the log.
            let reply = api
                .call(admin_get(path, Some("Bearer wrong")), 0)
                .reply
                .unwrap();
            assert_eq!((reply.status, &reply.body), (wrong.status, &wrong.body));
            assert_eq!(reply.www_authenticate, wrong.www_authenticate);
            assert!(reply.log.unwrap().contains("shorter than 32"));
            // No credentials at all: what any deployment answers them (RFC 6750's bare challenge).
            let reply = api.call(admin_get(path, None), 0).reply.unwrap();
            assert_eq!(reply, anonymous);
        }
        assert!(api.store.log().is_empty(), "nothing read or written");
    }
    let mut api = Api::new();
    let enough = "x".repeat(MIN_ADMIN_TOKEN_CHARS);
    api.config.admin_token = Some(AdminToken::of(&enough));
    let auth = format!("Bearer {enough}");
    assert_eq!(
        api.call(admin_get("/admin/v1/keys", Some(&auth)), 0).status,
        200
    );
}

#[test]
fn digest_comparison_matches_only_equal_tokens() {
    assert!(digest_matches("abc", &AdminToken::of("abc")));
    assert!(!digest_matches("abc", &AdminToken::of("abd")));
    assert!(!digest_matches("abc", &AdminToken::of("abcd")));
    assert!(!digest_matches("", &AdminToken::of("a")));
}

both!(audit_records_create_rotate_and_revoke_newest_first);
fn audit_records_create_rotate_and_revoke_newest_first<F: ChangeFeed>(api: Api<F>) {
    api.project("p");
    api.project("q");
    let (_, id) = api.key("p", "k", 1);
    api.key("q", "other", 1);
    api.admin("POST", &format!("/admin/v1/keys/{id}/rotate"), "", 2);
    api.admin("POST", &format!("/admin/v1/keys/{id}/revoke"), "", 3);
    api.admin("POST", &format!("/admin/v1/keys/{id}/revoke"), "", 4);
    let a = api.admin("GET", "/admin/v1/audit?project_id=p", "", 5);
    assert_eq!(a.status, 200);
    let events = a.json["events"].as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "key.revoked",
            "key.rotated",
            "key.created",
            "project.created"
        ]
    );
    assert!(events
        .iter()
        .all(|e| e["actor"] == "operator" && e["project_id"] == "p"));
    assert_eq!(events[0]["key_id"], id.as_str());
    assert_eq!(events[0]["at"], "1970-01-01T00:00:00.003Z");
    let all = api.admin("GET", "/admin/v1/audit", "", 5);
    assert_eq!(all.json["events"].as_array().unwrap().len(), 6);
}

both!(listings_are_newest_first_and_order_ties_by_id);
fn listings_are_newest_first_and_order_ties_by_id<F: ChangeFeed>(api: Api<F>) {
    let ids = |a: &Answer, list: &str| -> Vec<String> {
        let items = a.json[list].as_array().unwrap().iter();
        items
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };
    for id in ["b", "c", "a"] {
        api.project(id);
    }
    let late = r#"{"id":"d","name":"Project d"}"#;
    assert_eq!(api.admin("POST", "/admin/v1/projects", late, 1).status, 201);
    // Projects of the same time: by id, ascending.
    let projects = api.admin("GET", "/admin/v1/projects", "", 2);
    assert_eq!(ids(&projects, "projects"), ["d", "a", "b", "c"]);
    let made: Vec<String> = (0..6)
        .map(|n| api.key("a", &format!("k{n}"), 7).1)
        .collect();
    let newer = api.key("a", "newer", 8).1;
    // Keys and audit events of the same time: by id, descending.
    let mut expected = made.clone();
    expected.sort_by(|x, y| y.cmp(x));
    expected.insert(0, newer);
    let keys = api.admin("GET", "/admin/v1/keys", "", 9);
    assert_eq!(ids(&keys, "keys"), expected);
    let audit = api.admin("GET", "/admin/v1/audit?project_id=a", "", 9);
    let events = ids(&audit, "events");
    let mut same_time = events[1..7].to_vec();
    same_time.sort_by(|x, y| y.cmp(x));
    assert_eq!(events[1..7], same_time);
}

#[test]
fn verify_refusals_are_401_json_with_www_authenticate() {
    let api = Api::new();
    let unknown = crate::key::ApiKey::from_secret_bytes(&[3; 32]);
    for (key, code) in [
        ("lqt_short", "malformed_key"),
        (unknown.expose(), "invalid_key"),
    ] {
        let a = api.verify(key, 0);
        assert_eq!((a.status, a.code()), (401, code));
        let www = a.reply.unwrap().www_authenticate;
        assert_eq!(
            www,
            Some(r#"Bearer realm="lumiqtrace", error="invalid_token""#)
        );
    }
    let a = api.call(
        HttpRequest {
            method: "GET",
            path: "/v1/auth/verify",
            ..Default::default()
        },
        0,
    );
    assert_eq!(a.code(), "missing_key");
    // RFC 6750 §3.1: a request without credentials gets no error code.
    let www = a.reply.unwrap().www_authenticate;
    assert_eq!(www, Some(r#"Bearer realm="lumiqtrace""#));
}

both!(revoked_and_expired_keys_name_invalid_token_in_the_challenge);
fn revoked_and_expired_keys_name_invalid_token_in_the_challenge<F: ChangeFeed>(api: Api<F>) {
    api.project("p");
    let (revoked, id) = api.key("p", "gone", 0);
    let path = format!("/admin/v1/keys/{id}/revoke");
    assert_eq!(api.admin("POST", &path, "", 1).status, 200);
    let (rotated, id) = api.key("p", "old", 2);
    let path = format!("/admin/v1/keys/{id}/rotate");
    assert_eq!(api.admin("POST", &path, "", 3).status, 201);
    for (key, code) in [(revoked, "key_revoked"), (rotated, "key_expired")] {
        let a = api.verify(&key, 3 + GRACE + 1);
        assert_eq!((a.status, a.code()), (401, code));
        let www = a.reply.unwrap().www_authenticate;
        assert_eq!(
            www,
            Some(r#"Bearer realm="lumiqtrace", error="invalid_token""#)
        );
    }
}

#[test]
fn admin_401s_name_invalid_token_only_when_credentials_were_sent() {
    let bare = Some(r#"Bearer realm="lumiqtrace-admin""#);
    let invalid = Some(r#"Bearer realm="lumiqtrace-admin", error="invalid_token""#);
    let wrong = format!("Bearer {TOKEN}x");
    for (configured, authorization, want) in [
        (Some(TOKEN), None, bare),
        (Some(TOKEN), Some("  "), bare),
        (Some(TOKEN), Some(wrong.as_str()), invalid),
        (Some(TOKEN), Some("Basic dXNlcjpwdw=="), invalid),
        (Some(TOKEN), Some("Bearer"), invalid),
        (None, None, bare),
        (None, Some(wrong.as_str()), invalid),
    ] {
        let mut api = Api::new();
        api.config.admin_token = configured.map(AdminToken::of);
        let req = HttpRequest {
            method: "GET",
            path: "/admin/v1/keys",
            authorization,
            ..Default::default()
        };
        let a = api.call(req, 0);
        assert_eq!((a.status, a.code()), (401, "admin_unauthorized"));
        let www = a.reply.unwrap().www_authenticate;
        assert_eq!(www, want, "{configured:?} {authorization:?}");
    }
}

both!(head_answers_as_get_does_on_every_get_route);
fn head_answers_as_get_does_on_every_get_route<F: ChangeFeed>(api: Api<F>) {
    api.project("p");
    let (key, id) = api.key("p", "k", 0);
    let admin = format!("Bearer {TOKEN}");
    let ingest = format!("Bearer {key}");
    let keys = format!("/admin/v1/keys/{id}");
    let routes = [
        ("/v1/auth/verify", Some(ingest.as_str())),
        ("/v1/auth/verify", None),
        ("/v1/auth/verify", Some("Bearer lqt_short")),
        ("/admin/v1/projects", Some(admin.as_str())),
        ("/admin/v1/keys", Some(admin.as_str())),
        (keys.as_str(), Some(admin.as_str())),
        ("/admin/v1/keys/key_nope", Some(admin.as_str())),
        ("/admin/v1/audit", Some(admin.as_str())),
        ("/admin/v1/audit", None),
    ];
    for (path, authorization) in routes {
        let req = |method| HttpRequest {
            method,
            path,
            authorization,
            ..Default::default()
        };
        let get = api.call(req("GET"), 1).reply.unwrap();
        let head = api.call(req("HEAD"), 1).reply.unwrap();
        assert_eq!(head, get, "HEAD {path} {authorization:?}");
        if path.starts_with("/v1/") {
            let at_once = refused_at_once("HEAD", path, authorization);
            assert_eq!(
                at_once.map(|e| e.code()),
                refused_at_once("GET", path, authorization).map(|e| e.code())
            );
        }
    }
    // An ingest route other than verify is granted, and forwarded as HEAD by the shell.
    let req = HttpRequest {
        method: "HEAD",
        path: "/v1/projects/p/traces",
        authorization: Some(&ingest),
        ..Default::default()
    };
    assert!(api.call(req, 1).grant.is_some());
}

both!(ingest_routes_grant_or_refuse_and_check_the_project);
fn ingest_routes_grant_or_refuse_and_check_the_project<F: ChangeFeed>(api: Api<F>) {
    api.project("web-app");
    let (key, id) = api.key("web-app", "k", 0);
    let auth = format!("Bearer {key}");
    let ingest = |path, project_header| HttpRequest {
        method: "POST",
        path,
        authorization: Some(&auth),
        project_header,
        ..Default::default()
    };
    let granted = api.call(ingest("/v1/ingest", None), 1).grant.unwrap();
    assert_eq!(
        (granted.project_id.as_str(), granted.key_id.as_str()),
        ("web-app", id.as_str())
    );
    let accepted = accepted(&granted);
    assert_eq!(accepted.status, 202);
    let body: Value = serde_json::from_str(&accepted.body).unwrap();
    assert_eq!(body["accepted"], true);
    assert!(api
        .call(ingest("/v1/projects/web-app/traces", None), 1)
        .grant
        .is_some());
    for req in [
        ingest("/v1/projects/mobile/traces", None),
        ingest("/v1/ingest", Some("mobile")),
    ] {
        let a = api.call(req, 1);
        assert_eq!((a.status, a.code()), (403, "project_mismatch"));
    }
}

both!(ingest_paths_are_canonical_and_the_forward_gets_the_one_checked);
fn ingest_paths_are_canonical_and_the_forward_gets_the_one_checked<F: ChangeFeed>(api: Api<F>) {
    api.project("web-app");
    let (key, _) = api.key("web-app", "k", 0);
    let auth = format!("Bearer {key}");
    let keys = Keys {
        repo: Repo::new(&api.store),
        feed: &api.feed,
        overlay: &api.overlay,
        actor: &crate::orgs::Actor::Operator,
    };
    let ingest = |path, query, authorization| {
        let req = HttpRequest {
            method: "POST",
            path,
            query,
            authorization,
            ..Default::default()
        };
        let usage = Usage {
            tally: &api.tally,
            source: &api.usage,
        };
        block_on(handle(&keys, &usage, &api.config, &api.tokens(), &req, 1))
    };
    let reads = api.store.log().len();
    for (path, query) in [
        ("/v1//projects/mobile/ingest", None),
        ("/v1/Projects/mobile/ingest", None),
        ("/v1/projects%2Fmobile/ingest", None),
        ("/v1/projects/web-app/..%2Fmobile/ingest", None),
        ("/v1/projects/web-app/ingest", Some("project_id=mobile")),
    ] {
        let Outcome::Reply(reply) = ingest(path, query, Some(&auth)) else {
            panic!("{path} {query:?} was let through");
        };
        assert_eq!(reply.status, 400, "{path} {query:?}");
        assert!(reply.body.contains("non_canonical_path"), "{}", reply.body);
    }
    assert_eq!(api.store.log().len(), reads, "refused before any lookup");
    // The key's format is checked first: no key is still 401.
    let Outcome::Reply(reply) = ingest("/v1//projects/mobile/ingest", None, None) else {
        panic!("no key was let through");
    };
    assert_eq!(reply.status, 401);
    let Outcome::Forward { grant, target, .. } =
        ingest("/v1/projects/web-app/ingest", Some("batch=7"), Some(&auth))
    else {
        panic!("the key's own project was refused");
    };
    assert_eq!(grant.project_id, "web-app");
    assert_eq!(target.target(), "/v1/projects/web-app/ingest?batch=7");
}

both!(storage_failure_on_verify_is_503_with_the_cause_only_in_the_log);
fn storage_failure_on_verify_is_503_with_the_cause_only_in_the_log<F: ChangeFeed>(api: Api<F>) {
    // A key only KV knows (created before the log's window): only KV can answer.
    let key = crate::repo::kv_only_key(&api.store, 7);
    api.store.fail_from(0, Some(Op::Get));
    let a = api.verify(&key, 1);
    assert_eq!((a.status, a.code()), (503, "unavailable"));
    let reply = a.reply.unwrap();
    assert!(!reply.body.contains("injected"));
    assert!(reply.log.unwrap().contains("injected"));
}

#[test]
fn unknown_routes_and_methods_are_json_404_and_405() {
    let api = Api::new();
    let get = |method, path| {
        api.call(
            HttpRequest {
                method,
                path,
                ..Default::default()
            },
            0,
        )
    };
    assert_eq!(get("GET", "/").code(), "not_found");
    assert_eq!(get("GET", "/nope").status, 404);
    assert_eq!(get("POST", "/v1/auth/verify").code(), "method_not_allowed");
    assert_eq!(api.admin("DELETE", "/admin/v1/keys", "", 0).status, 405);
    assert_eq!(
        api.admin("GET", "/admin/v1/nope", "", 0).code(),
        "not_found"
    );
    assert_eq!(api.admin("GET", "/admin/v1/keys/a/b/c", "", 0).status, 404);
}

#[test]
fn a_refusal_at_once_is_the_one_handle_gives_and_reads_nothing() {
    // With the change log on and every storage call failing: a refusal that read anything
    // would differ (a 503, or a log line) and show in the store's log.
    let api = Api::logged();
    api.store.fail_from(0, None);
    let unknown = crate::key::ApiKey::from_secret_bytes(&[3; 32]);
    let unknown = format!("Bearer {}", unknown.expose());
    let cases = [
        (
            "GET",
            "/v1/auth/verify",
            Some("Bearer lqt_short"),
            Some("malformed_key"),
        ),
        (
            "GET",
            "/v1/auth/verify",
            Some("Basic lqt_"),
            Some("malformed_key"),
        ),
        ("GET", "/v1/auth/verify", None, Some("missing_key")),
        ("HEAD", "/v1/auth/verify", None, Some("missing_key")),
        ("PUT", "/v1/auth/verify", None, Some("method_not_allowed")),
        (
            "POST",
            "/v1/auth/verify",
            Some(&*unknown),
            Some("method_not_allowed"),
        ),
        (
            "POST",
            "/v1/ingest",
            Some("Bearer LQT_"),
            Some("malformed_key"),
        ),
        ("GET", "/v1/projects/p/ingest", None, Some("missing_key")),
        ("GET", "/v1/auth/verify", Some(&*unknown), None),
        ("POST", "/v1/secret-scanning/github", None, None),
        ("GET", "/admin/v1/keys", Some("Bearer lqt_short"), None),
        ("GET", "/v2/auth/verify", None, None),
    ];
    // One answer per code and `Allow`: refusals sharing them must be equal.
    let mut kept: Vec<((&str, Option<&str>), Reply)> = Vec::new();
    for (method, path, authorization, expected) in cases {
        let at_once = refused_at_once(method, path, authorization);
        assert_eq!(
            at_once.as_ref().map(ApiError::code),
            expected,
            "{method} {path}"
        );
        let Some(refusal) = at_once else { continue };
        let req = HttpRequest {
            method,
            path,
            authorization,
            ..Default::default()
        };
        let answer = api.call(req, Millis::MAX);
        let reply = Reply::error(&refusal);
        assert_eq!(answer.reply.as_ref(), Some(&reply), "{method} {path}");
        let id = (refusal.code(), refusal.allow());
        match kept.iter().find(|(i, _)| *i == id) {
            Some((_, first)) => assert_eq!(&reply, first, "{method} {path}"),
            None => kept.push((id, reply)),
        }
    }
    assert!(api.store.log().is_empty(), "{:?}", api.store.log());
    assert_eq!(kept.len(), 3, "missing key, malformed key, 405");
    // The detector works: a well-formed key is looked up, and the failing store answers 503.
    let looked_up = HttpRequest {
        method: "GET",
        path: "/v1/auth/verify",
        authorization: Some(&unknown),
        ..Default::default()
    };
    assert_eq!(api.call(looked_up, Millis::MAX).status, 503);
    assert!(!api.store.log().is_empty());
    // GitHub's route is `github_secret_scanning`'s: `handle` does not know it.
    let github = HttpRequest {
        method: "POST",
        path: GITHUB_ROUTE,
        ..Default::default()
    };
    assert_eq!(api.call(github, 0).code(), "not_found");
}

both!(audit_failure_after_a_rotation_still_hands_out_the_new_key);
fn audit_failure_after_a_rotation_still_hands_out_the_new_key<F: ChangeFeed>(api: Api<F>) {
    api.project("p");
    let (old_key, id) = api.key("p", "k", 0);
    // rotate writes: new id pointer, new record, old record, then the audit event (4th put).
    api.store.fail_from(3, Some(Op::Put));
    let r = api.admin("POST", &format!("/admin/v1/keys/{id}/rotate"), "", 1);
    assert_eq!(r.status, 201);
    assert!(r.reply.unwrap().log.unwrap().contains("audit"));
    api.store.heal();
    assert_eq!(api.verify(r.json["key"].as_str().unwrap(), 2).status, 200);
    assert_eq!(api.verify(&old_key, 2).json["status"], "grace");
}

#[test]
fn failed_rotation_leaves_the_old_key_active_and_no_unseen_key_usable() {
    let api = Api::new();
    api.project("p");
    let (old_key, id) = api.key("p", "k", 0);
    // the 3rd put of a rotation (old key into grace) fails once; the undo write succeeds.
    api.store.fail_from(2, Some(Op::Put));
    api.store.heal_after(1);
    let r = api.admin("POST", &format!("/admin/v1/keys/{id}/rotate"), "", 1);
    assert_eq!((r.status, r.code()), (503, "unavailable"));
    let old = api.verify(&old_key, 2);
    assert_eq!(old.json["status"], "active");
    let keys = api.admin("GET", "/admin/v1/keys?project_id=p", "", 2);
    let statuses: Vec<&str> = keys.json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["revoked", "active"]);
}

/// The OpenAPI document, served by Workers static assets at `/openapi.json`.
const OPENAPI: &str = include_str!("../../../../public/openapi.json");

#[test]
fn openapi_document_lists_every_route() {
    let doc: Value = serde_json::from_str(OPENAPI).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let api = Api::new();
    let mut seen = 0;
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            // GitHub's route never reaches `handle`: the shell sends it to `github_secret_scanning`.
            if method == "parameters" || path == "/openapi.json" || path == GITHUB_ROUTE {
                continue;
            }
            let concrete = path.replace("{project_id}", "p").replace("{key_id}", "k");
            let a = api.admin(&method.to_uppercase(), &concrete, "", 0);
            assert!(
                !matches!(a.code(), "not_found" | "method_not_allowed"),
                "{method} {path} is documented but not routed"
            );
            seen += 1;
        }
    }
    assert!(seen >= 11, "documented operations: {seen}");
}

#[test]
fn a_json_array_is_not_an_admin_body() {
    use serde_json::json;
    let api = Api::new();
    let a = api.admin("POST", "/admin/v1/projects", r#"["web-app","Web app"]"#, 0);
    assert_eq!((a.status, a.code()), (400, "invalid_body"));
    assert_eq!(
        api.admin("GET", "/admin/v1/projects", "", 0).json["projects"],
        json!([])
    );
    let a = api.admin("POST", "/admin/v1/keys/k/revoke", " []", 0);
    assert_eq!((a.status, a.code()), (400, "invalid_body"));
}

#[test]
fn a_bad_admin_body_is_refused_for_the_first_thing_wrong_in_it() {
    let api = Api::new();
    let message = |a: &Answer| a.json["error"]["message"].as_str().unwrap().to_owned();
    for (body, code) in [
        // Not JSON at all, even after a field that would also be wrong.
        (r#"{"id": 1, "name": tru}"#, "invalid_json"),
        (r#"{"id":"a","name":"b"} {}"#, "invalid_json"),
        // An unknown field, even when a known one is also missing or of the wrong type.
        (r#"{"id": 1, "extra": true}"#, "unknown_field"),
        (r#"{"extra": true}"#, "unknown_field"),
        // A field given twice, or of the wrong type.
        (r#"{"id":"a","name":"b","id":"c"}"#, "invalid_body"),
        (r#"{"id":"a","name":null}"#, "invalid_body"),
        (r#""web-app""#, "invalid_body"),
        ("7", "invalid_body"),
    ] {
        let a = api.admin("POST", "/admin/v1/projects", body, 0);
        assert_eq!((a.status, a.code()), (400, code), "{body}");
    }
    // Where, without quoting the body.
    let a = api.admin(
        "POST",
        "/admin/v1/projects",
        "{\n  \"secret_value\": tru\n}",
        0,
    );
    assert!(message(&a).contains(" at line "), "{}", message(&a));
    assert!(!message(&a).contains("secret"), "{}", message(&a));
    let a = api.admin("POST", "/admin/v1/projects", r#"{"id":"a","extra":1}"#, 0);
    assert_eq!(
        message(&a),
        "request body has an unknown field: unknown field `extra`"
    );
    let deep = format!("{{\"id\":{}{}}}", "[".repeat(5_000), "]".repeat(5_000));
    let a = api.admin("POST", "/admin/v1/projects", &deep, 0);
    assert_eq!(
        (a.status, a.code()),
        (400, "invalid_json"),
        "nested too deeply"
    );
    let a = api.admin(
        "POST",
        "/admin/v1/keys/k/revoke",
        r#"{"why":"x","why":"y"}"#,
        0,
    );
    assert_eq!((a.status, a.code()), (400, "unknown_field"));
    assert_eq!(
        api.admin("GET", "/admin/v1/projects", "", 0).json["projects"],
        serde_json::json!([])
    );
}

#[test]
fn method_not_allowed_names_the_allowed_methods() {
    let api = Api::new();
    for (method, path, allow) in [
        ("DELETE", "/admin/v1/projects", "GET, HEAD, POST"),
        ("GET", "/admin/v1/keys/k/rotate", "POST"),
        ("HEAD", "/admin/v1/keys/k/revoke", "POST"),
        ("POST", "/admin/v1/keys", "GET, HEAD"),
        ("PUT", "/admin/v1/keys/k", "GET, HEAD"),
        ("DELETE", "/admin/v1/audit", "GET, HEAD"),
        ("POST", "/v1/auth/verify", "GET, HEAD"),
        // Ingest calls are forwarded with the ordinary methods only (whatever the key).
        ("DELETE", "/v1/ingest", "GET, HEAD, POST, PUT, PATCH"),
        ("TRACE", "/v1/ingest", "GET, HEAD, POST, PUT, PATCH"),
        (
            "CONNECT",
            "/v1/projects/p/ingest",
            "GET, HEAD, POST, PUT, PATCH",
        ),
        ("OPTIONS", "/v1/ingest", "GET, HEAD, POST, PUT, PATCH"),
        ("QUERY", "/v1/anything", "GET, HEAD, POST, PUT, PATCH"),
    ] {
        let a = api.admin(method, path, "", 0);
        assert_eq!(a.status, 405, "{method} {path}");
        assert_eq!(a.reply.unwrap().allow, Some(allow), "{method} {path}");
    }
}

#[test]
fn a_filter_that_is_not_utf8_once_decoded_is_400_not_ignored() {
    let api = Api::new();
    for (query, code) in [
        ("project_id=%FF", "invalid_project_id"),
        ("environment=%C3", "invalid_environment"),
        ("rotation_due=%FF", "invalid_query"),
    ] {
        let a = api.admin("GET", &format!("/admin/v1/keys?{query}"), "", 0);
        assert_eq!((a.status, a.code()), (400, code), "{query}");
    }
    for (path, code) in [
        ("/admin/v1/projects?org_id=%FF", "invalid_org_id"),
        ("/admin/v1/audit?project_id=%FF", "invalid_project_id"),
        ("/admin/v1/audit?org_id=%E2%82", "invalid_org_id"),
    ] {
        let a = api.admin("GET", path, "", 0);
        assert_eq!((a.status, a.code()), (400, code), "{path}");
    }
}

#[test]
fn ids_too_long_for_kv_are_404_not_503() {
    let api = Api::new();
    let long = "a".repeat(600);
    for (method, path, body) in [
        ("GET", format!("/admin/v1/keys/key_{long}"), ""),
        ("POST", format!("/admin/v1/keys/key_{long}/revoke"), ""),
        (
            "POST",
            format!("/admin/v1/projects/{long}/keys"),
            r#"{"name":"k"}"#,
        ),
    ] {
        let a = api.admin(method, &path, body, 0);
        assert_eq!(a.status, 404, "{method} {}", &path[..30]);
    }
}

const DAY: Millis = 24 * HOUR;
/// 2026-11-26T10:45:54.123Z
const NOV_26: Millis = 1_795_689_954_123;

both!(a_key_past_its_expires_at_is_refused_like_a_rotated_key_after_its_grace);
fn a_key_past_its_expires_at_is_refused_like_a_rotated_key_after_its_grace<F: ChangeFeed>(
    api: Api<F>,
) {
    api.project("web-app");
    let path = "/admin/v1/projects/web-app/keys";
    let body = r#"{"name":"ci","expires_at":"2026-11-27T10:45:54.123Z"}"#;
    let a = api.admin("POST", path, body, NOV_26);
    assert_eq!(a.status, 201, "{}", a.json);
    assert_eq!(a.json["api_key"]["expires_at"], "2026-11-27T10:45:54.123Z");
    let key = a.json["key"].as_str().unwrap().to_owned();
    assert_eq!(api.verify(&key, NOV_26 + DAY - 1).status, 200);
    let expired = api.verify(&key, NOV_26 + DAY);
    // The rotated key after its grace, for comparison: the same refusal, byte for byte.
    let (old, id) = api.key("web-app", "old", NOV_26);
    let rotate = format!("/admin/v1/keys/{id}/rotate");
    assert_eq!(api.admin("POST", &rotate, "", NOV_26).status, 201);
    let after_grace = api.verify(&old, NOV_26 + GRACE);
    assert_eq!((expired.status, expired.code()), (401, "key_expired"));
    assert_eq!(expired.reply, after_grace.reply);
    let past = r#"{"name":"late","expires_at":"2026-11-01T00:00:00Z"}"#;
    let a = api.admin("POST", path, past, NOV_26);
    assert_eq!(a.status, 201, "a past-due expiry is taken: {}", a.json);
    assert_eq!(a.json["api_key"]["status"], "expired");
    let refused = api.verify(a.json["key"].as_str().unwrap(), NOV_26);
    assert_eq!((refused.status, refused.code()), (401, "key_expired"));
    // Before 1970 is as past as any other past instant (schema-valid RFC 3339: taken).
    let ancient = r#"{"name":"ancient","expires_at":"0826-05-30T05:24:11Z"}"#;
    let a = api.admin("POST", path, ancient, NOV_26);
    assert_eq!(
        (a.status, &a.json["api_key"]["status"]),
        (201, &json!("expired"))
    );
    for bad in ["tomorrow", "2026-11-27"] {
        let body = format!(r#"{{"name":"x","expires_at":"{bad}"}}"#);
        let a = api.admin("POST", path, &body, NOV_26);
        assert_eq!((a.status, a.code()), (400, "invalid_expires_at"), "{bad}");
    }
}

both!(rotation_takes_an_expiry_for_the_new_key_and_carries_the_environment_over);
fn rotation_takes_an_expiry_for_the_new_key_and_carries_the_environment_over<F: ChangeFeed>(
    api: Api<F>,
) {
    api.project("web-app");
    let body = r#"{"name":"web","environment":" Production "}"#;
    let a = api.admin("POST", "/admin/v1/projects/web-app/keys", body, NOV_26);
    assert_eq!(a.json["api_key"]["environment"], "production");
    let id = a.json["api_key"]["id"].as_str().unwrap().to_owned();
    let rotate = format!("/admin/v1/keys/{id}/rotate");
    let body = r#"{"expires_at":"2027-02-24T00:00:00Z"}"#;
    let r = api.admin("POST", &rotate, body, NOV_26 + 1);
    assert_eq!(r.status, 201, "{}", r.json);
    assert_eq!(r.json["api_key"]["environment"], "production");
    assert_eq!(r.json["api_key"]["expires_at"], "2027-02-24T00:00:00.000Z");
    assert_eq!(r.json["previous"]["expires_at"], Value::Null);
    let new_id = r.json["api_key"]["id"].as_str().unwrap();
    let r = api.admin(
        "POST",
        &format!("/admin/v1/keys/{new_id}/rotate"),
        "{}",
        NOV_26 + 2,
    );
    assert_eq!(
        r.json["api_key"]["expires_at"],
        Value::Null,
        "not carried over"
    );
    let bad = api.admin(
        "POST",
        &format!("/admin/v1/keys/{id}/rotate"),
        r#"{"grace":1}"#,
        3,
    );
    assert_eq!((bad.status, bad.code()), (400, "unknown_field"));
}

both!(keys_are_listed_by_environment);
fn keys_are_listed_by_environment<F: ChangeFeed>(api: Api<F>) {
    api.project("web-app");
    let path = "/admin/v1/projects/web-app/keys";
    for (name, env) in [("a", "production"), ("b", "staging"), ("c", "eu-canary-2")] {
        let body = format!(r#"{{"name":"{name}","environment":"{env}"}}"#);
        assert_eq!(api.admin("POST", path, &body, 5).status, 201);
    }
    api.key("web-app", "d", 5);
    let names = |query: &str| -> Vec<String> {
        let a = api.admin("GET", &format!("/admin/v1/keys?{query}"), "", 6);
        assert_eq!(a.status, 200, "{}", a.json);
        let keys = a.json["keys"].as_array().unwrap();
        keys.iter()
            .map(|k| k["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names("environment=production"), ["a"]);
    assert_eq!(
        names("environment=+Production%20"),
        ["a"],
        "as URLSearchParams reads it"
    );
    assert_eq!(names("project_id=web-app&environment=EU-canary-2"), ["c"]);
    assert_eq!(names("environment=staging&project_id=web-app"), ["b"]);
    assert_eq!(names("project_id=web-app").len(), 4);
    for bad in ["-x", "a b", &"x".repeat(33), ""] {
        let body = format!(r#"{{"name":"e","environment":"{bad}"}}"#);
        let a = api.admin("POST", path, &body, 5);
        assert_eq!(
            (a.status, a.code()),
            (400, "invalid_environment"),
            "{bad:?}"
        );
    }
    let a = api.admin("GET", "/admin/v1/keys?environment=%20", "", 6);
    assert_eq!(a.code(), "invalid_environment");
}

both!(a_project_rotation_period_marks_older_active_keys_due);
fn a_project_rotation_period_marks_older_active_keys_due<F: ChangeFeed>(api: Api<F>) {
    let body = r#"{"id":"web-app","name":"Web","rotation_period_days":90}"#;
    let p = api.admin("POST", "/admin/v1/projects", body, 0);
    assert_eq!(p.json["rotation_period_days"], 90, "{}", p.json);
    let (_, old) = api.key("web-app", "old", NOV_26 - 100 * DAY);
    let (_, young) = api.key("web-app", "young", NOV_26 - DAY);
    let (_, rotated) = api.key("web-app", "rotated", NOV_26 - 100 * DAY);
    let r = api.admin(
        "POST",
        &format!("/admin/v1/keys/{rotated}/rotate"),
        "",
        NOV_26 - 1,
    );
    assert_eq!(r.status, 201);
    let due = |query: &str| -> Vec<String> {
        let a = api.admin("GET", &format!("/admin/v1/keys?{query}"), "", NOV_26);
        let keys = a.json["keys"].as_array().unwrap().clone();
        keys.iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(due("rotation_due=true"), std::slice::from_ref(&old));
    assert!(!due("rotation_due=false").contains(&old));
    assert_eq!(
        due("rotation_due=false").len(),
        3,
        "young, rotated, and its successor"
    );
    let view = api
        .admin("GET", &format!("/admin/v1/keys/{old}"), "", NOV_26)
        .json;
    assert_eq!(view["rotation_due"], true);
    // Created 100 days before 2026-11-26T10:45:54.123Z, due 90 days after that.
    assert_eq!(view["rotation_due_at"], "2026-11-16T10:45:54.123Z");
    let view = api
        .admin("GET", &format!("/admin/v1/keys/{young}"), "", NOV_26)
        .json;
    assert_eq!(
        (&view["rotation_due"], &view["rotation_due_at"]),
        (
            &Value::Bool(false),
            &Value::from("2027-02-23T10:45:54.123Z")
        )
    );
    let view = api
        .admin("GET", &format!("/admin/v1/keys/{rotated}"), "", NOV_26)
        .json;
    assert_eq!(
        (&view["rotation_due"], &view["rotation_due_at"]),
        (&Value::Bool(false), &Value::Null),
        "a key in grace is not due"
    );
    // The policy changed, then removed.
    let set = api.admin(
        "PATCH",
        "/admin/v1/projects/web-app",
        r#"{"rotation_period_days":1}"#,
        7,
    );
    assert_eq!(
        (set.status, &set.json["rotation_period_days"]),
        (200, &Value::from(1))
    );
    assert_eq!(due("rotation_due=true").len(), 2, "old and young");
    let cleared = api.admin(
        "PATCH",
        "/admin/v1/projects/web-app",
        r#"{"rotation_period_days":null}"#,
        8,
    );
    assert_eq!(cleared.json["rotation_period_days"], Value::Null);
    assert!(due("rotation_due=true").is_empty());
    for bad in ["0", "3651"] {
        let body = format!(r#"{{"rotation_period_days":{bad}}}"#);
        let a = api.admin("PATCH", "/admin/v1/projects/web-app", &body, 9);
        assert_eq!(
            (a.status, a.code()),
            (400, "invalid_rotation_period"),
            "{bad}"
        );
    }
    let a = api.admin("PATCH", "/admin/v1/projects/nope", "{}", 9);
    assert_eq!(a.code(), "project_not_found");
    let a = api.admin("GET", "/admin/v1/keys?rotation_due=yes", "", 9);
    assert_eq!((a.status, a.code()), (400, "invalid_query"));
}

const MINUTE: Millis = 60_000;

impl<F: ChangeFeed> Api<F> {
    /// What the shell does once per flush interval: report the tally.
    fn flush(&self, now: Millis) {
        self.usage.deliver(self.tally.borrow_mut().take(), now);
    }

    fn view(&self, id: &str, now: Millis) -> Value {
        let a = self.admin("GET", &format!("/admin/v1/keys/{id}"), "", now);
        assert_eq!(a.status, 200, "{}", a.json);
        a.json
    }
}

both!(verifications_are_counted_per_key_and_day_and_shown_once_reported);
fn verifications_are_counted_per_key_and_day_and_shown_once_reported<F: ChangeFeed>(api: Api<F>) {
    api.project("web-app");
    api.project("mobile");
    let (key, id) = api.key("web-app", "k", NOV_26);
    let (_, other) = api.key("web-app", "other", NOV_26);
    let reads = api.store.log().len();
    assert_eq!(api.verify(&key, NOV_26 + MINUTE + 5).status, 200);
    assert_eq!(
        api.store.log().len(),
        reads + 1,
        "one KV read, nothing written"
    );
    assert_eq!(api.verify(&key, NOV_26 + 2 * MINUTE + 7).status, 200);
    let wrong = HttpRequest {
        method: "POST",
        path: "/v1/projects/mobile/ingest",
        authorization: Some(&format!("Bearer {key}")),
        ..Default::default()
    };
    assert_eq!(
        api.call(wrong, NOV_26 + 3 * MINUTE).code(),
        "project_mismatch"
    );
    api.verify(&format!("lqt_{}", "0".repeat(64)), NOV_26);
    assert_eq!(
        api.view(&id, NOV_26 + 4 * MINUTE)["last_used_at"],
        Value::Null,
        "not reported yet"
    );
    api.flush(NOV_26 + 4 * MINUTE);
    let view = api.view(&id, NOV_26 + 4 * MINUTE);
    // 2026-11-26T10:45:54.123Z + 2 min 7 ms, to the minute.
    assert_eq!(view["last_used_at"], "2026-11-26T10:47:00.000Z");
    let listed = api.admin(
        "GET",
        "/admin/v1/keys?project_id=web-app",
        "",
        NOV_26 + 4 * MINUTE,
    );
    let rows = listed.json["keys"].as_array().unwrap();
    let row = |id: &str| rows.iter().find(|k| k["id"] == id).unwrap().clone();
    assert_eq!(row(&id)["last_used_at"], "2026-11-26T10:47:00.000Z");
    assert_eq!(row(&other)["last_used_at"], Value::Null, "never used");
    let usage = api.admin(
        "GET",
        &format!("/admin/v1/keys/{id}/usage"),
        "",
        NOV_26 + DAY,
    );
    assert_eq!(usage.status, 200, "{}", usage.json);
    let days = usage.json["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[28]["date"], "2026-11-26");
    assert_eq!(days[28]["granted"], 2);
    assert_eq!(days[28]["refused"]["project_mismatch"], 1);
    assert_eq!(days[29]["granted"], 0);
    // Revoked: its refusals are its own.
    api.admin(
        "POST",
        &format!("/admin/v1/keys/{id}/revoke"),
        "",
        NOV_26 + DAY,
    );
    api.verify(&key, NOV_26 + DAY + 1);
    api.flush(NOV_26 + DAY + 1);
    let usage = api.admin(
        "GET",
        &format!("/admin/v1/keys/{id}/usage"),
        "",
        NOV_26 + DAY + 2,
    );
    assert_eq!(usage.json["days"][29]["refused"]["key_revoked"], 1);
    assert_eq!(
        api.admin("GET", "/admin/v1/keys/nope/usage", "", 0).code(),
        "key_not_found"
    );
    api.usage.fail.set(true);
    let failed = api.admin("GET", &format!("/admin/v1/keys/{id}/usage"), "", NOV_26);
    assert_eq!((failed.status, failed.code()), (503, "unavailable"));
}

both!(a_rotated_key_in_grace_shows_its_last_use_and_is_safe_to_revoke_after_the_quiet_time);
fn a_rotated_key_in_grace_shows_its_last_use_and_is_safe_to_revoke_after_the_quiet_time<
    F: ChangeFeed,
>(
    api: Api<F>,
) {
    api.project("web-app");
    let (old, id) = api.key("web-app", "web", NOV_26);
    let rotated = api.admin(
        "POST",
        &format!("/admin/v1/keys/{id}/rotate"),
        "",
        NOV_26 + MINUTE,
    );
    assert_eq!(rotated.json["previous"]["safe_to_revoke"], false);
    // The old key is still used 5 minutes into the grace, then no more.
    let used = NOV_26 + 6 * MINUTE;
    assert_eq!(api.verify(&old, used).status, 200);
    api.flush(used);
    let quiet = used - used % MINUTE + api.config.quiet_ms;
    let view = api.view(&id, quiet - 1);
    assert_eq!(view["status"], "grace");
    assert_eq!(view["last_used_at"], "2026-11-26T10:51:00.000Z");
    assert_eq!(view["safe_to_revoke"], false, "used within the quiet time");
    let view = api.view(&id, quiet);
    assert_eq!(view["safe_to_revoke"], true);
    let listed = api.admin("GET", "/admin/v1/keys?project_id=web-app", "", quiet);
    let row = listed.json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .cloned();
    assert_eq!(row.unwrap()["safe_to_revoke"], true);
    // Usage that cannot be read never says "safe".
    api.usage.fail.set(true);
    let a = api.admin("GET", &format!("/admin/v1/keys/{id}"), "", quiet);
    assert_eq!(
        (a.status, &a.json["safe_to_revoke"]),
        (200, &Value::Bool(false))
    );
    assert!(a
        .reply
        .unwrap()
        .log
        .unwrap()
        .contains("usage of project web-app unavailable"));
}
