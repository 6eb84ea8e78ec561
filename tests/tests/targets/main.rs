//! Target systems other than SQL: an HTTP API, NATS JetStream, Redis and S3, how a unit's
//! dependencies resolve from its target, and the lock guarding non-transactional targets. One
//! test binary (each links the whole facade); every test selects only its own module's units.
//! `targets_multi_target.rs` stays its own binary: the example it runs selects every unit.

mod http;
mod lock;
mod nats;
mod redis;
mod resolution;
mod s3;
