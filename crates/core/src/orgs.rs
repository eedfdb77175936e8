//! Organizations and their admin tokens: who is calling an admin route ([`Actor`], resolved once
//! at sign-in), what that caller may see ([`Scope`], the one place the organization boundary is
//! checked), the organizations themselves (in KV, beside projects) and the organization admin
//! tokens, whose source of truth is a strongly consistent [`TokenAuthority`] (the `AdminTokens`
//! Durable Object in the worker; [`TokenBook`] is its logic, pure).
//!
//! Consistency. Every admin request presenting an `lqta_` token asks the authority, unless this
//! isolate confirmed the same token active less than `CHANGES_REFRESH_SECONDS` ago
//! ([`TokenCache`]); a revocation is therefore refused at once by the authority and by the
//! revoking isolate (which drops its entry), and by every other isolate within the same bound as
//! a key revocation. When the authority cannot answer, an `lqta_` token is refused with 503
//! (fail closed); the operator's `ADMIN_TOKEN` does not depend on it.

use crate::admin::{append_event, Done, Keys};
use crate::changes::ChangeFeed;
use crate::error::ApiError;
use crate::key::{random_bytes, KeyHash, OrgAdminToken};
use crate::leaks::{Revocation, Revoker, TokenRevoker};
use crate::record::{
    is_valid_project_id, normalize_name, AdminTokenRecord, AdminTokenView, AuditEvent, KeyRecord,
    KeyView, Org, OrgView, Project, DEFAULT_ORG,
};
use crate::repo::{Repo, RepoError};
use crate::store::{Store, StoreError};
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Who signed in to an admin route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The deployment's `ADMIN_TOKEN`: every organization.
    Operator,
    /// An organization admin token (active when resolved): its organization only.
    OrgAdmin(AdminTokenRecord),
}

impl Actor {
    /// The organization this caller is confined to; `None`: every one.
    pub fn org(&self) -> Option<&str> {
        match self {
            Actor::Operator => None,
            Actor::OrgAdmin(token) => Some(&token.org_id),
        }
    }

    /// `(actor, actor_token_id, actor_token_name)` of an audit event this caller causes.
    pub fn audit_fields(&self) -> (&'static str, Option<&str>, Option<&str>) {
        match self {
            Actor::Operator => ("operator", None, None),
            Actor::OrgAdmin(t) => ("admin_token", Some(&t.id), Some(&t.name)),
        }
    }
}

/// What an [`Actor`] may see. Anything outside answers as if it did not exist (404, never 403,
/// which would confirm that it exists).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a>(pub &'a Actor);

impl Scope<'_> {
    /// Whether organization `org_id` is visible.
    pub fn sees_org(&self, org_id: &str) -> bool {
        self.0.org().is_none_or(|own| own == org_id)
    }

    /// The project `id`, if visible; else [`ApiError::ProjectNotFound`].
    pub async fn project<S: Store>(
        &self,
        repo: &Repo<'_, S>,
        id: &str,
    ) -> Result<Project, ApiError> {
        let project = self.visible(repo.project(id).await?);
        project.ok_or(ApiError::ProjectNotFound)
    }

    /// `project` (as stored: `None` if never created) if this caller may see it.
    fn visible(&self, project: Option<Project>) -> Option<Project> {
        project.filter(|p| self.sees_org(&p.org_id))
    }

    /// The ids of the visible projects (`org_id`: only that organization's, itself checked).
    pub async fn project_ids<S: Store>(
        &self,
        repo: &Repo<'_, S>,
        org_id: Option<&str>,
    ) -> Result<BTreeSet<String>, ApiError> {
        let org = self.org_filter(org_id)?;
        let projects = repo.list_projects().await?;
        let mut ids = BTreeSet::new();
        ids.extend(
            (projects.into_iter())
                .filter(|p| self.sees_org(&p.org_id) && org.is_none_or(|o| o == p.org_id))
                .map(|p| p.id),
        );
        Ok(ids)
    }

    /// An `org_id` filter as asked: visible, or [`ApiError::OrgNotFound`].
    pub fn org_filter<'o>(&self, org_id: Option<&'o str>) -> Result<Option<&'o str>, ApiError> {
        match org_id {
            Some(o) if !self.sees_org(o) => Err(ApiError::OrgNotFound),
            other => Ok(other),
        }
    }

    /// The key `id`, if its project is visible; else [`ApiError::KeyNotFound`].
    pub async fn key<S: Store, F: ChangeFeed>(
        &self,
        keys: &Keys<'_, S, F>,
        id: &str,
        now: Millis,
    ) -> Result<(KeyRecord, KeyView), ApiError> {
        let (record, view, project) = crate::admin::get_key(keys, id, now).await?;
        // Its project as get_key read it, judged as `Scope::project` judges it (no second read).
        if self.0.org().is_some() && self.visible(project).is_none() {
            return Err(ApiError::KeyNotFound);
        }
        Ok((record, view))
    }

    /// Whether the key `record` is visible: the leak report of an organization admin revokes
    /// only its own organization's keys (the others read as unknown).
    pub fn sees_key(&self, record: &KeyRecord, projects: &BTreeSet<String>) -> bool {
        self.0.org().is_none() || projects.contains(&record.project_id)
    }
}

