//! Admin operations over any [`Store`]: projects, and keys created, listed, rotated with a
//! grace period, and revoked, each appending an audit event. Time is passed in.
//!
//! Write order. Every key change is first committed to the change log (a Durable Object; see
//! `changes`), which applies all of an operation's writes or none and serializes racing admin
//! writes by compare-and-set. KV has no transactions, so the KV writes that follow are ordered
//! so that a failure between any two of them leaves a safe state (this is all the safety there
//! is when the overlay is switched off):
//! - a key becomes usable and listed by one single write (its `key/{hash}` record: verify and
//!   the list both read that prefix), so a usable key the list does not show cannot exist;
//! - rotation stores the new key before it starts the old key's grace, so a project never loses
//!   a key that worked before (a failure in between leaves the old key active, and the unseen
//!   new key is revoked again on a best-effort basis);
//! - with a change log, a KV failure after the commit is logged, not answered: the change is
//!   served from the log and written to KV by it (`SETTLE_AFTER_MS`), and listings merge it;
//! - a revoke whose commit fails (the log unreachable) is written to KV alone and answered; the
//!   log takes it when it answers, and until then a revocation in KV wins over the log's older
//!   working version wherever the two are read together (verify, listings, admin reads);
//! - the audit event is appended after the state change commits; if only that append fails, the
//!   change stands and is answered (a rotation's new key must reach its owner), and the failure
//!   goes to the log.

use crate::changes::{ChangeFeed, Conflict, Overlay, Write};
use crate::error::ApiError;
use crate::key::KeyHash;
use crate::key::{random_bytes, ApiKey};
use crate::leaks::{self, Revocation, Revoker};
use crate::orgs::Actor;
use crate::record::KeyStatus;
use crate::record::{
    is_valid_project_id, normalize_name, AuditEvent, AuditView, KeyRecord, KeyView, Project,
    ProjectView, MAX_ROTATION_PERIOD_DAYS,
};
use crate::repo::Repo;
use crate::store::{Store, GET_MANY_MAX};
use crate::time::Millis;
use std::cell::RefCell;

/// A committed change, and the log line owed if its audit event could not be appended.
#[derive(Debug)]
pub struct Done<T> {
    pub value: T,
    pub warning: Option<String>,
}

/// A newly issued key: the plaintext (shown once) and its view; for a rotation also the old key.
#[derive(Debug)]
pub struct Issued {
    pub key: ApiKey,
    pub api_key: KeyView,
    pub previous: Option<KeyView>,
}

/// A project in organization `org_id` (which the caller resolved: `orgs::project_org`), created
/// by `actor`.
pub async fn create_project<S: Store>(
    repo: &Repo<'_, S>,
    actor: &Actor,
    org_id: &str,
    id: &str,
    name: &str,
    rotation_period_days: Option<u32>,
    now: Millis,
) -> Result<Done<ProjectView>, ApiError> {
    if !is_valid_project_id(id) {
        return Err(ApiError::InvalidProjectId);
    }
    let name = normalize_name(name).ok_or(ApiError::InvalidName)?;
    check_rotation_period(rotation_period_days)?;
    if repo.project(id).await?.is_some() {
        return Err(ApiError::ProjectExists);
    }
    let project = Project {
        id: id.to_owned(),
        name,
        created_at: now,
        org_id: org_id.to_owned(),
        rotation_period_days,
    };
    repo.put_project(&project).await?;
    let warning = audit(repo, actor, "project.created", id, None, now).await;
    Ok(Done {
        value: project.view(),
        warning,
    })
}

