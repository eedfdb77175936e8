//! Organizations, admin tokens and the scope, through the HTTP contract ([`crate::api::handle`])
//! with an in-memory store, change log and token book.

use super::*;
use crate::api::{handle, AdminToken, Config, HttpRequest, Outcome};
use crate::changes::{MemoryFeed, Overlay};
use crate::store::MemoryStore;
use pollster::block_on;
use serde_json::{json, Value};

const OPERATOR: &str = "orgs-test-operator-token-0123456789abcdef";
const REFRESH: Millis = 2_000;

struct World {
    store: MemoryStore,
    feed: MemoryFeed,
    overlay: RefCell<Overlay>,
    book: RefCell<TokenBook>,
    cache: RefCell<TokenCache>,
    config: Config,
}

impl World {
    fn new() -> Self {
        Self {
            store: MemoryStore::new(),
            feed: MemoryFeed::default(),
            overlay: RefCell::default(),
            book: RefCell::default(),
            cache: RefCell::default(),
            config: Config {
                admin_token: Some(AdminToken::of(OPERATOR)),
                grace_ms: 60_000,
                refresh_ms: REFRESH,
            },
        }
    }

    /// `(status, body)` of an admin call with `token`, at `now`.
    fn call(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Value,
        now: Millis,
    ) -> (u16, Value) {
        self.call_with(&self.book, &self.cache, token, method, path, body, now)
    }

    #[allow(clippy::too_many_arguments)]
    fn call_with<T: TokenAuthority>(
        &self,
        authority: &T,
        cache: &RefCell<TokenCache>,
        token: &str,
        method: &str,
        path: &str,
        body: Value,
        now: Millis,
    ) -> (u16, Value) {
        let keys = Keys {
            repo: Repo::new(&self.store),
            feed: &self.feed,
            overlay: &self.overlay,
            actor: &Actor::Operator,
        };
        let tokens = Tokens { authority, cache };
        let auth = format!("Bearer {token}");
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let body = match body {
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let req = HttpRequest {
            method,
            path,
            query,
            authorization: Some(&auth),
            content_type: Some("application/json"),
            body: body.as_bytes(),
            ..Default::default()
        };
        match block_on(handle(&keys, &self.config, &tokens, &req, now)) {
            Outcome::Reply(r) => (r.status, serde_json::from_str(&r.body).unwrap()),
            Outcome::Forward { .. } => panic!("an admin route never forwards"),
        }
    }

    /// Creates an organization and an admin token for it; returns the token.
    fn org_with_token(&self, org: &str) -> String {
        let made = self.call(
            OPERATOR,
            "POST",
            "/admin/v1/orgs",
            json!({"id": org, "name": org}),
            1,
        );
        assert_eq!(made.0, 201, "{made:?}");
        let path = format!("/admin/v1/orgs/{org}/admin-tokens");
        let (status, body) = self.call(OPERATOR, "POST", &path, json!({"name": "ci"}), 1);
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["admin_token"]["org_id"], org);
        body["token"].as_str().unwrap().to_owned()
    }

    /// With `token`: a project `project` and a key in it; returns the key's id.
    fn project_and_key(&self, token: &str, project: &str) -> String {
        let made = self.call(
            token,
            "POST",
            "/admin/v1/projects",
            json!({"id": project, "name": project}),
            2,
        );
        assert_eq!(made.0, 201, "{made:?}");
        let path = format!("/admin/v1/projects/{project}/keys");
        let (status, body) = self.call(token, "POST", &path, json!({"name": "k"}), 3);
        assert_eq!(status, 201, "{body}");
        body["api_key"]["id"].as_str().unwrap().to_owned()
    }

