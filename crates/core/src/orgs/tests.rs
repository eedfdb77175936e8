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
    tally: RefCell<crate::usage::Tally>,
    usage: crate::usage::MemoryUsage,
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
                quiet_ms: 15 * 60_000,
            },
            tally: RefCell::default(),
            usage: Default::default(),
        }
    }

    fn usage(&self) -> crate::api::Usage<'_, crate::usage::MemoryUsage> {
        crate::api::Usage {
            tally: &self.tally,
            source: &self.usage,
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
        match block_on(handle(
            &keys,
            &self.usage(),
            &self.config,
            &tokens,
            &req,
            now,
        )) {
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
            ("GET", format!("/admin/v1/keys/{key}/usage"), Value::Null),
            (
                "PATCH",
                format!("/admin/v1/projects/{project}"),
                json!({"rotation_period_days": 30}),
            ),
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
    // Its projects' events and its organization's own (created, its admin token created).
    let (_, audit) = w.call(&globex, "GET", "/admin/v1/audit", Value::Null, 10);
    let audited = audit["events"].as_array().unwrap();
    assert!(
        audited.iter().any(|e| e["project_id"].is_string())
            && audited.iter().all(|e| match e["project_id"].as_str() {
                Some(p) => p.starts_with("globex-"),
                None => e["org_id"] == "globex",
            }),
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
    let own = [200, 200, 200, 200, 200, 201, 200, 200, 201, 200];
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
            && events.iter().all(|e| match e["project_id"].as_str() {
                Some(p) => p.starts_with("globex-"),
                None => e["org_id"] == "globex",
            })
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
    async fn by_hashes(&self, _: &[KeyHash]) -> Result<Vec<Option<AdminTokenRecord>>, StoreError> {
        Err(StoreError("down".into()))
    }
    async fn revoke(
        &self,
        _: &str,
        _: Millis,
        _: Option<&str>,
    ) -> Result<Option<TokenRevoked>, StoreError> {
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
        &json!({"id": "legacy", "name": "Legacy", "created_at": crate::time::rfc3339(5), "org_id": "default", "rotation_period_days": null})
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
    match block_on(handle(&keys, &w.usage(), &w.config, &tokens, &req, 5)) {
        Outcome::Reply(r) => assert_eq!(r.status, 401),
        Outcome::Forward { .. } => panic!("an admin token authorized an ingest call"),
    }
}

/// The `(action, actor, org_id, admin_token_id, has project_id)` of each event of `events`
/// about an organization or an admin token, sorted.
fn org_events(events: &Value) -> Vec<(String, String, String, Option<String>, bool)> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let mut out: Vec<_> = (events["events"].as_array().unwrap().iter())
        .filter(|e| e["org_id"].is_string())
        .map(|e| {
            (
                text(&e["action"]).unwrap(),
                text(&e["actor"]).unwrap(),
                text(&e["org_id"]).unwrap(),
                text(&e["admin_token_id"]),
                e.get("project_id").is_some(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn creating_an_org_and_creating_and_revoking_admin_tokens_are_audited_within_the_org() {
    let w = World::new();
    let acme = w.org_with_token("acme");
    let globex = w.org_with_token("globex");
    let path = "/admin/v1/orgs/acme/admin-tokens";
    let (_, spare) = w.call(OPERATOR, "POST", path, json!({"name": "spare"}), 4);
    let spare_id = spare["admin_token"]["id"].as_str().unwrap().to_owned();
    let revoke = format!("/admin/v1/admin-tokens/{spare_id}/revoke");
    assert_eq!(w.call(OPERATOR, "POST", &revoke, Value::Null, 5).0, 200);
    assert_eq!(w.call(OPERATOR, "POST", &revoke, Value::Null, 6).0, 200);
    let (_, tokens) = w.call(OPERATOR, "GET", path, Value::Null, 7);
    let ci_id = (tokens["admin_tokens"].as_array().unwrap().iter())
        .find(|t| t["name"] == "ci")
        .map(|t| t["id"].as_str().unwrap().to_owned());

    let (status, audit) = w.call(
        OPERATOR,
        "GET",
        "/admin/v1/audit?org_id=acme",
        Value::Null,
        8,
    );
    assert_eq!(status, 200);
    let op = |action: &str, token: Option<&str>| {
        let token = token.map(str::to_owned);
        (
            action.into(),
            "operator".into(),
            "acme".into(),
            token,
            false,
        )
    };
    let mut expected = vec![
        op("admin_token.created", ci_id.as_deref()),
        op("admin_token.created", Some(&spare_id)),
        op("admin_token.revoked", Some(&spare_id)),
        op("org.created", None),
    ];
    expected.sort();
    assert_eq!(org_events(&audit), expected, "revoked twice, audited once");
    // Each organization's admin sees its own organization's events only.
    let (_, own) = w.call(&acme, "GET", "/admin/v1/audit", Value::Null, 8);
    assert_eq!(org_events(&own), expected);
    let (_, other) = w.call(&globex, "GET", "/admin/v1/audit", Value::Null, 8);
    assert!(org_events(&other).iter().all(|e| e.2 == "globex"));
    assert_eq!(org_events(&other).len(), 2);
    let (status, _) = w.call(
        &globex,
        "GET",
        "/admin/v1/audit?org_id=acme",
        Value::Null,
        8,
    );
    assert_eq!(status, 404);
    // A project's audit holds none of them.
    w.project_and_key(&acme, "acme-web");
    let (_, project) = w.call(
        OPERATOR,
        "GET",
        "/admin/v1/audit?project_id=acme-web",
        Value::Null,
        9,
    );
    assert!(org_events(&project).is_empty());
}

#[test]
fn audit_events_stored_before_organizations_read_as_before() {
    let w = World::new();
    let old = r#"{"id":"evt_1","actor":"admin","action":"key.created","project_id":"legacy","key_id":"key_1","at":7}"#;
    block_on(
        w.store
            .put("audit/legacy/0000000000007-evt_1", old, Some(old)),
    )
    .unwrap();
    let (status, audit) = w.call(OPERATOR, "GET", "/admin/v1/audit", Value::Null, 8);
    assert_eq!(status, 200);
    assert_eq!(
        audit["events"][0],
        json!({"id": "evt_1", "actor": "admin", "action": "key.created", "project_id": "legacy",
               "key_id": "key_1", "at": "1970-01-01T00:00:00.007Z"})
    );
}

impl World {
    /// GitHub's (already authenticated) report of `tokens` at `now`, through the route's two
    /// revokers: keys and admin tokens.
    fn github_report(&self, tokens: &[&str], now: Millis) -> crate::leaks::Processed {
        let matches: Vec<Value> = (tokens.iter().enumerate())
            .map(|(i, t)| {
                json!({"token": t, "type": "lumiqtrace_admin_token",
                "url": format!("https://github.com/o/r/blob/1/admin{i}.env"), "source": "content"})
            })
            .collect();
        let report = crate::leaks::parse_github_report(json!(matches).to_string().as_bytes());
        let keys = Keys {
            repo: Repo::new(&self.store),
            feed: &self.feed,
            overlay: &self.overlay,
            actor: &Actor::Operator,
        };
        let tokens = Tokens {
            authority: &self.book,
            cache: &self.cache,
        };
        let leaks = TokenLeaks {
            repo: &keys.repo,
            tokens: &tokens,
        };
        block_on(crate::leaks::process(
            &keys,
            Some(&leaks),
            &report.unwrap(),
            now,
        ))
        .unwrap()
    }
}

#[test]
fn a_github_report_revokes_a_leaked_admin_token_at_once_says_why_and_audits_it_once() {
    use crate::leaks::Label;
    let w = World::new();
    let acme = w.org_with_token("acme");
    assert_eq!(
        w.call(&acme, "GET", "/admin/v1/projects", Value::Null, 5).0,
        200
    );
    let unknown = OrgAdminToken::from_secret_bytes(&[9; 32]);
    let done = w.github_report(&[&acme, unknown.expose(), &acme], 6);
    let labels: Vec<Label> = done.feedback.iter().map(|f| f.label).collect();
    assert_eq!(labels, [Label::TruePositive, Label::FalsePositive]);
    assert_eq!(done.feedback[0].token_type, "lumiqtrace_admin_token");
    assert_eq!((done.revoked, done.pending), (1, 0));
    // Refused at once, though this isolate had just confirmed it.
    let (status, body) = w.call(&acme, "GET", "/admin/v1/projects", Value::Null, 7);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("admin_unauthorized"))
    );
    let (_, listed) = w.call(
        OPERATOR,
        "GET",
        "/admin/v1/orgs/acme/admin-tokens",
        Value::Null,
        8,
    );
    let row = &listed["admin_tokens"][0];
    let reason = "Leaked: found by GitHub secret scanning (content) at https://github.com/o/r/blob/1/admin0.env";
    assert_eq!(
        (row["status"].as_str(), row["revoked_reason"].as_str()),
        (Some("revoked"), Some(reason))
    );
    let (_, audit) = w.call(
        OPERATOR,
        "GET",
        "/admin/v1/audit?org_id=acme",
        Value::Null,
        8,
    );
    let revoked: Vec<&Value> = (audit["events"].as_array().unwrap().iter())
        .filter(|e| e["action"] == "admin_token.revoked")
        .collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["actor"], "github-secret-scanning");
    assert_eq!(revoked[0]["admin_token_id"], row["id"]);
    assert_eq!(revoked[0]["reason"], reason);
    assert!(revoked[0].get("project_id").is_none());

    // Again, later: the same answer, nothing changed (first instant and reason kept), no event.
    let before = w.store.dump();
    let again = w.github_report(&[&acme, unknown.expose()], 60);
    assert_eq!(again.feedback, done.feedback);
    assert_eq!(again.revoked, 0);
    assert_eq!(w.store.dump(), before);
    let (_, relisted) = w.call(
        OPERATOR,
        "GET",
        "/admin/v1/orgs/acme/admin-tokens",
        Value::Null,
        61,
    );
    assert_eq!(relisted, listed);
}

#[test]
fn a_token_revoked_by_the_operator_is_a_true_positive_left_as_it_was() {
    let w = World::new();
    let acme = w.org_with_token("acme");
    let (_, listed) = w.call(
        OPERATOR,
        "GET",
        "/admin/v1/orgs/acme/admin-tokens",
        Value::Null,
        2,
    );
    let id = listed["admin_tokens"][0]["id"].as_str().unwrap().to_owned();
    let revoke = format!("/admin/v1/admin-tokens/{id}/revoke");
    assert_eq!(w.call(OPERATOR, "POST", &revoke, Value::Null, 3).0, 200);
    let before = w.store.dump();
    let done = w.github_report(&[&acme], 4);
    assert_eq!(done.feedback[0].label, crate::leaks::Label::TruePositive);
    assert_eq!(done.revoked, 0);
    assert_eq!(w.store.dump(), before, "no audit event");
    let (_, after) = w.call(
        OPERATOR,
        "GET",
        "/admin/v1/orgs/acme/admin-tokens",
        Value::Null,
        5,
    );
    assert_eq!(after["admin_tokens"][0]["revoked_reason"], Value::Null);
    assert_eq!(
        after,
        w.call(
            OPERATOR,
            "GET",
            "/admin/v1/orgs/acme/admin-tokens",
            Value::Null,
            2
        )
        .1
    );
}

#[test]
fn a_thousand_leaked_admin_tokens_cost_ten_lookups_and_fit_the_budget() {
    struct Counting<'a>(&'a RefCell<TokenBook>, std::cell::Cell<usize>);
    impl TokenAuthority for Counting<'_> {
        async fn create(&self, r: &AdminTokenRecord) -> Result<(), StoreError> {
            self.0.create(r).await
        }
        async fn by_hash(&self, h: &KeyHash) -> Result<Option<AdminTokenRecord>, StoreError> {
            self.0.by_hash(h).await
        }
        async fn by_hashes(
            &self,
            h: &[KeyHash],
        ) -> Result<Vec<Option<AdminTokenRecord>>, StoreError> {
            assert!(h.len() <= 100);
            self.1.set(self.1.get() + 1);
            self.0.by_hashes(h).await
        }
        async fn list(&self, o: &str) -> Result<Vec<AdminTokenRecord>, StoreError> {
            self.0.list(o).await
        }
        async fn revoke(
            &self,
            i: &str,
            n: Millis,
            r: Option<&str>,
        ) -> Result<Option<TokenRevoked>, StoreError> {
            self.1.set(self.1.get() + 1);
            self.0.revoke(i, n, r).await
        }
    }
    let w = World::new();
    let live = w.org_with_token("acme");
    let others: Vec<String> = (0..999u32)
        .map(|n| {
            let mut bytes = [0u8; 32];
            bytes[..4].copy_from_slice(&n.to_be_bytes());
            OrgAdminToken::from_secret_bytes(&bytes).expose().to_owned()
        })
        .collect();
    let mut tokens: Vec<&str> = others.iter().map(String::as_str).collect();
    tokens.push(&live);
    let counting = Counting(&w.book, Default::default());
    let cache = RefCell::default();
    let handle = Tokens {
        authority: &counting,
        cache: &cache,
    };
    let repo = Repo::new(&w.store);
    let leaks = TokenLeaks {
        repo: &repo,
        tokens: &handle,
    };
    let keys = Keys {
        repo: Repo::new(&w.store),
        feed: &w.feed,
        overlay: &w.overlay,
        actor: &Actor::Operator,
    };
    let body: Vec<Value> = tokens.iter().map(|t| json!({"token": t})).collect();
    let report = crate::leaks::parse_github_report(json!(body).to_string().as_bytes()).unwrap();
    let done = block_on(crate::leaks::process(&keys, Some(&leaks), &report, 5)).unwrap();
    assert_eq!(counting.1.get(), 10 + 1, "ten bulk lookups and one revoke");
    let feedback = done.into_feedback().unwrap();
    assert_eq!(feedback.len(), 1000);
    assert!(
        feedback
            .iter()
            .all(|f| f.token_type == "lumiqtrace_admin_token"),
        "typed by format when GitHub names none"
    );
    assert_eq!(
        feedback
            .iter()
            .filter(|f| f.label == crate::leaks::Label::TruePositive)
            .count(),
        1
    );
}

/// The authority's answer to a sign-in is on its way back while the operator revokes that token
/// in the same isolate (requests interleave at every await): the answer predates the revocation.
struct RevokedWhileAnswering<'w> {
    world: &'w World,
    id: String,
}

impl TokenAuthority for RevokedWhileAnswering<'_> {
    async fn create(&self, record: &AdminTokenRecord) -> Result<(), StoreError> {
        self.world.book.create(record).await
    }
    async fn by_hash(&self, hash: &KeyHash) -> Result<Option<AdminTokenRecord>, StoreError> {
        let answer = self.world.book.borrow().by_hash(hash).cloned();
        let path = format!("/admin/v1/admin-tokens/{}/revoke", self.id);
        let (status, _) = self.world.call(OPERATOR, "POST", &path, Value::Null, 11);
        assert_eq!(status, 200);
        Ok(answer)
    }
    async fn by_hashes(
        &self,
        hashes: &[KeyHash],
    ) -> Result<Vec<Option<AdminTokenRecord>>, StoreError> {
        self.world.book.by_hashes(hashes).await
    }
    async fn list(&self, org_id: &str) -> Result<Vec<AdminTokenRecord>, StoreError> {
        self.world.book.list(org_id).await
    }
    async fn revoke(
        &self,
        id: &str,
        now: Millis,
        reason: Option<&str>,
    ) -> Result<Option<TokenRevoked>, StoreError> {
        self.world.book.revoke(id, now, reason).await
    }
}