/// Sets (or, with `None`, clears) a project's `rotation_period_days`: 1 to
/// [`MAX_ROTATION_PERIOD_DAYS`]. One KV write of the project record (an admin action, far
/// below KV's one write per second per key); audited as `project.updated`.
pub async fn set_rotation_period<S: Store>(
    repo: &Repo<'_, S>,
    actor: &Actor,
    id: &str,
    rotation_period_days: Option<u32>,
    now: Millis,
) -> Result<Done<ProjectView>, ApiError> {
    check_rotation_period(rotation_period_days)?;
    let mut project = repo.project(id).await?.ok_or(ApiError::ProjectNotFound)?;
    project.rotation_period_days = rotation_period_days;
    repo.put_project(&project).await?;
    let warning = audit(repo, actor, "project.updated", id, None, now).await;
    Ok(Done {
        value: project.view(),
        warning,
    })
}

fn check_rotation_period(days: Option<u32>) -> Result<(), ApiError> {
    match days {
        Some(d) if !(1..=MAX_ROTATION_PERIOD_DAYS).contains(&d) => {
            Err(ApiError::InvalidRotationPeriod)
        }
        _ => Ok(()),
    }
}

pub async fn list_projects<S: Store>(repo: &Repo<'_, S>) -> Result<Vec<ProjectView>, ApiError> {
    let mut projects = repo.list_projects().await?;
    // Newest first; projects of the same instant by id, ascending.
    projects.sort_by(|a, b| (b.created_at, &a.id).cmp(&(a.created_at, &b.id)));
    Ok(projects.iter().map(Project::view).collect())
}

/// What key operations work against: KV through the repo, the change log (a Durable Object,
/// or [`crate::changes::NoFeed`] when the overlay is off) and this isolate's overlay; `actor`
/// is who their audit events name (the signed-in admin; on ingest routes unused).
pub struct Keys<'a, S, F> {
    pub repo: Repo<'a, S>,
    pub feed: &'a F,
    pub overlay: &'a RefCell<Overlay>,
    pub actor: &'a Actor,
}

/// Optional settings of a new key: when it expires (Unix ms; a past instant is taken, and the
/// key is refused as expired from the start) and its environment label, already normalized
/// ([`crate::record::normalize_environment`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyOptions {
    pub expires_at: Option<Millis>,
    pub environment: Option<String>,
}

pub async fn create_key<S: Store, F: ChangeFeed>(
    keys: &Keys<'_, S, F>,
    project_id: &str,
    name: &str,
    options: KeyOptions,
    now: Millis,
) -> Result<Done<Issued>, ApiError> {
    let name = normalize_name(name).ok_or(ApiError::InvalidName)?;
    let Some(project) = keys.repo.project(project_id).await? else {
        return Err(ApiError::ProjectNotFound);
    };
    let (key, mut record) = new_key(name, project_id.to_owned(), now, None)?;
    record.expires_at = options.expires_at;
    record.environment = options.environment;
    let write = Write {
        prev: None,
        next: record.clone(),
    };
    let warning = match commit(keys, &[write], now).await {
        Ok(Commit::Done(warning)) => warning,
        Ok(Commit::Lost(_)) => return Err(ApiError::Internal("new key id collided".into())),
        Err((_, e)) => return Err(e),
    };
    let audited = audit(
        &keys.repo,
        keys.actor,
        "key.created",
        project_id,
        Some(&record.id),
        now,
    )
    .await;
    let mut api_key = record.view(now);
    api_key.rotation_policy(&record, project.rotation_period_days, now);
    Ok(Done {
        value: Issued {
            key,
            api_key,
            previous: None,
        },
        warning: join(warning, audited),
    })
}

/// Which keys a listing shows: all of one project (or every project), of one environment, and
/// only those due (or not due) for rotation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFilter {
    pub project_id: Option<String>,
    pub environment: Option<String>,
    pub rotation_due: Option<bool>,
}

impl KeyFilter {
    /// Every key of one project.
    pub fn project(id: &str) -> Self {
        Self {
            project_id: Some(id.to_owned()),
            ..Self::default()
        }
    }
}

