//! Evaluation of rewriting systems: style similarity, not-rewritten share, style vector
//! consistency (shared/SPEC.md, "Evaluation").
pub mod judge;
pub mod metrics;
pub mod plot;
