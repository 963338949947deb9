//! llama.cpp GGUF files: reader (v2/v3), writer (v3), dequantization, import to a Hugging Face
//! directory, and export of a model or an adapter for llama.cpp and Ollama.
pub mod dequant;
pub mod export;
pub mod export_vocab;
pub mod hf_config;
pub mod import;
pub mod modelfile;
pub mod reader;
pub mod tensors;
pub mod tokenizer;
pub mod writer;
