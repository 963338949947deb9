//! Reading a sentence-transformers directory: which files hold the model, tokenizer, pooling
//! and normalisation, checked up front so a bad directory fails in one line naming the file.
use super::pooling::PoolMode;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The architectures that share the BERT encoder block and differ in position ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Bert,
    /// RoBERTa and XLM-R: positions start at pad_token_id + 1 and pads keep pad_token_id.
    Roberta,
}

/// The fields of config.json the encoder needs.
#[derive(Clone, Debug)]
pub struct EncoderConfig {
    pub model_type: String,
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    /// `none` (exact erf GELU) or `tanh`.
    pub gelu_approximate: &'static str,
    pub layer_norm_eps: f64,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub pad_token_id: i64,
}

impl EncoderConfig {
    /// Parses config.json's text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let v: Value = serde_json::from_str(text)
            .with_context(|| format!("{}: not valid JSON", path.display()))?;
        let model_type = v["model_type"].as_str().unwrap_or("").to_string();
        let arch = match model_type.as_str() {
            "bert" => Arch::Bert,
            "roberta" | "xlm-roberta" | "camembert" => Arch::Roberta,
            other => bail!(
                "{}: model_type '{other}' is not supported: use a bert, roberta or xlm-roberta sentence-transformers model",
                path.display()
            ),
        };
        let int = |k: &str| -> Result<usize> {
            v[k].as_u64()
                .map(|x| x as usize)
                .with_context(|| format!("{}: missing integer '{k}'", path.display()))
        };
        let gelu_approximate = match v["hidden_act"].as_str().unwrap_or("gelu") {
            "gelu" => "none",
            "gelu_new" | "gelu_pytorch_tanh" => "tanh",
            other => bail!(
                "{}: hidden_act '{other}' is not supported: use gelu",
                path.display()
            ),
        };
        if let Some(p) = v["position_embedding_type"].as_str() {
            if p != "absolute" {
                bail!(
                    "{}: position_embedding_type '{p}' is not supported: only absolute",
                    path.display()
                );
            }
        }
        let pad_default = if arch == Arch::Roberta { 1 } else { 0 };
        Ok(EncoderConfig {
            model_type,
            arch,
            vocab_size: int("vocab_size")?,
            hidden_size: int("hidden_size")?,
            num_hidden_layers: int("num_hidden_layers")?,
            num_attention_heads: int("num_attention_heads")?,
            intermediate_size: int("intermediate_size")?,
            gelu_approximate,
            layer_norm_eps: v["layer_norm_eps"].as_f64().unwrap_or(1e-12),
            max_position_embeddings: int("max_position_embeddings")?,
            type_vocab_size: v["type_vocab_size"].as_u64().unwrap_or(2) as usize,
            pad_token_id: v["pad_token_id"].as_i64().unwrap_or(pad_default),
        })
    }

    /// The longest input the position table allows (RoBERTa loses pad_token_id + 1 slots).
    pub fn max_positions(&self) -> usize {
        match self.arch {
            Arch::Bert => self.max_position_embeddings,
            Arch::Roberta => self
                .max_position_embeddings
                .saturating_sub(self.pad_token_id as usize + 1),
        }
    }
}

/// Everything read from a sentence-transformers directory, before any weights load.
#[derive(Clone, Debug)]
pub struct StDir {
    pub root: PathBuf,
    /// Directory of the Transformer module (usually the root).
    pub model_dir: PathBuf,
    pub config: EncoderConfig,
    /// One or more safetensors files (several when sharded with an index).
    pub weights: Vec<PathBuf>,
    pub tokenizer: PathBuf,
    pub pooling: Vec<PoolMode>,
    pub normalize: bool,
    pub max_seq_length: usize,
    pub do_lower_case: bool,
}

fn read_json(path: &Path, what: &str) -> Result<Value> {
    if !path.exists() {
        bail!("{} is missing ({what})", path.display());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))
}

/// The last dotted component of a module type, e.g. `sentence_transformers.models.Pooling` → `Pooling`.
fn short_type(t: &str) -> &str {
    t.rsplit('.').next().unwrap_or(t)
}

