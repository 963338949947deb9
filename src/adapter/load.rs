//! The one model loader: every command and every config that names a model ends here.
//!
//! Two ways in name the same thing, a model directory with a device, a dtype and frozen
//! adapters: the `[model]` table of the training and evaluation configs ([`ModelSection`])
//! and the `--model/--device/--dtype/--adapter` flags of the model commands. Both turn into
//! a [`ModelSpec`], where the device and dtype are parsed once, and [`load`] builds the model.
use crate::model::chat::ChatTemplate;
use crate::model::llama::Llama;
use crate::model::precision::Precision;
use crate::model::tokenizer::Tokenizer;
use anyhow::{bail, Result};
use serde::Deserialize;
use std::path::PathBuf;
use tch::{Device, Kind};

/// A model to load, with its device and dtype already parsed.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    /// Hugging Face model directory (Llama, Qwen2, Qwen3 or GPT-2).
    pub path: PathBuf,
    pub device: Device,
    pub kind: Kind,
    /// Build from config.json alone with random weights (speed/memory work).
    pub random_init: bool,
    /// Frozen adapters applied on top, `PATH[:WEIGHT]`; their deltas add up.
    pub adapters: Vec<String>,
    /// The precision of the weights in training matmuls (`model.matmul`, `--matmul`).
    pub matmul: Precision,
}

impl ModelSpec {
    /// Parses the device and dtype strings (the one place they are parsed for a model).
    pub fn parse(
        path: PathBuf,
        device: &str,
        dtype: &str,
        random_init: bool,
        adapters: Vec<String>,
    ) -> Result<ModelSpec> {
        Ok(ModelSpec {
            path,
            device: crate::util::parse_device(device)?,
            kind: crate::util::parse_dtype(dtype)?,
            random_init,
            adapters,
            matmul: Precision::F32,
        })
    }

    /// The same spec with the training matmuls' precision parsed from `s` (f32, bf16, auto).
    pub fn with_matmul(mut self, s: &str) -> Result<ModelSpec> {
        self.matmul = Precision::parse(s)?;
        Ok(self)
    }
}

/// Loads (or randomly initialises) the model with its adapters attached (frozen, each
/// composed with its weight).
pub fn load(spec: &ModelSpec) -> Result<Llama> {
    let mut model = if spec.random_init {
        Llama::random_init(&spec.path, spec.device, spec.kind, 0)?
    } else {
        Llama::load(&spec.path, spec.device, spec.kind)?
    };
    if !spec.adapters.is_empty() {
        super::attach::load_and_attach(&mut model, &spec.adapters, spec.device)?;
    }
    model.set_matmul_kind(spec.matmul.for_matmul(spec.device, spec.kind));
    Ok(model)
}

/// `[model]` table shared by the training and evaluation configs.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Hugging Face model directory (Llama, Qwen2, Qwen3 or GPT-2).
    pub path: PathBuf,
    #[serde(default = "d_device")]
    pub device: String,
    #[serde(default = "d_dtype")]
    pub dtype: String,
    /// Adapters applied (frozen) under the trained one, `PATH[:WEIGHT]`.
    #[serde(default)]
    pub adapters: Vec<String>,
    /// Weights of the training matmuls: f32, bf16 (rounded copies; activations, adapters,
    /// optimizer and loss stay f32) or auto (bf16 where a bf16 matmul times faster here).
    #[serde(default = "d_matmul")]
    pub matmul: String,
}
fn d_matmul() -> String {
    "f32".into()
}
fn d_device() -> String {
    "cpu".into()
}
fn d_dtype() -> String {
    "f32".into()
}

impl ModelSection {
    /// A model directory on the CPU in f32, without adapters (the frozen scorers).
    pub fn cpu_f32(path: PathBuf) -> ModelSection {
        ModelSection {
            path,
            device: d_device(),
            dtype: d_dtype(),
            adapters: Vec::new(),
            matmul: d_matmul(),
        }
    }

    /// Device and dtype parse (CUDA visible when asked for); `prefix` is the table's key.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        crate::config::check::device(&format!("{prefix}.device"), &self.device)?;
        crate::config::check::dtype(&format!("{prefix}.dtype"), &self.dtype)?;
        Precision::parse_matmul_setting(&format!("{prefix}.matmul"), &self.matmul)?;
        Ok(())
    }

    pub fn spec(&self) -> Result<ModelSpec> {
        ModelSpec::parse(
            self.path.clone(),
            &self.device,
            &self.dtype,
            false,
            self.adapters.clone(),
        )?
        .with_matmul(&self.matmul)
    }
}

/// Loads a config's model with its frozen adapters, its tokenizer and its chat template.
pub fn load_policy(m: &ModelSection) -> Result<(Llama, Tokenizer, ChatTemplate)> {
    if !crate::util::is_file_checked(&m.path.join("config.json"))? {
        bail!(
            "model.path '{}' is not a model directory (no config.json): run the stage that writes it (e.g. `stylerl sft` for runs/*/sft/merged) or fix the path",
            m.path.display()
        );
    }
    let model = load(&m.spec()?)?;
    let tok = Tokenizer::from_dir(&m.path)?;
    let tpl = ChatTemplate::from_dir(&m.path)?;
    Ok((model, tok, tpl))
}
