//! Property tests that feed arbitrary and mutated bytes to every loader of user files: the
//! GGUF reader and importer, the PEFT adapter loader, the TOML config + `--set` layer and the
//! dataset loaders. Each must return Ok or Err, never panic.
//!
//! 64 cases a target by default so the suite stays fast; `scripts/fuzz.sh` runs many more
//! (PROPTEST_CASES). Inputs the fuzzer found are kept below as named regression tests.
mod common;
#[path = "gguf_common/mod.rs"]
mod gguf_common;

use gguf_common::{byte_alphabet, f32_bytes, gguf_bytes, q8_0_bytes, tiny_llama_kvs, T};
use proptest::collection::vec;
use proptest::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        // Found inputs are kept as named tests in this file, not in a side file.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------- mutations

/// One edit of a valid file. Positions are reduced modulo the file length, and three in four
/// land in the first `focus` bytes (the header, where lengths, counts and offsets live).
#[derive(Debug, Clone)]
enum Mutation {
    Byte(usize, u8),
    /// A little-endian u32 or u64 (by the position's parity): length and count fields.
    Word(usize, u64),
    Cut(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

fn interesting_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u32::MAX as u64),
        Just(1 << 31),
        Just(1 << 32),
        Just(1 << 63),
        Just(u64::MAX),
        0u64..300,
        any::<u64>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Byte(p, b)),
        3 => (any::<usize>(), interesting_u64()).prop_map(|(p, w)| Mutation::Word(p, w)),
        1 => any::<usize>().prop_map(Mutation::Cut),
        1 => (any::<usize>(), vec(any::<u8>(), 1..16)).prop_map(|(p, b)| Mutation::Insert(p, b)),
        1 => (any::<usize>(), 1usize..64).prop_map(|(p, n)| Mutation::Remove(p, n)),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    vec(mutation(), 1..6)
}

fn apply(base: &[u8], muts: &[Mutation], focus: usize) -> Vec<u8> {
    let mut b = base.to_vec();
    for m in muts {
        let at = |p: usize, len: usize| {
            let len = len.max(1);
            if p % 4 != 0 {
                (p / 4) % focus.clamp(1, len)
            } else {
                (p / 4) % len
            }
        };
        match m {
            Mutation::Byte(p, v) => {
                if !b.is_empty() {
                    let i = at(*p, b.len());
                    b[i] = *v;
                }
            }
            Mutation::Word(p, w) => {
                let i = at(*p, b.len());
                let bytes = if p % 2 == 0 {
                    w.to_le_bytes().to_vec()
                } else {
                    (*w as u32).to_le_bytes().to_vec()
                };
                for (k, x) in bytes.into_iter().enumerate() {
                    if let Some(slot) = b.get_mut(i + k) {
                        *slot = x;
                    }
                }
            }
            Mutation::Cut(p) => {
                let i = at(*p, b.len() + 1);
                b.truncate(i);
            }
            Mutation::Insert(p, bytes) => {
                let i = at(*p, b.len() + 1).min(b.len());
                b.splice(i..i, bytes.iter().copied());
            }
            Mutation::Remove(p, n) => {
                let i = at(*p, b.len()).min(b.len());
                let j = (i + n).min(b.len());
                b.drain(i..j);
            }
        }
    }
    b
}

// ---------------------------------------------------------------- GGUF

const HIDDEN: usize = 64;
const KV: usize = 32;
const FFN: usize = 96;

/// A complete tiny Llama GGUF (the importer's whole path: metadata, tokenizer, every tensor,
/// F32 and Q8_0), and where its tensor data starts.
fn tiny_gguf() -> &'static (Vec<u8>, usize) {
    static G: OnceLock<(Vec<u8>, usize)> = OnceLock::new();
    G.get_or_init(|| {
        let vocab = byte_alphabet();
        let f32_t = |name: &str, dims: Vec<u64>| {
            let n: u64 = dims.iter().product();
            T {
                name: name.into(),
                dims,
                ty: 0,
                data: f32_bytes(&(0..n).map(|i| (i % 7) as f32 / 8.0).collect::<Vec<_>>()),
            }
        };
        let q8_t = |name: &str, dims: Vec<u64>| {
            let n: u64 = dims.iter().product();
            T {
                name: name.into(),
                dims,
                ty: 8,
                data: q8_0_bytes(
                    &(0..n).map(|i| (i % 9) as i8 - 4).collect::<Vec<_>>(),
                    0.125,
                ),
            }
        };
        let mut ts = vec![
            q8_t("token_embd.weight", vec![HIDDEN as u64, vocab.len() as u64]),
            f32_t("output_norm.weight", vec![HIDDEN as u64]),
        ];
        for l in 0..2 {
            let n = |leaf: &str| format!("blk.{l}.{leaf}.weight");
            let h = HIDDEN as u64;
            ts.push(f32_t(&n("attn_norm"), vec![h]));
            ts.push(q8_t(&n("attn_q"), vec![h, h]));
            ts.push(f32_t(&n("attn_k"), vec![h, KV as u64]));
            ts.push(f32_t(&n("attn_v"), vec![h, KV as u64]));
            ts.push(f32_t(&n("attn_output"), vec![h, h]));
            ts.push(f32_t(&n("ffn_norm"), vec![h]));
            ts.push(f32_t(&n("ffn_gate"), vec![h, FFN as u64]));
            ts.push(f32_t(&n("ffn_up"), vec![h, FFN as u64]));
            ts.push(f32_t(&n("ffn_down"), vec![FFN as u64, h]));
        }
        let bytes = gguf_bytes(3, &tiny_llama_kvs(&vocab), &ts);
        let data_offset = stylerl::gguf::reader::parse_bytes(&bytes).unwrap().4 as usize;
        (bytes, data_offset)
    })
}

