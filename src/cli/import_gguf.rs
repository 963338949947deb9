//! `stylerl import-gguf`: GGUF → Hugging Face Llama directory (the work is in
//! `gguf::import`).
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The .gguf file to read.
    pub file: PathBuf,
    /// Output directory (created).
    #[arg(long)]
    pub out: PathBuf,
    /// Weight dtype written to model.safetensors: f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Split convention where transformers' GGUF tokenizer and llama.cpp differ (only
    /// whitespace runs before digits, for starcoder-style vocabularies such as SmolLM):
    /// `transformers` or `llama.cpp` (the model's original tokenizer.json).
    #[arg(long, default_value = "transformers")]
    pub pretok: String,
    /// Write into --out even when it already holds files (they are replaced).
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: &ImportArgs) -> anyhow::Result<()> {
    let opts = crate::gguf::import::ImportOptions {
        file: a.file.clone(),
        out: a.out.clone(),
        dtype: a.dtype.clone(),
        pretok: a.pretok.clone(),
        force: a.force,
    };
    crate::gguf::import::import(&opts, &super::console::Console)
}