    /// Every route that reads or changes `project` and its key `key`, with `token`: the
    /// statuses, in a fixed order.
    fn every_route(
        &self,
        token: &str,
        project: &str,
        key: &str,
        org: &str,
        now: Millis,
    ) -> Vec<(String, u16)> {
        let routes = [
            ("GET", format!("/admin/v1/orgs/{org}"), Value::Null),
            (
                "GET",
                format!("/admin/v1/keys?project_id={project}"),
                Value::Null,
            ),
            ("GET", format!("/admin/v1/keys/{key}"), Value::Null),
            (
                "POST",
                format!("/admin/v1/projects/{project}/keys"),
                json!({"name": "x"}),
            ),
            (
                "GET",
                format!("/admin/v1/audit?project_id={project}"),
                Value::Null,
            ),
            ("GET", format!("/admin/v1/audit?org_id={org}"), Value::Null),
            ("POST", format!("/admin/v1/keys/{key}/rotate"), Value::Null),
            ("POST", format!("/admin/v1/keys/{key}/revoke"), Value::Null),
        ];
        routes
            .into_iter()
            .map(|(method, path, body)| {
                let (status, _) = self.call(token, method, &path, body, now);
                (format!("{method} {path}"), status)
            })
            .collect()
    }

    fn listed(&self, token: &str, path: &str, field: &str, id: &str) -> Vec<String> {
        let (status, body) = self.call(token, "GET", path, Value::Null, 10);
        assert_eq!(status, 200, "{body}");
        let items = body[field].as_array().unwrap();
        items
            .iter()
            .map(|i| i[id].as_str().unwrap().to_owned())
            .collect()
    }
}

fn statuses(routes: &[(String, u16)]) -> Vec<u16> {
    routes.iter().map(|(_, s)| *s).collect()
}

