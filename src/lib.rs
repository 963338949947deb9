//! stylerl: style-personalisation RL for Llama, Qwen2, Qwen3 and GPT-2 models on libtorch.
//!
//! Pipeline: `sft` (LoRA rewrite warm-up) → `grpo` (Dr.GRPO with sentence-level
//! style rewards and style reward dropout, optional Bit-LoRA) → `evaluate`.
//! Formulas follow docs/method.md; module docs note where a choice was ours.

pub mod adapter;
pub mod cli;
pub mod config;
pub mod data;
pub mod encoder;
pub mod eval;
pub mod gguf;
pub mod infer;
pub mod io;
pub mod model;
pub mod report;
pub mod reward;
pub mod rng;
pub mod text;
pub mod train;
pub mod util;
