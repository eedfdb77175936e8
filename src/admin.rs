//! Admin operations over any [`Store`]: projects, and keys created, listed, rotated with a
//! grace period, and revoked, each appending an audit event. Time is passed in.
//!
//! Write order. KV has no transactions, so every operation orders its writes so that a failure
//! between any two of them leaves a safe state:
//! - a key becomes usable and listed by one single write (its `key/{hash}` record: verify and
//!   the list both read that prefix), so a usable key the list does not show cannot exist;
//! - rotation stores the new key before it starts the old key's grace, so a project never loses
//!   a key that worked before (a failure in between leaves the old key active, and the unseen
//!   new key is revoked again on a best-effort basis);
//! - the audit event is appended after the state change commits; if only that append fails, the
//!   change stands and is answered (a rotation's new key must reach its owner), and the failure
//!   goes to the log.

use crate::error::ApiError;
use crate::key::{push_hex, random_bytes, ApiKey};
use crate::record::{
    is_valid_project_id, normalize_name, AuditEvent, AuditView, KeyRecord, KeyView, Project,
    ProjectView,
};
use crate::repo::Repo;
use crate::store::Store;
use crate::time::Millis;

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

pub async fn create_project<S: Store>(
    repo: &Repo<'_, S>,
    id: &str,
    name: &str,
    now: Millis,
) -> Result<Done<ProjectView>, ApiError> {
    if !is_valid_project_id(id) {
        return Err(ApiError::InvalidProjectId);
    }
    let name = normalize_name(name).ok_or(ApiError::InvalidName)?;
    if repo.project(id).await?.is_some() {
        return Err(ApiError::ProjectExists);
    }
    let project = Project {
        id: id.to_owned(),
        name,
        created_at: now,
    };
    repo.put_project(&project).await?;
    let warning = audit(repo, "project.created", id, None, now).await;
    Ok(Done {
        value: project.view(),
        warning,
    })
}

pub async fn list_projects<S: Store>(repo: &Repo<'_, S>) -> Result<Vec<ProjectView>, ApiError> {
    let mut projects = repo.list_projects().await?;
    projects.sort_by(|a, b| (b.created_at, &a.id).cmp(&(a.created_at, &b.id)));
    Ok(projects.iter().map(Project::view).collect())
}

pub async fn create_key<S: Store>(
    repo: &Repo<'_, S>,
    project_id: &str,
    name: &str,
    now: Millis,
) -> Result<Done<Issued>, ApiError> {
    let name = normalize_name(name).ok_or(ApiError::InvalidName)?;
    if repo.project(project_id).await?.is_none() {
        return Err(ApiError::ProjectNotFound);
    }
    let (key, record) = new_key(name, project_id.to_owned(), now, None)?;
    store_new_key(repo, &record).await?;
    let warning = audit(repo, "key.created", project_id, Some(&record.id), now).await;
    Ok(Done {
        value: Issued {
            key,
            api_key: record.view(now),
            previous: None,
        },
        warning,
    })
}

/// Keys of one project (or all), newest first.
pub async fn list_keys<S: Store>(
    repo: &Repo<'_, S>,
    project_id: Option<&str>,
    now: Millis,
) -> Result<Vec<KeyView>, ApiError> {
    let mut keys = repo.list_keys().await?;
    keys.retain(|k| project_id.is_none_or(|p| k.project_id == p));
    keys.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    Ok(keys.iter().map(|k| k.view(now)).collect())
}

pub async fn get_key<S: Store>(
    repo: &Repo<'_, S>,
    id: &str,
    now: Millis,
) -> Result<KeyView, ApiError> {
    Ok(find_key(repo, id).await?.view(now))
}

