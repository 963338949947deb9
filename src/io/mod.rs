//! Files of tensors: safetensors read and written atomically, and Hugging Face model
//! directories. Knows nothing of models or training, so every layer above may use it.
pub mod hf_dir;
pub mod tensorfile;
