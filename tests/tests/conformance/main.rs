//! The audit store's conformance: the suite of one store run against SQLite, PostgreSQL and
//! MariaDB, SQL targets, `TX_SEPARATE` across databases, drift and repair, unreachable stores and the per-test
//! server databases. One test binary (each links the whole facade); every test selects only its
//! own module's units, so the modules share the registry without seeing each other's units.

mod connect;
mod drift;
mod import;
mod mysql_ddl;
mod neutral;
mod other_sqlx;
mod separate;
mod servers_smoke;
mod sql_units;
mod store_unreachable;
mod suite;
mod summary;
mod system_versions;
mod targets;
mod upgrade;
