//! `stylerl import-gguf`: GGUF → Hugging Face Llama directory.
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The .gguf file to read.
    pub file: PathBuf,
    /// Output directory (created).
    #[arg(long)]
    pub out: PathBuf,
    /// Weight dtype written to model.safetensors.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
}

pub fn run(_a: &ImportArgs) -> anyhow::Result<()> {
    anyhow::bail!("import-gguf is not built yet")
}