/// An admin leak report of an organization admin: keys outside its organization read as
/// unknown, so they are neither revoked nor confirmed to exist.
pub struct ScopedRevoker<'a, 'k, S, F> {
    pub keys: &'a Keys<'k, S, F>,
    pub scope: Scope<'a>,
    /// The projects `scope` sees.
    pub projects: BTreeSet<String>,
}

impl<'k, S: Store, F: ChangeFeed> Revoker for ScopedRevoker<'_, 'k, S, F> {
    const LOOKUP_BATCH: usize = <Keys<'k, S, F> as Revoker>::LOOKUP_BATCH;
    const REVOKE_BATCH: usize = <Keys<'k, S, F> as Revoker>::REVOKE_BATCH;
    const REVOKE_OPS: usize = <Keys<'k, S, F> as Revoker>::REVOKE_OPS;

    async fn lookup(
        &self,
        hashes: &[KeyHash],
        now: Millis,
    ) -> Result<Vec<Option<KeyRecord>>, ApiError> {
        let mut found = self.keys.lookup(hashes, now).await?;
        for slot in &mut found {
            if slot
                .as_ref()
                .is_some_and(|r| !self.scope.sees_key(r, &self.projects))
            {
                *slot = None;
            }
        }
        Ok(found)
    }

    async fn revoke(
        &self,
        batch: &[(KeyRecord, Revocation)],
        now: Millis,
    ) -> Result<Option<String>, ApiError> {
        self.keys.revoke(batch, now).await
    }
}

/// `POST /admin/v1/orgs`: the operator only (others get 404 from the router). Audited as
/// `org.created`.
pub async fn create_org<S: Store>(
    repo: &Repo<'_, S>,
    actor: &Actor,
    id: &str,
    name: &str,
    now: Millis,
) -> Result<Done<OrgView>, ApiError> {
    if !is_valid_project_id(id) {
        return Err(ApiError::InvalidOrgId);
    }
    let name = normalize_name(name).ok_or(ApiError::InvalidName)?;
    if repo.org(id).await?.is_some() || (id == DEFAULT_ORG && ensure_default(repo, now).await?) {
        return Err(ApiError::OrgExists);
    }
    let org = Org {
        id: id.to_owned(),
        name,
        created_at: now,
    };
    repo.put_org(&org).await?;
    let event = org_event(actor.audit_fields(), "org.created", id, None, None, now);
    Ok(Done {
        value: org.view(),
        warning: append_event(repo, event).await,
    })
}

/// An audit event about organization `org_id` (and its admin token `admin_token_id`), without
/// a project; `who` as [`Actor::audit_fields`]. Its id is made when it is appended.
fn org_event(
    who: (&str, Option<&str>, Option<&str>),
    action: &str,
    org_id: &str,
    admin_token_id: Option<&str>,
    reason: Option<&str>,
    now: Millis,
) -> AuditEvent {
    AuditEvent {
        id: String::new(),
        actor: who.0.into(),
        actor_token_id: who.1.map(str::to_owned),
        actor_token_name: who.2.map(str::to_owned),
        action: action.into(),
        project_id: None,
        org_id: Some(org_id.into()),
        admin_token_id: admin_token_id.map(str::to_owned),
        key_id: None,
        reason: reason.map(str::to_owned),
        at: now,
    }
}

/// Stores the `default` organization if it is not stored yet and some project belongs to it
/// (every project written before organizations existed does). Returns whether it exists now.
pub async fn ensure_default<S: Store>(repo: &Repo<'_, S>, now: Millis) -> Result<bool, RepoError> {
    if repo.org(DEFAULT_ORG).await?.is_some() {
        return Ok(true);
    }
    let projects = repo.list_projects().await?;
    let oldest = (projects.iter())
        .filter(|p| p.org_id == DEFAULT_ORG)
        .map(|p| p.created_at)
        .min();
    let Some(created_at) = oldest else {
        return Ok(false);
    };
    let org = Org {
        id: DEFAULT_ORG.into(),
        name: "Default".into(),
        created_at: created_at.min(now),
    };
    repo.put_org(&org).await?;
    Ok(true)
}

