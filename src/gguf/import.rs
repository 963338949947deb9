//! `stylerl import-gguf`: GGUF → Hugging Face Llama directory.
//!
//! Writes config.json, generation_config.json, model.safetensors (f32 or bf16),
//! tokenizer.json, tokenizer_config.json and special_tokens_map.json. Weights are
//! dequantized, renamed to HF names, reshaped to HF's [out, in], and q/k rows are put
//! back in HF's rotate-half order. With no `output.weight` the embeddings are tied.
use super::dequant::{dequantize, SUPPORTED};
use super::hf_config::{config_json, generation_config_json, LlamaDims};
use super::reader::GgufFile;
use super::tensors::{hf_name, hf_shape, rope_heads, unpermute_rows};
use super::tokenizer::{self, PreTokStyle};
use crate::report::Report;
use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use std::path::{Path, PathBuf};

/// What to import and how (the `import-gguf` flags).
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The .gguf file to read.
    pub file: PathBuf,
    /// Output directory (created).
    pub out: PathBuf,
    /// Weight dtype written to model.safetensors: f32, bf16 or f16.
    pub dtype: String,
    /// Split convention where transformers' GGUF tokenizer and llama.cpp differ:
    /// `transformers` or `llama.cpp`.
    pub pretok: String,
    /// Write into `out` even when it already holds files (they are replaced).
    pub force: bool,
}