#[test]
fn two_orgs_admin_tokens_see_only_their_own_and_the_operator_sees_both() {
    let w = World::new();
    let acme = w.org_with_token("acme");
    let globex = w.org_with_token("globex");
    let acme_key = w.project_and_key(&acme, "acme-web");
    let globex_key = w.project_and_key(&globex, "globex-web");
    // A second key each, for the operator's own pass.
    let acme_key2 = w.project_and_key_in(OPERATOR, "acme-api", Some("acme"));
    let globex_key2 = w.project_and_key_in(OPERATOR, "globex-api", Some("globex"));

    // Lists show only their own.
    assert_eq!(
        w.listed(&acme, "/admin/v1/projects", "projects", "id"),
        ["acme-api", "acme-web"]
    );
    assert_eq!(
        w.listed(&globex, "/admin/v1/orgs", "orgs", "id"),
        ["globex"]
    );
    let acme_keys = w.listed(&acme, "/admin/v1/keys", "keys", "project_id");
    assert!(
        acme_keys.len() == 2 && acme_keys.iter().all(|p| p.starts_with("acme-")),
        "{acme_keys:?}"
    );
    let audited = w.listed(&globex, "/admin/v1/audit", "events", "project_id");
    assert!(
        !audited.is_empty() && audited.iter().all(|p| p.starts_with("globex-")),
        "{audited:?}"
    );

    // Every route into the other organization: 404, as if it did not exist.
    let cross = w.every_route(&acme, "globex-web", &globex_key, "globex", 20);
    assert!(cross.iter().all(|(_, s)| *s == 404), "{cross:?}");
    let cross = w.every_route(&globex, "acme-web", &acme_key, "acme", 20);
    assert!(cross.iter().all(|(_, s)| *s == 404), "{cross:?}");
    // The other's keys are untouched by all that.
    let (_, key) = w.call(
        OPERATOR,
        "GET",
        &format!("/admin/v1/keys/{acme_key}"),
        Value::Null,
        21,
    );
    assert_eq!(key["status"], "active");
    // A leak report naming the other's key revokes nothing.
    let leaked = w.key_plaintext_of(&globex, "globex-web");
    let report = json!({"keys": [leaked.1], "source": "acme"});
    let (status, _) = w.call(&acme, "POST", "/admin/v1/keys/report-leaked", report, 22);
    assert_eq!(status, 200);
    let (_, key) = w.call(
        OPERATOR,
        "GET",
        &format!("/admin/v1/keys/{}", leaked.0),
        Value::Null,
        23,
    );
    assert_eq!(
        key["status"], "active",
        "a key of another organization is not revoked"
    );

    // Each does all of it in its own.
    let own = [200, 200, 200, 201, 200, 200, 201, 200];
    assert_eq!(
        statuses(&w.every_route(&acme, "acme-web", &acme_key, "acme", 30)),
        own
    );
    assert_eq!(
        statuses(&w.every_route(&globex, "globex-web", &globex_key, "globex", 30)),
        own
    );
    // The operator in both.
    assert_eq!(
        statuses(&w.every_route(OPERATOR, "acme-api", &acme_key2, "acme", 40)),
        own
    );
    assert_eq!(
        statuses(&w.every_route(OPERATOR, "globex-api", &globex_key2, "globex", 40)),
        own
    );

    // The audit says who acted.
    let (_, audit) = w.call(
        OPERATOR,
        "GET",
        "/admin/v1/audit?project_id=acme-web",
        Value::Null,
        50,
    );
    let events = audit["events"].as_array().unwrap();
    let by_token = events
        .iter()
        .find(|e| e["action"] == "key.created")
        .unwrap();
    assert_eq!(by_token["actor"], "admin_token");
    assert_eq!(by_token["actor_token_name"], "ci");
    assert!(by_token["actor_token_id"]
        .as_str()
        .unwrap()
        .starts_with("adm_"));
    let (_, audit) = w.call(
        OPERATOR,
        "GET",
        "/admin/v1/audit?project_id=acme-api",
        Value::Null,
        50,
    );
    assert!(audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor"] == "operator"));
    let (_, audit) = w.call(
        OPERATOR,
        "GET",
        "/admin/v1/audit?org_id=globex",
        Value::Null,
        50,
    );
    let events = audit["events"].as_array().unwrap();
    assert!(
        !events.is_empty()
            && events
                .iter()
                .all(|e| e["project_id"].as_str().unwrap().starts_with("globex-"))
    );
}

impl World {
    fn project_and_key_in(&self, token: &str, project: &str, org: Option<&str>) -> String {
        let body = json!({"id": project, "name": project, "org_id": org});
        let made = self.call(token, "POST", "/admin/v1/projects", body, 2);
        assert_eq!(made.0, 201, "{made:?}");
        assert_eq!(made.1["org_id"], org.unwrap_or(DEFAULT_ORG));
        let path = format!("/admin/v1/projects/{project}/keys");
        let (status, body) = self.call(token, "POST", &path, json!({"name": "k"}), 3);
        assert_eq!(status, 201, "{body}");
        body["api_key"]["id"].as_str().unwrap().to_owned()
    }

    /// A fresh key in `project` with `token`: `(id, plaintext)`.
    fn key_plaintext_of(&self, token: &str, project: &str) -> (String, String) {
        let path = format!("/admin/v1/projects/{project}/keys");
        let (status, body) = self.call(token, "POST", &path, json!({"name": "leak"}), 4);
        assert_eq!(status, 201, "{body}");
        let id = body["api_key"]["id"].as_str().unwrap().to_owned();
        (id, body["key"].as_str().unwrap().to_owned())
    }
}

#[test]
fn an_org_admin_token_cannot_manage_organizations_nor_admin_tokens() {
    let w = World::new();
    let acme = w.org_with_token("acme");
    let (_, listed) = w.call(
        OPERATOR,
        "GET",
        "/admin/v1/orgs/acme/admin-tokens",
        Value::Null,
        2,
    );
    let token_id = listed["admin_tokens"][0]["id"].as_str().unwrap().to_owned();
    let revoke = format!("/admin/v1/admin-tokens/{token_id}/revoke");
    let calls = [
        (
            "POST",
            "/admin/v1/orgs",
            json!({"id": "mine", "name": "Mine"}),
        ),
        (
            "POST",
            "/admin/v1/orgs/acme/admin-tokens",
            json!({"name": "more"}),
        ),
        ("GET", "/admin/v1/orgs/acme/admin-tokens", Value::Null),
        ("POST", revoke.as_str(), Value::Null),
    ];
    for (method, path, body) in calls {
        let (status, body) = w.call(&acme, method, path, body, 3);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{method} {path}"
        );
    }
    // Naming another organization for a project is refused as if it did not exist.
    let body = json!({"id": "p", "name": "P", "org_id": "globex"});
    assert_eq!(w.call(&acme, "POST", "/admin/v1/projects", body, 4).0, 404);
    // Its token still works: none of that changed anything.
    assert_eq!(
        w.call(&acme, "GET", "/admin/v1/projects", Value::Null, 5).0,
        200
    );
}

