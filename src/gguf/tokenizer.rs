//! tokenizer.json, tokenizer_config.json and special_tokens_map.json from a GGUF's
//! `tokenizer.ggml.*` metadata (byte-level BPE, `tokenizer.ggml.model = gpt2`).
//!
//! The goal is the tokenizer transformers builds from the same file (its GGUF loader), so
//! ids agree exactly: BPE over the file's tokens and merges, control tokens (type 3) as
//! special added tokens, user-defined tokens (type 4) as non-special added tokens, a
//! ByteLevel decoder, and the split regex that `tokenizer.ggml.pre` names.
//!
//! One known divergence between transformers and llama.cpp: for `smollm` (and the other
//! starcoder-style vocabularies) llama.cpp and the original tokenizer.json split every digit
//! off before the GPT-2 regex (`Digits(individual_digits) + ByteLevel`), while transformers'
//! GGUF loader uses plain GPT-2 `ByteLevel`. They differ only where a run of two or more
//! whitespace characters meets a digit ("a  1"). [`PreTokStyle`] picks which one to write.
use super::reader::{GgufFile, Value};
use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value as Json};

/// Which convention to follow where transformers and llama.cpp split text differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokStyle {
    /// Match transformers' GGUF tokenizer (the default: parity-tested).
    Transformers,
    /// Match llama.cpp and the model's original tokenizer.json.
    LlamaCpp,
}

pub const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
pub const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const GPT2_FAMILY: &[&str] = &["default", "gpt2", "gpt-2", "mpt", "olmo", "jais"];
const DIGIT_FAMILY: &[&str] = &[
    "smollm",
    "starcoder",
    "refact",
    "command-r",
    "codeshell",
    "exaone",
    "minerva",
];
const LLAMA3_FAMILY: &[&str] = &[
    "llama3",
    "llama-v3",
    "llama-bpe",
    "falcon3",
    "smaug-bpe",
    "dbrx",
    "pixtral",
    "falcon-h1",
    "midm-2.0",
    "lfm2",
];
const QWEN2_FAMILY: &[&str] = &["qwen2", "deepseek-r1-qwen", "megrez"];

fn byte_level(use_regex: bool) -> Json {
    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex})
}

fn split_then_bytes(regex: &str) -> Json {
    json!({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false},
        byte_level(false),
    ]})
}

/// The pre-tokenizer for a `tokenizer.ggml.pre` name (absent means llama.cpp's "default").
pub fn pre_tokenizer(pre: Option<&str>, style: PreTokStyle) -> Result<Json> {
    let pre = pre.unwrap_or("default");
    if GPT2_FAMILY.contains(&pre) {
        return Ok(byte_level(true));
    }
    if DIGIT_FAMILY.contains(&pre) {
        return Ok(match style {
            PreTokStyle::Transformers => byte_level(true),
            PreTokStyle::LlamaCpp => json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true},
                byte_level(true),
            ]}),
        });
    }
    if LLAMA3_FAMILY.contains(&pre) {
        return Ok(split_then_bytes(LLAMA3_SPLIT));
    }
    if QWEN2_FAMILY.contains(&pre) {
        return Ok(split_then_bytes(QWEN2_SPLIT));
    }
    let known: Vec<&str> = [GPT2_FAMILY, DIGIT_FAMILY, LLAMA3_FAMILY, QWEN2_FAMILY]
        .iter()
        .flat_map(|f| f.iter().copied())
        .collect();
    bail!(
        "tokenizer.ggml.pre = '{pre}' is not supported (known: {})",
        known.join(", ")
    )
}

/// GPT-2's byte → printable character table (bytes that print as themselves keep their code).
pub fn byte_to_char() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..=255u32 {
        let keeps =
            (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        table[b as usize] = if keeps {
            char::from_u32(b).expect("latin-1 code point")
        } else {
            next += 1;
            char::from_u32(next - 1).expect("code point below 512")
        };
    }
    table
}

/// The three tokenizer files, ready to write.
pub struct TokenizerFiles {
    pub tokenizer: Json,
    pub config: Json,
    pub special_tokens_map: Json,
}

fn str_array<'a>(g: &'a GgufFile, key: &str) -> Result<Vec<&'a str>> {
    let arr = g
        .get(key)
        .and_then(Value::as_array)
        .with_context(|| format!("metadata '{key}' missing or not an array"))?;
    arr.iter()
        .map(|v| {
            v.as_str()
                .with_context(|| format!("metadata '{key}' holds a non-string"))
        })
        .collect()
}

fn token_id(g: &GgufFile, key: &str, n_vocab: usize) -> Result<Option<usize>> {
    match g.get(key) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(id) if (id as usize) < n_vocab => Ok(Some(id as usize)),
            _ => bail!("metadata '{key}' = {v:?} is not a token id below {n_vocab}"),
        },
    }
}

