//! `stylerl embed`.
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct EmbedArgs {
    /// A sentence-transformers directory, or `stylometric`.
    #[arg(long)]
    pub encoder: String,
    /// JSON lines of strings, or plain text lines.
    #[arg(long)]
    pub input: PathBuf,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
}

pub fn embed(_a: &EmbedArgs) -> anyhow::Result<()> {
    anyhow::bail!("embed is not built yet")
}
