//! Criterion benchmark of the authorizer's pure core, step by step and as the whole verify path
//! the worker runs per request (minus KV I/O): parse → hash → record decode → authorize.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use lumiqtrace_core::json_object;
use lumiqtrace_core::key::ApiKey;
use lumiqtrace_core::record::{authorize, KeyRecord};

const NOW_MS: u64 = 1_795_689_954_123;

fn sample() -> (String, String) {
    let key = ApiKey::from_secret_bytes(&[0x5a; 32]);
    let record = KeyRecord::new(
        "key_01JBENCH".into(),
        &key,
        "production-web".into(),
        "web-app".into(),
        NOW_MS - 86_400_000,
        None,
    );
    let json = serde_json::to_string(&record).unwrap();
    (key.expose().to_owned(), json)
}

fn benches(c: &mut Criterion) {
    let (key_text, record_json) = sample();
    let malformed = format!("LQT_{}", &key_text[4..]);
    let key = ApiKey::parse(&key_text).unwrap();
    let record: KeyRecord = json_object::from_str(&record_json).unwrap();

    c.bench_function("parse", |b| b.iter(|| ApiKey::parse(black_box(&key_text))));
    c.bench_function("hash", |b| b.iter(|| black_box(&key).hash()));
    c.bench_function("decode", |b| {
        b.iter(|| json_object::from_str::<KeyRecord>(black_box(&record_json)).unwrap())
    });
    c.bench_function("authorize", |b| {
        b.iter(|| authorize(black_box(&record), NOW_MS))
    });
    c.bench_function("verify_valid", |b| {
        b.iter(|| {
            let key = ApiKey::parse(black_box(&key_text)).unwrap();
            black_box(key.hash());
            let rec: KeyRecord = json_object::from_str(black_box(&record_json)).unwrap();
            authorize(&rec, NOW_MS)
        })
    });
    c.bench_function("reject_malformed", |b| {
        b.iter(|| ApiKey::parse(black_box(&malformed)))
    });
}

criterion_group!(core, benches);
criterion_main!(core);
