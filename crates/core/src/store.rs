//! The storage seam: a minimal key-value trait shaped like Workers KV, and an in-memory
//! implementation for tests that records every operation and can inject failures.

use std::cell::RefCell;
use std::collections::BTreeMap;

/// Workers KV caps a key's metadata at 1024 bytes of serialized JSON.
pub const METADATA_MAX_BYTES: usize = 1024;
/// Workers KV refuses key names over 512 bytes ([`MemoryStore`] does too).
pub const KV_KEY_MAX_BYTES: usize = 512;

/// Storage could not answer. The caller fails closed: nothing is authorized on this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage unavailable: {0}")]
pub struct StoreError(pub String);

/// One entry of a prefix listing: its name and, when it was written with some, its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub metadata: Option<String>,
}

/// A key-value store with Workers KV's shape: get, put (value plus optional JSON metadata of at
/// most [`METADATA_MAX_BYTES`]) and list by prefix (names in lexicographic order, with metadata).
#[allow(async_fn_in_trait)] // single-threaded Workers runtime: no `Send` bound wanted
pub trait Store {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError>;
    async fn put(&self, key: &str, value: &str, metadata: Option<&str>) -> Result<(), StoreError>;
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError>;

    /// Several values at once, in order (at most [`GET_MANY_MAX`] names). Workers KV answers
    /// this with one bulk read, which counts as one operation against the per-invocation limit;
    /// by default it is one `get` per name.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.get(key).await?);
        }
        Ok(out)
    }
}

/// Most names one [`Store::get_many`] takes (Workers KV's bulk-read limit).
pub const GET_MANY_MAX: usize = 100;

/// Kind of a storage operation, as [`MemoryStore`] records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get,
    Put,
    List,
}

#[derive(Default)]
struct Inner {
    entries: BTreeMap<String, (String, Option<String>)>,
    log: Vec<(Op, String)>,
    fail_from: Option<usize>,
    fail_kind: Option<Op>,
    fail_left: Option<usize>,
}

/// In-memory [`Store`] for tests. Every operation is logged; `fail_from(n, kind)` makes the
/// n-th operation from now (0-based, counting only `kind` if given) and every later one fail.
#[derive(Default)]
pub struct MemoryStore {
    inner: RefCell<Inner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Operations performed so far, in order.
    pub fn log(&self) -> Vec<(Op, String)> {
        self.inner.borrow().log.clone()
    }

    /// Fails the `n`-th next operation (of `kind`, or of any kind) and all after it.
    pub fn fail_from(&self, n: usize, kind: Option<Op>) {
        let mut inner = self.inner.borrow_mut();
        let done = inner
            .log
            .iter()
            .filter(|(op, _)| kind.is_none_or(|k| k == *op))
            .count();
        inner.fail_from = Some(done + n);
        inner.fail_kind = kind;
        inner.fail_left = None;
    }

    /// Lets only the next `count` injected failures happen, then heals.
    pub fn heal_after(&self, count: usize) {
        self.inner.borrow_mut().fail_left = Some(count);
    }

    /// Stops injecting failures.
    pub fn heal(&self) {
        self.inner.borrow_mut().fail_from = None;
    }

    /// Every stored name and value (for scans such as "no plaintext key anywhere").
    pub fn dump(&self) -> Vec<(String, String, Option<String>)> {
        let inner = self.inner.borrow();
        let rows = inner.entries.iter();
        rows.map(|(k, (v, m))| (k.clone(), v.clone(), m.clone()))
            .collect()
    }

    fn record(&self, op: Op, key: &str) -> Result<(), StoreError> {
        if op != Op::List && key.len() > KV_KEY_MAX_BYTES {
            return Err(StoreError(format!(
                "key name over {KV_KEY_MAX_BYTES} bytes"
            )));
        }
        let mut inner = self.inner.borrow_mut();
        let counted = inner
            .log
            .iter()
            .filter(|(o, _)| inner.fail_kind.is_none_or(|k| k == *o))
            .count();
        let applies = inner.fail_kind.is_none_or(|k| k == op);
        inner.log.push((op, key.to_owned()));
        match inner.fail_from {
            Some(from) if applies && counted >= from => {
                if let Some(left) = inner.fail_left.as_mut() {
                    *left = left.saturating_sub(1);
                    if *left == 0 {
                        inner.fail_from = None;
                    }
                }
                Err(StoreError(format!("injected {op:?} failure on {key}")))
            }
            _ => Ok(()),
        }
    }
}

impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.record(Op::Get, key)?;
        Ok(self.inner.borrow().entries.get(key).map(|(v, _)| v.clone()))
    }

    async fn put(&self, key: &str, value: &str, metadata: Option<&str>) -> Result<(), StoreError> {
        self.record(Op::Put, key)?;
        if metadata.is_some_and(|m| m.len() > METADATA_MAX_BYTES) {
            return Err(StoreError(format!(
                "metadata over {METADATA_MAX_BYTES} bytes"
            )));
        }
        let entry = (value.to_owned(), metadata.map(str::to_owned));
        self.inner
            .borrow_mut()
            .entries
            .insert(key.to_owned(), entry);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        self.record(Op::List, prefix)?;
        let inner = self.inner.borrow();
        let matching = inner.entries.range(prefix.to_owned()..);
        Ok(matching
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (_, m))| Listed {
                name: k.clone(),
                metadata: m.clone(),
            })
            .collect())
    }
}

/// A distant location's view of a [`MemoryStore`] (tests): writes go to the primary at once,
/// reads see only what the replica had when it last caught up — KV's eventual consistency.
#[cfg(test)]
pub struct Replica<'a> {
    pub primary: &'a MemoryStore,
    seen: MemoryStore,
}

#[cfg(test)]
impl<'a> Replica<'a> {
    pub fn new(primary: &'a MemoryStore) -> Self {
        let replica = Self {
            primary,
            seen: MemoryStore::new(),
        };
        replica.catch_up();
        replica
    }

    /// Operations served from this location's view so far (reads and listings), in order.
    pub fn log(&self) -> Vec<(Op, String)> {
        self.seen.log()
    }

    /// Sees everything the primary holds now.
    pub fn catch_up(&self) {
        let copy = self.primary.inner.borrow().entries.clone();
        self.seen.inner.borrow_mut().entries = copy;
    }
}

#[cfg(test)]
impl Store for Replica<'_> {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.seen.get(key).await
    }

    async fn put(&self, key: &str, value: &str, metadata: Option<&str>) -> Result<(), StoreError> {
        self.primary.put(key, value, metadata).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        self.seen.list(prefix).await
    }
}

/// Wraps a store so that every operation first yields to the executor once (tests), letting
/// concurrent operations interleave at each storage step as they do on the platform.
#[cfg(test)]
pub struct Yielding<S>(pub S);

#[cfg(test)]
pub(crate) async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
impl<S: Store> Store for Yielding<S> {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        yield_once().await;
        self.0.get(key).await
    }

    async fn put(&self, key: &str, value: &str, metadata: Option<&str>) -> Result<(), StoreError> {
        yield_once().await;
        self.0.put(key, value, metadata).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        yield_once().await;
        self.0.list(prefix).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pollster::block_on;

    #[test]
    fn memory_store_lists_by_prefix_in_order_with_metadata() {
        let s = MemoryStore::new();
        block_on(async {
            s.put("a/2", "v2", Some("{}")).await.unwrap();
            s.put("a/1", "v1", None).await.unwrap();
            s.put("b/1", "v3", None).await.unwrap();
            let listed = s.list("a/").await.unwrap();
            let names: Vec<_> = listed.iter().map(|l| l.name.as_str()).collect();
            assert_eq!(names, ["a/1", "a/2"]);
            assert_eq!(listed[1].metadata.as_deref(), Some("{}"));
            assert_eq!(s.get("a/1").await.unwrap().as_deref(), Some("v1"));
            assert_eq!(s.get("zz").await.unwrap(), None);
        });
    }

    #[test]
    fn injected_failure_hits_the_nth_operation_and_after() {
        let s = MemoryStore::new();
        block_on(async {
            s.fail_from(1, Some(Op::Put));
            assert!(s.put("k1", "v", None).await.is_ok());
            assert!(s.get("k1").await.is_ok());
            assert!(s.put("k2", "v", None).await.is_err());
            assert!(s.put("k3", "v", None).await.is_err());
            assert_eq!(s.get("k2").await.unwrap(), None);
            s.heal();
            assert!(s.put("k2", "v", None).await.is_ok());
            s.fail_from(0, None);
            s.heal_after(1);
            assert!(s.get("k2").await.is_err());
            assert!(s.get("k2").await.is_ok());
        });
    }

    #[test]
    fn oversized_metadata_is_refused_like_kv() {
        let s = MemoryStore::new();
        let big = "x".repeat(METADATA_MAX_BYTES + 1);
        assert!(block_on(s.put("k", "v", Some(&big))).is_err());
    }
}
