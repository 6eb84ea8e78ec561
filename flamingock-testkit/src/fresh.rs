//! A fresh, empty database for one test: a SQLite file in a new temporary directory, or a new
//! database created on the server (dropped by [`FreshDb::drop_database`]).

use std::io::Write;

use sqlx::{AssertSqlSafe, Connection};
use tempfile::TempDir;

use crate::{Backend, replace_database, skip, unique_name};

/// One test's database.
#[derive(Debug)]
pub struct FreshDb {
    pub backend: Backend,
    /// The URL of the new database (no password on the test servers).
    pub url: String,
    /// The database's name on the server (the file's stem on SQLite).
    pub name: String,
    /// The server's URL, for creating and dropping; `None` on SQLite.
    admin_url: Option<String>,
    /// The SQLite file's directory, removed when dropped.
    _dir: Option<TempDir>,
}

impl FreshDb {
    /// A fresh database, or `None` after [`skip`] when the server is unreachable (a failure
    /// instead under `FLAMINGOCK_REQUIRE_SERVERS=1`). `hint` goes into the database's name.
    pub async fn create(backend: Backend, hint: &str) -> Option<FreshDb> {
        let Some(admin_url) = backend.server_url() else {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let url = format!("sqlite://{}", dir.path().join("audit.db").display());
            return Some(FreshDb {
                backend,
                url,
                name: "audit".to_owned(),
                admin_url: None,
                _dir: Some(dir),
            });
        };
        let name = unique_name(hint);
        if let Err(error) = admin(backend, &admin_url, format!("CREATE DATABASE {name}")).await {
            skip(&format!("{} unreachable: {error}", backend.label()));
            return None;
        }
        let url = replace_database(&admin_url, &name);
        Some(FreshDb {
            backend,
            url,
            name,
            admin_url: Some(admin_url),
            _dir: None,
        })
    }

    /// Removes the database (closing what still uses it on PostgreSQL); on SQLite, its file.
    pub async fn drop_database(self) {
        let Some(admin_url) = &self.admin_url else {
            return;
        };
        let statement = match self.backend {
            Backend::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            _ => format!("DROP DATABASE IF EXISTS {}", self.name),
        };
        if let Err(error) = admin(self.backend, admin_url, statement).await {
            let _ = writeln!(
                std::io::stderr(),
                "warning: could not drop test database {}: {error}",
                self.name
            );
        }
    }
}

/// Runs one statement on a new connection to the server `url` names.
async fn admin(backend: Backend, url: &str, statement: String) -> Result<(), sqlx::Error> {
    let statement = AssertSqlSafe(statement);
    match backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            sqlx::raw_sql(statement).execute(&mut conn).await.map(drop)
        }
        Backend::MySql => {
            let mut conn = sqlx::MySqlConnection::connect(url).await?;
            sqlx::raw_sql(statement).execute(&mut conn).await.map(drop)
        }
        Backend::Sqlite => unreachable!("SQLite databases are files, not created on a server"),
    }
}