/// Parses `bytes`; when they parse, imports them as a model directory too.
fn gguf_must_not_panic(bytes: &[u8]) {
    if stylerl::gguf::reader::parse_bytes(bytes).is_err() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.gguf");
    std::fs::write(&file, bytes).unwrap();
    let args = stylerl::cli::import_gguf::ImportArgs {
        file,
        out: dir.path().join("hf"),
        dtype: "f32".into(),
        pretok: "transformers".into(),
        force: false,
    };
    let _ = stylerl::cli::import_gguf::run(&args);
}

#[test]
fn the_unmutated_tiny_gguf_imports() {
    // Otherwise the mutations below would only ever exercise the parser's first error.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.gguf");
    std::fs::write(&file, &tiny_gguf().0).unwrap();
    let args = stylerl::cli::import_gguf::ImportArgs {
        file,
        out: dir.path().join("hf"),
        dtype: "f32".into(),
        pretok: "transformers".into(),
        force: false,
    };
    stylerl::cli::import_gguf::run(&args).unwrap();
    assert!(dir.path().join("hf/model.safetensors").is_file());
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_gguf_mutated(muts in mutations()) {
        let (base, header) = tiny_gguf();
        gguf_must_not_panic(&apply(base, &muts, *header));
    }

    #[test]
    fn fuzz_gguf_arbitrary(
        n_tensors in 0u64..3,
        n_kv in 0u64..4,
        tail in vec(prop_oneof![any::<u8>(), Just(0u8), Just(1u8), Just(8u8), Just(9u8)], 0..600),
    ) {
        // A valid magic, version and small counts, so random bytes reach the entry parsers
        // (arbitrary counts are refused by the first size check).
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(n_tensors.to_le_bytes());
        b.extend(n_kv.to_le_bytes());
        b.extend(tail);
        gguf_must_not_panic(&b);
    }
}

// ---------------------------------------------------------------- adapters

/// A saved PEFT adapter directory (2 layers, q/k/v/o/gate/up/down, r = 4).
fn adapter_files() -> &'static (Vec<u8>, Vec<u8>) {
    use stylerl::adapter::lora::{LoraAdapter, LoraConfig, Quant, TargetModules};
    static A: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    A.get_or_init(|| {
        let mods = common::tiny_llama_layer_modules();
        let cfg = LoraConfig {
            r: 4,
            alpha: 8.0,
            target_modules: TargetModules::One("all-linear".into()),
            ..Default::default()
        };
        let a = LoraAdapter::new(&cfg, &mods, Quant::None, tch::Device::Cpu).unwrap();
        let dir = tempfile::tempdir().unwrap();
        stylerl::adapter::peft::save_adapter(&a, dir.path(), None).unwrap();
        (
            std::fs::read(dir.path().join("adapter_model.safetensors")).unwrap(),
            std::fs::read(dir.path().join("adapter_config.json")).unwrap(),
        )
    })
}

/// Loads the adapter directory every way the commands do.
fn adapter_must_not_panic(weights: &[u8], config: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("adapter_model.safetensors"), weights).unwrap();
    std::fs::write(dir.path().join("adapter_config.json"), config).unwrap();
    if let Ok(a) = stylerl::adapter::peft::load_adapter(dir.path(), tch::Device::Cpu) {
        let _ = stylerl::adapter::peft::load_values_into(
            &a,
            &dir.path().join("adapter_model.safetensors"),
        );
    }
    let spec = format!("{}:0.5", dir.path().display());
    let _ = stylerl::adapter::peft::load_set(&[spec], tch::Device::Cpu);
}

