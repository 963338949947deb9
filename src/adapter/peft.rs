//! PEFT's on-disk adapter format: `adapter_config.json` + `adapter_model.safetensors`.
//!
//! Keys: `base_model.model.<module path>.lora_A.weight` [r, in] and `.lora_B.weight`
//! [out, r], f32. On load we also accept PEFT's in-memory form with an adapter name
//! (`.lora_A.default.weight`). Bit-LoRA adapters are saved here dequantized (the ternary
//! values s·{−1,0,1}), so they load anywhere as plain LoRA, and additionally packed in
//! `adapter_ternary.safetensors` (see `adapter::bitlora`).
use super::bitlora;
use super::lora::{
    key_a, key_b, leaf_name, LoraAdapter, LoraConfig, LoraLayer, Quant, TargetModules, PREFIX,
};
use crate::io::tensorfile;
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";
pub const TERNARY_FILE: &str = "adapter_ternary.safetensors";

/// Sizes written by [`save_adapter`], in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedSizes {
    /// adapter_model.safetensors on disk.
    pub fp32_file: u64,
    /// adapter_ternary.safetensors on disk (Bit-LoRA only).
    pub packed_file: Option<u64>,
    /// Tensor payload: 4 bytes a weight.
    pub fp32_payload: usize,
    /// Packed payload: ⌈n/4⌉ bytes + a 4-byte scale per tensor (Bit-LoRA only).
    pub packed_payload: Option<usize>,
}

/// The `target_modules` written to the config: leaf names when the config named leaves
/// (or all-linear), so PEFT/vLLM see e.g. ["k_proj","q_proj"]; otherwise the exact paths
/// covered, so PEFT re-creates exactly these layers.
fn saved_targets(adapter: &LoraAdapter) -> Vec<String> {
    let leaves_ok = match &adapter.config.target_modules {
        TargetModules::One(s) => s == "all-linear",
        TargetModules::List(l) => l.iter().all(|n| !n.contains('.')),
    };
    let mut v: Vec<String> = if leaves_ok {
        adapter
            .layers
            .keys()
            .map(|p| leaf_name(p).to_string())
            .collect()
    } else {
        adapter.layers.keys().cloned().collect()
    };
    v.sort();
    v.dedup();
    v
}

/// The adapter_config.json PEFT 0.21 writes for a plain LoRA, with our values.
pub fn config_json(adapter: &LoraAdapter, base_model: Option<&str>) -> serde_json::Value {
    let c = &adapter.config;
    json!({
        "alpha_pattern": {},
        "auto_mapping": null,
        "base_model_name_or_path": base_model,
        "bias": "none",
        "exclude_modules": null,
        "fan_in_fan_out": adapter.fan_in_fan_out,
        "inference_mode": true,
        "init_lora_weights": true,
        "layer_replication": null,
        "layers_pattern": null,
        "layers_to_transform": null,
        "loftq_config": {},
        "lora_alpha": if c.alpha.fract() == 0.0 && c.alpha.abs() < 1e15 { json!(c.alpha as i64) } else { json!(c.alpha) },
        "lora_bias": false,
        "lora_dropout": c.dropout,
        "megatron_config": null,
        "megatron_core": "megatron.core",
        "modules_to_save": null,
        "peft_type": "LORA",
        "r": c.r,
        "rank_pattern": {},
        "revision": null,
        "target_modules": saved_targets(adapter),
        "task_type": "CAUSAL_LM",
        "use_dora": false,
        "use_rslora": c.use_rslora,
    })
}

/// Writes the adapter as PEFT does (atomically, file by file); for Bit-LoRA also the packed
/// ternary file. The config is written last so a directory with a config is complete.
pub fn save_adapter(
    adapter: &LoraAdapter,
    dir: &Path,
    base_model: Option<&str>,
) -> Result<SavedSizes> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create adapter directory {}", dir.display()))?;
    let mut tensors = Vec::new();
    let mut packed = Vec::new();
    for (p, l) in &adapter.layers {
        let (a, b) = match adapter.quant {
            Quant::None => (l.a.detach(), l.b.detach()),
            Quant::Ternary => {
                packed.push((key_a(p), bitlora::pack(&l.a)));
                packed.push((key_b(p), bitlora::pack(&l.b)));
                (
                    bitlora::ternary_quantize(&l.a),
                    bitlora::ternary_quantize(&l.b),
                )
            }
        };
        tensors.push((key_a(p), a.to_kind(Kind::Float)));
        tensors.push((key_b(p), b.to_kind(Kind::Float)));
    }
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let wpath = dir.join(WEIGHTS_FILE);
    tensorfile::write(&wpath, &tensors, Some(meta))?;
    let refs: Vec<&Tensor> = tensors.iter().map(|(_, t)| t).collect();
    let (fp32_payload, packed_payload) = bitlora::sizes(&refs);
    let mut sizes = SavedSizes {
        fp32_file: file_len(&wpath)?,
        packed_file: None,
        fp32_payload,
        packed_payload: None,
    };
    if adapter.quant == Quant::Ternary {
        let tpath = dir.join(TERNARY_FILE);
        bitlora::write_packed(&tpath, &packed)?;
        sizes.packed_file = Some(file_len(&tpath)?);
        sizes.packed_payload = Some(packed_payload);
    }
    let text = serde_json::to_string_pretty(&config_json(adapter, base_model))?;
    crate::util::write_atomic(&dir.join(CONFIG_FILE), text.as_bytes())?;
    Ok(sizes)
}