/// Keys matching `filter`, newest first, with their project's rotation policy applied (one
/// more KV list: the projects). Recent changes from the log take precedence over KV's
/// possibly older copies. Returns each key's record beside its view.
pub async fn list_keys<S: Store, F: ChangeFeed>(
    keys: &Keys<'_, S, F>,
    filter: &KeyFilter,
    now: Millis,
) -> Result<Vec<(KeyRecord, KeyView)>, ApiError> {
    let projects = keys.repo.list_projects().await?;
    let period = |project_id: &str| {
        let project = projects.iter().find(|p| p.id == project_id);
        project.and_then(|p| p.rotation_period_days)
    };
    let records = list_records(keys, filter.project_id.as_deref(), now).await?;
    let mut listed = Vec::new();
    for record in records {
        if filter.environment.is_some() && record.environment != filter.environment {
            continue;
        }
        let mut view = record.view(now);
        view.rotation_policy(&record, period(&record.project_id), now);
        if filter
            .rotation_due
            .is_some_and(|due| due != view.rotation_due)
        {
            continue;
        }
        listed.push((record, view));
    }
    Ok(listed)
}

/// Key records of one project (or all), newest first.
async fn list_records<S: Store, F: ChangeFeed>(
    keys: &Keys<'_, S, F>,
    project_id: Option<&str>,
    now: Millis,
) -> Result<Vec<KeyRecord>, ApiError> {
    let mut records = keys.repo.list_keys().await?;
    for recent in recent_records(keys, now).await {
        match records.iter_mut().find(|r| r.hash == recent.hash) {
            Some(stored) => {
                let stored_version = std::mem::replace(stored, recent);
                stored.adopt_revocation(&stored_version);
            }
            None => records.push(recent),
        }
    }
    records.retain(|k| project_id.is_none_or(|p| k.project_id == p));
    // Newest first; keys of the same instant by id, descending.
    records.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    Ok(records)
}

/// One key, with its project's rotation policy applied: its record, its view and its project
/// as stored (`None` if never created), which the caller's organization check reads.
pub async fn get_key<S: Store, F: ChangeFeed>(
    keys: &Keys<'_, S, F>,
    id: &str,
    now: Millis,
) -> Result<(KeyRecord, KeyView, Option<Project>), ApiError> {
    let record = find_key(keys, id, now).await?;
    let project = keys.repo.project(&record.project_id).await?;
    let mut view = record.view(now);
    let period = project.as_ref().and_then(|p| p.rotation_period_days);
    view.rotation_policy(&record, period, now);
    Ok((record, view, project))
}

