//! The policy model: Llama-family transformer in tch, KV cache, batched generation, chat templates.
pub mod bitlora;
pub mod cmd;
pub mod lora;
pub mod peft;
