//! Fuzz target: the stored-record decoders (`json_object` into `record::KeyRecord`, `Project`,
//! `AuditEvent`, as `repo` reads KV values and metadata). Never panics: only a JSON object
//! decodes; a value that decodes round-trips, its views and the authorize decision work at any
//! instant; one that does not is a `Corrupt` error through the repo, and the verify path fails
//! closed (5xx, never a grant).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lumiqtrace_core::json_object::{from_slice, from_str};
use lumiqtrace_core::key::{ApiKey, KeyHash};
use lumiqtrace_core::record::{authorize, AuditEvent, KeyRecord, Project};
use lumiqtrace_core::repo::Repo;
use lumiqtrace_core::store::{MemoryStore, Store};
use lumiqtrace_core::verify::authenticate;
use pollster::block_on;
use std::cell::RefCell;

fn now_from(data: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    for (b, d) in bytes.iter_mut().zip(data.iter().rev()) {
        *b = *d;
    }
    u64::from_le_bytes(bytes)
}

/// Whether the input's first character (after whitespace) opens a JSON object: for a decoder
/// that read the whole input without error, whether it read an object. (serde_json's `Value`
/// is no oracle here: decoders skip unknown fields without checking them as strictly.)
fn opens_an_object(data: &[u8]) -> bool {
    let first = data.iter().find(|b| !b" \t\n\r".contains(b));
    first == Some(&b'{')
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("our records always encode")
}

fuzz_target!(|data: &[u8]| {
    let now = now_from(data);
    let is_object = opens_an_object(data);
    let record = from_slice::<KeyRecord>(data);
    let project = from_slice::<Project>(data);
    let event = from_slice::<AuditEvent>(data);
    if !is_object {
        assert!(
            record.is_err() && project.is_err() && event.is_err(),
            "a non-object decoded"
        );
    }
    if let Ok(record) = record {
        assert!(KeyHash::from_hex(record.hash.as_str()).is_some());
        let text = to_json(&record);
        assert_eq!(from_str::<KeyRecord>(&text).unwrap(), record);
        let view = to_json(&record.view(now));
        assert!(
            !view.contains(record.hash.as_str()),
            "a view shows the hash"
        );
        let _ = authorize(&record, now);
        let _ = record.status(now);
    }
    if let Ok(project) = project {
        let text = to_json(&project);
        assert_eq!(from_str::<Project>(&text).unwrap(), project);
        let _ = to_json(&project.view());
    }
    if let Ok(event) = event {
        let text = to_json(&event);
        assert_eq!(from_str::<AuditEvent>(&text).unwrap(), event);
        let _ = to_json(&event.view());
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
        let decodes = from_str::<KeyRecord>(text).is_ok();
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