#[test]
fn a_revoked_admin_token_is_refused_at_once_here_and_within_the_refresh_interval_elsewhere() {
    let w = World::new();
    let acme = w.org_with_token("acme");
    let other_isolate = RefCell::default();
    let get = |cache: &RefCell<TokenCache>, now| {
        w.call_with(
            &w.book,
            cache,
            &acme,
            "GET",
            "/admin/v1/projects",
            Value::Null,
            now,
        )
        .0
    };
    assert_eq!(get(&w.cache, 10), 200);
    assert_eq!(
        get(&other_isolate, 10),
        200,
        "the other isolate keeps this answer"
    );
    let (_, listed) = w.call(
        OPERATOR,
        "GET",
        "/admin/v1/orgs/acme/admin-tokens",
        Value::Null,
        11,
    );
    assert_eq!(listed["admin_tokens"][0]["status"], "active");
    let id = listed["admin_tokens"][0]["id"].as_str().unwrap().to_owned();
    let (status, revoked) = w.call(
        OPERATOR,
        "POST",
        &format!("/admin/v1/admin-tokens/{id}/revoke"),
        Value::Null,
        12,
    );
    assert_eq!((status, revoked["status"].as_str()), (200, Some("revoked")));
    assert_eq!(get(&w.cache, 12), 401, "the revoking isolate, at once");
    assert!(
        get(&other_isolate, 10 + REFRESH - 1) == 200,
        "a confirmed answer lasts at most the interval"
    );
    assert_eq!(
        get(&other_isolate, 10 + REFRESH),
        401,
        "then the authority decides"
    );
    let (status, body) = w.call(
        OPERATOR,
        "POST",
        "/admin/v1/admin-tokens/adm_nope/revoke",
        Value::Null,
        13,
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("admin_token_not_found"))
    );
}

struct Unreachable;

impl TokenAuthority for Unreachable {
    async fn create(&self, _: &AdminTokenRecord) -> Result<(), StoreError> {
        Err(StoreError("down".into()))
    }
    async fn by_hash(&self, _: &KeyHash) -> Result<Option<AdminTokenRecord>, StoreError> {
        Err(StoreError("down".into()))
    }
    async fn list(&self, _: &str) -> Result<Vec<AdminTokenRecord>, StoreError> {
        Err(StoreError("down".into()))
    }
    async fn revoke(&self, _: &str, _: Millis) -> Result<Option<AdminTokenRecord>, StoreError> {
        Err(StoreError("down".into()))
    }
}

#[test]
fn an_unreachable_authority_refuses_org_tokens_with_503_and_the_operator_keeps_working() {
    let w = World::new();
    let acme = w.org_with_token("acme");
    let cold = RefCell::default();
    let (status, body) = w.call_with(
        &Unreachable,
        &cold,
        &acme,
        "GET",
        "/admin/v1/projects",
        Value::Null,
        5,
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("unavailable"))
    );
    assert!(
        !body.to_string().contains("down"),
        "5xx bodies say nothing of their cause"
    );
    let (status, _) = w.call_with(
        &Unreachable,
        &cold,
        OPERATOR,
        "GET",
        "/admin/v1/projects",
        Value::Null,
        5,
    );
    assert_eq!(status, 200);
}