/// Every file an import writes, in the order it writes them.
const OUTPUT_FILES: &[&str] = &[
    "model.safetensors",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// Refuses a non-empty output directory unless --force: an import there would mix its
/// files with whatever is already in it.
fn check_out_dir(out: &Path, force: bool) -> Result<()> {
    // An earlier import killed mid-write left hidden temp files: they go first.
    for f in OUTPUT_FILES {
        crate::util::remove_stale_temps(out, f);
    }
    let Ok(mut rd) = std::fs::read_dir(out) else {
        return Ok(());
    };
    if !force && rd.next().is_some() {
        bail!(
            "--out {} is not empty: pass --force to replace its files, or choose a new directory",
            out.display()
        );
    }
    Ok(())
}

/// One converted tensor, ready for safetensors.
struct Converted {
    name: String,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// Converts `a.file` into a Hugging Face directory at `a.out`; the summary line and the
/// progress go to `report`.
pub fn import(a: &ImportOptions, report: &dyn Report) -> Result<()> {
    let start = std::time::Instant::now();
    let dtype = match a.dtype.as_str() {
        "f32" | "float32" => Dtype::F32,
        "bf16" | "bfloat16" => Dtype::BF16,
        "f16" | "float16" => Dtype::F16,
        other => bail!("unknown --dtype '{other}': use f32, bf16 or f16"),
    };
    let style = match a.pretok.as_str() {
        "transformers" => PreTokStyle::Transformers,
        "llama.cpp" | "llama-cpp" => PreTokStyle::LlamaCpp,
        other => bail!("unknown --pretok '{other}': use transformers or llama.cpp"),
    };
    check_out_dir(&a.out, a.force)?;
    let g = GgufFile::open(&a.file)?;
    let ctx = || format!("cannot import {}", a.file.display());
    // Refuse types we cannot dequantize before any slow work.
    if let Some(t) = g.tensors.iter().find(|t| !SUPPORTED.contains(&t.ty)) {
        return Err(anyhow::anyhow!(
            "tensor '{}' has unsupported tensor type {:?} (supported: {})",
            t.name,
            t.ty,
            SUPPORTED
                .iter()
                .map(|t| format!("{t:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with_context(ctx);
    }
    let dims = LlamaDims::read(&g).with_context(ctx)?;
    check_tensor_set(&g, &dims).with_context(ctx)?;
    // Build the tokenizer before the slow part, so a tokenizer problem fails fast.
    let tok = tokenizer::build(&g, dims.context, style).with_context(ctx)?;
    let tied = g.tensor("output.weight").is_none();

    let pb = report.progress(g.tensors.len() as u64, "tensors");
    let mut converted = Vec::with_capacity(g.tensors.len());
    for t in &g.tensors {
        converted.push(convert(&g, t, &dims, dtype).with_context(ctx)?);
        pb.inc(1);
    }
    pb.finish();

    let out = &a.out;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let views = converted
        .iter()
        .map(|c| {
            Ok((
                c.name.clone(),
                TensorView::new(dtype, c.shape.clone(), &c.bytes)?,
            ))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| anyhow::anyhow!("safetensors: {e:?}"))?;
    let meta = Some(
        [("format".to_string(), "pt".to_string())]
            .into_iter()
            .collect(),
    );
    let bytes =
        safetensors::serialize(views, &meta).map_err(|e| anyhow::anyhow!("safetensors: {e:?}"))?;
    crate::util::write_atomic(&out.join("model.safetensors"), &bytes)?;
    drop(bytes);

    let dtype_name = match dtype {
        Dtype::F32 => "float32",
        Dtype::F16 => "float16",
        _ => "bfloat16",
    };
    write_json(
        out,
        "config.json",
        &config_json(&g, &dims, tied, dtype_name),
    )?;
    write_json(out, "generation_config.json", &generation_config_json(&g))?;
    write_json(out, "tokenizer.json", &tok.tokenizer)?;
    write_json(out, "tokenizer_config.json", &tok.config)?;
    write_json(out, "special_tokens_map.json", &tok.special_tokens_map)?;
    let params: u64 = g.tensors.iter().map(|t| t.n_elements()).sum();
    report.note(&format!(
        "imported {} tensors ({:.1}M parameters, {dtype_name}{}) from {} into {} in {:.1}s",
        converted.len(),
        params as f64 / 1e6,
        if tied { ", tied embeddings" } else { "" },
        a.file.display(),
        out.display(),
        start.elapsed().as_secs_f64()
    ));
    Ok(())
}

fn write_json(dir: &Path, name: &str, v: &serde_json::Value) -> Result<()> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    crate::util::write_atomic(&dir.join(name), s.as_bytes())
}

/// Every tensor must map to an HF name, and a Llama needs its embeddings, final norm and
/// the nine tensors of each layer; catching a missing one here beats a confusing load error.
fn check_tensor_set(g: &GgufFile, d: &LlamaDims) -> Result<()> {
    for t in &g.tensors {
        hf_name(&t.name)?;
    }
    let mut need = vec![
        "token_embd.weight".to_string(),
        "output_norm.weight".to_string(),
    ];
    for l in 0..d.layers {
        for leaf in [
            "attn_q",
            "attn_k",
            "attn_v",
            "attn_output",
            "ffn_gate",
            "ffn_up",
            "ffn_down",
            "attn_norm",
            "ffn_norm",
        ] {
            need.push(format!("blk.{l}.{leaf}.weight"));
        }
    }
    if let Some(missing) = need.iter().find(|n| g.tensor(n).is_none()) {
        bail!(
            "tensor '{missing}' is missing ({} layers expected)",
            d.layers
        );
    }
    let embd = g.tensor("token_embd.weight").expect("checked above");
    if embd.dims != [d.hidden as u64, d.vocab as u64] {
        bail!(
            "token_embd.weight has dims {:?}, expected [{}, {}]",
            embd.dims,
            d.hidden,
            d.vocab
        );
    }
    Ok(())
}

/// Dequantizes one tensor, un-permutes q/k rows, and encodes it in the output dtype.
fn convert(
    g: &GgufFile,
    t: &super::reader::TensorInfo,
    d: &LlamaDims,
    dtype: Dtype,
) -> Result<Converted> {
    let name = hf_name(&t.name)?;
    let shape = hf_shape(&t.dims);
    let n = usize::try_from(t.n_elements()).context("tensor too large")?;
    let mut values =
        dequantize(t.ty, g.tensor_bytes(t), n).with_context(|| format!("tensor '{}'", t.name))?;
    if let Some(heads) = rope_heads(&t.name, d.n_head, d.n_head_kv) {
        if shape.len() != 2 || shape[0] != heads * d.head_dim {
            bail!(
                "tensor '{}' has shape {shape:?}, expected {} rows ({heads} heads of {})",
                t.name,
                heads * d.head_dim,
                d.head_dim
            );
        }
        values = unpermute_rows(&values, shape[0], shape[1], heads)
            .with_context(|| format!("tensor '{}'", t.name))?;
    }
    let bytes = encode(&values, dtype);
    Ok(Converted { name, shape, bytes })
}

/// Little-endian bytes of `values` in `dtype` (f16 and bf16 round to nearest even).
fn encode(values: &[f32], dtype: Dtype) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(values.len() * dtype.size());
    for &v in values {
        match dtype {
            Dtype::F32 => bytes.extend_from_slice(&v.to_le_bytes()),
            Dtype::F16 => bytes.extend_from_slice(&half::f16::from_f32(v).to_le_bytes()),
            _ => bytes.extend_from_slice(&half::bf16::from_f32(v).to_le_bytes()),
        }
    }
    bytes
}
