//! The server's database: the pool, the audit store and lock of each service and environment
//! (made per request from the pool: the server keeps no state of its own), and the SQL of the
//! server's own token table.

use std::sync::Arc;

use flamingock_client::Scope;
use flamingock_core::{AuditStore, StoreError};
use flamingock_sqlx::{Backend, SqlAuditStore, StoreOptions};
use sqlx::{PgPool, SqlitePool};

/// The server's own table: one row per token, the token kept only as its SHA-256.
pub const TOKEN_TABLE: &str = "flamingock_server_tokens";
/// The server's own table of the latest plan of each service and environment.
pub const PLAN_TABLE: &str = "flamingock_server_plans";
/// The server's own table of dashboard sessions, each kept only as its id's SHA-256.
pub const SESSION_TABLE: &str = "flamingock_server_sessions";

/// The statements that create the server's own tables (run at every start, in this order).
const CREATE_OWN_TABLES: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS flamingock_server_tokens (id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, role TEXT NOT NULL, service TEXT, environment TEXT, created_at TEXT NOT NULL, revoked_at TEXT)",
    "CREATE TABLE IF NOT EXISTS flamingock_server_plans (service TEXT NOT NULL, environment TEXT NOT NULL, plan TEXT NOT NULL, hostname TEXT NOT NULL, reported_at TEXT NOT NULL, PRIMARY KEY (service, environment))",
    "CREATE TABLE IF NOT EXISTS flamingock_server_sessions (id_hash TEXT PRIMARY KEY, token_id TEXT NOT NULL, role TEXT NOT NULL, service TEXT, environment TEXT, csrf TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS flamingock_server_sessions_token ON flamingock_server_sessions (token_id)",
];

/// Where the server keeps everything.
#[derive(Clone, Debug)]
pub enum ServerDb {
    /// A SQLite file (one connection: one writer at a time).
    Sqlite(SqlitePool),
    /// A PostgreSQL database: several servers may share it.
    Postgres(PgPool),
}

impl ServerDb {
    /// Opens the database `url` names (`sqlite://…` or `postgres://…`), creating a SQLite file
    /// that is missing, and the server's own tables (tokens, plans, sessions).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = StoreOptions::default()
            .with_audit_table("flamingock_server_probe")
            .with_max_connections(POSTGRES_CONNECTIONS);
        let db = match Backend::from_url(url)? {
            Backend::Sqlite => {
                let store = flamingock_sqlx::connect(url, options).await?;
                let pool = store.dependencies().get::<SqlitePool>().cloned();
                ServerDb::Sqlite(pool.ok_or_else(|| missing_pool(url))?)
            }
            Backend::Postgres => {
                let store = flamingock_sqlx::connect(url, options).await?;
                let pool = store.dependencies().get::<PgPool>().cloned();
                ServerDb::Postgres(pool.ok_or_else(|| missing_pool(url))?)
            }
            Backend::MySql => {
                return Err(StoreError::Unsupported(format!(
                    "the Flamingock server keeps its data in SQLite or PostgreSQL, not MySQL/MariaDB ({})",
                    flamingock_sqlx::redact_url(url)
                )));
            }
        };
        db.create_own_tables().await?;
        Ok(db)
    }

    /// The audit store (and, through [`AuditStore::lock`], the lock) of `scope`: tables
    /// `fk_<service>__<environment>_audit` and `…_lock`.
    pub fn store(&self, scope: &Scope, read_only: bool) -> Result<Arc<dyn AuditStore>, StoreError> {
        let prefix = scope.table_prefix();
        let options = StoreOptions::default()
            .with_audit_table(format!("{prefix}_audit"))
            .with_lock_table(format!("{prefix}_lock"))
            .with_read_only(read_only);
        Ok(match self {
            ServerDb::Sqlite(pool) => Arc::new(SqlAuditStore::sqlite(pool.clone(), options)?),
            ServerDb::Postgres(pool) => Arc::new(SqlAuditStore::postgres(pool.clone(), options)?),
        })
    }

    /// Runs one statement on the server's own tables that returns no rows, its `$1`, `$2`, …
    /// (which SQLite and PostgreSQL both read) bound in order to `values` (`None`: NULL).
    pub(crate) async fn execute(
        &self,
        sql: &str,
        values: &[Option<&str>],
        action: &'static str,
    ) -> Result<(), crate::ServerError> {
        macro_rules! run {
            ($pool:expr) => {{
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for value in values {
                    query = query.bind(*value);
                }
                query.execute($pool).await.map(drop)
            }};
        }
        match self {
            ServerDb::Sqlite(pool) => run!(pool),
            ServerDb::Postgres(pool) => run!(pool),
        }
        .map_err(crate::ServerError::database(action))
    }

    /// The database clock.
    pub async fn now(&self) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
        let probe = Scope::new("flamingock", "server").expect("a valid scope");
        self.store(&probe, true)?.now().await
    }

    async fn create_own_tables(&self) -> Result<(), StoreError> {
        let error = |e: sqlx::Error| StoreError::Query {
            action: "creating the server's own tables",
            source: Box::new(e),
        };
        match self {
            ServerDb::Sqlite(pool) => {
                for create in CREATE_OWN_TABLES {
                    sqlx::query(create).execute(pool).await.map_err(error)?;
                }
            }
            ServerDb::Postgres(pool) => {
                // Two servers starting together on one database: one creates, the other waits.
                let mut tx = pool.begin().await.map_err(error)?;
                sqlx::query("SELECT pg_advisory_xact_lock(7325819473)")
                    .execute(&mut *tx)
                    .await
                    .map_err(error)?;
                for create in CREATE_OWN_TABLES {
                    sqlx::query(create).execute(&mut *tx).await.map_err(error)?;
                }
                tx.commit().await.map_err(error)?;
            }
        }
        Ok(())
    }

    /// Every service and environment that has an audit table, by name.
    pub async fn audited_scopes(&self) -> Result<Vec<Scope>, StoreError> {
        let error = |e: sqlx::Error| StoreError::Query {
            action: "listing the audit tables",
            source: Box::new(e),
        };
        let names: Vec<String> = match self {
            ServerDb::Sqlite(pool) => {
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'fk!_%!_audit' ESCAPE '!'")
                    .fetch_all(pool)
                    .await
                    .map_err(error)?
            }
            ServerDb::Postgres(pool) => sqlx::query_scalar(
                "SELECT table_name::TEXT FROM information_schema.tables WHERE table_schema = current_schema() AND table_name LIKE 'fk!_%!_audit' ESCAPE '!'",
            )
            .fetch_all(pool)
            .await
            .map_err(error)?,
        };
        let mut scopes: Vec<Scope> = names
            .iter()
            .filter_map(|name| scope_of_table(name))
            .collect();
        scopes.sort_by(|a, b| (a.service(), a.environment()).cmp(&(b.service(), b.environment())));
        Ok(scopes)
    }
}

