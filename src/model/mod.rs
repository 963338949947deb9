//! The policy model: Llama-family transformer in tch, KV cache, batched generation, chat
//! templates, and LoRA / Bit-LoRA adapters in PEFT's format.
//!
//! For training code (LoRA, SFT, GRPO):
//! - [`Llama::load`] / [`Llama::random_init`] build the model; base weights never require grad.
//! - Every projection is a [`Linear`] reachable by its HF module path
//!   ([`Llama::module_paths`], [`Llama::linear_mut`]); adapters implement [`LinearAdapter`]
//!   and are pushed onto `Linear::adapters` (summed into the output, switchable with
//!   [`Llama::set_adapters_enabled`]).
//! - [`Llama::forward`] / [`Llama::forward_hidden`] take ids [B,T] and an attention mask
//!   (padding on either side); without a cache gradients flow into adapter parameters.
//! - [`token_logprobs`] scores given tokens at a temperature exactly as [`generate`] reports
//!   them; [`generate`] samples G completions per prompt with prefix sharing.
pub mod adapters;
pub mod bitlora;
pub mod chat;
pub mod config;
pub mod decode_matmul;
pub mod generate;
pub mod kv_cache;
pub mod linear;
pub mod llama;
pub mod load;
pub mod lora;
pub mod modules;
pub mod peft;
pub mod rope;
pub mod sampling;
pub mod scoring;
pub mod tokenizer;
pub mod weights;

pub use chat::{ChatMessage, ChatTemplate};
pub use config::LlamaConfig;
pub use generate::{generate, generate_with_stats, GenerateConfig, GenerateStats, Sample};
pub use kv_cache::KvCache;
pub use linear::{Linear, LinearAdapter};
pub use llama::Llama;
pub use sampling::SamplingConfig;
pub use scoring::{shared_prompt_logprobs, token_logprobs};
pub use tokenizer::Tokenizer;
