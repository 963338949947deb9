//! Rewards (docs/method.md#rewards): sentence-level style similarity with style reward dropout,
//! length, named-entity and punctuation penalties, and the training-dynamics metrics.
//!
//! GRPO builds one [`RewardModel`] from the `[reward]` table and calls
//! [`RewardModel::score_batch`] with one [`Rollout`] per completion each step.
pub mod analyze;
pub mod anchor;
pub mod config;
pub mod dropout;
pub mod dynamics;
pub mod fluency;
pub mod guards;
pub mod meaning;
pub mod model;
pub mod normalise;
pub mod penalties;
pub mod stel;
pub mod style;
pub mod usage;

pub use config::{Aggregation, RewardConfig};
pub use dynamics::Dynamics;
pub use model::{BatchScores, ComponentMeans, RewardBreakdown, RewardModel, Rollout};
pub use style::StyleScorer;
