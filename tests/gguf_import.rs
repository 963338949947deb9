//! End to end: a tiny hand-written Llama GGUF (F32 and Q8_0 tensors, q/k permuted the way
//! llama.cpp's converter does it) imported by the binary, read back from model.safetensors.
#[path = "gguf_common/mod.rs"]
mod common;
use common::*;
use std::collections::HashMap;
use std::process::Command;

const HIDDEN: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = 16;
const FFN: usize = 96;

/// llama.cpp's permutation, written independently of the importer: HF row h*hd + s*hd/2 + i
/// goes to GGUF row h*hd + 2i + s.
fn llama_cpp_permute(hf: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
    let hd = rows / heads;
    let mut out = vec![f32::NAN; hf.len()];
    for r in 0..rows {
        let (h, within) = (r / hd, r % hd);
        let (s, i) = (within / (hd / 2), within % (hd / 2));
        let g = h * hd + 2 * i + s;
        out[g * cols..(g + 1) * cols].copy_from_slice(&hf[r * cols..(r + 1) * cols]);
    }
    out
}

/// Deterministic small integers in [-100, 100], distinct per tensor (seeded by `k`).
fn ints(n: usize, k: u64) -> Vec<i8> {
    let mut x = 0x9E3779B97F4A7C15u64 ^ k;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % 201) as i64 - 100) as i8
        })
        .collect()
}

struct Tiny {
    /// HF name → (HF shape, HF values).
    want: HashMap<String, (Vec<usize>, Vec<f32>)>,
    tensors: Vec<T>,
}

fn tiny(vocab: usize) -> Tiny {
    let mut want = HashMap::new();
    let mut tensors = Vec::new();
    let mut add =
        |gguf: &str, hf: &str, rows: usize, cols: usize, heads: Option<usize>, q8: bool, k: u64| {
            let q = ints(rows * cols, k);
            let d = 1.0 / 64.0;
            let hf_vals: Vec<f32> = q.iter().map(|&v| v as f32 * d).collect();
            let (stored_q, stored_f) = match heads {
                // Permute integer codes and floats identically.
                Some(h) => {
                    let as_f: Vec<f32> = q.iter().map(|&v| v as f32).collect();
                    let p = llama_cpp_permute(&as_f, rows, cols, h);
                    (
                        p.iter().map(|&v| v as i8).collect::<Vec<_>>(),
                        llama_cpp_permute(&hf_vals, rows, cols, h),
                    )
                }
                None => (q.clone(), hf_vals.clone()),
            };
            let (ty, data) = if q8 {
                (8, q8_0_bytes(&stored_q, d))
            } else {
                (0, f32_bytes(&stored_f))
            };
            let dims = if cols == 1 {
                vec![rows as u64]
            } else {
                vec![cols as u64, rows as u64]
            };
            let shape = if cols == 1 {
                vec![rows]
            } else {
                vec![rows, cols]
            };
            tensors.push(T {
                name: gguf.to_string(),
                dims,
                ty,
                data,
            });
            want.insert(hf.to_string(), (shape, hf_vals));
        };
    add(
        "token_embd.weight",
        "model.embed_tokens.weight",
        vocab,
        HIDDEN,
        None,
        true,
        1,
    );
    add(
        "output_norm.weight",
        "model.norm.weight",
        HIDDEN,
        1,
        None,
        false,
        2,
    );
    for l in 0..2 {
        let p = |leaf: &str| format!("model.layers.{l}.{leaf}.weight");
        let g = |leaf: &str| format!("blk.{l}.{leaf}.weight");
        let k = 100 * (l as u64 + 1);
        // Layer 0 stores q as Q8_0 and k as F32; layer 1 the other way round.
        add(
            &g("attn_q"),
            &p("self_attn.q_proj"),
            HEADS * HEAD_DIM,
            HIDDEN,
            Some(HEADS),
            l == 0,
            k + 1,
        );
        add(
            &g("attn_k"),
            &p("self_attn.k_proj"),
            KV_HEADS * HEAD_DIM,
            HIDDEN,
            Some(KV_HEADS),
            l == 1,
            k + 2,
        );
        add(
            &g("attn_v"),
            &p("self_attn.v_proj"),
            KV_HEADS * HEAD_DIM,
            HIDDEN,
            None,
            true,
            k + 3,
        );
        add(
            &g("attn_output"),
            &p("self_attn.o_proj"),
            HIDDEN,
            HIDDEN,
            None,
            false,
            k + 4,
        );
        add(
            &g("ffn_gate"),
            &p("mlp.gate_proj"),
            FFN,
            HIDDEN,
            None,
            true,
            k + 5,
        );
        add(
            &g("ffn_up"),
            &p("mlp.up_proj"),
            FFN,
            HIDDEN,
            None,
            false,
            k + 6,
        );
        add(
            &g("ffn_down"),
            &p("mlp.down_proj"),
            HIDDEN,
            FFN,
            None,
            true,
            k + 7,
        );
        add(
            &g("attn_norm"),
            &p("input_layernorm"),
            HIDDEN,
            1,
            None,
            false,
            k + 8,
        );
        add(
            &g("ffn_norm"),
            &p("post_attention_layernorm"),
            HIDDEN,
            1,
            None,
            false,
            k + 9,
        );
    }
    Tiny { want, tensors }
}

