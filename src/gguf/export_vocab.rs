//! `tokenizer.ggml.*` and `tokenizer.chat_template` metadata from a Hugging Face directory's
//! tokenizer.json / tokenizer_config.json (byte-level BPE): the inverse of
//! [`super::tokenizer::build`].
//!
//! Token types follow llama.cpp's converter: special added tokens are control (3), other
//! added tokens user-defined (4), ids missing from the vocabulary `[PAD<id>]` unused (5),
//! the rest normal (1). `tokenizer.ggml.pre` is read off the pre-tokenizer's structure, so
//! llama.cpp splits text exactly as the directory's tokenizer.json (and stylerl) does.
use super::reader::Value;
use super::tokenizer::{LLAMA3_SPLIT, QWEN2_SPLIT};
use anyhow::{bail, Context, Result};
use serde_json::Value as Json;
use std::path::Path;

fn read_json(path: &Path) -> Result<Json> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// A token named in tokenizer_config.json: a string, or an object with `content`.
fn token_text(v: &Json) -> Option<&str> {
    v.as_str()
        .or_else(|| v.get("content").and_then(Json::as_str))
}

/// The llama.cpp pre-tokenizer name for a tokenizer.json `pre_tokenizer`.
pub fn pre_name(pre: &Json) -> Result<&'static str> {
    let ty = pre.get("type").and_then(Json::as_str).unwrap_or("");
    let byte_level_regex = |p: &Json| {
        p.get("type") == Some(&"ByteLevel".into()) && p.get("use_regex") != Some(&false.into())
    };
    if ty == "ByteLevel" && byte_level_regex(pre) {
        return Ok("gpt-2");
    }
    if ty == "Sequence" {
        let parts = pre
            .get("pretokenizers")
            .and_then(Json::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        match parts {
            [d, b]
                if d.get("type") == Some(&"Digits".into())
                    && d.get("individual_digits") == Some(&true.into())
                    && byte_level_regex(b) =>
            {
                return Ok("smollm")
            }
            [s, b]
                if s.get("type") == Some(&"Split".into())
                    && b.get("type") == Some(&"ByteLevel".into()) =>
            {
                let regex = s.pointer("/pattern/Regex").and_then(Json::as_str);
                if regex == Some(LLAMA3_SPLIT) {
                    return Ok("llama-bpe");
                }
                if regex == Some(QWEN2_SPLIT) {
                    return Ok("qwen2");
                }
            }
            _ => {}
        }
    }
    bail!(
        "tokenizer.json pre_tokenizer {} has no llama.cpp equivalent here (known: GPT-2 byte-level, SmolLM digits, Llama-3 and Qwen2 splits)",
        serde_json::to_string(pre).unwrap_or_default()
    )
}

