//! llama.cpp GGUF files: reader (v2/v3), dequantization, and import to a Hugging Face directory.
pub mod dequant;
pub mod hf_config;
pub mod import;
pub mod reader;
pub mod tensors;
pub mod tokenizer;