/// Issues a successor with the same name, project and environment, expiring at `expires_at`
/// if given (the old key's expiry is not carried over); the old key works until
/// `now + grace_ms` (or its own expiry, if sooner). Racing admin writes are settled by the
/// change log: only one rotation of a key wins, and a rotation that loses to a revoke answers
/// `key_not_rotatable`.
pub async fn rotate_key<S: Store, F: ChangeFeed>(
    keys: &Keys<'_, S, F>,
    id: &str,
    grace_ms: Millis,
    expires_at: Option<Millis>,
    now: Millis,
) -> Result<Done<Issued>, ApiError> {
    let mut old = find_key(keys, id, now).await?;
    // Refuse before issuing anything; the loop checks again on the version it replaces.
    old.clone().start_grace(now, grace_ms, "")?;
    let (key, mut new) = new_key(
        old.name.clone(),
        old.project_id.clone(),
        now,
        Some(old.id.clone()),
    )?;
    new.expires_at = expires_at;
    new.environment.clone_from(&old.environment);
    let period = (keys.repo.project(&old.project_id).await?).and_then(|p| p.rotation_period_days);
    for _ in 0..MAX_ATTEMPTS {
        let mut rotated = old.clone();
        rotated.start_grace(now, grace_ms, &new.id)?;
        // The new key is written before the old key's grace starts: from the first write on,
        // the project has two working keys, so a failure in between costs it nothing.
        let writes = [
            Write {
                prev: None,
                next: new.clone(),
            },
            Write {
                prev: Some(old.clone()),
                next: rotated.clone(),
            },
        ];
        let warning = match commit(keys, &writes, now).await {
            Ok(Commit::Done(warning)) => warning,
            Ok(Commit::Lost(standing)) => {
                old = standing_version(standing, &old)?;
                continue;
            }
            // A failure can be ambiguous (applied, but its answer lost). If the old key's grace
            // did start, the rotation happened: hand out the new key, or it would be lost while
            // the old one runs out.
            Err((_, e)) if rotation_landed(keys, id, &new.id, now).await => Some(format!(
                "rotation of {id} reported a failure but landed: {e}"
            )),
            // Without a change log: the new key is in KV but the old key's grace is not. The old
            // key stays active; the new one, which nobody has seen, is revoked again.
            Err((written, e)) if written >= 1 => {
                new.revoke(now);
                if let Err(undo) = keys.repo.put_key(&new).await {
                    return Err(ApiError::Internal(format!(
                        "rotation of {id} failed ({e}) and its unseen successor {} could not be revoked ({undo})",
                        new.id
                    )));
                }
                return Err(e);
            }
            Err((_, e)) => return Err(e),
        };
        let audited = audit(
            &keys.repo,
            keys.actor,
            "key.rotated",
            &old.project_id,
            Some(id),
            now,
        );
        let mut api_key = new.view(now);
        api_key.rotation_policy(&new, period, now);
        return Ok(Done {
            value: Issued {
                key,
                api_key,
                previous: Some(rotated.view(now)),
            },
            warning: join(warning, audited.await),
        });
    }
    Err(ApiError::Conflict)
}

/// Revokes at once, whatever the key's status; revoking again changes nothing. A revoke that
/// races another admin write is applied again to the version that won. With the change log
/// unreachable the revocation is written to KV alone and answered (see `revoke_unlogged`).
pub async fn revoke_key<S: Store, F: ChangeFeed>(
    keys: &Keys<'_, S, F>,
    id: &str,
    now: Millis,
) -> Result<Done<KeyView>, ApiError> {
    let mut record = find_key(keys, id, now).await?;
    for _ in 0..MAX_ATTEMPTS {
        let mut revoked = record.clone();
        if !revoked.revoke(now) {
            return Ok(Done {
                value: record.view(now),
                warning: None,
            });
        }
        let writes = [Write {
            prev: Some(record.clone()),
            next: revoked.clone(),
        }];
        let warning = match commit(keys, &writes, now).await {
            Ok(Commit::Done(warning)) => warning,
            Ok(Commit::Lost(standing)) => {
                record = standing_version(standing, &record)?;
                continue;
            }
            Err((_, e)) if keys.feed.durable() => {
                Some(revoke_unlogged(keys, &writes, now, e).await?)
            }
            Err((_, e)) => return Err(e),
        };
        let project = &revoked.project_id;
        let audited = audit(
            &keys.repo,
            keys.actor,
            "key.revoked",
            project,
            Some(id),
            now,
        );
        let audited = audited.await;
        return Ok(Done {
            value: revoked.view(now),
            warning: join(warning, audited),
        });
    }
    Err(ApiError::Conflict)
}

