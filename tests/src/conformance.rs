//! One database of any backend for the conformance suite: a fresh SQLite file or a fresh server
//! database per test, the audit read back, plain SQL run against it, and a way to make the audit
//! store refuse some rows (a trigger), which is how the suite interrupts a run at an exact step.

use std::str::FromStr;

use flamingock::{AuditEntry, AuditState, Flamingock, FlamingockBuilder, TxStrategy};
use sqlx::{AssertSqlSafe, Connection};

use flamingock_testkit::FreshDb;

/// The databases the suite runs on.
pub use flamingock_testkit::Backend;

/// The strategy of a transactional unit on the audit store's own database: `TX_SHARED`, except on
/// MySQL/MariaDB ([`Backend::shares_transactions`]), which commit before every DDL statement, so
/// such units run `TX_SEPARATE` there, whose marker reveals a commit the unit did not ask for.
pub fn own_database_strategy(backend: Backend) -> TxStrategy {
    if backend.shares_transactions() {
        TxStrategy::Shared
    } else {
        TxStrategy::Separate
    }
}

/// A fresh, empty database for one test.
pub struct BackendDb {
    pub backend: Backend,
    /// Its URL (no password on the test servers).
    pub url: String,
    /// The file or server database, dropped by [`BackendDb::drop`].
    place: FreshDb,
}

/// The trigger (and, on PostgreSQL, its function) that [`BackendDb::refuse_audit_states`] installs.
const REFUSAL: &str = "flamingock_test_refusal";

impl BackendDb {
    /// A fresh database, or `None` after a loud `SKIPPED:` line when the server is unreachable
    /// (a failure under `FLAMINGOCK_REQUIRE_SERVERS=1`).
    pub async fn create(backend: Backend, hint: &str) -> Option<BackendDb> {
        let place = FreshDb::create(backend, hint).await?;
        Some(BackendDb {
            backend,
            url: place.url.clone(),
            place,
        })
    }

    /// A builder with this database as the audit store, selecting only the units of `module`.
    pub fn builder(&self, module: &str) -> FlamingockBuilder {
        Flamingock::builder().database_url(&self.url).module(module)
    }

    /// Creates the audit table (as a run's start would), so that tests can reach into it.
    pub async fn initialize_audit(&self) {
        let engine = Flamingock::builder()
            .database_url(&self.url)
            .build()
            .await
            .expect("the test database opens");
        engine
            .store()
            .initialize()
            .await
            .expect("the audit table is created");
    }

    /// Every audit row, oldest first.
    pub async fn entries(&self) -> Vec<AuditEntry> {
        self.initialize_audit().await;
        let engine = Flamingock::builder()
            .database_url(&self.url)
            .build()
            .await
            .expect("the test database opens");
        engine.store().entries().await.expect("the audit reads")
    }

    /// The states of one unit's rows, oldest first.
    pub async fn states_of(&self, change_id: &str) -> Vec<AuditState> {
        self.entries()
            .await
            .into_iter()
            .filter(|e| e.change_id == change_id)
            .map(|e| e.state)
            .collect()
    }

    fn sqlite_options(&self) -> sqlx::sqlite::SqliteConnectOptions {
        sqlx::sqlite::SqliteConnectOptions::from_str(&self.url)
            .expect("a SQLite URL")
            .create_if_missing(true)
    }

    /// Runs SQL text (one or more statements, no binds).
    pub async fn execute(&self, sql: &str) {
        let statement = AssertSqlSafe(sql.to_owned());
        let result = match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect_with(&self.sqlite_options())
                    .await
                    .expect("the test database opens");
                sqlx::raw_sql(statement).execute(&mut conn).await.map(drop)
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("the test database opens");
                sqlx::raw_sql(statement).execute(&mut conn).await.map(drop)
            }
            Backend::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(&self.url)
                    .await
                    .expect("the test database opens");
                sqlx::raw_sql(statement).execute(&mut conn).await.map(drop)
            }
        };
        if let Err(error) = result {
            panic!("{sql}: {error}");
        }
    }

    /// The one integer `sql` selects (a `COUNT(*)`).
    pub async fn count(&self, sql: &str) -> i64 {
        let query = AssertSqlSafe(sql.to_owned());
        let result = match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect_with(&self.sqlite_options())
                    .await
                    .expect("the test database opens");
                sqlx::query_scalar(query).fetch_one(&mut conn).await
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("the test database opens");
                sqlx::query_scalar(query).fetch_one(&mut conn).await
            }
            Backend::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(&self.url)
                    .await
                    .expect("the test database opens");
                sqlx::query_scalar(query).fetch_one(&mut conn).await
            }
        };
        result.unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    /// Whether a table of that name exists in this database.
    pub async fn table_exists(&self, table: &str) -> bool {
        let sql = match self.backend {
            Backend::Sqlite => format!(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
            ),
            Backend::Postgres => format!(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '{table}'"
            ),
            Backend::MySql => format!(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = '{table}'"
            ),
        };
        self.count(&sql).await == 1
    }

    /// The number of tables in this database.
    pub async fn table_count(&self) -> i64 {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()"
            }
            Backend::MySql => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
            }
        };
        self.count(sql).await
    }

    /// Makes the audit store refuse rows in any of `states` (an insert trigger raising an
    /// error), as if it became unreachable at that step. The audit table is created first.
    pub async fn refuse_audit_states(&self, states: &[AuditState]) {
        self.initialize_audit().await;
        let list = states
            .iter()
            .map(|state| format!("'{}'", state.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let audit = flamingock::sqlx_store::DEFAULT_AUDIT_TABLE;
        let sql = match self.backend {
            Backend::Sqlite => format!(
                "CREATE TRIGGER {REFUSAL} BEFORE INSERT ON {audit} WHEN NEW.state IN ({list}) \
                 BEGIN SELECT RAISE(ABORT, 'audit store unavailable (test)'); END"
            ),
            Backend::Postgres => format!(
                "CREATE FUNCTION {REFUSAL}() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'audit store unavailable (test)'; END $$; \
                 CREATE TRIGGER {REFUSAL} BEFORE INSERT ON {audit} FOR EACH ROW \
                 WHEN (NEW.state IN ({list})) EXECUTE FUNCTION {REFUSAL}()"
            ),
            Backend::MySql => format!(
                "CREATE TRIGGER {REFUSAL} BEFORE INSERT ON {audit} FOR EACH ROW \
                 BEGIN IF NEW.state IN ({list}) THEN \
                 SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit store unavailable (test)'; \
                 END IF; END"
            ),
        };
        self.execute(&sql).await;
    }

    /// Removes what [`refuse_audit_states`](Self::refuse_audit_states) installed.
    pub async fn accept_audit_states(&self) {
        let audit = flamingock::sqlx_store::DEFAULT_AUDIT_TABLE;
        let sql = match self.backend {
            Backend::Sqlite | Backend::MySql => format!("DROP TRIGGER {REFUSAL}"),
            Backend::Postgres => {
                format!("DROP TRIGGER {REFUSAL} ON {audit}; DROP FUNCTION {REFUSAL}()")
            }
        };
        self.execute(&sql).await;
    }

    /// Removes the database.
    pub async fn drop(self) {
        self.place.drop_database().await;
    }
}
