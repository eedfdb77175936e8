//! Failed admin sign-ins through [`admin_sign_in`] with a counting limiter.

use super::*;
use crate::api::AdminToken;
use crate::key::OrgAdminToken;
use crate::orgs::{TokenBook, TokenCache};
use crate::record::AdminTokenRecord;
use pollster::block_on;
use std::cell::Cell;

const TOKEN: &str = "throttle-test-admin-token-0123456789abcdef";
const SECOND: Millis = 1000;

/// Allows `budget` failures per client, as the binding does within one window; counts calls.
struct Budget {
    budget: u32,
    used: RefCell<HashMap<String, u32>>,
    calls: Cell<u32>,
}

impl Budget {
    fn new(budget: u32) -> Self {
        Self {
            budget,
            used: RefCell::default(),
            calls: Cell::new(0),
        }
    }
}

impl AttemptLimiter for Budget {
    async fn allow(&self, client: &str) -> bool {
        self.calls.set(self.calls.get() + 1);
        let mut used = self.used.borrow_mut();
        let n = used.entry(client.to_owned()).or_default();
        *n += 1;
        *n <= self.budget
    }
}

fn config(token: Option<&str>) -> Config {
    Config {
        admin_token: token.map(AdminToken::of),
        grace_ms: 0,
        refresh_ms: 0,
        quiet_ms: 0,
    }
}

struct Gate {
    config: Config,
    limiter: Budget,
    throttled: RefCell<Throttled>,
    book: RefCell<TokenBook>,
    cache: RefCell<TokenCache>,
}

impl Gate {
    fn new(budget: u32) -> Self {
        Self {
            config: config(Some(TOKEN)),
            limiter: Budget::new(budget),
            throttled: RefCell::default(),
            book: RefCell::default(),
            cache: RefCell::default(),
        }
    }

    fn tokens(&self) -> Tokens<'_, RefCell<TokenBook>> {
        Tokens {
            authority: &self.book,
            cache: &self.cache,
        }
    }

    fn sign_in(&self, token: Option<&str>, client: Option<&str>, now: Millis) -> Option<String> {
        let auth = token.map(|t| format!("Bearer {t}"));
        let tokens = self.tokens();
        let done = admin_sign_in(
            &self.config,
            &tokens,
            auth.as_deref(),
            client,
            &self.limiter,
            &self.throttled,
            now,
        );
        block_on(done).err().map(|e| e.code().to_owned())
    }
}

#[test]
fn failures_past_the_budget_are_429_then_even_the_right_token_waits_out_the_period() {
    let gate = Gate::new(3);
    let ip = Some("203.0.113.7");
    for _ in 0..3 {
        assert_eq!(
            gate.sign_in(Some("wrong"), ip, 0).as_deref(),
            Some("admin_unauthorized")
        );
    }
    assert_eq!(
        gate.sign_in(Some("wrong"), ip, SECOND).as_deref(),
        Some("too_many_attempts")
    );
    let calls = gate.limiter.calls.get();
    assert_eq!(
        gate.sign_in(Some(TOKEN), ip, 2 * SECOND).as_deref(),
        Some("too_many_attempts")
    );
    assert_eq!(
        gate.sign_in(Some("wrong"), ip, 3 * SECOND).as_deref(),
        Some("too_many_attempts")
    );
    assert_eq!(
        gate.limiter.calls.get(),
        calls,
        "a throttled client is refused unchecked"
    );
    let after = SECOND + Millis::from(PERIOD_SECONDS) * SECOND;
    assert_eq!(
        gate.sign_in(Some(TOKEN), ip, after),
        None,
        "the period is over"
    );
}

#[test]
fn the_429_says_when_to_retry() {
    let gate = Gate::new(0);
    let auth = "Bearer wrong";
    let tokens = gate.tokens();
    let done = admin_sign_in(
        &gate.config,
        &tokens,
        Some(auth),
        None,
        &gate.limiter,
        &gate.throttled,
        0,
    );
    let err = block_on(done).unwrap_err();
    assert_eq!(
        (err.status(), err.retry_after()),
        (429, Some(PERIOD_SECONDS))
    );
    let reply = crate::api::Reply::error(&err);
    assert_eq!(reply.retry_after, Some(PERIOD_SECONDS));
    assert!(reply.body.contains("too_many_attempts"));
}