/// The organizations `scope` sees, oldest first (`default` created on first need).
pub async fn list_orgs<S: Store>(
    repo: &Repo<'_, S>,
    scope: Scope<'_>,
    now: Millis,
) -> Result<Vec<OrgView>, ApiError> {
    ensure_default(repo, now).await?;
    let mut orgs = repo.list_orgs().await?;
    orgs.retain(|o| scope.sees_org(&o.id));
    orgs.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(orgs.iter().map(Org::view).collect())
}

/// One organization, if `scope` sees it.
pub async fn get_org<S: Store>(
    repo: &Repo<'_, S>,
    scope: Scope<'_>,
    id: &str,
    now: Millis,
) -> Result<Org, ApiError> {
    if !scope.sees_org(id) || id.len() > 63 {
        return Err(ApiError::OrgNotFound);
    }
    if id == DEFAULT_ORG {
        ensure_default(repo, now).await?;
    }
    repo.org(id).await?.ok_or(ApiError::OrgNotFound)
}

/// The organization a new project goes to: an organization admin's own (naming another is
/// [`ApiError::OrgNotFound`]); for the operator the one named, else `default` (created now if
/// need be).
pub async fn project_org<S: Store>(
    repo: &Repo<'_, S>,
    scope: Scope<'_>,
    requested: Option<&str>,
    now: Millis,
) -> Result<String, ApiError> {
    let org_id = match (requested, scope.0.org()) {
        (Some(asked), _) if !scope.sees_org(asked) => return Err(ApiError::OrgNotFound),
        (_, Some(own)) => own,
        (Some(asked), None) => asked,
        (None, None) => DEFAULT_ORG,
    };
    if org_id == DEFAULT_ORG && repo.org(DEFAULT_ORG).await?.is_none() {
        let org = Org {
            id: DEFAULT_ORG.into(),
            name: "Default".into(),
            created_at: now,
        };
        repo.put_org(&org).await?;
        return Ok(org.id);
    }
    get_org(repo, scope, org_id, now).await.map(|o| o.id)
}

/// A newly issued admin token: the plaintext (shown once) and its view.
#[derive(Debug)]
pub struct IssuedToken {
    pub token: OrgAdminToken,
    pub admin_token: AdminTokenView,
}

/// `POST /admin/v1/orgs/{id}/admin-tokens` (operator only). Audited as `admin_token.created`.
pub async fn create_admin_token<S: Store, T: TokenAuthority>(
    repo: &Repo<'_, S>,
    actor: &Actor,
    tokens: &T,
    org_id: &str,
    name: &str,
    now: Millis,
) -> Result<Done<IssuedToken>, ApiError> {
    let name = normalize_name(name).ok_or(ApiError::InvalidName)?;
    let org = get_org(repo, Scope(&Actor::Operator), org_id, now).await?;
    let token =
        OrgAdminToken::generate().map_err(|e| ApiError::Internal(format!("CSPRNG: {e}")))?;
    let random = random_bytes::<6>().map_err(|e| ApiError::Internal(format!("CSPRNG: {e}")))?;
    let record = AdminTokenRecord {
        id: format!("adm_{}", hex::encode(random)),
        hash: token.hash(),
        name,
        org_id: org.id,
        prefix: token.display_prefix(),
        created_at: now,
        revoked_at: None,
        revoked_reason: None,
    };
    tokens.create(&record).await.map_err(unavailable)?;
    let who = actor.audit_fields();
    let event = org_event(
        who,
        "admin_token.created",
        &record.org_id,
        Some(&record.id),
        None,
        now,
    );
    Ok(Done {
        value: IssuedToken {
            token,
            admin_token: record.view(),
        },
        warning: append_event(repo, event).await,
    })
}

/// The admin tokens of one organization, newest first.
pub async fn list_admin_tokens<S: Store, T: TokenAuthority>(
    repo: &Repo<'_, S>,
    tokens: &T,
    org_id: &str,
    now: Millis,
) -> Result<Vec<AdminTokenView>, ApiError> {
    get_org(repo, Scope(&Actor::Operator), org_id, now).await?;
    let mut listed = tokens.list(org_id).await.map_err(unavailable)?;
    listed.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    Ok(listed.iter().map(AdminTokenRecord::view).collect())
}

