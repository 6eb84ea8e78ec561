//! Tokens: made at random, shown once, kept as their SHA-256 with a role and a scope; listed by
//! id and prefix, revoked by id.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use flamingock_client::Scope;
use flamingock_client::wire::{CreatedToken, Role, TokenInfo};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::db::{ServerDb, TOKEN_TABLE};
use crate::error::ServerError;

/// What every token starts with (so that a leaked one is recognizable by secret scanners).
pub const TOKEN_PREFIX: &str = "fks_";

/// How many characters of a token `token list` shows.
const SHOWN_PREFIX_LEN: usize = 12;

/// Who a request's token says the caller is.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's id.
    pub token_id: String,
    /// Its role.
    pub role: Role,
    /// Its scope; `None` for an unscoped admin token.
    pub scope: Option<Scope>,
}

impl Caller {
    /// Whether this caller may act on `scope` at all.
    pub fn covers(&self, scope: &Scope) -> bool {
        self.scope.as_ref().is_none_or(|own| own == scope)
    }
}

/// The SHA-256 of a token, hex.
fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new token: the prefix and 32 random bytes, base64url.
fn generate() -> Result<String, ServerError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| ServerError::Internal(format!("no randomness for a token: {e}")))?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// A short random id.
fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// Makes a token; only the returned value ever holds it.
pub async fn create(
    db: &ServerDb,
    role: Role,
    service: Option<&str>,
    environment: Option<&str>,
) -> Result<CreatedToken, ServerError> {
    let scope = match (service, environment) {
        (Some(service), Some(environment)) => Some(
            Scope::new(service, environment).map_err(|e| ServerError::Invalid(e.to_string()))?,
        ),
        (None, None) if role == Role::Admin => None,
        (None, None) => {
            return Err(ServerError::Invalid(format!(
                "a {role} token needs a service and an environment (--service and --environment); only an admin token may be unscoped"
            )));
        }
        _ => {
            return Err(ServerError::Invalid(
                "give both a service and an environment, or neither (an unscoped admin token)"
                    .to_owned(),
            ));
        }
    };
    let token = generate()?;
    let info = TokenInfo {
        id: new_id(),
        prefix: token[..SHOWN_PREFIX_LEN].to_owned(),
        role,
        service: scope.as_ref().map(|s| s.service().to_owned()),
        environment: scope.as_ref().map(|s| s.environment().to_owned()),
        created_at: Utc::now(),
        revoked_at: None,
    };
    let insert = format!(
        "INSERT INTO {TOKEN_TABLE} (id, token_hash, prefix, role, service, environment, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)"
    );
    let (token_hash, created_at) = (hash(&token), info.created_at.to_rfc3339());
    let values = [
        Some(info.id.as_str()),
        Some(token_hash.as_str()),
        Some(info.prefix.as_str()),
        Some(role.as_str()),
        info.service.as_deref(),
        info.environment.as_deref(),
        Some(created_at.as_str()),
    ];
    db.execute(&insert, &values, "recording a new token")
        .await?;
    Ok(CreatedToken { token, info })
}

const COLUMNS: &str = "id, prefix, role, service, environment, created_at, revoked_at";

fn decode<R: Row>(row: &R) -> Result<TokenInfo, ServerError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    &'static str: sqlx::ColumnIndex<R>,
{
    let get = |column: &'static str| -> Result<Option<String>, ServerError> {
        row.try_get::<Option<String>, _>(column)
            .map_err(ServerError::database("reading the token table"))
    };
    let corrupt =
        |what: &str| ServerError::Internal(format!("the token table holds a row with {what}"));
    let time = |text: Option<String>| -> Result<Option<DateTime<Utc>>, ServerError> {
        text.map(|t| {
            DateTime::parse_from_rfc3339(&t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| corrupt("an unreadable time"))
        })
        .transpose()
    };
    let role = get("role")?
        .and_then(|r| Role::parse(&r))
        .ok_or_else(|| corrupt("an unknown role"))?;
    Ok(TokenInfo {
        id: get("id")?.ok_or_else(|| corrupt("no id"))?,
        prefix: get("prefix")?.unwrap_or_default(),
        role,
        service: get("service")?,
        environment: get("environment")?,
        created_at: time(get("created_at")?)?.ok_or_else(|| corrupt("no creation time"))?,
        revoked_at: time(get("revoked_at")?)?,
    })
}

