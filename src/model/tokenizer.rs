//! The model directory's tokenizer.json plus the special tokens named in tokenizer_config.json.
//!
//! `encode(text, true)` applies the tokenizer's own post-processor, so a BOS token is added
//! exactly when transformers' `tokenizer(text)` would add one (Llama 3: yes; SmolLM2: no).
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

pub struct Tokenizer {
    pub inner: tokenizers::Tokenizer,
    /// tokenizer_config.json's special tokens by role (bos_token, eos_token, pad_token, unk_token).
    pub special: BTreeMap<String, String>,
}

/// A special-token entry is either a string or an AddedToken object with "content".
fn token_text(v: &serde_json::Value) -> Option<String> {
    v.as_str()
        .map(String::from)
        .or_else(|| v.get("content").and_then(|c| c.as_str()).map(String::from))
}

impl Tokenizer {
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        let inner = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| anyhow::anyhow!("cannot load {}: {e}", path.display()))?;
        let mut special = BTreeMap::new();
        // Missing is fine (no special tokens named); unreadable or not UTF-8 is an error
        // naming the file, never a silent fallback.
        let cfg_path = dir.join("tokenizer_config.json");
        let text = match std::fs::read_to_string(&cfg_path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", cfg_path.display())),
        };
        if let Some(text) = text {
            let v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", cfg_path.display()))?;
            for key in ["bos_token", "eos_token", "pad_token", "unk_token"] {
                if let Some(t) = v.get(key).and_then(token_text) {
                    special.insert(key.to_string(), t);
                }
            }
        }
        Ok(Self { inner, special })
    }

    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<i64>> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| anyhow::anyhow!("tokenize: {e}"))?;
        Ok(enc.get_ids().iter().map(|&i| i as i64).collect())
    }

    pub fn decode(&self, ids: &[i64], skip_special_tokens: bool) -> Result<String> {
        let ids: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
        self.inner
            .decode(&ids, skip_special_tokens)
            .map_err(|e| anyhow::anyhow!("decode: {e}"))
    }

    pub fn token_id(&self, token: &str) -> Option<i64> {
        self.inner.token_to_id(token).map(|i| i as i64)
    }

    /// Id of a special token by role, e.g. `special_id("eos_token")`.
    pub fn special_id(&self, role: &str) -> Option<i64> {
        self.special.get(role).and_then(|t| self.token_id(t))
    }
}