/// The `tokenizer.*` metadata of `dir`, for a model of `n_vocab` embedding rows.
/// `config_ids` are config.json's (bos, eos, pad), used where tokenizer_config.json names none.
pub fn vocab_metadata(
    dir: &Path,
    n_vocab: usize,
    config_ids: (Option<i64>, Option<i64>, Option<i64>),
    chat_template: Option<&str>,
) -> Result<Vec<(String, Value)>> {
    let tj_path = dir.join("tokenizer.json");
    let tj = read_json(&tj_path)?;
    let ctx = || format!("{}", tj_path.display());
    let model = tj.get("model").context("no 'model'").with_context(ctx)?;
    if model.get("type").and_then(Json::as_str) != Some("BPE") {
        bail!(
            "{}: tokenizer model {} is not supported for export (only byte-level BPE)",
            tj_path.display(),
            model.get("type").unwrap_or(&Json::Null)
        );
    }
    let pre = pre_name(tj.get("pre_tokenizer").unwrap_or(&Json::Null)).with_context(ctx)?;
    let vocab = model
        .get("vocab")
        .and_then(Json::as_object)
        .context("model.vocab is not an object")
        .with_context(ctx)?;
    let mut tokens: Vec<Option<(String, i32)>> = vec![None; n_vocab];
    let mut put = |id: i64, text: &str, ty: i32| -> Result<()> {
        let i = usize::try_from(id)
            .ok()
            .filter(|&i| i < n_vocab)
            .with_context(|| {
                format!("token '{text}' has id {id}, outside the model's {n_vocab} embedding rows")
            })?;
        tokens[i] = Some((text.to_string(), ty));
        Ok(())
    };
    for (text, id) in vocab {
        let id = id
            .as_i64()
            .with_context(|| format!("vocab id of '{text}' is not an integer"))?;
        put(id, text, 1).with_context(ctx)?;
    }
    let empty = vec![];
    let added = tj
        .get("added_tokens")
        .and_then(Json::as_array)
        .unwrap_or(&empty);
    for a in added {
        let id = a
            .get("id")
            .and_then(Json::as_i64)
            .context("added token without id")
            .with_context(ctx)?;
        let text = a
            .get("content")
            .and_then(Json::as_str)
            .context("added token without content")
            .with_context(ctx)?;
        let special = a.get("special").and_then(Json::as_bool).unwrap_or(false);
        put(id, text, if special { 3 } else { 4 }).with_context(ctx)?;
    }
    let (texts, types): (Vec<Value>, Vec<Value>) = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| match t {
            Some((s, ty)) => (Value::Str(s), Value::I32(ty)),
            None => (Value::Str(format!("[PAD{i}]")), Value::I32(5)),
        })
        .unzip();
    let merges = model
        .get("merges")
        .and_then(Json::as_array)
        .context("model.merges is not a list")
        .with_context(ctx)?
        .iter()
        .map(|m| match m {
            Json::String(s) => Ok(Value::Str(s.clone())),
            Json::Array(p) if p.len() == 2 && p.iter().all(Json::is_string) => {
                Ok(Value::Str(format!(
                    "{} {}",
                    p[0].as_str().unwrap_or_default(),
                    p[1].as_str().unwrap_or_default()
                )))
            }
            other => bail!("merge {other} is neither \"a b\" nor [a, b]"),
        })
        .collect::<Result<Vec<_>>>()
        .with_context(ctx)?;

    let cfg_path = dir.join("tokenizer_config.json");
    let cfg = if cfg_path.exists() {
        read_json(&cfg_path)?
    } else {
        Json::Null
    };
    let id_of = |text: &str| -> Option<i64> {
        vocab.get(text).and_then(Json::as_i64).or_else(|| {
            added
                .iter()
                .find(|a| a.get("content").and_then(Json::as_str) == Some(text))
                .and_then(|a| a.get("id").and_then(Json::as_i64))
        })
    };
    let named = |key: &str| cfg.get(key).and_then(token_text).and_then(id_of);
    let (bos, eos, pad) = config_ids;
    let mut meta = vec![
        (
            "tokenizer.ggml.model".to_string(),
            Value::Str("gpt2".into()),
        ),
        ("tokenizer.ggml.pre".to_string(), Value::Str(pre.into())),
        ("tokenizer.ggml.tokens".to_string(), Value::Array(texts)),
        ("tokenizer.ggml.token_type".to_string(), Value::Array(types)),
        ("tokenizer.ggml.merges".to_string(), Value::Array(merges)),
    ];
    for (key, id) in [
        ("bos_token_id", named("bos_token").or(bos)),
        ("eos_token_id", named("eos_token").or(eos)),
        ("unknown_token_id", named("unk_token")),
        ("padding_token_id", named("pad_token").or(pad)),
    ] {
        if let Some(id) = id {
            if id < 0 || id as usize >= n_vocab {
                bail!("{key} {id} is outside the model's {n_vocab} embedding rows");
            }
            meta.push((format!("tokenizer.ggml.{key}"), Value::U32(id as u32)));
        }
    }
    // add_bos_token: tokenizer_config.json says so, or tokenizer.json's post-processor
    // starts every sequence with the bos token (Llama 3's TemplateProcessing).
    let bos_text = bos.and_then(|b| {
        vocab
            .iter()
            .find(|(_, v)| v.as_i64() == Some(b))
            .map(|(k, _)| k.clone())
    });
    let template_adds_bos = tj
        .pointer("/post_processor/single/0/SpecialToken/id")
        .and_then(Json::as_str)
        .is_some_and(|t| {
            Some(t) == cfg.get("bos_token").and_then(token_text) || Some(t.to_string()) == bos_text
        });
    let add_bos = cfg
        .get("add_bos_token")
        .and_then(Json::as_bool)
        .unwrap_or(template_adds_bos);
    meta.push((
        "tokenizer.ggml.add_bos_token".to_string(),
        Value::Bool(add_bos),
    ));
    if let Some(add_eos) = cfg.get("add_eos_token").and_then(Json::as_bool) {
        meta.push((
            "tokenizer.ggml.add_eos_token".to_string(),
            Value::Bool(add_eos),
        ));
    }
    if let Some(t) = chat_template {
        meta.push((
            "tokenizer.chat_template".to_string(),
            Value::Str(t.to_string()),
        ));
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pre_tokenizer_names() {
        let bl = json!({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true});
        assert_eq!(pre_name(&bl).unwrap(), "gpt-2");
        let digits = json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, bl]});
        assert_eq!(pre_name(&digits).unwrap(), "smollm");
        let split = |r: &str| {
            json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": r}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "use_regex": false}]})
        };
        assert_eq!(pre_name(&split(LLAMA3_SPLIT)).unwrap(), "llama-bpe");
        assert_eq!(pre_name(&split(QWEN2_SPLIT)).unwrap(), "qwen2");
        assert!(pre_name(&split("\\s+")).is_err());
        assert!(pre_name(&json!({"type": "Metaspace"})).is_err());
    }
}
