//! Evaluation of rewriting systems: style similarity, not-rewritten share, style vector
//! consistency (docs/method.md#evaluation-metrics).
pub mod aggregate;
pub mod bootstrap;
pub mod chart;
pub mod config;
pub mod evaluate;
pub mod judge;
#[doc(hidden)]
pub mod judge_stub;
pub mod metrics;
pub mod plot;
pub mod prompts;
pub mod quality;
pub mod quality_table;
pub mod review;
pub mod review_agree;
pub mod select;
pub mod table;
