//! Running a loaded model: batched generation with prefix sharing, sampling, and scoring
//! given tokens exactly as generation reports them.
//!
//! - [`token_logprobs`] scores given tokens at a temperature exactly as [`generate`] reports
//!   them; [`generate`] samples G completions per prompt with prefix sharing.
pub mod generate;
pub mod limits;
pub mod sampling;
pub mod scoring;

pub use generate::{generate, generate_with_stats, GenerateConfig, GenerateStats, Sample};
pub use sampling::SamplingConfig;
pub use scoring::{shared_prompt_logprobs, token_logprobs};
