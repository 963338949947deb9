//! `stylerl export-gguf`: a Llama, Qwen2, Qwen3 or GPT-2 model (adapters folded in) → a
//! llama.cpp GGUF (architecture llama, qwen2, qwen3 or gpt2), and a LoRA
//! or Bit-LoRA adapter → a llama.cpp LoRA adapter GGUF; an Ollama Modelfile beside either.
//!
//! The layout is what llama.cpp's `convert_hf_to_gguf.py` / `convert_lora_to_gguf.py` write:
//! ggml names, dims fastest-first (an HF [out, in] weight has dims [in, out]), q/k rows in
//! llama.cpp's interleaved RoPE order for llama only (qwen2/qwen3 rotate halves as HF does),
//! q/k/v biases and q/k norms under the same leaf names, GPT-2's fused Conv1D weights turned
//! to [out, in] with its head written out as `output.weight`, norms in f32, tied
//! embeddings as `token_embd.weight` alone, Llama-3 RoPE scaling as `rope_freqs.weight`.
//! An adapter keeps A as `<tensor>.lora_a` (dims [in, r]) and B as `<tensor>.lora_b`
//! (dims [r, out]) with q/k's B rows permuted like the base rows, and `adapter.lora.alpha`
//! such that llama.cpp's scale α/r equals the adapter's scaling.
use super::dequant::GgmlType;
use super::export_vocab::vocab_metadata;
use super::modelfile::{modelfile, ModelfileSpec};
use super::reader::Value;
use super::tensors::{gguf_name, permute_rows};
use super::writer::{write_file, TensorSpec};
use crate::adapter::lora::LoraAdapter;
use crate::adapter::{attach, peft};
use crate::model::config::{Family, LlamaConfig, RopeScaling};
use crate::model::{ChatTemplate, Llama};
use crate::report::Report;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The `--type` of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutType {
    F32,
    F16,
    Bf16,
    Q8_0,
}

impl OutType {
    pub fn parse(s: &str) -> Result<OutType> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "f32" => OutType::F32,
            "f16" => OutType::F16,
            "bf16" => OutType::Bf16,
            "q8_0" => OutType::Q8_0,
            _ => bail!("unknown --type '{s}': use f32, f16, bf16 or q8_0"),
        })
    }

    /// llama.cpp's `general.file_type` (LLAMA_FTYPE_ALL_F32, MOSTLY_F16, MOSTLY_Q8_0, MOSTLY_BF16).
    fn file_type(self) -> u32 {
        match self {
            OutType::F32 => 0,
            OutType::F16 => 1,
            OutType::Q8_0 => 7,
            OutType::Bf16 => 32,
        }
    }

    /// The ggml type of one tensor: vectors and norms stay f32 (as llama.cpp's converter and
    /// quantizer keep them); q8_0 falls back to f16 where a row is not a whole number of blocks.
    fn for_tensor(self, name: &str, dims: &[u64]) -> GgmlType {
        if dims.len() < 2 || name.ends_with("_norm.weight") || name == "rope_freqs.weight" {
            return GgmlType::F32;
        }
        match self {
            OutType::F32 => GgmlType::F32,
            OutType::F16 => GgmlType::F16,
            OutType::Bf16 => GgmlType::BF16,
            OutType::Q8_0 if dims[0] % 32 == 0 => GgmlType::Q8_0,
            OutType::Q8_0 => GgmlType::F16,
        }
    }
}

/// A whole-model export.
#[derive(Debug, Clone)]
pub struct ModelExport {
    pub model: PathBuf,
    /// `PATH[:WEIGHT]` adapters folded into the weights.
    pub adapters: Vec<String>,
    pub out: PathBuf,
    pub ty: OutType,
    /// A system message for the Modelfile (a run's training system message).
    pub system: Option<String>,
}

/// An adapter-only export.
#[derive(Debug, Clone)]
pub struct AdapterExport {
    pub adapter: PathBuf,
    /// The base model directory the adapter was trained on (its config is read).
    pub base: PathBuf,
    pub out: PathBuf,
    pub ty: OutType,
    /// The Modelfile's FROM line: the base model's GGUF, relative to the Modelfile.
    pub base_gguf: String,
    /// How to make the base GGUF, for the Modelfile's comment.
    pub base_command: String,
    pub system: Option<String>,
}

fn s(key: &str, v: &str) -> (String, Value) {
    (key.to_string(), Value::Str(v.to_string()))
}
fn u(key: &str, v: i64) -> Result<(String, Value)> {
    let v = u32::try_from(v).with_context(|| format!("{key} = {v} does not fit a u32"))?;
    Ok((key.to_string(), Value::U32(v)))
}
fn f(key: &str, v: f64) -> (String, Value) {
    (key.to_string(), Value::F32(v as f32))
}

