//! Dashboard sessions: made when a person signs in with a reader, operator or admin token, kept
//! in [`SESSION_TABLE`] as the SHA-256 of their random id with the token's id, role and scope
//! and a CSRF secret, for [`SESSION_LIFETIME`]. Every replica on the same database accepts them;
//! a session of a revoked token is refused.

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use flamingock_client::Scope;
use flamingock_client::wire::Role;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::db::{SESSION_TABLE, ServerDb, TOKEN_TABLE};
use crate::error::ServerError;
use crate::tokens::Caller;

/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME: chrono::Duration = chrono::Duration::hours(12);

/// A signed-in person: the token they signed in with, and the session's CSRF secret.
#[derive(Debug, Clone)]
pub struct Session {
    /// The SHA-256 of the session's id (what the table keeps).
    pub id_hash: String,
    /// Who the token says they are.
    pub caller: Caller,
    /// The secret every form of the session carries.
    pub csrf: String,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
}

/// 32 random bytes, base64url.
pub fn random_secret() -> Result<String, ServerError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| ServerError::Internal(format!("no randomness for a session: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The SHA-256 of `text`, hex.
fn hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An instant as the table keeps it: RFC 3339 in UTC to the millisecond, so that text order is
/// time order.
fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Opens a session for `caller`; returns the session id (for the cookie, never stored) and the
/// session. Sessions that ended are removed on the way.
pub async fn open(db: &ServerDb, caller: &Caller) -> Result<(String, Session), ServerError> {
    let id = random_secret()?;
    let now = Utc::now();
    let session = Session {
        id_hash: hash(&id),
        caller: caller.clone(),
        csrf: random_secret()?,
        expires_at: now + SESSION_LIFETIME,
    };
    let purge = format!("DELETE FROM {SESSION_TABLE} WHERE expires_at < $1");
    let insert = format!(
        "INSERT INTO {SESSION_TABLE} (id_hash, token_id, role, service, environment, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    );
    let (now, expires_at) = (stamp(now), stamp(session.expires_at));
    db.execute(&purge, &[Some(now.as_str())], "removing ended sessions")
        .await?;
    let values = [
        Some(session.id_hash.as_str()),
        Some(caller.token_id.as_str()),
        Some(caller.role.as_str()),
        caller.scope.as_ref().map(Scope::service),
        caller.scope.as_ref().map(Scope::environment),
        Some(session.csrf.as_str()),
        Some(now.as_str()),
        Some(expires_at.as_str()),
    ];
    db.execute(&insert, &values, "recording a session").await?;
    Ok((id, session))
}

/// The live session whose id is `id`: `None` when there is none, it ended, or its token was
/// revoked since.
pub async fn find(db: &ServerDb, id: &str) -> Result<Option<Session>, ServerError> {
    let select = format!(
        "SELECT s.id_hash, s.token_id, s.role, s.service, s.environment, s.csrf, s.expires_at \
         FROM {SESSION_TABLE} s JOIN {TOKEN_TABLE} t ON t.id = s.token_id \
         WHERE s.id_hash = $1 AND s.expires_at > $2 AND t.revoked_at IS NULL"
    );
    let action = ServerError::database("reading a session");
    let (id_hash, now) = (hash(id), stamp(Utc::now()));
    match db {
        ServerDb::Sqlite(pool) => sqlx::query(sqlx::AssertSqlSafe(select))
            .bind(id_hash)
            .bind(now)
            .fetch_optional(pool)
            .await
            .map_err(action)?
            .as_ref()
            .map(decode)
            .transpose(),
        ServerDb::Postgres(pool) => sqlx::query(sqlx::AssertSqlSafe(select))
            .bind(id_hash)
            .bind(now)
            .fetch_optional(pool)
            .await
            .map_err(action)?
            .as_ref()
            .map(decode)
            .transpose(),
    }
}

fn decode<R: Row>(row: &R) -> Result<Session, ServerError>
where
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    &'static str: sqlx::ColumnIndex<R>,
{
    let get = |column: &'static str| -> Result<Option<String>, ServerError> {
        row.try_get::<Option<String>, _>(column)
            .map_err(ServerError::database("reading a session"))
    };
    let corrupt =
        |what: &str| ServerError::Internal(format!("the session table holds a row with {what}"));
    let role = get("role")?
        .and_then(|r| Role::parse(&r))
        .ok_or_else(|| corrupt("an unknown role"))?;
    let scope = match (get("service")?, get("environment")?) {
        (Some(service), Some(environment)) => {
            Some(Scope::new(&service, &environment).map_err(|_| corrupt("an invalid scope"))?)
        }
        (None, None) if role == Role::Admin => None,
        _ => return Err(corrupt("no scope for a scoped role")),
    };
    let expires_at = get("expires_at")?
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .ok_or_else(|| corrupt("an unreadable end"))?
        .with_timezone(&Utc);
    Ok(Session {
        id_hash: get("id_hash")?.ok_or_else(|| corrupt("no id"))?,
        caller: Caller {
            token_id: get("token_id")?.ok_or_else(|| corrupt("no token id"))?,
            role,
            scope,
        },
        csrf: get("csrf")?.ok_or_else(|| corrupt("no CSRF secret"))?,
        expires_at,
    })
}

/// Ends the session `id_hash` (sign-out).
pub async fn close(db: &ServerDb, id_hash: &str) -> Result<(), ServerError> {
    let delete = format!("DELETE FROM {SESSION_TABLE} WHERE id_hash = $1");
    let action = ServerError::database("ending a session");
    match db {
        ServerDb::Sqlite(pool) => {
            sqlx::query(sqlx::AssertSqlSafe(delete))
                .bind(id_hash.to_owned())
                .execute(pool)
                .await
                .map_err(action)?;
        }
        ServerDb::Postgres(pool) => {
            sqlx::query(sqlx::AssertSqlSafe(delete))
                .bind(id_hash.to_owned())
                .execute(pool)
                .await
                .map_err(action)?;
        }
    }
    Ok(())
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