/// `POST /admin/v1/admin-tokens/{id}/revoke` (operator only): revokes an admin token at once
/// (revoking again changes nothing, and is not audited again); this isolate forgets it at once
/// too. Audited as `admin_token.revoked`.
pub async fn revoke_admin_token<S: Store, T: TokenAuthority>(
    repo: &Repo<'_, S>,
    actor: &Actor,
    tokens: &Tokens<'_, T>,
    id: &str,
    now: Millis,
) -> Result<Done<AdminTokenView>, ApiError> {
    let revoked = revoke_token(repo, actor.audit_fields(), tokens, id, None, now).await?;
    let (record, warning) = revoked.ok_or(ApiError::AdminTokenNotFound)?;
    Ok(Done {
        value: record.view(),
        warning,
    })
}

/// Revokes admin token `id` with the authority (`reason` recorded on it), forgets it in this
/// isolate, and appends an `admin_token.revoked` event by `who` if this call revoked it. `None`:
/// no such token; else the record as it stands and the log line owed if only the audit failed.
async fn revoke_token<S: Store, T: TokenAuthority>(
    repo: &Repo<'_, S>,
    who: (&str, Option<&str>, Option<&str>),
    tokens: &Tokens<'_, T>,
    id: &str,
    reason: Option<&str>,
    now: Millis,
) -> Result<Option<(AdminTokenRecord, Option<String>)>, ApiError> {
    let revoked = tokens.authority.revoke(id, now, reason).await;
    let Some(TokenRevoked { record, changed }) = revoked.map_err(unavailable)? else {
        return Ok(None);
    };
    tokens.cache.borrow_mut().forget(&record.hash);
    let mut warning = None;
    if changed {
        let reason = record.revoked_reason.as_deref();
        let event = org_event(
            who,
            "admin_token.revoked",
            &record.org_id,
            Some(id),
            reason,
            now,
        );
        warning = append_event(repo, event).await;
    }
    Ok(Some((record, warning)))
}

/// GitHub's leak reports revoke admin tokens through this: bulk lookups in the authority
/// ([`TokenAuthority::by_hashes`]), then one revoke per live token, forgotten by this isolate at
/// once (so it answers 401 at once here, and everywhere within the refresh interval).
pub struct TokenLeaks<'a, S, T> {
    pub repo: &'a Repo<'a, S>,
    pub tokens: &'a Tokens<'a, T>,
}

impl<S: Store, T: TokenAuthority> TokenRevoker for TokenLeaks<'_, S, T> {
    /// One subrequest to the `AdminTokens` Durable Object per 100 hashes.
    const LOOKUP_BATCH: usize = 100;
    const REVOKE_OPS: usize = 2;

    async fn lookup_tokens(
        &self,
        hashes: &[KeyHash],
    ) -> Result<Vec<Option<AdminTokenRecord>>, ApiError> {
        let found = self.tokens.authority.by_hashes(hashes).await;
        found.map_err(unavailable)
    }

    async fn revoke_token(
        &self,
        record: &AdminTokenRecord,
        why: &Revocation,
        now: Millis,
    ) -> Result<Option<String>, ApiError> {
        let who = (why.actor, None, None);
        let reason = Some(why.reason.as_str());
        let revoked = revoke_token(self.repo, who, self.tokens, &record.id, reason, now).await?;
        Ok(revoked.and_then(|(_, warning)| warning))
    }
}

fn unavailable(e: StoreError) -> ApiError {
    ApiError::Unavailable(RepoError::Store(e))
}

/// The admin tokens' source of truth, strongly consistent (a Durable Object in the worker,
/// a `RefCell<TokenBook>` in tests). Errors: it could not be reached or answer.
#[allow(async_fn_in_trait)] // single-threaded Workers runtime: no `Send` bound wanted
pub trait TokenAuthority {
    async fn create(&self, record: &AdminTokenRecord) -> Result<(), StoreError>;
    async fn by_hash(&self, hash: &KeyHash) -> Result<Option<AdminTokenRecord>, StoreError>;
    /// The tokens under these hashes, in the same order (`None`: no such token); one call.
    async fn by_hashes(
        &self,
        hashes: &[KeyHash],
    ) -> Result<Vec<Option<AdminTokenRecord>>, StoreError>;
    async fn list(&self, org_id: &str) -> Result<Vec<AdminTokenRecord>, StoreError>;
    /// Revokes token `id` at `now`, recording `reason` if this revokes it; `None`: no such token.
    async fn revoke(
        &self,
        id: &str,
        now: Millis,
        reason: Option<&str>,
    ) -> Result<Option<TokenRevoked>, StoreError>;
}

