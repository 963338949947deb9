//! llama.cpp GGUF files: reader (v2/v3), dequantization, and import to a Hugging Face directory.
pub mod import;