/// A revocation when the change log cannot be reached (with a log, a commit fails only then):
/// it lands anyway, since a revocation only ever moves a key one way and needs no commit point
/// to be safe. Each record is written to KV directly and shown in this isolate's overlay at
/// once; the log takes it when it answers again: this isolate's next refresh commits it, the
/// log's settle adopts it rather than write an older working version over it, and so does the
/// next admin read or write of the key ([`find_key`]). Returns the operator's log line; a KV
/// write that fails fails the call (what was written stays revoked).
async fn revoke_unlogged<S: Store, F: ChangeFeed>(
    keys: &Keys<'_, S, F>,
    writes: &[Write],
    now: Millis,
    cause: ApiError,
) -> Result<String, ApiError> {
    for (written, w) in writes.iter().enumerate() {
        if let Err(e) = keys.repo.put_key(&w.next).await {
            keys.overlay
                .borrow_mut()
                .observe_unlogged(&writes[..written], now);
            return Err(e.into());
        }
    }
    keys.overlay.borrow_mut().observe_unlogged(writes, now);
    let ids: Vec<&str> = writes.iter().map(|w| w.next.id.as_str()).collect();
    let cause = std::error::Error::source(&cause).map_or(cause.to_string(), |s| s.to_string());
    Ok(format!(
        "change log unreachable ({cause}): revoked {} in KV alone; the change log takes it when it answers",
        ids.join(", ")
    ))
}

/// Audit events of one project (or all), newest first.
pub async fn audit_log<S: Store>(
    repo: &Repo<'_, S>,
    project_id: Option<&str>,
) -> Result<Vec<AuditView>, ApiError> {
    let mut events = repo.list_audit(project_id).await?;
    // Newest first; events of the same instant by id, descending.
    events.sort_by(|a, b| (b.at, &b.id).cmp(&(a.at, &a.id)));
    Ok(events.iter().map(AuditEvent::view).collect())
}

/// Leak reports (`leaks`) revoke through the same commit point as `revoke_key`: one bulk KV read
/// per 100 hashes (the change log's recent versions win over KV's), and per batch one change-log
/// commit, then each key's KV write and audit event.
impl<S: Store, F: ChangeFeed> Revoker for Keys<'_, S, F> {
    const LOOKUP_BATCH: usize = GET_MANY_MAX;
    const REVOKE_BATCH: usize = 100;
    const REVOKE_OPS: usize = 2;

    async fn lookup(
        &self,
        hashes: &[KeyHash],
        now: Millis,
    ) -> Result<Vec<Option<KeyRecord>>, ApiError> {
        let mut found = self.repo.keys_by_hash(hashes).await?;
        let recent = recent_records(self, now).await;
        for (hash, slot) in hashes.iter().zip(&mut found) {
            if let Some(record) = recent.iter().find(|r| &r.hash == hash) {
                let mut record = record.clone();
                if let Some(stored) = slot {
                    record.adopt_revocation(stored);
                }
                *slot = Some(record);
            }
        }
        Ok(found)
    }

    async fn revoke(
        &self,
        batch: &[(KeyRecord, Revocation)],
        now: Millis,
    ) -> Result<Option<String>, ApiError> {
        let mut current: Vec<KeyRecord> = batch.iter().map(|(r, _)| r.clone()).collect();
        for _ in 0..MAX_ATTEMPTS {
            // Decided on the version that stands: a key no longer working is left alone.
            let mut writes = Vec::new();
            let mut reasons = Vec::new();
            for (record, (_, why)) in current.iter().zip(batch) {
                let mut next = record.clone();
                let works = matches!(record.status(now), KeyStatus::Active | KeyStatus::Grace);
                if works && next.revoke(now) {
                    next.revoked_reason = Some(why.reason.clone());
                    let prev = Some(record.clone());
                    writes.push(Write { prev, next });
                    reasons.push(why);
                }
            }
            if writes.is_empty() {
                return Ok(None);
            }
            let mut log = match commit(self, &writes, now).await {
                Ok(Commit::Done(log)) => log,
                Ok(Commit::Lost(standing)) => {
                    for record in &mut current {
                        if let Some(s) = standing.iter().find(|s| s.hash == record.hash) {
                            *record = s.clone();
                        }
                    }
                    continue;
                }
                Err((_, e)) if self.feed.durable() => {
                    Some(revoke_unlogged(self, &writes, now, e).await?)
                }
                Err((_, e)) => return Err(e),
            };
            for (w, why) in writes.iter().zip(reasons) {
                let (project, id) = (&w.next.project_id, Some(w.next.id.as_str()));
                let reason = Some(why.reason.as_str());
                // A leak report sent to the admin route names who sent it.
                let (name, token_id, token_name) = match why.actor {
                    leaks::ADMIN_ACTOR => self.actor.audit_fields(),
                    other => (other, None, None),
                };
                let audited = audit_by(
                    &self.repo,
                    (name, token_id, token_name),
                    "key.revoked",
                    project,
                    id,
                    reason,
                    now,
                );
                log = join(log, audited.await);
            }
            return Ok(log);
        }
        Err(ApiError::Conflict)
    }
}