#[test]
fn only_failures_that_sent_credentials_count_and_successes_never_do() {
    let gate = Gate::new(1);
    let ip = Some("198.51.100.1");
    for _ in 0..5 {
        assert_eq!(gate.sign_in(Some(TOKEN), ip, 0), None);
        assert_eq!(
            gate.sign_in(None, ip, 0).as_deref(),
            Some("admin_unauthorized")
        );
    }
    assert_eq!(gate.limiter.calls.get(), 0);
    assert_eq!(
        gate.sign_in(Some("wrong"), ip, 0).as_deref(),
        Some("admin_unauthorized")
    );
    assert_eq!(gate.limiter.calls.get(), 1);
}

#[test]
fn clients_are_throttled_apart_and_without_the_header_share_one_budget() {
    let gate = Gate::new(1);
    let attacker = Some("203.0.113.9");
    gate.sign_in(Some("wrong"), attacker, 0);
    assert_eq!(
        gate.sign_in(Some("wrong"), attacker, 0).as_deref(),
        Some("too_many_attempts")
    );
    assert_eq!(gate.sign_in(Some(TOKEN), Some("198.51.100.2"), 0), None);
    assert_eq!(
        gate.sign_in(Some("wrong"), Some("198.51.100.2"), 0)
            .as_deref(),
        Some("admin_unauthorized")
    );
    gate.sign_in(Some("wrong"), None, 0);
    assert_eq!(
        gate.sign_in(Some("wrong"), Some(" "), 0).as_deref(),
        Some("too_many_attempts")
    );
    let used = gate.limiter.used.borrow();
    assert_eq!(
        used.get(UNKNOWN_CLIENT),
        Some(&2),
        "no header and a blank one: one client"
    );
}

#[test]
fn a_misconfigured_token_counts_failures_too_and_a_missing_limiter_fails_open() {
    struct Absent;
    impl AttemptLimiter for Absent {
        async fn allow(&self, _: &str) -> bool {
            true
        }
    }
    for token in [None, Some("changeme")] {
        let gate = Gate {
            config: config(token),
            ..Gate::new(1)
        };
        gate.sign_in(Some("guess"), None, 0);
        assert_eq!(
            gate.sign_in(Some("guess"), None, 0).as_deref(),
            Some("too_many_attempts")
        );
        let open = RefCell::default();
        for _ in 0..20 {
            let tokens = gate.tokens();
            let done = admin_sign_in(
                &gate.config,
                &tokens,
                Some("Bearer guess"),
                None,
                &Absent,
                &open,
                0,
            );
            assert_eq!(block_on(done).unwrap_err().code(), "admin_unauthorized");
        }
    }
}

#[test]
fn remembered_clients_are_bounded() {
    let mut throttled = Throttled::default();
    for i in 0..MAX_THROTTLED + 10 {
        throttled.throttle(&format!("client-{i}"), 0);
    }
    assert_eq!(throttled.0.len(), MAX_THROTTLED);
    let later = Millis::from(PERIOD_SECONDS) * SECOND;
    throttled.throttle("late", later);
    assert!(throttled.is_throttled("late", later));
    assert_eq!(throttled.0.len(), 1, "expired entries made room");
}

#[test]
fn org_admin_tokens_sign_in_and_their_failures_are_throttled_the_same_way() {
    let gate = Gate::new(2);
    let token = OrgAdminToken::from_secret_bytes(&[7; 32]);
    let record = AdminTokenRecord {
        id: "adm_1".into(),
        hash: token.hash(),
        name: "ci".into(),
        org_id: "acme".into(),
        prefix: token.display_prefix(),
        created_at: 0,
        revoked_at: None,
        revoked_reason: None,
    };
    gate.book.borrow_mut().create(record.clone());
    let tokens = gate.tokens();
    let auth = format!("Bearer {}", token.expose());
    let signed = admin_sign_in(
        &gate.config,
        &tokens,
        Some(&auth),
        None,
        &gate.limiter,
        &gate.throttled,
        0,
    );
    assert_eq!(block_on(signed).unwrap(), Actor::OrgAdmin(record));
    assert_eq!(gate.limiter.calls.get(), 0, "a success counts nothing");
    let unknown = OrgAdminToken::from_secret_bytes(&[8; 32]);
    for _ in 0..2 {
        assert_eq!(
            gate.sign_in(Some(unknown.expose()), None, 0).as_deref(),
            Some("admin_unauthorized")
        );
    }
    assert_eq!(
        gate.sign_in(Some(unknown.expose()), None, 0).as_deref(),
        Some("too_many_attempts")
    );
    assert_eq!(
        gate.sign_in(Some(token.expose()), None, 0).as_deref(),
        Some("too_many_attempts")
    );
}