fn file_len(p: &Path) -> Result<u64> {
    Ok(std::fs::metadata(p)
        .with_context(|| format!("cannot stat {}", p.display()))?
        .len())
}

/// The fields of a PEFT adapter_config.json that matter to us; PEFT's many others are
/// ignored, but features we do not implement are refused by [`read_config`].
#[derive(serde::Deserialize)]
struct PeftConfigFile {
    peft_type: Option<String>,
    r: i64,
    lora_alpha: f64,
    #[serde(default)]
    lora_dropout: f64,
    #[serde(default)]
    use_rslora: bool,
    target_modules: Option<TargetModules>,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default)]
    use_dora: bool,
    #[serde(default)]
    lora_bias: bool,
    bias: Option<String>,
    #[serde(default)]
    rank_pattern: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    alpha_pattern: Option<serde_json::Map<String, serde_json::Value>>,
    modules_to_save: Option<Vec<String>>,
}

/// Reads adapter_config.json into our LoraConfig, refusing unsupported PEFT features.
pub fn read_config(dir: &Path) -> Result<LoraConfig> {
    read_config_and_layout(dir).map(|(c, _)| c)
}

/// [`read_config`] plus `fan_in_fan_out`. That flag only says how the base layers store
/// their weights (PEFT itself sets it per layer from the layer's type: true for Conv1D),
/// so A and B apply the same either way; it is kept to be written back unchanged.
fn read_config_and_layout(dir: &Path) -> Result<(LoraConfig, bool)> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}: is {} a PEFT adapter directory?",
            path.display(),
            dir.display()
        )
    })?;
    let c: PeftConfigFile = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a LoRA adapter config", path.display()))?;
    let unsupported = |what: &str| {
        anyhow::anyhow!(
            "{}: {what} is not supported by stylerl (use a plain LoRA adapter)",
            path.display()
        )
    };
    if c.peft_type.as_deref().unwrap_or("LORA") != "LORA" {
        bail!(
            "{}: peft_type {:?} is not LORA",
            path.display(),
            c.peft_type.unwrap_or_default()
        );
    }
    if c.use_dora {
        return Err(unsupported("use_dora = true"));
    }
    if c.lora_bias || c.bias.as_deref().is_some_and(|b| b != "none") {
        return Err(unsupported("a LoRA bias"));
    }
    if c.rank_pattern.is_some_and(|m| !m.is_empty())
        || c.alpha_pattern.is_some_and(|m| !m.is_empty())
    {
        return Err(unsupported("rank_pattern/alpha_pattern"));
    }
    if c.modules_to_save.is_some_and(|m| !m.is_empty()) {
        return Err(unsupported("modules_to_save"));
    }
    let cfg = LoraConfig {
        r: c.r,
        alpha: c.lora_alpha,
        dropout: c.lora_dropout,
        use_rslora: c.use_rslora,
        target_modules: c.target_modules.unwrap_or_default(),
    };
    cfg.validate()
        .with_context(|| format!("{}", path.display()))?;
    Ok((cfg, c.fan_in_fan_out))
}

/// Splits a PEFT key into (module path, "A"|"B"); accepts an adapter name before `.weight`.
fn parse_key(key: &str) -> Option<(String, char)> {
    let rest = key.strip_prefix(PREFIX)?;
    let body = rest.strip_suffix(".weight")?;
    for (tag, which) in [(".lora_A", 'A'), (".lora_B", 'B')] {
        if let Some(i) = body.rfind(tag) {
            let after = &body[i + tag.len()..];
            if after.is_empty() || (after.starts_with('.') && !after[1..].contains('.')) {
                return Some((body[..i].to_string(), which));
            }
        }
    }
    None
}