/// An admin token after a revoke, and whether that revoke changed it (`false`: it was revoked
/// already, and keeps its first `revoked_at` and reason). The `AdminTokens` object's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRevoked {
    pub record: AdminTokenRecord,
    pub changed: bool,
}

/// Every admin token, by hash: the logic of the `AdminTokens` Durable Object (which persists
/// each record a call returns), and the test double of [`TokenAuthority`].
#[derive(Debug, Default)]
pub struct TokenBook(BTreeMap<KeyHash, AdminTokenRecord>);

impl TokenBook {
    pub fn from_records(records: impl IntoIterator<Item = AdminTokenRecord>) -> Self {
        let mut book = BTreeMap::new();
        book.extend(records.into_iter().map(|r| (r.hash.clone(), r)));
        Self(book)
    }

    /// Whether a token with `record`'s hash or id is already held.
    pub fn holds(&self, record: &AdminTokenRecord) -> bool {
        self.0.contains_key(&record.hash) || self.0.values().any(|r| r.id == record.id)
    }

    /// Adds a token; `false` if its id or hash is taken (nothing changes).
    pub fn create(&mut self, record: AdminTokenRecord) -> bool {
        if self.holds(&record) {
            return false;
        }
        self.0.insert(record.hash.clone(), record);
        true
    }

    pub fn by_hash(&self, hash: &KeyHash) -> Option<&AdminTokenRecord> {
        self.0.get(hash)
    }

    pub fn list(&self, org_id: &str) -> Vec<AdminTokenRecord> {
        self.0
            .values()
            .filter(|r| r.org_id == org_id)
            .cloned()
            .collect()
    }

    pub fn by_hashes(&self, hashes: &[KeyHash]) -> Vec<Option<AdminTokenRecord>> {
        hashes.iter().map(|h| self.0.get(h).cloned()).collect()
    }

    /// Revokes with `reason` (a token revoked already keeps its first `revoked_at` and reason);
    /// the record as it stands, if any.
    pub fn revoke(&mut self, id: &str, now: Millis, reason: Option<&str>) -> Option<TokenRevoked> {
        let record = self.0.values_mut().find(|r| r.id == id)?;
        let changed = record.revoked_at.is_none();
        if changed {
            record.revoked_at = Some(now);
            record.revoked_reason = reason.map(str::to_owned);
        }
        Some(TokenRevoked {
            record: record.clone(),
            changed,
        })
    }
}

/// A revoke as the `AdminTokens` object makes it durable: `persist` stores the revoked record
/// (when this revoke changes it) before `book` holds it, so memory never runs ahead of storage:
/// a revoke that could not be stored leaves the token live in both (a retry, or GitHub's next
/// delivery, revokes it again) rather than revoked until the object restarts and then live
/// again. `None`: no such token; an error of `persist` is returned as is.
pub async fn revoke_persisted<E>(
    book: &RefCell<TokenBook>,
    id: &str,
    now: Millis,
    reason: Option<&str>,
    persist: impl AsyncFnOnce(&AdminTokenRecord) -> Result<(), E>,
) -> Result<Option<TokenRevoked>, E> {
    let mut draft = TokenBook::default();
    let found = book.borrow().0.values().find(|r| r.id == id).cloned();
    draft.0.extend(found.map(|r| (r.hash.clone(), r)));
    let Some(revoked) = draft.revoke(id, now, reason) else {
        return Ok(None);
    };
    if revoked.changed {
        persist(&revoked.record).await?;
        let record = revoked.record.clone();
        book.borrow_mut().0.insert(record.hash.clone(), record);
    }
    Ok(Some(revoked))
}

/// A create as the `AdminTokens` object makes it durable: `persist` stores the record before
/// `book` holds it, so a create that could not be stored leaves nothing behind (no listed token
/// whose plaintext nobody was given). `Ok(false)`: the id or hash is taken, nothing stored; an
/// error of `persist` is returned as is.
pub async fn create_persisted<E>(
    book: &RefCell<TokenBook>,
    record: AdminTokenRecord,
    persist: impl AsyncFnOnce(&AdminTokenRecord) -> Result<(), E>,
) -> Result<bool, E> {
    if book.borrow().holds(&record) {
        return Ok(false);
    }
    persist(&record).await?;
    Ok(book.borrow_mut().create(record))
}

