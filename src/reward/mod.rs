//! Rewards (shared/SPEC.md): sentence-level style similarity with style reward dropout,
//! length, named-entity and punctuation penalties.
pub mod cmd;