/// A JSON value of any kind, numbers included that no config field expects.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{json, Value};
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|x| json!(x)),
        any::<f64>().prop_map(|x| json!(x)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(1e300)),
        Just(json!("all-linear")),
        Just(json!("q_proj")),
        Just(json!("(")),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec(("[a-z_]{1,8}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// The saved config with one key (an existing one, or a new one) set to `value`.
fn edit_config(
    config: &[u8],
    key: usize,
    new_key: Option<String>,
    value: serde_json::Value,
) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(config).unwrap();
    let m = v.as_object_mut().unwrap();
    let k = new_key.unwrap_or_else(|| m.keys().nth(key % m.len()).unwrap().clone());
    m.insert(k, value);
    serde_json::to_vec(&v).unwrap()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_adapter_weights_mutated(muts in mutations()) {
        let (w, c) = adapter_files();
        // The header: its 8-byte length and the JSON after it.
        let header = 8 + u64::from_le_bytes(w[..8].try_into().unwrap()) as usize;
        adapter_must_not_panic(&apply(w, &muts, header), c);
    }

    #[test]
    fn fuzz_adapter_config_edited(
        key in any::<usize>(),
        new_key in proptest::option::weighted(0.2, "[a-z_]{1,12}"),
        value in json_value(),
        muts in proptest::option::weighted(0.3, mutations()),
    ) {
        let (w, c) = adapter_files();
        let mut cfg = edit_config(c, key, new_key, value);
        if let Some(m) = muts {
            let n = cfg.len();
            cfg = apply(&cfg, &m, n);
        }
        adapter_must_not_panic(w, &cfg);
    }
}

// ---------------------------------------------------------------- config + --set

fn demo_config(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs/demo")
            .join(name),
    )
    .unwrap()
}

/// Every dotted key of a TOML tree (tables included), for overrides that hit real settings.
fn keys(v: &toml::Value, prefix: &str, out: &mut Vec<String>) {
    if let toml::Value::Table(t) = v {
        for (k, x) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.push(key.clone());
            keys(x, &key, out);
        }
    }
}

/// Parses `text` with `sets` as each run kind's config; a panic fails the property.
fn config_must_not_panic(text: &str, sets: &[String]) {
    use stylerl::config::parse;
    let _ = parse::<stylerl::train::sft::SftConfig>(text, sets);
    let _ = parse::<stylerl::train::grpo_config::GrpoConfig>(text, sets);
    let _ = parse::<stylerl::eval::config::EvalConfig>(text, sets);
    let _ = parse::<toml::Value>(text, sets);
}

fn set_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("1e309".to_string()),
        Just("18446744073709551616".to_string()),
        Just("[1, \"a\", [2]]".to_string()),
        Just("{ a = 1 }".to_string()),
        Just("\"unterminated".to_string()),
        Just("true".to_string()),
        Just("\n[x]\ny = 1".to_string()),
        Just(String::new()),
        ".{0,16}",
        any::<f64>().prop_map(|x| x.to_string()),
        any::<i64>().prop_map(|x| x.to_string()),
    ]
}

const CONFIGS: [&str; 5] = [
    "sft.toml",
    "grpo.toml",
    "grpo-dropout.toml",
    "grpo-bitlora.toml",
    "evaluate.toml",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_config_overrides(
        which in 0..CONFIGS.len(),
        sets in vec((any::<usize>(), proptest::option::weighted(0.2, "[a-z_.]{0,12}"), set_value()), 0..4),
    ) {
        let text = demo_config(CONFIGS[which]);
        let mut all = Vec::new();
        keys(&toml::from_str(&text).unwrap(), "", &mut all);
        let sets: Vec<String> = sets
            .into_iter()
            .map(|(k, own, v)| format!("{}={v}", own.unwrap_or_else(|| all[k % all.len()].clone())))
            .collect();
        config_must_not_panic(&text, &sets);
    }

    #[test]
    fn fuzz_config_text_mutated(which in 0..CONFIGS.len(), muts in mutations(), set in proptest::option::of(".{0,24}")) {
        let text = demo_config(CONFIGS[which]);
        let n = text.len();
        let bytes = apply(text.as_bytes(), &muts, n);
        let sets: Vec<String> = set.into_iter().collect();
        config_must_not_panic(&String::from_utf8_lossy(&bytes), &sets);
    }
}

// ---------------------------------------------------------------- datasets

const EXTS: [&str; 7] = ["jsonl", "json", "csv", "tsv", "txt", "parquet", "ndjson"];