/// Loads a PEFT LoRA adapter directory (ours or PEFT's) as a plain LoRA on `device`.
/// Errors name the file and the key for unknown, missing or mis-shaped tensors.
pub fn load_adapter(dir: &Path, device: Device) -> Result<LoraAdapter> {
    let (cfg, fan_in_fan_out) = read_config_and_layout(dir)?;
    let wpath = dir.join(WEIGHTS_FILE);
    if !wpath.exists() && dir.join("adapter_model.bin").exists() {
        bail!(
            "{}: only adapter_model.bin found; save the adapter with safe_serialization=True",
            dir.display()
        );
    }
    let file = tensorfile::read(&wpath)?;
    let mut pairs: BTreeMap<String, (Option<Tensor>, Option<Tensor>)> = BTreeMap::new();
    for (k, t) in &file.tensors {
        let (path, which) = parse_key(k).with_context(|| format!("{}: unexpected tensor '{k}' (expected base_model.model.<module>.lora_A/lora_B.weight)", wpath.display()))?;
        let e = pairs.entry(path).or_default();
        let slot = if which == 'A' { &mut e.0 } else { &mut e.1 };
        if slot.is_some() {
            bail!("{}: two lora_{which} tensors for one module ('{k}'): the file holds several adapters", wpath.display());
        }
        *slot = Some(t.shallow_clone());
    }
    if pairs.is_empty() {
        bail!("{}: no LoRA tensors", wpath.display());
    }
    // A config that targets none of the file's modules belongs to another adapter.
    if !pairs.keys().any(|p| cfg.is_targeted(p)) {
        bail!(
            "{}: target_modules {} matches none of the {} modules the weights adapt (e.g. '{}'): the config and weights do not belong together",
            dir.join(CONFIG_FILE).display(),
            serde_json::to_string(&cfg.target_modules).unwrap_or_default(),
            pairs.len(),
            pairs.keys().next().map(String::as_str).unwrap_or_default()
        );
    }
    let named: Vec<(String, Tensor)> = file
        .tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.shallow_clone()))
        .collect();
    if let Some(k) = first_non_finite(&named) {
        bail!("{}: tensor '{k}' holds NaN or infinite values (a diverged run): use an earlier checkpoint", wpath.display());
    }
    let scaling = cfg.scaling();
    let mut layers = BTreeMap::new();
    for (path, (a, b)) in pairs {
        let a = a.with_context(|| format!("{}: missing {}", wpath.display(), key_a(&path)))?;
        let b = b.with_context(|| format!("{}: missing {}", wpath.display(), key_b(&path)))?;
        let (sa, sb) = (a.size(), b.size());
        if sa.len() != 2 || sb.len() != 2 || sa[0] != cfg.r || sb[1] != cfg.r {
            bail!("{}: {path}: lora_A {sa:?} / lora_B {sb:?} do not fit r = {} (want [r, in] and [out, r])", wpath.display(), cfg.r);
        }
        layers.insert(
            path,
            LoraLayer::from_tensors(&a, &b, scaling, cfg.dropout, Quant::None, device),
        );
    }
    let mut adapter = LoraAdapter::from_layers(cfg, Quant::None, layers);
    adapter.fan_in_fan_out = fan_in_fan_out;
    Ok(adapter)
}

/// The name of the first tensor holding a NaN or an infinity, if any.
pub fn first_non_finite(named: &[(String, Tensor)]) -> Option<String> {
    named.iter().find_map(|(k, t)| {
        let ok = t.isfinite().all().int64_value(&[]) != 0;
        (!ok).then(|| k.clone())
    })
}

/// The largest |ΔW| entry an adapter can add at weight `w`, |w| · scaling · r · max|A| · max|B|,
/// must stay far inside f32: RMSNorm squares activations, so deltas past 1e15 turn a forward
/// pass into NaN (empty text with exit 0). Refused before any work, naming the spec.
const MAX_DELTA: f64 = 1e15;

fn check_weight(a: &LoraAdapter, w: f64, spec: &str) -> Result<()> {
    if !w.is_finite() {
        bail!("--adapter {spec}: the weight {w} is not finite: give a number such as PATH:0.5");
    }
    for (p, l) in &a.layers {
        let amax = l.a.abs().max().double_value(&[]);
        let bmax = l.b.abs().max().double_value(&[]);
        let r = l.a.size()[0] as f64;
        let bound = w.abs() * l.scaling * r * amax * bmax;
        if !(bound <= MAX_DELTA) {
            bail!(
                "--adapter {spec}: at weight {w} module '{p}' can add up to {bound:.3e} to a weight, past {MAX_DELTA:e}: the model would hold NaN or infinite weights and activations; lower WEIGHT in --adapter PATH:WEIGHT"
            );
        }
    }
    Ok(())
}

