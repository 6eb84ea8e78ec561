//! A fresh database per test on the PostgreSQL and MariaDB servers, so that tests of whole runs
//! (audit, lock, marker and user tables) isolate themselves, run in parallel and twice in a row.
//!
//! Servers come from `FLAMINGOCK_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and `FLAMINGOCK_TEST_MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306/test`). An unreachable server skips the test with a loud
//! `SKIPPED:` line on stderr, unless `FLAMINGOCK_REQUIRE_SERVERS=1`, which makes it a failure.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{AssertSqlSafe, Connection};

/// A database server the tests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Postgres,
    MySql,
}

impl Server {
    /// The server's URL (pointing at its default database), from the environment or the default.
    pub fn url(self) -> String {
        let (variable, default) = match self {
            Server::Postgres => (
                "FLAMINGOCK_TEST_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:5432/test",
            ),
            Server::MySql => (
                "FLAMINGOCK_TEST_MYSQL_URL",
                "mysql://root@127.0.0.1:3306/test",
            ),
        };
        std::env::var(variable).unwrap_or_else(|_| default.to_owned())
    }

    fn label(self) -> &'static str {
        match self {
            Server::Postgres => "PostgreSQL",
            Server::MySql => "MariaDB/MySQL",
        }
    }
}

/// Whether CI demands the servers (`FLAMINGOCK_REQUIRE_SERVERS=1`).
pub fn servers_required() -> bool {
    std::env::var("FLAMINGOCK_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

/// A name no other test, process or earlier run uses: `fl_<hint>_<pid>_<n>_<nanos>`.
pub fn unique_name(hint: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
        % 1_000_000_000_000;
    let hint: String = hint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(20)
        .collect();
    format!(
        "fl_{hint}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A database created for one test; [`ServerDb::drop_database`] removes it.
#[derive(Debug)]
pub struct ServerDb {
    pub server: Server,
    /// The URL of the new database.
    pub url: String,
    pub name: String,
    admin_url: String,
}

impl ServerDb {
    /// Creates a fresh database on `server`, or returns `None` after a loud skip line when the
    /// server is unreachable (a failure instead under `FLAMINGOCK_REQUIRE_SERVERS=1`).
    pub async fn create(server: Server, hint: &str) -> Option<ServerDb> {
        let admin_url = server.url();
        let name = unique_name(hint);
        let statement = format!("CREATE DATABASE {name}");
        let created = match server {
            Server::Postgres => match sqlx::PgConnection::connect(&admin_url).await {
                Ok(mut conn) => sqlx::raw_sql(AssertSqlSafe(statement))
                    .execute(&mut conn)
                    .await
                    .map(drop),
                Err(error) => Err(error),
            },
            Server::MySql => match sqlx::MySqlConnection::connect(&admin_url).await {
                Ok(mut conn) => sqlx::raw_sql(AssertSqlSafe(statement))
                    .execute(&mut conn)
                    .await
                    .map(drop),
                Err(error) => Err(error),
            },
        };
        if let Err(error) = created {
            let test = std::thread::current().name().unwrap_or("?").to_owned();
            let message = format!("{test}: {} unreachable: {error}", server.label());
            assert!(
                !servers_required(),
                "FLAMINGOCK_REQUIRE_SERVERS=1 but {message}"
            );
            // Straight to stderr: a passing test's captured output is never shown.
            let _ = writeln!(std::io::stderr(), "SKIPPED: {message}");
            return None;
        }
        let url = replace_database(&admin_url, &name);
        Some(ServerDb {
            server,
            url,
            name,
            admin_url,
        })
    }

    /// Drops the database (closing what still uses it).
    pub async fn drop_database(self) {
        let statement = match self.server {
            Server::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            Server::MySql => format!("DROP DATABASE IF EXISTS {}", self.name),
        };
        let result = match self.server {
            Server::Postgres => match sqlx::PgConnection::connect(&self.admin_url).await {
                Ok(mut conn) => sqlx::raw_sql(AssertSqlSafe(statement))
                    .execute(&mut conn)
                    .await
                    .map(drop),
                Err(error) => Err(error),
            },
            Server::MySql => match sqlx::MySqlConnection::connect(&self.admin_url).await {
                Ok(mut conn) => sqlx::raw_sql(AssertSqlSafe(statement))
                    .execute(&mut conn)
                    .await
                    .map(drop),
                Err(error) => Err(error),
            },
        };
        if let Err(error) = result {
            let _ = writeln!(
                std::io::stderr(),
                "warning: could not drop test database {}: {error}",
                self.name
            );
        }
    }
}

/// `url` with its database (the path) replaced by `database`, keeping any query string.
pub fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_in_urls() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("mysql://root@127.0.0.1:3306/test?ssl-mode=disabled", "y"),
            "mysql://root@127.0.0.1:3306/y?ssl-mode=disabled"
        );
        assert_eq!(replace_database("mysql://root@h", "z"), "mysql://root@h/z");
    }
}
