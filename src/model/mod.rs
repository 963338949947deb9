//! The policy model: Llama-family transformer in tch, KV cache, batched generation, chat
//! templates, and LoRA / Bit-LoRA adapters in PEFT's format.
pub mod adapters;
pub mod bitlora;
pub mod chat;
pub mod cmd;
pub mod cmd_run;
pub mod config;
pub mod generate;
pub mod kv_cache;
pub mod linear;
pub mod llama;
pub mod lora;
pub mod merge_cmd;
pub mod peft;
pub mod rope;
pub mod sampling;
pub mod scoring;
pub mod tokenizer;
pub mod weights;

pub use config::LlamaConfig;
pub use generate::{generate, generate_with_stats, GenerateConfig, GenerateStats, Sample};
pub use kv_cache::KvCache;
pub use linear::{Linear, LinearAdapter};
pub use llama::Llama;
pub use sampling::SamplingConfig;
pub use scoring::token_logprobs;
pub use tokenizer::Tokenizer;