/// A small valid file of each format, to mutate.
fn sample(ext: &str) -> Vec<u8> {
    match ext {
        "jsonl" | "ndjson" => b"{\"text\": \"one\", \"input\": \"a\", \"output\": \"b\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}\n\"bare\"\n{\"text\": null}\n".to_vec(),
        "json" => b"[{\"text\": \"x\", \"input\": \"a\", \"output\": \"b\"}, {\"text\": \"y\"}]".to_vec(),
        "csv" => b"id,text,input,output\n1,\"Hello, \"\"you\"\"\",a,b\n2,\"multi\nline\",c,d\n".to_vec(),
        "tsv" => b"text\tinput\toutput\nfoo\ta\tb\n".to_vec(),
        "parquet" => parquet_sample().clone(),
        _ => b"Para one\nstill one.\n\nPara two.\n".to_vec(),
    }
}

fn parquet_sample() -> &'static Vec<u8> {
    static P: OnceLock<Vec<u8>> = OnceLock::new();
    P.get_or_init(|| {
        use arrow::array::{ArrayRef, Int32Array, StringArray};
        use arrow::record_batch::RecordBatch;
        use std::sync::Arc;
        let text: ArrayRef = Arc::new(StringArray::from(vec![Some("first"), None, Some("second")]));
        let ids: ArrayRef = Arc::new(Int32Array::from(vec![1, 2, 3]));
        let batch = RecordBatch::try_from_iter(vec![("id", ids), ("text", text)]).unwrap();
        let mut out = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        out
    })
}

/// Loads `bytes` as a dataset of extension `ext`, as texts and as SFT pairs / messages.
fn dataset_must_not_panic(ext: &str, bytes: &[u8], field: Option<&str>) {
    use stylerl::train::sft_data::{load_conversations, SftDataConfig};
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(format!("d.{ext}"));
    std::fs::write(&p, bytes).unwrap();
    let _ = stylerl::data::load_texts(&p, field);
    for format in ["pairs", "messages"] {
        let cfg: SftDataConfig = toml::from_str(&format!(
            "train = {:?}\nformat = {format:?}",
            p.display().to_string()
        ))
        .unwrap();
        let _ = load_conversations(&cfg, &p);
    }
}

const FIELDS: [Option<&str>; 8] = [
    None,
    Some("text"),
    Some("input"),
    Some("messages.0.content"),
    Some("a.b.999999999999999999999"),
    Some(""),
    Some("lines"),
    Some("paragraphs"),
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_dataset_mutated(ext in 0..EXTS.len(), field in 0..FIELDS.len(), muts in mutations()) {
        let base = sample(EXTS[ext]);
        let n = base.len();
        dataset_must_not_panic(EXTS[ext], &apply(&base, &muts, n), FIELDS[field]);
    }

    #[test]
    fn fuzz_dataset_arbitrary(
        ext in 0..EXTS.len(),
        field in 0..FIELDS.len(),
        // Mostly the characters that structure these formats.
        body in prop_oneof![
            vec(any::<u8>(), 0..400),
            vec(prop_oneof![Just(b'"'), Just(b','), Just(b'\t'), Just(b'\n'), Just(b'\r'),
                            Just(b'{'), Just(b'}'), Just(b'['), Just(b']'), Just(b':'),
                            Just(b' '), Just(b'a'), Just(b'\\')], 0..200),
        ],
    ) {
        dataset_must_not_panic(EXTS[ext], &body, FIELDS[field]);
    }
}

// ---------------------------------------------------------------- found inputs

#[test]
fn found_parquet_with_a_corrupt_thrift_field_is_an_error_not_a_panic() {
    // fuzz_dataset_mutated's minimal input: one byte of the footer's thrift metadata set to
    // 234, which the parquet crate reads as a set/map header and answers with
    // `unimplemented!()`.
    let base = sample("parquet");
    let bytes = apply(
        &base,
        &[Mutation::Byte(4967755666228525740, 234)],
        base.len(),
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d.parquet");
    std::fs::write(&p, bytes).unwrap();
    let e = format!("{:#}", stylerl::data::load_texts(&p, None).unwrap_err());
    assert!(
        e.contains("d.parquet") && e.contains("not a readable Parquet file"),
        "{e}"
    );
    // Through the binary: one error line, the caught panic not reported on stderr.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_stylerl"))
        .args(["analyze", "--encoder", "stylometric", "--data"])
        .arg(&p)
        .env("STYLERL_PROGRESS", "0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!o.status.success(), "{err}");
    assert!(
        lines.len() == 1 && lines[0].starts_with("error: ") && lines[0].contains("Parquet"),
        "{err}"
    );
}
