//! The `alert` role: evaluates alert rules on the results topic as a
//! consumer group of its own, and opens and resolves incidents exactly once.
//!
//! - [`catalog`]: rules, jobs and silences as read from PostgreSQL.
//! - [`evaluate`]: the decisions, pure functions of state and a result or
//!   the time.
pub mod catalog;
pub mod evaluate;