/// Every token, oldest first, none of them shown.
pub async fn list(db: &ServerDb) -> Result<Vec<TokenInfo>, ServerError> {
    let select = format!("SELECT {COLUMNS} FROM {TOKEN_TABLE} ORDER BY created_at, id");
    let action = ServerError::database("listing the tokens");
    match db {
        ServerDb::Sqlite(pool) => sqlx::query(sqlx::AssertSqlSafe(select))
            .fetch_all(pool)
            .await
            .map_err(action)?
            .iter()
            .map(decode)
            .collect(),
        ServerDb::Postgres(pool) => sqlx::query(sqlx::AssertSqlSafe(select))
            .fetch_all(pool)
            .await
            .map_err(action)?
            .iter()
            .map(decode)
            .collect(),
    }
}

async fn find_by(
    db: &ServerDb,
    column: &str,
    value: &str,
) -> Result<Option<TokenInfo>, ServerError> {
    let select = format!("SELECT {COLUMNS} FROM {TOKEN_TABLE} WHERE {column} = $1");
    let action = ServerError::database("reading the token table");
    let value = value.to_owned();
    match db {
        ServerDb::Sqlite(pool) => sqlx::query(sqlx::AssertSqlSafe(select))
            .bind(value)
            .fetch_optional(pool)
            .await
            .map_err(action)?
            .as_ref()
            .map(decode)
            .transpose(),
        ServerDb::Postgres(pool) => sqlx::query(sqlx::AssertSqlSafe(select))
            .bind(value)
            .fetch_optional(pool)
            .await
            .map_err(action)?
            .as_ref()
            .map(decode)
            .transpose(),
    }
}

/// Revokes the token `id`; revoking one already revoked changes nothing.
pub async fn revoke(db: &ServerDb, id: &str) -> Result<TokenInfo, ServerError> {
    let update =
        format!("UPDATE {TOKEN_TABLE} SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL");
    let action = ServerError::database("revoking a token");
    let now = Utc::now().to_rfc3339();
    match db {
        ServerDb::Sqlite(pool) => {
            sqlx::query(sqlx::AssertSqlSafe(update))
                .bind(now)
                .bind(id.to_owned())
                .execute(pool)
                .await
                .map_err(action)?;
        }
        ServerDb::Postgres(pool) => {
            sqlx::query(sqlx::AssertSqlSafe(update))
                .bind(now)
                .bind(id.to_owned())
                .execute(pool)
                .await
                .map_err(action)?;
        }
    }
    find_by(db, "id", id).await?.ok_or_else(|| {
        ServerError::NotFound(format!(
            "there is no token with id {id:?}; `flamingock-server token list` shows the ids"
        ))
    })
}

/// The caller a presented token stands for; `Unauthorized` when it is unknown or revoked.
pub async fn authenticate(db: &ServerDb, token: &str) -> Result<Caller, ServerError> {
    let unauthorized = || {
        ServerError::Unauthorized(
            "the token is not known to this server, or it was revoked".to_owned(),
        )
    };
    if !token.starts_with(TOKEN_PREFIX) {
        return Err(unauthorized());
    }
    let info = find_by(db, "token_hash", &hash(token))
        .await?
        .ok_or_else(unauthorized)?;
    if info.revoked_at.is_some() {
        return Err(unauthorized());
    }
    let scope = match (&info.service, &info.environment) {
        (Some(service), Some(environment)) => Some(
            Scope::new(service, environment)
                .map_err(|e| ServerError::Internal(format!("token {}: {e}", info.id)))?,
        ),
        _ if info.role == Role::Admin => None,
        _ => return Err(unauthorized()),
    };
    Ok(Caller {
        token_id: info.id,
        role: info.role,
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), hash(&b));
    }
}