#[test]
fn an_answer_that_predates_a_revocation_in_this_isolate_is_not_kept() {
    let w = World::new();
    let acme = w.org_with_token("acme");
    let (_, listed) = w.call(
        OPERATOR,
        "GET",
        "/admin/v1/orgs/acme/admin-tokens",
        Value::Null,
        5,
    );
    let id = listed["admin_tokens"][0]["id"].as_str().unwrap().to_owned();
    let racing = RevokedWhileAnswering { world: &w, id };
    let path = "/admin/v1/projects";
    let (status, _) = w.call_with(&racing, &w.cache, &acme, "GET", path, Value::Null, 10);
    assert_eq!(status, 200, "the request signed in before the revocation");
    let (status, _) = w.call(&acme, "GET", path, Value::Null, 12);
    assert_eq!(status, 401, "revoked in this isolate: refused at once");
}

#[test]
fn a_revoke_the_object_could_not_store_is_not_answered_nor_held_in_memory_alone() {
    let token = OrgAdminToken::from_secret_bytes(&[9; 32]);
    let record = AdminTokenRecord {
        id: "adm_1".into(),
        hash: token.hash(),
        name: "ci".into(),
        org_id: "acme".into(),
        prefix: token.display_prefix(),
        created_at: 1,
        revoked_at: None,
        revoked_reason: None,
    };
    // The object's storage, and its memory loaded from it.
    let stored = RefCell::new(vec![record.clone()]);
    let book = RefCell::new(TokenBook::from_records(stored.borrow().clone()));
    let failing = async |_: &AdminTokenRecord| Err("storage put failed");
    let first = block_on(revoke_persisted(&book, "adm_1", 5, Some("leaked"), failing));
    assert_eq!(first.unwrap_err(), "storage put failed");
    // GitHub sends the report again (or the operator retries): the token is still live in
    // the object's memory, as in its storage, so this revoke does it again and stores it.
    let live = book.borrow().by_hash(&token.hash()).cloned().unwrap();
    assert_eq!(live.revoked_at, None, "memory ran ahead of storage");
    let storing = async |r: &AdminTokenRecord| {
        stored.borrow_mut()[0] = r.clone();
        Ok::<(), &str>(())
    };
    let again = block_on(revoke_persisted(&book, "adm_1", 6, Some("leaked"), storing));
    assert!(again.unwrap().unwrap().changed);
    // The object restarts: it loads what was stored, and the token stays revoked.
    let restarted = TokenBook::from_records(stored.borrow().clone());
    assert_eq!(
        restarted.by_hash(&token.hash()).unwrap().revoked_at,
        Some(6)
    );
}