impl StDir {
    /// Reads and checks the directory. Errors name the path and the missing or bad file.
    pub fn open(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            bail!(
                "encoder '{}' is not a directory: pass a sentence-transformers directory or 'stylometric'",
                root.display()
            );
        }
        let modules = read_json(
            &root.join("modules.json"),
            "a sentence-transformers directory lists its modules there",
        )?;
        let list = modules
            .as_array()
            .with_context(|| format!("{}/modules.json: expected a list", root.display()))?;
        let (mut model_rel, mut pooling_rel, mut normalize) = (None, None, false);
        for m in list {
            let ty = m["type"].as_str().unwrap_or("");
            let rel = m["path"].as_str().unwrap_or("").to_string();
            match short_type(ty) {
                "Transformer" => model_rel = Some(rel),
                "Pooling" => pooling_rel = Some(rel),
                "Normalize" => normalize = true,
                "Dense" => bail!(
                    "{}/modules.json: Dense modules are not supported (module '{rel}'): use a directory with Transformer, Pooling and optional Normalize only",
                    root.display()
                ),
                other => bail!("{}/modules.json: module type '{other}' is not supported", root.display()),
            }
        }
        let model_dir =
            root.join(model_rel.with_context(|| {
                format!("{}/modules.json: no Transformer module", root.display())
            })?);
        let pooling_dir = root.join(
            pooling_rel
                .with_context(|| format!("{}/modules.json: no Pooling module", root.display()))?,
        );
        let config_path = model_dir.join("config.json");
        if !config_path.exists() {
            bail!(
                "{} is missing (the transformer's config)",
                config_path.display()
            );
        }
        let config = EncoderConfig::parse(&std::fs::read_to_string(&config_path)?, &config_path)?;
        let weights = find_weights(&model_dir)?;
        let tokenizer = model_dir.join("tokenizer.json");
        if !tokenizer.exists() {
            bail!(
                "{} is missing: save the tokenizer as a fast tokenizer (tokenizer.save_pretrained)",
                tokenizer.display()
            );
        }
        let pool_cfg = read_json(
            &pooling_dir.join("config.json"),
            "the pooling configuration",
        )?;
        let pooling = super::pooling::parse_pooling_config(&pool_cfg)
            .with_context(|| format!("{}/config.json", pooling_dir.display()))?;
        let (max_seq_length, do_lower_case) = seq_settings(&model_dir, &config)?;
        Ok(StDir {
            root: root.to_path_buf(),
            model_dir,
            config,
            weights,
            tokenizer,
            pooling,
            normalize,
            max_seq_length,
            do_lower_case,
        })
    }
}

/// model.safetensors, or the shards named by model.safetensors.index.json. pytorch_model.bin is refused.
fn find_weights(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let v = read_json(&index, "the shard index")?;
        let map = v["weight_map"]
            .as_object()
            .with_context(|| format!("{}: no weight_map", index.display()))?;
        let mut files: Vec<PathBuf> = Vec::new();
        for f in map.values().filter_map(|f| f.as_str()) {
            let p = dir.join(f);
            if !files.contains(&p) {
                files.push(p);
            }
        }
        for f in &files {
            if !f.exists() {
                bail!("{} is missing (listed in {})", f.display(), index.display());
            }
        }
        return Ok(files);
    }
    if dir.join("pytorch_model.bin").exists() {
        bail!(
            "{}: only pytorch_model.bin found; pickle weights are not loaded: convert them to model.safetensors (transformers: model.save_pretrained(dir, safe_serialization=True))",
            dir.display()
        );
    }
    bail!(
        "{} is missing (the transformer's weights)",
        single.display()
    )
}

/// max_seq_length and do_lower_case as sentence-transformers resolves them: the module config
/// first, then tokenizer_config.json's model_max_length, capped by the position table.
fn seq_settings(dir: &Path, cfg: &EncoderConfig) -> Result<(usize, bool)> {
    let names = [
        "sentence_bert_config.json",
        "sentence_roberta_config.json",
        "sentence_xlm-roberta_config.json",
        "sentence_camembert_config.json",
    ];
    let mut max_len: Option<usize> = None;
    let mut lower = false;
    if let Some(p) = names.iter().map(|n| dir.join(n)).find(|p| p.exists()) {
        let v = read_json(&p, "the transformer module settings")?;
        max_len = v["max_seq_length"]
            .as_u64()
            .or_else(|| v["processor_kwargs"]["model_max_length"].as_u64())
            .map(|x| x as usize);
        lower = v["do_lower_case"].as_bool().unwrap_or(false);
    }
    if max_len.is_none() {
        let p = dir.join("tokenizer_config.json");
        if p.exists() {
            let v = read_json(&p, "tokenizer settings")?;
            // Tokenizers without a limit store a huge float here; the cap below handles it.
            max_len = v["model_max_length"].as_f64().map(|x| x.min(1e9) as usize);
        }
    }
    let cap = cfg.max_positions();
    let want = max_len.unwrap_or(cap);
    if want > cap {
        tracing::warn!(
            "{}: max_seq_length {want} exceeds the {cap} positions the model has; using {cap}",
            dir.display()
        );
    }
    Ok((want.min(cap), lower))
}