impl TokenAuthority for RefCell<TokenBook> {
    async fn create(&self, record: &AdminTokenRecord) -> Result<(), StoreError> {
        match self.borrow_mut().create(record.clone()) {
            true => Ok(()),
            false => Err(StoreError("admin token id taken".into())),
        }
    }
    async fn by_hash(&self, hash: &KeyHash) -> Result<Option<AdminTokenRecord>, StoreError> {
        Ok(self.borrow().by_hash(hash).cloned())
    }
    async fn by_hashes(
        &self,
        hashes: &[KeyHash],
    ) -> Result<Vec<Option<AdminTokenRecord>>, StoreError> {
        Ok(self.borrow().by_hashes(hashes))
    }
    async fn list(&self, org_id: &str) -> Result<Vec<AdminTokenRecord>, StoreError> {
        Ok(self.borrow().list(org_id))
    }
    async fn revoke(
        &self,
        id: &str,
        now: Millis,
        reason: Option<&str>,
    ) -> Result<Option<TokenRevoked>, StoreError> {
        Ok(self.borrow_mut().revoke(id, now, reason))
    }
}

/// At most this many confirmed tokens per isolate (~300 bytes each).
pub const TOKEN_CACHE_MAX: usize = 1024;

/// This isolate's recent answers of the authority for active tokens: a positive answer is
/// reused for at most the refresh interval (`CHANGES_REFRESH_SECONDS`, the bound of a key
/// revocation); refusals are never kept, nor is an answer asked for before this isolate last
/// forgot a token (requests interleave at every await: an answer still on its way when this
/// isolate revokes that token predates the revocation).
#[derive(Debug, Default)]
pub struct TokenCache {
    confirmed: HashMap<KeyHash, (AdminTokenRecord, Millis)>,
    /// How many times a token was forgotten here ([`TokenCache::forget`]).
    forgotten: u64,
}

impl TokenCache {
    fn get(&self, hash: &KeyHash, now: Millis, ttl: Millis) -> Option<&AdminTokenRecord> {
        let (record, at) = self.confirmed.get(hash)?;
        (now < at.saturating_add(ttl) && now >= *at).then_some(record)
    }

    /// Keeps `record`, confirmed by an answer asked for when [`TokenCache::forgotten`] was
    /// `asked`; an answer that may predate a forget since is not kept.
    fn keep(&mut self, record: AdminTokenRecord, now: Millis, ttl: Millis, asked: u64) {
        if self.forgotten != asked {
            return;
        }
        if self.confirmed.len() >= TOKEN_CACHE_MAX {
            self.confirmed
                .retain(|_, (_, at)| now < at.saturating_add(ttl));
        }
        if self.confirmed.len() < TOKEN_CACHE_MAX {
            self.confirmed.insert(record.hash.clone(), (record, now));
        }
    }

    pub fn forget(&mut self, hash: &KeyHash) {
        self.confirmed.remove(hash);
        self.forgotten = self.forgotten.wrapping_add(1);
    }
}

/// The admin tokens' authority and this isolate's cache of its answers.
pub struct Tokens<'a, T> {
    pub authority: &'a T,
    pub cache: &'a RefCell<TokenCache>,
}

/// Signs in an organization admin token (already known to be `lqta_`-shaped): active →
/// [`Actor::OrgAdmin`]; unknown or revoked → [`ApiError::AdminUnauthorized`]; the authority
/// unreachable → [`ApiError::Unavailable`] (fail closed).
pub async fn authenticate<T: TokenAuthority>(
    tokens: &T,
    cache: &RefCell<TokenCache>,
    token: &OrgAdminToken,
    now: Millis,
    ttl: Millis,
) -> Result<Actor, ApiError> {
    let hash = token.hash();
    if let Some(record) = cache.borrow().get(&hash, now, ttl) {
        return Ok(Actor::OrgAdmin(record.clone()));
    }
    let asked = cache.borrow().forgotten;
    match tokens.by_hash(&hash).await.map_err(unavailable)? {
        Some(record) if record.revoked_at.is_none() => {
            cache.borrow_mut().keep(record.clone(), now, ttl, asked);
            Ok(Actor::OrgAdmin(record))
        }
        _ => {
            cache.borrow_mut().forget(&hash);
            Err(ApiError::AdminUnauthorized)
        }
    }
}

#[cfg(test)]
mod tests;
