//! The execution engine (placeholder while the model settles).
pub struct Engine;
pub struct RunOptions;
