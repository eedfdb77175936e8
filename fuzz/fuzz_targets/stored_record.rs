//! Fuzz target: the stored-record decoder (`json` into `record::KeyRecord`, `Project`,
//! `AuditEvent`, as `repo` reads KV values and metadata). Never panics: a value that decodes
//! round-trips, its views and the authorize decision work at any instant; one that does not is
//! a `Corrupt` error through the repo, and the verify path fails closed (5xx, never a grant).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lumiqtrace_authorizer::ingest::authenticate;
use lumiqtrace_authorizer::json;
use lumiqtrace_authorizer::key::{ApiKey, KeyHash};
use lumiqtrace_authorizer::record::{authorize, AuditEvent, KeyRecord, Project};
use lumiqtrace_authorizer::repo::Repo;
use lumiqtrace_authorizer::store::{MemoryStore, Store};
use pollster::block_on;
use std::cell::RefCell;

fn now_from(data: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    for (b, d) in bytes.iter_mut().zip(data.iter().rev()) {
        *b = *d;
    }
    u64::from_le_bytes(bytes)
}

fuzz_target!(|data: &[u8]| {
    let now = now_from(data);
    if let Ok(record) = json::from_slice::<KeyRecord>(data) {
        assert!(KeyHash::from_hex(record.hash.as_str()).is_some());
        let text = json::to_string(&record);
        assert_eq!(json::from_str::<KeyRecord>(&text).unwrap(), record);
        let view = json::to_string(&record.view(now));
        assert!(
            !view.contains(record.hash.as_str()),
            "a view shows the hash"
        );
        let _ = authorize(&record, now);
        let _ = record.status(now);
    }
    if let Ok(project) = json::from_slice::<Project>(data) {
        let text = json::to_string(&project);
        assert_eq!(json::from_str::<Project>(&text).unwrap(), project);
        let _ = json::to_string(&project.view());
    }
    if let Ok(event) = json::from_slice::<AuditEvent>(data) {
        let text = json::to_string(&event);
        assert_eq!(json::from_str::<AuditEvent>(&text).unwrap(), event);
        let _ = json::to_string(&event.view());
    }
    // The same bytes as the stored value of a key (and its metadata), read the ways the
    // service reads it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let key = ApiKey::from_secret_bytes(&[7; 32]);
    let store = MemoryStore::new();
    let name = format!("key/{}", key.hash().as_str());
    let metadata = (text.len() <= 1024).then_some(text);
    block_on(async {
        store.put(&name, text, metadata).await.unwrap();
        store
            .put("id/key_7", key.hash().as_str(), None)
            .await
            .unwrap();
        let repo = Repo::new(&store);
        let by_hash = repo.key_by_hash(&key.hash()).await;
        let decodes = json::from_str::<KeyRecord>(text).is_ok();
        assert_eq!(by_hash.is_ok(), decodes);
        assert_eq!(repo.list_keys().await.is_ok(), decodes);
        let header = format!("Bearer {}", key.expose());
        let overlay = RefCell::default();
        match authenticate(&store, &overlay, Some(&header), now).await {
            Ok(grant) => {
                let record = by_hash.unwrap().unwrap();
                assert_eq!(grant.key_id, record.id);
                assert!(authorize(&record, now).is_ok());
            }
            Err(e) if decodes => assert_eq!(e.status(), 401),
            Err(e) => assert!(e.status() >= 500, "corrupt record answered {}", e.status()),
        }
    });
});
