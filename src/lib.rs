//! stylerl: style-personalisation RL for Llama-family models on libtorch.
//!
//! Pipeline: `sft` (LoRA rewrite warm-up) → `grpo` (Dr.GRPO with sentence-level
//! style rewards and style reward dropout, optional Bit-LoRA) → `evaluate`.
//! Formulas follow shared/SPEC.md; module docs note where a choice was ours.

pub mod cli;
pub mod config;
pub mod data;
pub mod encoder;
pub mod eval;
pub mod gguf;
pub mod model;
pub mod reward;
pub mod rewrite_cmd;
pub mod run_info;
pub mod text;
pub mod train;
pub mod util;