/// Issues a successor with the same name and project; the old key works until `now + grace_ms`.
pub async fn rotate_key<S: Store>(
    repo: &Repo<'_, S>,
    id: &str,
    grace_ms: Millis,
    now: Millis,
) -> Result<Done<Issued>, ApiError> {
    let mut old = find_key(repo, id).await?;
    // Refuse before writing anything; start_grace below checks again on the record it writes.
    old.clone().start_grace(now, grace_ms, "")?;
    let (key, mut new) = new_key(
        old.name.clone(),
        old.project_id.clone(),
        now,
        Some(old.id.clone()),
    )?;
    // 1. The new key first: from here the project has two working keys.
    store_new_key(repo, &new).await?;
    // 2. Then the old key's grace. If this write fails, the old key stays active and the new
    //    one, which nobody has seen, is revoked again.
    old.start_grace(now, grace_ms, &new.id)?;
    if let Err(e) = repo.put_key(&old).await {
        new.revoke(now);
        if let Err(undo) = repo.put_key(&new).await {
            return Err(ApiError::Internal(format!(
                "rotation of {id} failed ({e}) and its unseen successor {} could not be revoked ({undo})",
                new.id
            )));
        }
        return Err(e.into());
    }
    let warning = audit(repo, "key.rotated", &old.project_id, Some(&old.id), now).await;
    Ok(Done {
        value: Issued {
            key,
            api_key: new.view(now),
            previous: Some(old.view(now)),
        },
        warning,
    })
}

/// Revokes at once, whatever the key's status; revoking again changes nothing.
pub async fn revoke_key<S: Store>(
    repo: &Repo<'_, S>,
    id: &str,
    now: Millis,
) -> Result<Done<KeyView>, ApiError> {
    let mut record = find_key(repo, id).await?;
    let warning = if record.revoke(now) {
        repo.put_key(&record).await?;
        audit(repo, "key.revoked", &record.project_id, Some(id), now).await
    } else {
        None
    };
    Ok(Done {
        value: record.view(now),
        warning,
    })
}

/// Audit events of one project (or all), newest first.
pub async fn audit_log<S: Store>(
    repo: &Repo<'_, S>,
    project_id: Option<&str>,
) -> Result<Vec<AuditView>, ApiError> {
    let mut events = repo.list_audit(project_id).await?;
    events.sort_by(|a, b| (b.at, &b.id).cmp(&(a.at, &a.id)));
    Ok(events.iter().map(AuditEvent::view).collect())
}

async fn find_key<S: Store>(repo: &Repo<'_, S>, id: &str) -> Result<KeyRecord, ApiError> {
    repo.key_by_id(id).await?.ok_or(ApiError::KeyNotFound)
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

/// The id pointer first (it leads nowhere until the record exists), then the record, which
/// makes the key usable and listed in one write.
async fn store_new_key<S: Store>(repo: &Repo<'_, S>, record: &KeyRecord) -> Result<(), ApiError> {
    repo.put_key_id(record).await?;
    repo.put_key(record).await?;
    Ok(())
}

async fn audit<S: Store>(
    repo: &Repo<'_, S>,
    action: &str,
    project_id: &str,
    key_id: Option<&str>,
    now: Millis,
) -> Option<String> {
    let event = AuditEvent {
        id: match random_id("evt_", 8) {
            Ok(id) => id,
            Err(e) => return Some(format!("audit {action} not appended: {e}")),
        },
        actor: "admin".into(),
        action: action.into(),
        project_id: project_id.into(),
        key_id: key_id.map(str::to_owned),
        at: now,
    };
    let appended = repo.append_audit(&event).await;
    appended
        .err()
        .map(|e| format!("audit {action} on {project_id} not appended: {e}"))
}

fn random_id(prefix: &str, bytes: usize) -> Result<String, ApiError> {
    let random = random_bytes::<16>().map_err(|e| ApiError::Internal(format!("CSPRNG: {e}")))?;
    let mut id = prefix.to_owned();
    push_hex(&mut id, &random[..bytes]);
    Ok(id)
}

#[cfg(test)]
mod tests;
