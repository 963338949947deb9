//! Writing a Hugging Face model directory: the weights as one model.safetensors plus the
//! source directory's config, tokenizer and generation files, so any Llama loader reads it.
use anyhow::{Context, Result};
use std::path::Path;
use tch::{Device, Tensor};

/// The files copied from the source model directory (those that exist).
const COPIED: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// Writes `tensors` (moved to the CPU, made contiguous) as `out/model.safetensors` and copies
/// the source directory's config and tokenizer files beside it.
pub fn write_model_dir(
    tensors: Vec<(String, Tensor)>,
    source_dir: &Path,
    out: &Path,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for f in COPIED {
        let src = source_dir.join(f);
        if src.exists() {
            let bytes =
                std::fs::read(&src).with_context(|| format!("cannot read {}", src.display()))?;
            crate::util::write_atomic(&out.join(f), &bytes)?;
        }
    }
    let t: Vec<(String, Tensor)> = tensors
        .into_iter()
        .map(|(n, t)| (n, t.to_device(Device::Cpu).contiguous()))
        .collect();
    let path = out.join("model.safetensors");
    Tensor::write_safetensors(&t, &path).with_context(|| format!("cannot write {}", path.display()))
}