/// Builds the tokenizer files; `model_max_length` comes from the model's context length.
pub fn build(g: &GgufFile, model_max_length: u64, style: PreTokStyle) -> Result<TokenizerFiles> {
    let model = g
        .get("tokenizer.ggml.model")
        .and_then(Value::as_str)
        .unwrap_or("");
    if model != "gpt2" {
        bail!("tokenizer.ggml.model = '{model}' is not supported (only byte-level BPE, 'gpt2')");
    }
    let tokens = str_array(g, "tokenizer.ggml.tokens")?;
    let merges = str_array(g, "tokenizer.ggml.merges")?;
    let types: Vec<i64> = match g.get("tokenizer.ggml.token_type").and_then(Value::as_array) {
        Some(a) => a
            .iter()
            .map(|v| v.as_i64().context("token_type holds a non-integer"))
            .collect::<Result<_>>()?,
        None => vec![1; tokens.len()],
    };
    if types.len() != tokens.len() {
        bail!(
            "tokenizer.ggml.token_type has {} entries for {} tokens",
            types.len(),
            tokens.len()
        );
    }
    let pre = g.get("tokenizer.ggml.pre").and_then(Value::as_str);

    // Vocabulary keys are in the byte alphabet; a token spelled with other characters (a
    // raw space, say) is respelled byte by byte, as transformers does.
    let table = byte_to_char();
    let in_alphabet = |t: &str| t.chars().all(|c| table.contains(&c));
    let mut vocab = Map::new();
    for (id, t) in tokens.iter().enumerate() {
        let key = if in_alphabet(t) {
            t.to_string()
        } else {
            t.bytes().map(|b| table[b as usize]).collect()
        };
        vocab.insert(key, json!(id));
    }
    let mut merge_pairs = Vec::with_capacity(merges.len());
    for (i, m) in merges.iter().enumerate() {
        let (a, b) = m
            .split_once(' ')
            .with_context(|| format!("merge {i} '{m}' has no space"))?;
        merge_pairs.push(json!([a, b]));
    }

    // Control tokens outside the byte alphabet would be mislabelled vocabulary: skipped, as
    // transformers skips them. User-defined ones must be spelled as in the vocabulary.
    let mut added = Vec::new();
    let mut decoder = Map::new();
    let mut additional = Vec::new();
    for (id, (t, &ty)) in tokens.iter().zip(&types).enumerate() {
        let special = match ty {
            3 if in_alphabet(t) => true,
            4 if vocab.contains_key(*t) => false,
            _ => continue,
        };
        let entry = json!({"id": id, "content": t, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": special});
        decoder.insert(id.to_string(), {
            let mut e = entry.as_object().expect("object").clone();
            e.remove("id");
            Json::Object(e)
        });
        added.push(entry);
        if special {
            additional.push(json!(t));
        }
    }

    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer(pre, style)?,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
            "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merge_pairs},
    });

    let n = tokens.len();
    let name = |key: &str| -> Result<Json> {
        Ok(token_id(g, key, n)?.map_or(Json::Null, |id| json!(tokens[id])))
    };
    let (bos, eos, unk, pad) = (
        name("tokenizer.ggml.bos_token_id")?,
        name("tokenizer.ggml.eos_token_id")?,
        name("tokenizer.ggml.unknown_token_id")?,
        name("tokenizer.ggml.padding_token_id")?,
    );
    let flag = |key: &str| g.get(key).and_then(Value::as_bool).unwrap_or(false);
    let mut config = json!({
        "add_bos_token": flag("tokenizer.ggml.add_bos_token"),
        "add_eos_token": flag("tokenizer.ggml.add_eos_token"),
        "add_prefix_space": false,
        "added_tokens_decoder": decoder,
        "bos_token": bos, "eos_token": eos, "pad_token": pad, "unk_token": unk,
        "additional_special_tokens": additional,
        "clean_up_tokenization_spaces": false,
        "model_max_length": model_max_length,
        "tokenizer_class": "PreTrainedTokenizerFast",
    });
    if let Some(t) = g.get("tokenizer.chat_template").and_then(Value::as_str) {
        config["chat_template"] = json!(t);
    }
    let mut special_tokens_map = json!({"additional_special_tokens": additional});
    for (k, v) in [
        ("bos_token", bos),
        ("eos_token", eos),
        ("pad_token", pad),
        ("unk_token", unk),
    ] {
        if !v.is_null() {
            special_tokens_map[k] = v;
        }
    }
    Ok(TokenizerFiles {
        tokenizer,
        config,
        special_tokens_map,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_gpt2s() {
        let t = byte_to_char();
        assert_eq!(t[b'a' as usize], 'a');
        assert_eq!(t[b' ' as usize], 'Ġ'); // U+0120: the 33rd remapped byte
        assert_eq!(t[b'\n' as usize], 'Ċ'); // U+010A
        assert_eq!(t[0], 'Ā'); // U+0100
        assert_eq!(t[0xAD], 'Ń'); // soft hyphen is remapped, U+0143
        let mut seen: Vec<char> = t.to_vec();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 256);
    }

    #[test]
    fn pre_tokenizer_choices() {
        let smol = pre_tokenizer(Some("smollm"), PreTokStyle::LlamaCpp).unwrap();
        assert_eq!(smol["pretokenizers"][0]["type"], "Digits");
        assert_eq!(
            pre_tokenizer(Some("smollm"), PreTokStyle::Transformers).unwrap()["type"],
            "ByteLevel"
        );
        let l3 = pre_tokenizer(Some("llama-bpe"), PreTokStyle::Transformers).unwrap();
        assert_eq!(l3["pretokenizers"][0]["pattern"]["Regex"], LLAMA3_SPLIT);
        assert_eq!(
            pre_tokenizer(None, PreTokStyle::Transformers).unwrap()["use_regex"],
            true
        );
        let e = pre_tokenizer(Some("made-up"), PreTokStyle::Transformers)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'made-up' is not supported"), "{e}");
    }
}
