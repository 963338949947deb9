//! The base model: one decoder in tch for Llama, Qwen2, Qwen3 and GPT-2 (config, weights, RoPE, KV cache, the
//! linear layer adapters attach to), tokenizer and chat templates. Running it lives in
//! `infer`, adapters and the loader that attaches them in `adapter`.
//!
//! For training code (LoRA, SFT, GRPO):
//! - [`Llama::load`] / [`Llama::random_init`] build the model; base weights never require grad.
//! - Every projection is a [`Linear`] reachable by its HF module path
//!   ([`Llama::module_paths`], [`Llama::linear_mut`]); adapters implement [`LinearAdapter`]
//!   and are pushed onto `Linear::adapters` (summed into the output, switchable with
//!   [`Llama::set_adapters_enabled`]).
//! - [`Llama::forward`] / [`Llama::forward_hidden`] take ids [B,T] and an attention mask
//!   (padding on either side); without a cache gradients flow into adapter parameters.
pub mod chat;
pub mod config;
pub mod decode_matmul;
pub mod decode_packed;
pub mod fused_step;
pub mod kv_cache;
pub mod linear;
pub mod llama;
pub mod modules;
pub mod precision;
pub mod rope;
pub mod tokenizer;
pub mod weights;

pub use chat::{ChatMessage, ChatTemplate};
pub use config::LlamaConfig;
pub use kv_cache::KvCache;
pub use linear::{Linear, LinearAdapter};
pub use llama::Llama;
pub use tokenizer::Tokenizer;