/// How often an admin write is decided again after losing a race before answering 409.
const MAX_ATTEMPTS: usize = 3;

/// The key with this id: the change log's recent version if it has one, else KV's. A
/// revocation KV holds that the log's working version lacks (made while the log could not be
/// reached: [`revoke_unlogged`]) wins, and is committed to the log here; if that commit fails,
/// the log's settle adopts it later.
async fn find_key<S: Store, F: ChangeFeed>(
    keys: &Keys<'_, S, F>,
    id: &str,
    now: Millis,
) -> Result<KeyRecord, ApiError> {
    let recent = recent_records(keys, now)
        .await
        .into_iter()
        .find(|r| r.id == id);
    let Some(logged) = recent else {
        return keys.repo.key_by_id(id).await?.ok_or(ApiError::KeyNotFound);
    };
    if logged.revoked_at.is_some() {
        return Ok(logged);
    }
    let stored = keys.repo.key_by_hash(&logged.hash).await?;
    let mut adopted = logged.clone();
    if !stored.is_some_and(|stored| adopted.adopt_revocation(&stored)) {
        return Ok(logged);
    }
    let writes = [Write {
        prev: Some(logged),
        next: adopted.clone(),
    }];
    if let Ok(Ok(())) = keys.feed.commit(&writes, now).await {
        keys.overlay.borrow_mut().observe(&writes, now);
    }
    Ok(adopted)
}

/// The log's recent records; none without a log or when it cannot be reached (KV decides).
async fn recent_records<S: Store, F: ChangeFeed>(
    keys: &Keys<'_, S, F>,
    now: Millis,
) -> Vec<KeyRecord> {
    if !keys.feed.durable() {
        return Vec::new();
    }
    let recent = keys.feed.recent(now).await.unwrap_or_default();
    recent.into_iter().map(|c| c.record).collect()
}

/// Whether key `id` now names `successor` as its rotation: the rotation's decisive write landed.
async fn rotation_landed<S: Store, F: ChangeFeed>(
    keys: &Keys<'_, S, F>,
    id: &str,
    successor: &str,
    now: Millis,
) -> bool {
    let current = find_key(keys, id, now).await;
    current.is_ok_and(|r| r.rotated_to.as_deref() == Some(successor))
}

/// The version of `mine` that won the race.
fn standing_version(standing: Vec<KeyRecord>, mine: &KeyRecord) -> Result<KeyRecord, ApiError> {
    let found = standing.into_iter().find(|r| r.hash == mine.hash);
    found.ok_or_else(|| ApiError::Internal(format!("change log lost key {}", mine.id)))
}

enum Commit {
    /// Committed; a log line if KV lags behind the change log.
    Done(Option<String>),
    /// Another writer got there first: the versions that stand.
    Lost(Vec<KeyRecord>),
}