/// The model families export writes, for error messages.
pub const EXPORT_FAMILIES: &str =
    "llama (and mistral without a sliding window), qwen2, qwen3, gpt2";

/// llama.cpp's architecture name for the model, refusing (in one line, naming the family and
/// the supported ones) what its architecture cannot hold exactly.
fn arch(c: &LlamaConfig, dir: &Path) -> Result<&'static str> {
    let arch = match c.family {
        Family::Llama => "llama",
        Family::Qwen2 => "qwen2",
        Family::Qwen3 => "qwen3",
        Family::Gpt2 => "gpt2",
    };
    // llama.cpp's qwen2 graph has q/k/v biases and nothing more; its llama and qwen3 graphs
    // are not given biases by this exporter.
    let biases_ok = match c.family {
        Family::Qwen2 => !c.o_bias && !c.mlp_bias,
        Family::Gpt2 => true, // biases everywhere, as llama.cpp's gpt2 expects
        _ => !c.qkv_bias && !c.o_bias && !c.mlp_bias,
    };
    if !biases_ok {
        bail!(
            "{}: a {} model with attention_bias / mlp_bias cannot be exported to GGUF (llama.cpp's '{arch}' has no such biases); export-gguf supports {EXPORT_FAMILIES} without them",
            dir.display(),
            c.model_type
        );
    }
    // rope_freqs.weight is read by llama.cpp's llama graph only.
    if arch != "llama" && matches!(c.rope_scaling, RopeScaling::Llama3 { .. }) {
        bail!(
            "{}: llama3 rope scaling on a {} model cannot be exported to GGUF (llama.cpp reads rope_freqs for llama only)",
            dir.display(),
            c.model_type
        );
    }
    Ok(arch)
}

/// `general.*` and `<arch>.*` metadata from the model's config.
fn hparams(
    c: &LlamaConfig,
    arch: &str,
    name: &str,
    general_type: &str,
) -> Result<Vec<(String, Value)>> {
    let k = |key: &str| format!("{arch}.{key}");
    let mut m = vec![
        s("general.architecture", arch),
        s("general.type", general_type),
        s("general.name", name),
        u(&k("block_count"), c.num_hidden_layers)?,
        u(&k("context_length"), c.max_position_embeddings)?,
        u(&k("embedding_length"), c.hidden_size)?,
        u(&k("feed_forward_length"), c.intermediate_size)?,
        u(&k("attention.head_count"), c.num_attention_heads)?,
        u(&k("attention.head_count_kv"), c.num_key_value_heads)?,
    ];
    if c.family == Family::Gpt2 {
        // Learned positions and LayerNorm: no RoPE keys.
        m.push(f(&k("attention.layer_norm_epsilon"), c.norm_eps));
        return Ok(m);
    }
    m.extend([
        f(&k("rope.freq_base"), c.rope_theta),
        f(&k("attention.layer_norm_rms_epsilon"), c.norm_eps),
        // Explicit, since Qwen3's head_dim is not hidden_size / heads.
        u(&k("attention.key_length"), c.head_dim)?,
        u(&k("attention.value_length"), c.head_dim)?,
        u(&k("vocab_size"), c.vocab_size)?,
        u(&k("rope.dimension_count"), c.head_dim)?,
    ]);
    if let RopeScaling::Linear { factor } = c.rope_scaling {
        m.push(s(&k("rope.scaling.type"), "linear"));
        m.push(f(&k("rope.scaling.factor"), factor));
    }
    Ok(m)
}

