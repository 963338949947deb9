//! Training loops: SFT and Dr.GRPO, loss math, checkpoints, metrics.
pub mod batch;
pub mod checkpoint;
pub mod example_prompts;
pub mod grpo;
pub mod grpo_config;
pub mod guard;
pub mod loss;
pub mod metrics;
pub mod optim;
pub mod run_info;
pub mod schedule;
pub mod sft;
pub mod sft_data;