/// The commit point: the change log first, then KV in the writes' order (a new key's id
/// pointer before its record, which makes it usable and listed in one write). With a change
/// log, a KV failure after the commit is only logged: the log serves the change to every
/// isolate and writes it to KV itself. Without one, the error says how many writes landed.
async fn commit<S: Store, F: ChangeFeed>(
    keys: &Keys<'_, S, F>,
    writes: &[Write],
    now: Millis,
) -> Result<Commit, (usize, ApiError)> {
    match keys.feed.commit(writes, now).await {
        Ok(Ok(())) if keys.feed.durable() => keys.overlay.borrow_mut().observe(writes, now),
        Ok(Ok(())) => {}
        Ok(Err(Conflict(standing))) => return Ok(Commit::Lost(standing)),
        Err(e) => return Err((0, ApiError::Unavailable(e.into()))),
    }
    for (written, w) in writes.iter().enumerate() {
        let stored = match w.prev {
            None => keys.repo.put_key_id(&w.next).await,
            Some(_) => Ok(()),
        };
        let stored = match stored {
            Ok(()) => keys.repo.put_key(&w.next).await,
            Err(e) => Err(e),
        };
        if let Err(e) = stored {
            if keys.feed.durable() {
                let line = format!(
                    "KV write of {} failed after commit; the change log will settle it: {e}",
                    w.next.id
                );
                return Ok(Commit::Done(Some(line)));
            }
            return Err((written, e.into()));
        }
    }
    Ok(Commit::Done(None))
}

fn join(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}

fn new_key(
    name: String,
    project_id: String,
    now: Millis,
    rotated_from: Option<String>,
) -> Result<(ApiKey, KeyRecord), ApiError> {
    let key = ApiKey::generate().map_err(|e| ApiError::Internal(format!("CSPRNG: {e}")))?;
    let id = random_id("key_", 12)?;
    let record = KeyRecord::new(id, &key, name, project_id, now, rotated_from);
    Ok((key, record))
}

async fn audit<S: Store>(
    repo: &Repo<'_, S>,
    actor: &Actor,
    action: &str,
    project_id: &str,
    key_id: Option<&str>,
    now: Millis,
) -> Option<String> {
    let who = actor.audit_fields();
    audit_by(repo, who, action, project_id, key_id, None, now).await
}

/// `who`: the event's `actor`, `actor_token_id` and `actor_token_name`.
async fn audit_by<S: Store>(
    repo: &Repo<'_, S>,
    who: (&str, Option<&str>, Option<&str>),
    action: &str,
    project_id: &str,
    key_id: Option<&str>,
    reason: Option<&str>,
    now: Millis,
) -> Option<String> {
    let event = AuditEvent {
        id: String::new(),
        actor: who.0.into(),
        actor_token_id: who.1.map(str::to_owned),
        actor_token_name: who.2.map(str::to_owned),
        action: action.into(),
        project_id: Some(project_id.into()),
        org_id: None,
        admin_token_id: None,
        key_id: key_id.map(str::to_owned),
        reason: reason.map(str::to_owned),
        at: now,
    };
    append_event(repo, event).await
}

/// Appends `event` under a new id (its `id` is replaced). Returns the log line owed if it could
/// not be appended: the change it records stands.
pub(crate) async fn append_event<S: Store>(
    repo: &Repo<'_, S>,
    mut event: AuditEvent,
) -> Option<String> {
    let action = event.action.clone();
    event.id = match random_id("evt_", 8) {
        Ok(id) => id,
        Err(e) => return Some(format!("audit {action} not appended: {e}")),
    };
    let subject = (event.project_id.as_deref())
        .or(event.org_id.as_deref())
        .unwrap_or_default();
    let appended = repo.append_audit(&event).await;
    appended
        .err()
        .map(|e| format!("audit {action} on {subject} not appended: {e}"))
}

fn random_id(prefix: &str, bytes: usize) -> Result<String, ApiError> {
    let random = random_bytes::<16>().map_err(|e| ApiError::Internal(format!("CSPRNG: {e}")))?;
    Ok(format!("{prefix}{}", hex::encode(&random[..bytes])))
}

#[cfg(test)]
mod consistency;
#[cfg(test)]
mod leak_tests;
#[cfg(test)]
mod tests;