#[test]
fn projects_stored_before_organizations_read_as_default_without_loss() {
    let w = World::new();
    // As today's code writes them: no org_id, no org record.
    let old = r#"{"id":"legacy","name":"Legacy","created_at":5}"#;
    block_on(w.store.put("project/legacy", old, Some(old))).unwrap();
    let key = w.project_and_key_in(OPERATOR, "newer", None);
    let (status, body) = w.call(OPERATOR, "GET", "/admin/v1/projects", Value::Null, 10);
    assert_eq!(status, 200);
    let legacy = body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "legacy")
        .unwrap();
    assert_eq!(
        legacy,
        &json!({"id": "legacy", "name": "Legacy", "created_at": crate::time::rfc3339(5), "org_id": "default"})
    );
    assert_eq!(
        w.listed(OPERATOR, "/admin/v1/orgs", "orgs", "id"),
        ["default"]
    );
    let (_, org) = w.call(OPERATOR, "GET", "/admin/v1/orgs/default", Value::Null, 11);
    assert_eq!(
        org["created_at"],
        crate::time::rfc3339(2),
        "from its first project's creation"
    );
    let (_, listed) = w.call(
        OPERATOR,
        "GET",
        "/admin/v1/keys?project_id=newer",
        Value::Null,
        12,
    );
    assert_eq!(listed["keys"][0]["id"], key.as_str());
    // An organization admin of `default` sees the legacy project too.
    let token = {
        let path = "/admin/v1/orgs/default/admin-tokens";
        let (_, b) = w.call(OPERATOR, "POST", path, json!({"name": "ops"}), 13);
        b["token"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        w.listed(&token, "/admin/v1/projects", "projects", "id"),
        ["legacy", "newer"]
    );
}

#[test]
fn orgs_are_validated_and_unique() {
    let w = World::new();
    let create = |body: Value| w.call(OPERATOR, "POST", "/admin/v1/orgs", body, 1);
    assert_eq!(
        create(json!({"id": "Acme", "name": "A"})).1["error"]["code"],
        "invalid_org_id"
    );
    assert_eq!(
        create(json!({"id": "acme", "name": ""})).1["error"]["code"],
        "invalid_name"
    );
    assert_eq!(create(json!({"id": "acme", "name": "Acme"})).0, 201);
    assert_eq!(
        create(json!({"id": "acme", "name": "Again"})).1["error"]["code"],
        "org_exists"
    );
    assert_eq!(
        w.call(OPERATOR, "GET", "/admin/v1/orgs/none", Value::Null, 2)
            .1["error"]["code"],
        "org_not_found"
    );
    let tokens = "/admin/v1/orgs/none/admin-tokens";
    assert_eq!(
        w.call(OPERATOR, "POST", tokens, json!({"name": "x"}), 2).0,
        404
    );
    // The token is shown once: the list has its prefix, never the token or its hash.
    let (_, made) = w.call(
        OPERATOR,
        "POST",
        "/admin/v1/orgs/acme/admin-tokens",
        json!({"name": "ci"}),
        3,
    );
    let token = made["token"].as_str().unwrap();
    assert!(OrgAdminToken::parse(token).is_some());
    let (_, listed) = w.call(
        OPERATOR,
        "GET",
        "/admin/v1/orgs/acme/admin-tokens",
        Value::Null,
        4,
    );
    let text = listed.to_string();
    let hash = OrgAdminToken::parse(token).unwrap().hash();
    assert!(!text.contains(token) && !text.contains(hash.as_str()));
    assert_eq!(listed["admin_tokens"][0]["prefix"], &token[..13]);
    // An admin token is never an API key.
    let keys = Keys {
        repo: Repo::new(&w.store),
        feed: &w.feed,
        overlay: &w.overlay,
        actor: &Actor::Operator,
    };
    let auth = format!("Bearer {token}");
    let req = HttpRequest {
        method: "GET",
        path: "/v1/auth/verify",
        authorization: Some(&auth),
        ..Default::default()
    };
    let tokens = Tokens {
        authority: &w.book,
        cache: &w.cache,
    };
    match block_on(handle(&keys, &w.config, &tokens, &req, 5)) {
        Outcome::Reply(r) => assert_eq!(r.status, 401),
        Outcome::Forward { .. } => panic!("an admin token authorized an ingest call"),
    }
}