fn vocab() -> Vec<String> {
    let mut v = byte_alphabet();
    v.push("hi".into());
    v.push("<|s|>".into());
    v
}

fn import(dir: &std::path::Path, bytes: &[u8], extra: &[&str]) -> std::process::Output {
    let file = dir.join("tiny.gguf");
    std::fs::write(&file, bytes).unwrap();
    Command::new(env!("CARGO_BIN_EXE_stylerl"))
        .arg("import-gguf")
        .arg(&file)
        .arg("--out")
        .arg(dir.join("hf"))
        .args(extra)
        .env("STYLERL_PROGRESS", "0")
        .output()
        .unwrap()
}

#[test]
fn tiny_llama_imports_with_qk_unpermuted() {
    let dir = tempfile::tempdir().unwrap();
    let v = vocab();
    let t = tiny(v.len());
    let out = import(
        dir.path(),
        &gguf_bytes(3, &tiny_llama_kvs(&v), &t.tensors),
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let hf = dir.path().join("hf");
    let bytes = std::fs::read(hf.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.len(), t.want.len(), "no lm_head for tied embeddings");
    for (name, (shape, values)) in &t.want {
        let view = st.tensor(name).unwrap_or_else(|_| panic!("{name} missing"));
        assert_eq!(view.dtype(), safetensors::Dtype::F32);
        assert_eq!(view.shape(), shape.as_slice(), "{name}");
        let got: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(&got, values, "{name}");
    }
    // The permutation really moved rows: stored q differs from HF q.
    let q_stored = &t
        .tensors
        .iter()
        .find(|x| x.name == "blk.1.attn_q.weight")
        .unwrap()
        .data;
    let q_hf = &t.want["model.layers.1.self_attn.q_proj.weight"].1;
    assert_ne!(q_stored, &f32_bytes(q_hf));

    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(hf.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["tie_word_embeddings"], true);
    assert_eq!(cfg["num_key_value_heads"], 2);
    assert_eq!(cfg["head_dim"], 16);
    assert_eq!(cfg["vocab_size"], 258);
    assert_eq!(cfg["rms_norm_eps"].as_f64().unwrap() as f32, 1e-6f32);
    assert_eq!(cfg["bos_token_id"], 257);

    let tok = tokenizers::Tokenizer::from_file(hf.join("tokenizer.json")).unwrap();
    let enc = tok.encode("<|s|>hi h", false).unwrap();
    assert_eq!(enc.get_ids(), &[257, 256, 32, 104]); // <|s|>, "hi", "Ġ" (byte 32), "h"
    assert_eq!(tok.decode(enc.get_ids(), false).unwrap(), "<|s|>hi h");
    let tc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(hf.join("tokenizer_config.json")).unwrap()).unwrap();
    assert_eq!(tc["bos_token"], "<|s|>");
    assert_eq!(tc["added_tokens_decoder"]["257"]["special"], true);
}

#[test]
fn bf16_output_and_untied_head() {
    let dir = tempfile::tempdir().unwrap();
    let v = vocab();
    let mut t = tiny(v.len());
    let embd = t
        .tensors
        .iter()
        .find(|x| x.name == "token_embd.weight")
        .unwrap();
    let head = T {
        name: "output.weight".into(),
        dims: embd.dims.clone(),
        ty: embd.ty,
        data: embd.data.clone(),
    };
    t.tensors.push(head);
    let out = import(
        dir.path(),
        &gguf_bytes(2, &tiny_llama_kvs(&v), &t.tensors),
        &["--dtype", "bf16"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(dir.path().join("hf/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let head = st.tensor("lm_head.weight").unwrap();
    assert_eq!(head.dtype(), safetensors::Dtype::BF16);
    // Values are multiples of 1/64 below 2: exact in bf16.
    let got: Vec<f32> = head
        .data()
        .chunks_exact(2)
        .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect();
    assert_eq!(got, t.want["model.embed_tokens.weight"].1);
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("hf/config.json")).unwrap()).unwrap();
    assert_eq!(cfg["tie_word_embeddings"], false);
    assert_eq!(cfg["torch_dtype"], "bfloat16");
}

#[test]
fn missing_layer_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let v = vocab();
    let mut t = tiny(v.len());
    t.tensors.retain(|x| x.name != "blk.1.attn_k.weight");
    let out = import(
        dir.path(),
        &gguf_bytes(3, &tiny_llama_kvs(&v), &t.tensors),
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("tensor 'blk.1.attn_k.weight' is missing"),
        "{err}"
    );
    assert!(!dir.path().join("hf/model.safetensors").exists());
}
