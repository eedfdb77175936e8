//! Fuzz target: every admin request body decoder (create project, create key, rotate, revoke),
//! reached through `api::handle` with healthy in-memory KV and change log, a fuzzed body and a
//! fuzzed `Content-Type`. Never panics, never a 5xx; refusals are `{"error": {"code", "message"}}`;
//! a body is accepted only if it is a JSON object with exactly the documented fields: JSON that
//! is not an object (an array of the fields, above all) is `invalid_body`, an object with
//! another field `unknown_field`; what a create answers matches what was sent, and a created
//! key verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lumiqtrace_core::admin::Keys;
use lumiqtrace_core::api::{
    handle, AdminToken, Config, HttpRequest, Outcome, Reply, Usage, MAX_ADMIN_BODY,
};
use lumiqtrace_core::changes::{MemoryFeed, Overlay};
use lumiqtrace_core::orgs::{Actor, TokenBook, Tokens};
use lumiqtrace_core::repo::Repo;
use lumiqtrace_core::store::MemoryStore;
use lumiqtrace_core::usage::NoUsage;
use lumiqtrace_core::verify::authenticate;
use pollster::block_on;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::cell::RefCell;

const TOKEN: &str = "fuzz-admin-token-0123456789abcdef";
const NOW: u64 = 1_800_000_000_000;
const DECODE_CODES: [&str; 5] = [
    "invalid_json",
    "unknown_field",
    "invalid_body",
    "unsupported_content_type",
    "body_too_large",
];
const CONTENT_TYPES: [Option<&str>; 6] = [
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("APPLICATION/JSON"),
    Some("text/plain"),
    None,
    Some(""),
];

/// KV, the change log and one isolate's overlay.
struct World {
    store: MemoryStore,
    feed: MemoryFeed,
    overlay: RefCell<Overlay>,
}

fn reply(world: &World, path: &str, content_type: Option<&str>, body: &[u8]) -> Reply {
    let auth = format!("Bearer {TOKEN}");
    let config = Config {
        admin_token: Some(AdminToken {
            sha256: Sha256::digest(TOKEN.as_bytes()).into(),
            chars: TOKEN.chars().count(),
        }),
        grace_ms: 86_400_000,
        refresh_ms: 2_000,
        quiet_ms: 900_000,
    };
    let tally = RefCell::default();
    let usage = Usage {
        tally: &tally,
        source: &NoUsage,
    };
    let keys = Keys {
        repo: Repo::new(&world.store),
        feed: &world.feed,
        overlay: &world.overlay,
        actor: &Actor::Operator,
    };
    let (book, cache) = (RefCell::default(), RefCell::default());
    let tokens = Tokens::<RefCell<TokenBook>> {
        authority: &book,
        cache: &cache,
    };
    let req = HttpRequest {
        method: "POST",
        path,
        authorization: Some(&auth),
        content_type,
        body,
        ..Default::default()
    };
    match block_on(handle(&keys, &usage, &config, &tokens, &req, NOW)) {
        Outcome::Reply(reply) => reply,
        Outcome::Forward { .. } => panic!("an admin route answered as ingest"),
    }
}

fn json(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body).expect("every reply is JSON")
}

/// Seeds project `p` and one key in it; returns the key's id.
fn seed(world: &World) -> String {
    let project = reply(
        world,
        "/admin/v1/projects",
        CONTENT_TYPES[0],
        br#"{"id":"p","name":"P"}"#,
    );
    assert_eq!(project.status, 201);
    let key = reply(
        world,
        "/admin/v1/projects/p/keys",
        CONTENT_TYPES[0],
        br#"{"name":"k"}"#,
    );
    assert_eq!(key.status, 201);
    json(&key)["api_key"]["id"].as_str().unwrap().to_owned()
}

fn is_json_media_type(content_type: Option<&str>) -> bool {
    let media = content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default();
    media.trim().eq_ignore_ascii_case("application/json")
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector >> 4) % CONTENT_TYPES.len()];
    let world = World {
        store: MemoryStore::new(),
        feed: MemoryFeed::default(),
        overlay: RefCell::default(),
    };
    let key_id = seed(&world);
    let (path, fields): (String, &[&str]) = match selector % 4 {
        0 => ("/admin/v1/projects".into(), &["id", "name"]),
        1 => ("/admin/v1/projects/p/keys".into(), &["name"]),
        2 => (format!("/admin/v1/keys/{key_id}/rotate"), &[]),
        _ => (format!("/admin/v1/keys/{key_id}/revoke"), &[]),
    };
    let answer = reply(&world, &path, content_type, body);
    let value = json(&answer);
    assert!(
        matches!(answer.status, 200 | 201 | 400 | 409),
        "{path} {content_type:?} {body:?}: {} {}",
        answer.status,
        answer.body
    );
    let code = value["error"]["code"].as_str().unwrap_or_default();
    if answer.status >= 400 {
        let error = value["error"].as_object().expect("error object");
        assert_eq!(value.as_object().unwrap().len(), 1);
        assert_eq!(error.len(), 2);
        assert!(error["message"].is_string() && !code.is_empty());
        assert!(
            !answer.body.contains("lqt_") || code.is_empty(),
            "key in a refusal"
        );
    }
    // What the decoder must say of a JSON body it reads (a blank rotate/revoke body is none).
    let blank = body.iter().all(u8::is_ascii_whitespace);
    let read = is_json_media_type(content_type) && body.len() <= MAX_ADMIN_BODY;
    let sent = serde_json::from_slice::<Value>(body).ok();
    if let Some(sent) = sent.filter(|_| read && !blank) {
        match sent.as_object() {
            None => assert_eq!(code, "invalid_body", "non-object {sent}"),
            Some(o) if o.keys().any(|k| !fields.contains(&k.as_str())) => {
                assert_eq!(code, "unknown_field", "{sent}")
            }
            Some(_) => assert_ne!(code, "unknown_field", "{sent}"),
        }
    }
    let decoded = !DECODE_CODES.contains(&code);
    if !decoded {
        return;
    }
    // The decoder accepted: an empty rotate/revoke body, or exactly the documented fields.
    if fields.is_empty() && blank {
        return;
    }
    assert!(
        is_json_media_type(content_type),
        "accepted {content_type:?}"
    );
    let sent: Value = serde_json::from_slice(body).expect("accepted a body that is not JSON");
    let object = sent.as_object().expect("accepted a non-object");
    assert_eq!(object.len(), fields.len(), "accepted {sent}");
    for field in fields {
        assert!(object[*field].is_string(), "accepted {sent}");
    }
    match (selector % 4, answer.status) {
        (0, 201) => {
            assert_eq!(value["id"], sent["id"]);
            assert_eq!(value["name"].as_str(), sent["name"].as_str().map(str::trim));
        }
        (1, 201) => {
            assert_eq!(
                value["api_key"]["name"].as_str(),
                sent["name"].as_str().map(str::trim)
            );
            let header = format!("Bearer {}", value["key"].as_str().unwrap());
            let fresh = RefCell::default(); // another isolate: KV alone
            let grant = block_on(authenticate(&world.store, &fresh, Some(&header), NOW));
            let grant = grant.expect("new key works");
            assert_eq!(grant.project_id, "p");
        }
        (2, 201) | (3, 200) => {}
        (_, status) => assert!(status == 400 || status == 409, "{status} {}", answer.body),
    }
});