/// The scope whose audit table is `name` (`fk_<service>__<environment>_audit`), if it is one.
fn scope_of_table(name: &str) -> Option<Scope> {
    let inner = name.strip_prefix("fk_")?.strip_suffix("_audit")?;
    let (service, environment) = inner.split_once("__")?;
    let scope = Scope::new(&service.replace('_', "-"), &environment.replace('_', "-")).ok()?;
    (scope.table_prefix() == format!("fk_{inner}")).then_some(scope)
}

/// Held while one named append is checked and written, so that two copies of it (a retry sent
/// while the first is still being served, by this server or another one) are written once.
pub enum AppendGuard {
    /// PostgreSQL: a transaction holding an advisory lock on the row's name, released when it
    /// ends (however the request ends), and the slot that bounds how many such transactions
    /// hold a connection of the pool at once.
    Postgres(
        sqlx::Transaction<'static, sqlx::Postgres>,
        tokio::sync::SemaphorePermit<'static>,
    ),
    /// SQLite: the process's append mutex (one server per SQLite file: it has one writer anyway).
    Sqlite(tokio::sync::MutexGuard<'static, ()>),
}

/// How many appends of one server may hold a connection for their lock at once: fewer than
/// the pool's connections, so that the appends themselves always find one.
static POSTGRES_APPEND_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// The size of the PostgreSQL pool (see [`POSTGRES_APPEND_SLOTS`]).
const POSTGRES_CONNECTIONS: u32 = 10;

/// Serializes the appends of a SQLite server.
static SQLITE_APPENDS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl AppendGuard {
    /// Ends the guard (on PostgreSQL, commits the transaction that holds the lock).
    pub async fn release(self) {
        if let AppendGuard::Postgres(tx, _slot) = self
            && let Err(error) = tx.commit().await
        {
            // The lock ends with the session's transaction either way.
            tracing::warn!(%error, "ending the transaction of an append's lock failed");
        }
    }
}

impl ServerDb {
    /// Takes the guard of the append named `request_id` in `scope`.
    pub async fn guard_append(
        &self,
        scope: &Scope,
        request_id: &str,
    ) -> Result<AppendGuard, StoreError> {
        match self {
            ServerDb::Sqlite(_) => Ok(AppendGuard::Sqlite(SQLITE_APPENDS.lock().await)),
            ServerDb::Postgres(pool) => {
                let error = |e: sqlx::Error| StoreError::Query {
                    action: "taking the lock of a named append",
                    source: Box::new(e),
                };
                let key = request_key(scope, request_id);
                let slot = POSTGRES_APPEND_SLOTS
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                let mut tx = pool.begin().await.map_err(error)?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(key)
                    .execute(&mut *tx)
                    .await
                    .map_err(error)?;
                Ok(AppendGuard::Postgres(tx, slot))
            }
        }
    }
}

/// A 64-bit lock key for one row name of one scope.
fn request_key(scope: &Scope, request_id: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!(
        "flamingock-append:{}:{request_id}",
        scope.table_prefix()
    ));
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

fn missing_pool(url: &str) -> StoreError {
    StoreError::Unsupported(format!(
        "the store opened on {} offers no pool of the expected type",
        flamingock_sqlx::redact_url(url)
    ))
}