#[test]
fn query_tricks_and_naming_another_org_in_a_body_reach_nothing_of_it() {
    let w = World::new();
    let acme = w.org_with_token("acme");
    let globex = w.org_with_token("globex");
    w.project_and_key(&acme, "acme-web");
    w.project_and_key(&globex, "globex-web");
    let audited = |query: &str| {
        let (status, body) = w.call(
            &acme,
            "GET",
            &format!("/admin/v1/audit?{query}"),
            Value::Null,
            10,
        );
        let projects: Vec<String> = (body["events"].as_array().into_iter().flatten())
            .filter_map(|e| e["project_id"].as_str().map(str::to_owned))
            .collect();
        (status, projects)
    };
    // A repeated parameter: the first one counts, for the check and the filter alike.
    for query in [
        "org_id=globex&org_id=acme",
        "project_id=globex-web&project_id=acme-web",
        "project_id=acme-web&org_id=globex",
        "org_id=acme&project_id=globex-web",
        // Names are percent-decoded too (as URLSearchParams reads them).
        "project%5Fid=globex-web",
    ] {
        assert_eq!(audited(query).0, 404, "{query}");
    }
    // A name without `=` has the empty value: not an id.
    for query in ["org_id", "&&=globex&project_id&"] {
        assert_eq!(audited(query).0, 400, "{query}");
    }
    for query in [
        "org_id=acme&org_id=globex",
        "project_id=acme-web&project_id=globex-web",
        "=globex&&",
        "project_id=acme%2dweb&project_id=globex-web",
    ] {
        let (status, projects) = audited(query);
        assert!(status == 200 && !projects.is_empty(), "{query}");
        assert!(
            projects.iter().all(|p| p == "acme-web"),
            "{query}: {projects:?}"
        );
    }
    // A percent-encoded id is decoded once, and that one value is both checked and filtered on:
    // another organization's stays hidden, one's own is found.
    assert_eq!(audited("project_id=globex%2Dweb").0, 404);
    let (status, own) = audited("project_id=acme%2Dweb");
    assert!(
        status == 200 && own.iter().all(|p| p == "acme-web"),
        "{own:?}"
    );
    assert_eq!(
        audited("project_id=%FF").0,
        400,
        "not UTF-8 once decoded: refused, not read as absent"
    );
    let keys = w.listed(
        &acme,
        "/admin/v1/keys?project_id=acme-web&project_id=globex-web",
        "keys",
        "project_id",
    );
    assert!(
        keys.iter().all(|p| p == "acme-web") && !keys.is_empty(),
        "{keys:?}"
    );
    let projects = w.listed(
        &acme,
        "/admin/v1/projects?org_id=acme&org_id=globex",
        "projects",
        "org_id",
    );
    assert_eq!(projects, ["acme"]);
    // A project named into another organization, or into `default`: 404, nothing created.
    for org in ["globex", "default", "nope"] {
        let body = json!({"id": format!("x-{org}"), "name": "x", "org_id": org});
        let (status, made) = w.call(&acme, "POST", "/admin/v1/projects", body, 11);
        assert_eq!(
            (status, made["error"]["code"].as_str()),
            (404, Some("org_not_found"))
        );
    }
    let all = w.listed(OPERATOR, "/admin/v1/projects", "projects", "id");
    assert!(all.iter().all(|p| !p.starts_with("x-")), "{all:?}");
    // A leak report naming another organization's key, live or revoked, reads as unknown.
    let (live_id, live) = w.key_plaintext_of(&globex, "globex-web");
    let (gone_id, gone) = w.key_plaintext_of(&globex, "globex-web");
    let revoke = format!("/admin/v1/keys/{gone_id}/revoke");
    assert_eq!(w.call(&globex, "POST", &revoke, Value::Null, 12).0, 200);
    let report = json!({"keys": [live, gone], "source": "acme"});
    let (status, feedback) = w.call(&acme, "POST", "/admin/v1/keys/report-leaked", report, 13);
    assert_eq!(status, 200);
    let labels: Vec<&str> = (feedback.as_array().unwrap().iter())
        .map(|f| f["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["false_positive", "false_positive"]);
    let (_, key) = w.call(
        &globex,
        "GET",
        &format!("/admin/v1/keys/{live_id}"),
        Value::Null,
        14,
    );
    assert_eq!(key["status"], "active");
}

#[test]
fn a_create_the_object_could_not_store_leaves_no_token_behind() {
    let token = OrgAdminToken::from_secret_bytes(&[7; 32]);
    let record = AdminTokenRecord {
        id: "adm_2".into(),
        hash: token.hash(),
        name: "deploy".into(),
        org_id: "acme".into(),
        prefix: token.display_prefix(),
        created_at: 1,
        revoked_at: None,
        revoked_reason: None,
    };
    let book = RefCell::new(TokenBook::default());
    let failing = async |_: &AdminTokenRecord| Err("storage put failed");
    let first = block_on(create_persisted(&book, record.clone(), failing));
    assert_eq!(first.unwrap_err(), "storage put failed");
    assert!(
        book.borrow().list("acme").is_empty(),
        "a token nobody was given is listed"
    );
    let stored = RefCell::new(Vec::new());
    let storing = async |r: &AdminTokenRecord| {
        stored.borrow_mut().push(r.clone());
        Ok::<(), &str>(())
    };
    assert_eq!(
        block_on(create_persisted(&book, record.clone(), storing)),
        Ok(true)
    );
    let again = async |_: &AdminTokenRecord| Ok::<(), &str>(());
    assert_eq!(
        block_on(create_persisted(&book, record, again)),
        Ok(false),
        "taken"
    );
    assert_eq!(stored.borrow().len(), 1);
    assert_eq!(book.borrow().list("acme").len(), 1);
}