/// Llama 3's frequency-dependent RoPE scaling as the per-frequency factors llama.cpp divides
/// the frequencies by (`rope_freqs.weight`), computed as its converter does.
pub fn rope_freqs(c: &LlamaConfig) -> Option<Vec<f32>> {
    let RopeScaling::Llama3 {
        factor,
        low_freq_factor,
        high_freq_factor,
        original_max_position_embeddings: old,
    } = c.rope_scaling
    else {
        return None;
    };
    let dim = c.head_dim as usize;
    let (low_wl, high_wl) = (old / low_freq_factor, old / high_freq_factor);
    Some(
        (0..dim)
            .step_by(2)
            .map(|i| {
                // The converter computes the frequencies in f32 (torch), the rest in Python floats.
                let freq = 1.0f32 / (c.rope_theta as f32).powf(i as f32 / dim as f32);
                let wavelen = 2.0 * std::f64::consts::PI / freq as f64;
                if wavelen < high_wl {
                    1.0
                } else if wavelen > low_wl {
                    factor as f32
                } else {
                    let smooth =
                        (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                    (1.0 / ((1.0 - smooth) / factor + smooth)) as f32
                }
            })
            .collect(),
    )
}

/// A tensor's values as f32, row-major.
fn values(t: &Tensor) -> Result<Vec<f32>> {
    let t = t
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous()
        .flatten(0, -1);
    Ok(Vec::<f32>::try_from(&t)?)
}

/// The rows of an [out, in] q/k weight (or B factor) put in llama.cpp's order; other
/// modules' values unchanged. `gguf` is the ggml tensor name of the base weight.
fn permuted(
    gguf: &str,
    data: Vec<f32>,
    rows: usize,
    cols: usize,
    c: &LlamaConfig,
) -> Result<Vec<f32>> {
    // llama.cpp's qwen2/qwen3 use NeoX (rotate-half) RoPE, the HF row order itself.
    let heads = if c.family != Family::Llama {
        return Ok(data);
    } else if gguf.ends_with(".attn_q.weight") {
        c.num_attention_heads
    } else if gguf.ends_with(".attn_k.weight") {
        c.num_key_value_heads
    } else {
        return Ok(data);
    };
    permute_rows(&data, rows, cols, heads as usize).with_context(|| format!("tensor '{gguf}'"))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// The model's display name: its directory's name.
fn model_name(dir: &Path) -> String {
    let canon = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    file_name(&canon)
}

/// Refuses an output that is a directory or has no file name, before any slow work.
fn check_out(out: &Path) -> Result<()> {
    if out.is_dir() || out.file_name().is_none() {
        bail!(
            "--out {} is a directory: give a file name such as {}/model.gguf",
            out.display(),
            out.display()
        );
    }
    Ok(())
}

fn check_model_dir(dir: &Path, what: &str) -> Result<()> {
    if !dir.join("config.json").is_file() {
        bail!(
            "{what} {} is not a model directory (no config.json): pass a Hugging Face Llama directory such as models/smollm2-135m-instruct",
            dir.display()
        );
    }
    Ok(())
}

fn eos_stops(dir: &Path, c: &LlamaConfig) -> Vec<String> {
    let tok = crate::model::Tokenizer::from_dir(dir).ok();
    c.eos_token_ids
        .iter()
        .filter_map(|&id| tok.as_ref()?.decode(&[id], false).ok())
        .filter(|t| !t.is_empty())
        .collect()
}

fn write_modelfile(out: &Path, spec: &ModelfileSpec) -> Result<PathBuf> {
    let path = out.with_file_name("Modelfile");
    super::modelfile::check_spec(spec)?;
    crate::util::write_atomic(&path, modelfile(spec).as_bytes())?;
    Ok(path)
}

/// Exports a whole model with its adapters folded in. Returns the Modelfile's path.
pub fn export_model(e: &ModelExport, report: &dyn Report) -> Result<PathBuf> {
    let start = std::time::Instant::now();
    check_out(&e.out)?;
    check_model_dir(&e.model, "--model")?;
    let config = LlamaConfig::from_dir(&e.model)?;
    let arch = arch(&config, &e.model)?;
    let template = ChatTemplate::from_dir(&e.model).ok().map(|t| t.source);
    let eos = config.eos_token_ids.first().copied();
    // The vocabulary before the weights, so a tokenizer problem fails fast.
    let vocab = vocab_metadata(
        &e.model,
        config.vocab_size as usize,
        (config.bos_token_id, eos, config.pad_token_id),
        template.as_deref(),
    )?;

    // Loaded in f32 so the folded sum is rounded once, when encoding.
    let mut model = Llama::load(&e.model, Device::Cpu, Kind::Float)?;
    if !e.adapters.is_empty() {
        let set = peft::load_set(&e.adapters, Device::Cpu)?;
        let modules = attach::linear_modules(&model);
        for ((adapter, _), spec) in set.adapters.iter().zip(&e.adapters) {
            peft::check_against(adapter, &modules, spec)?;
        }
        attach::merge_into_model(&mut model, &set)?;
    }
    let c = &model.config;
    let tied = c.tie_word_embeddings;
    // (ggml name, HF tensor) in llama.cpp's usual order.
    let mut named: Vec<(String, Tensor)> = Vec::new();
    for (hf, t) in model.named_tensors() {
        if tied && hf == "lm_head.weight" {
            continue; // llama.cpp reads token_embd.weight for the head when output.weight is absent
        }
        // GPT-2's Conv1D weights are stored [in, out]; ggml wants nn.Linear's [out, in].
        let conv1d = c.family == Family::Gpt2
            && t.dim() == 2
            && [".c_attn.weight", ".c_proj.weight", ".c_fc.weight"]
                .iter()
                .any(|x| hf.ends_with(x));
        let t = if conv1d { t.tr().contiguous() } else { t };
        named.push((gguf_name(&hf)?, t));
    }
    if c.family == Family::Gpt2 {
        // The head is wte; written out as llama.cpp's own GPT-2 converter does.
        let wte = named[0].1.shallow_clone();
        named.push(("output.weight".into(), wte));
    }
    let mut specs: Vec<TensorSpec> = named
        .iter()
        .map(|(n, t)| {
            let dims: Vec<u64> = t.size().iter().rev().map(|&d| d as u64).collect();
            TensorSpec {
                name: n.clone(),
                ty: e.ty.for_tensor(n, &dims),
                dims,
            }
        })
        .collect();
    let freqs = rope_freqs(c);
    if let Some(fq) = &freqs {
        specs.push(TensorSpec {
            name: "rope_freqs.weight".into(),
            dims: vec![fq.len() as u64],
            ty: GgmlType::F32,
        });
    }
    let mut meta = hparams(c, arch, &model_name(&e.model), "model")?;
    meta.push(("general.file_type".into(), Value::U32(e.ty.file_type())));
    meta.push(("general.quantization_version".into(), Value::U32(2)));
    meta.extend(vocab);

    let pb = report.progress(specs.len() as u64, "tensors");
    write_file(&e.out, &meta, &specs, |i| {
        pb.inc(1);
        if i == named.len() {
            return Ok(freqs.clone().unwrap_or_default());
        }
        let (name, t) = &named[i];
        let size = t.size();
        let v = values(t)?;
        if size.len() == 2 {
            permuted(name, v, size[0] as usize, size[1] as usize, c)
        } else {
            Ok(v)
        }
    })
    .with_context(|| format!("cannot write {}", e.out.display()))?;
    pb.finish();

    let mf = write_modelfile(
        &e.out,
        &ModelfileSpec {
            from: &format!("./{}", file_name(&e.out)),
            adapter: None,
            chat_template: template.as_deref(),
            system: e.system.as_deref(),
            extra_stops: eos_stops(&e.model, c),
            notes: vec![],
        },
    )?;
    report.note(&format!(
        "exported {} tensors ({:?}{}, {} adapter(s) folded in) from {} in {:.1}s",
        specs.len(),
        e.ty,
        if tied { ", tied embeddings" } else { "" },
        e.adapters.len(),
        e.model.display(),
        start.elapsed().as_secs_f64()
    ));
    Ok(mf)
}

/// Loads an adapter directory for export: a Bit-LoRA directory's packed ternary file when
/// present (its folded ternary weights, exactly), else adapter_model.safetensors.
pub fn load_for_export(dir: &Path) -> Result<LoraAdapter> {
    if !dir.is_dir() {
        bail!(
            "adapter {} does not exist: pass a PEFT adapter directory (adapter_config.json + adapter_model.safetensors) or a run directory",
            dir.display()
        );
    }
    if dir.join(peft::TERNARY_FILE).is_file() {
        peft::load_ternary_adapter(dir, Device::Cpu)
    } else {
        peft::load_adapter(dir, Device::Cpu)
    }
    .with_context(|| format!("adapter {}", dir.display()))
}

/// [out, in] of each linear module of a Llama with config `c`, by module path.
fn module_shape(c: &LlamaConfig, path: &str) -> Option<(i64, i64)> {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let (q, kv) = (
        c.num_attention_heads * c.head_dim,
        c.num_key_value_heads * c.head_dim,
    );
    if path == "lm_head" {
        return Some((c.vocab_size, h));
    }
    let rest = path
        .strip_prefix("model.layers.")
        .or_else(|| path.strip_prefix("transformer.h."))?;
    let (layer, leaf) = rest.split_once('.')?;
    if layer.parse::<i64>().ok()? >= c.num_hidden_layers {
        return None;
    }
    if c.family == Family::Gpt2 {
        return Some(match leaf {
            "attn.c_attn" => (3 * h, h),
            "attn.c_proj" => (h, h),
            "mlp.c_fc" => (i, h),
            "mlp.c_proj" => (h, i),
            _ => return None,
        });
    }
    Some(match leaf {
        "self_attn.q_proj" => (q, h),
        "self_attn.k_proj" | "self_attn.v_proj" => (kv, h),
        "self_attn.o_proj" => (h, q),
        "mlp.gate_proj" | "mlp.up_proj" => (i, h),
        "mlp.down_proj" => (h, i),
        _ => return None,
    })
}

/// Exports an adapter as a llama.cpp LoRA adapter GGUF. Returns the Modelfile's path.
pub fn export_adapter(e: &AdapterExport, report: &dyn Report) -> Result<PathBuf> {
    check_out(&e.out)?;
    check_model_dir(&e.base, "the base model")?;
    let c = LlamaConfig::from_dir(&e.base)?;
    let arch = arch(&c, &e.base)?;
    let adapter = load_for_export(&e.adapter)?;
    let scaling = adapter.config.scaling();
    let r = adapter.config.r;
    let mut named: Vec<(String, Tensor, Tensor)> = Vec::new();
    for (path, layer) in &adapter.layers {
        let want = module_shape(&c, path).with_context(|| {
            format!("adapter {}: module '{path}' does not exist in the base model {} (wrong base model?)", e.adapter.display(), e.base.display())
        })?;
        if (layer.out_features(), layer.in_features()) != want {
            bail!(
                "adapter {}: module '{path}' is {}→{} but the base model {} has {}→{} (wrong base model?)",
                e.adapter.display(),
                layer.in_features(),
                layer.out_features(),
                e.base.display(),
                want.1,
                want.0
            );
        }
        if path == "lm_head" && c.tie_word_embeddings {
            bail!("adapter {} adapts lm_head, but the base model ties it to the embeddings: llama.cpp cannot apply that adapter (export the merged model instead: --model {} --adapter {})", e.adapter.display(), e.base.display(), e.adapter.display());
        }
        if layer.rank() != r {
            bail!(
                "adapter {}: module '{path}' has rank {} but the config says r = {r}",
                e.adapter.display(),
                layer.rank()
            );
        }
        named.push((
            gguf_name(&format!("{path}.weight"))?,
            layer.a.shallow_clone(),
            layer.b.shallow_clone(),
        ));
    }
    let mut specs = Vec::with_capacity(2 * named.len());
    for (base, a, b) in &named {
        let (sa, sb) = (a.size(), b.size());
        for (suffix, dims) in [
            ("lora_a", vec![sa[1] as u64, sa[0] as u64]),
            ("lora_b", vec![sb[1] as u64, sb[0] as u64]),
        ] {
            let name = format!("{base}.{suffix}");
            specs.push(TensorSpec {
                ty: e.ty.for_tensor(&name, &dims),
                name,
                dims,
            });
        }
    }
    let mut meta = vec![
        // llama.cpp refuses an adapter whose architecture is not the model's.
        s("general.architecture", arch),
        s("general.type", "adapter"),
        s(
            "general.name",
            &file_name(
                &e.adapter
                    .canonicalize()
                    .unwrap_or_else(|_| e.adapter.clone()),
            ),
        ),
        s("adapter.type", "lora"),
        // llama.cpp scales by α / r with r = the tensor's rank: α = scaling · r gives the
        // adapter's own scaling (α/r, or α/√r for rsLoRA).
        f("adapter.lora.alpha", scaling * r as f64),
    ];
    meta.push(("general.file_type".into(), Value::U32(e.ty.file_type())));
    meta.push(("general.quantization_version".into(), Value::U32(2)));
    write_file(&e.out, &meta, &specs, |i| {
        let (base, a, b) = &named[i / 2];
        if i % 2 == 0 {
            values(a)
        } else {
            let size = b.size();
            permuted(base, values(b)?, size[0] as usize, size[1] as usize, &c)
        }
    })
    .with_context(|| format!("cannot write {}", e.out.display()))?;
    let template = ChatTemplate::from_dir(&e.base).ok().map(|t| t.source);
    let mf = write_modelfile(
        &e.out,
        &ModelfileSpec {
            from: &e.base_gguf,
            adapter: Some(&format!("./{}", file_name(&e.out))),
            chat_template: template.as_deref(),
            system: e.system.as_deref(),
            extra_stops: eos_stops(&e.base, &c),
            notes: vec![format!(
                "FROM is the base model as a GGUF; make it with: {}",
                e.base_command
            )],
        },
    )?;
    report.note(&format!(
        "exported {} LoRA modules (r = {r}, scaling {scaling}) of {} for base {}",
        named.len(),
        e.adapter.display(),
        e.base.display()
    ));
    Ok(mf)
}
