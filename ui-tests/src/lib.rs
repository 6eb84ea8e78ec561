//! The attribute macros' compile-error tests live in `tests/ui.rs`; this crate holds nothing else.