/// Loads `PATH[:WEIGHT]` specs (the repeatable `--adapter` flag) into a composed set.
pub fn load_set(specs: &[String], device: Device) -> Result<super::lora::LoraSet> {
    let mut set = super::lora::LoraSet::new();
    for spec in specs {
        let (path, w) = super::lora::parse_adapter_spec(spec)?;
        let a = load_adapter(&path, device).with_context(|| format!("--adapter {spec}"))?;
        check_weight(&a, w, spec)?;
        a.set_trainable(false);
        set.push(a, w);
    }
    Ok(set)
}

/// Checks that every adapted module exists in the model with the right shape;
/// `modules` = (path, in, out) of the model's linear layers.
pub fn check_against(
    adapter: &LoraAdapter,
    modules: &[(String, i64, i64)],
    what: &str,
) -> Result<()> {
    let map: BTreeMap<&str, (i64, i64)> = modules
        .iter()
        .map(|(p, i, o)| (p.as_str(), (*i, *o)))
        .collect();
    for (p, l) in &adapter.layers {
        let Some(&(i, o)) = map.get(p.as_str()) else {
            bail!("adapter {what}: module '{p}' does not exist in the model (wrong base model?)");
        };
        if (l.in_features(), l.out_features()) != (i, o) {
            bail!("adapter {what}: module '{p}' is {}→{} in the adapter but {i}→{o} in the model (wrong base model?)", l.in_features(), l.out_features());
        }
    }
    Ok(())
}

/// Copies the latent A, B values stored in `path` (PEFT key names) into the adapter in
/// place, so handles held elsewhere see them. Used by checkpoint resume.
pub fn load_values_into(adapter: &LoraAdapter, path: &Path) -> Result<()> {
    let f = tensorfile::read(path)?;
    let _g = tch::no_grad_guard();
    for (p, l) in &adapter.layers {
        for (key, dst) in [(key_a(p), &l.a), (key_b(p), &l.b)] {
            let src = f.get(&key, path)?;
            if src.size() != dst.size() {
                bail!(
                    "{}: {key} has shape {:?}, the adapter needs {:?}",
                    path.display(),
                    src.size(),
                    dst.size()
                );
            }
            let mut d = dst.shallow_clone();
            d.copy_(&src.to_kind(Kind::Float).to_device(dst.device()));
        }
    }
    if f.tensors.len() != 2 * adapter.layers.len() {
        bail!(
            "{}: holds {} tensors, the adapter has {}",
            path.display(),
            f.tensors.len(),
            2 * adapter.layers.len()
        );
    }
    Ok(())
}

/// Loads the packed ternary file of a Bit-LoRA adapter as an exact plain LoRA.
pub fn load_ternary_adapter(dir: &Path, device: Device) -> Result<LoraAdapter> {
    let (cfg, fan_in_fan_out) = read_config_and_layout(dir)?;
    let tpath = dir.join(TERNARY_FILE);
    let packed = bitlora::read_packed(&tpath)?;
    let mut pairs: BTreeMap<String, (Option<Tensor>, Option<Tensor>)> = BTreeMap::new();
    for (k, p) in &packed {
        let (path, which) = parse_key(k)
            .with_context(|| format!("{}: unexpected tensor '{k}'", tpath.display()))?;
        let t = bitlora::unpack(p).with_context(|| format!("{}: {k}", tpath.display()))?;
        let e = pairs.entry(path).or_default();
        if which == 'A' {
            e.0 = Some(t)
        } else {
            e.1 = Some(t)
        }
    }
    let mut layers = BTreeMap::new();
    for (path, (a, b)) in pairs {
        let a = a.with_context(|| format!("{}: missing {}", tpath.display(), key_a(&path)))?;
        let b = b.with_context(|| format!("{}: missing {}", tpath.display(), key_b(&path)))?;
        layers.insert(
            path,
            LoraLayer::from_tensors(&a, &b, cfg.scaling(), cfg.dropout, Quant::None, device),
        );
    }
    let mut adapter = LoraAdapter::from_layers(cfg, Quant::None, layers);
    adapter.fan_in_fan_out = fan_in_fan_out;
    Ok(adapter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_with_and_without_adapter_name() {
        assert_eq!(
            parse_key("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"),
            Some(("model.layers.0.self_attn.q_proj".into(), 'A'))
        );
        assert_eq!(
            parse_key("base_model.model.model.layers.0.mlp.up_proj.lora_B.default.weight"),
            Some(("model.layers.0.mlp.up_proj".into(), 'B'))
        );
        assert_eq!(
            parse_key("base_model.model.model.embed_tokens.weight"),
            None
        );
        assert_eq!(parse_key("model.layers.0.q_proj.lora_A.weight"), None);
    }
}
