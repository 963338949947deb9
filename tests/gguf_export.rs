//! `stylerl export-gguf` on a tiny random Llama: export → import gives the same weights and
//! tokenizer; an adapter GGUF has llama.cpp's names, shapes, alpha and q/k row order (checked
//! against the folded export); Bit-LoRA exports its ternary values; bad input fails in one
//! line and leaves no file behind.
mod common;

use common::stylerl;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use stylerl::adapter::lora::{LoraAdapter, LoraConfig, Quant, TargetModules};
use stylerl::adapter::{attach, bitlora, peft};
use stylerl::gguf::dequant::{dequantize, GgmlType};
use stylerl::gguf::reader::{GgufFile, Value};
use stylerl::gguf::tensors::permute_rows;
use tch::{Device, Kind, Tensor};

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "stylerl failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The one error line of a failed run.
fn err_line(o: &Output) -> String {
    assert!(!o.status.success(), "expected a failure");
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(e.trim_end().lines().count(), 1, "not one line: {e}");
    e
}

/// `stylerl export-gguf --model MODEL --out OUT` (f32, no adapter), which must succeed.
fn export_full(model: &Path, out: &Path) {
    ok(&stylerl(&[
        "export-gguf",
        "--model",
        p(model),
        "--out",
        p(out),
    ]));
}

fn p(x: &Path) -> &str {
    x.to_str().unwrap()
}

/// Tensor values of a GGUF, dequantized, by name (ggml order, row-major).
fn gguf_values(g: &GgufFile) -> HashMap<String, Vec<f32>> {
    g.tensors
        .iter()
        .map(|t| {
            let v = dequantize(t.ty, g.tensor_bytes(t), t.n_elements() as usize).unwrap();
            (t.name.clone(), v)
        })
        .collect()
}

fn safetensors(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .collect()
}

fn flat(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&t.to_kind(Kind::Float).contiguous().flatten(0, -1)).unwrap()
}

/// A seeded LoRA on every linear layer of the tiny model, B nonzero (a fresh B is zero).
fn random_adapter(model_dir: &Path, quant: Quant, out: &Path) -> LoraAdapter {
    let model = stylerl::model::Llama::load(model_dir, Device::Cpu, Kind::Float).unwrap();
    let cfg = LoraConfig {
        r: 4,
        alpha: 8.0,
        target_modules: TargetModules::One("all-linear".into()),
        ..LoraConfig::default()
    };
    tch::manual_seed(7);
    let a = LoraAdapter::new(&cfg, &attach::linear_modules(&model), quant, Device::Cpu).unwrap();
    tch::no_grad(|| {
        for l in a.layers.values() {
            let mut b = l.b.shallow_clone();
            b.copy_(&(Tensor::randn(b.size(), (Kind::Float, Device::Cpu)) * 0.05));
        }
    });
    peft::save_adapter(&a, out, Some(p(model_dir))).unwrap();
    a
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny");
    common::tiny_llama(&model, 3);
    (dir, model)
}

#[test]
fn export_then_import_gives_the_same_weights_and_tokenizer() {
    let (dir, model) = setup();
    let gguf = dir.path().join("out/tiny.gguf");
    export_full(&model, &gguf);
    let back = dir.path().join("back");
    ok(&stylerl(&["import-gguf", p(&gguf), "--out", p(&back)]));
    let (want, got) = (
        safetensors(&model.join("model.safetensors")),
        safetensors(&back.join("model.safetensors")),
    );
    // Tied embeddings: no lm_head on either side of the round trip.
    let mut names: Vec<_> = want.keys().filter(|k| *k != "lm_head.weight").collect();
    names.sort();
    assert_eq!(got.len(), names.len(), "{:?}", got.keys());
    for n in names {
        assert_eq!(flat(&got[n]), flat(&want[n]), "{n}");
    }
    let g = GgufFile::open(&gguf).unwrap();
    assert!(g.tensor("output.weight").is_none());
    assert_eq!(
        g.get("general.architecture"),
        Some(&Value::Str("llama".into()))
    );
    assert_eq!(
        g.get("llama.attention.head_count_kv")
            .and_then(Value::as_u64),
        Some(2)
    );
    // The imported tokenizer splits and numbers text as the original one does.
    let (t0, t1) = (
        stylerl::model::Tokenizer::from_dir(&model).unwrap(),
        stylerl::model::Tokenizer::from_dir(&back).unwrap(),
    );
    for s in [
        "Hello, world!",
        "<|im_start|>user\nhi<|im_end|>\n",
        "  x = 42;\n\tdone",
    ] {
        assert_eq!(
            t1.encode(s, true).unwrap(),
            t0.encode(s, true).unwrap(),
            "{s:?}"
        );
    }
    let modelfile = std::fs::read_to_string(dir.path().join("out/Modelfile")).unwrap();
    assert!(modelfile.contains("FROM ./tiny.gguf\n"), "{modelfile}");
}

#[test]
fn quantized_types_keep_norms_in_f32() {
    let (dir, model) = setup();
    let f32_file = dir.path().join("f32.gguf");
    export_full(&model, &f32_file);
    let reference = gguf_values(&GgufFile::open(&f32_file).unwrap());
    for (ty, want, tol) in [
        ("f16", GgmlType::F16, 1e-3),
        ("bf16", GgmlType::BF16, 8e-3),
        ("q8_0", GgmlType::Q8_0, 1e-2),
    ] {
        let file = dir.path().join(format!("{ty}.gguf"));
        ok(&stylerl(&[
            "export-gguf",
            "--model",
            p(&model),
            "--out",
            p(&file),
            "--type",
            ty,
        ]));
        let g = GgufFile::open(&file).unwrap();
        let vals = gguf_values(&g);
        for t in &g.tensors {
            let expect = if t.dims.len() == 1 {
                GgmlType::F32
            } else {
                want
            };
            assert_eq!(t.ty, expect, "{ty}: {}", t.name);
            common::assert_close(
                &vals[&t.name],
                &reference[&t.name],
                tol,
                &format!("{ty} {}", t.name),
            );
        }
    }
}

#[test]
fn adapter_gguf_matches_the_folded_model() {
    let (dir, model) = setup();
    let adir = dir.path().join("adapter");
    let adapter = random_adapter(&model, Quant::None, &adir);
    let (base, lora, folded) = (
        dir.path().join("base.gguf"),
        dir.path().join("lora/adapter.gguf"),
        dir.path().join("folded.gguf"),
    );
    export_full(&model, &base);
    ok(&stylerl(&[
        "export-gguf",
        "--adapter-only",
        p(&adir),
        "--out",
        p(&lora),
    ]));
    ok(&stylerl(&[
        "export-gguf",
        "--model",
        p(&model),
        "--adapter",
        &format!("{}:0.5", p(&adir)),
        "--out",
        p(&folded),
    ]));
    let g = GgufFile::open(&lora).unwrap();
    assert_eq!(g.get("general.type"), Some(&Value::Str("adapter".into())));
    assert_eq!(g.get("adapter.type"), Some(&Value::Str("lora".into())));
    assert_eq!(
        g.get("general.architecture"),
        Some(&Value::Str("llama".into()))
    );
    assert_eq!(g.get("adapter.lora.alpha"), Some(&Value::F32(8.0)));
    assert_eq!(
        g.tensors.len(),
        2 * 14,
        "7 modules × 2 layers, A and B each"
    );
    let q = g.tensor("blk.1.attn_q.weight.lora_a").unwrap();
    assert_eq!((q.dims.clone(), q.ty), (vec![64, 4], GgmlType::F32));
    let kb = g.tensor("blk.0.attn_k.weight.lora_b").unwrap();
    assert_eq!(kb.dims, vec![4, 32]);
    let vals = gguf_values(&g);
    // A unchanged; B of k in llama.cpp's row order (2 kv heads), of v unchanged.
    let layer = &adapter.layers["model.layers.0.self_attn.k_proj"];
    assert_eq!(vals["blk.0.attn_k.weight.lora_a"], flat(&layer.a));
    let b = flat(&layer.b);
    assert_ne!(
        vals["blk.0.attn_k.weight.lora_b"], b,
        "k's B must be permuted"
    );
    assert_eq!(
        vals["blk.0.attn_k.weight.lora_b"],
        permute_rows(&b, 32, 4, 2).unwrap()
    );
    let vb = flat(&adapter.layers["model.layers.0.self_attn.v_proj"].b);
    assert_eq!(vals["blk.0.attn_v.weight.lora_b"], vb);
    // What llama.cpp computes at scale 0.5, W + 0.5 · α/r · B A in GGUF layout, is the
    // folded export's weight, for every module (q/k included: same row order on both sides).
    let (bv, fv) = (
        gguf_values(&GgufFile::open(&base).unwrap()),
        gguf_values(&GgufFile::open(&folded).unwrap()),
    );
    for t in g.tensors.iter().filter(|t| t.name.ends_with(".lora_a")) {
        let w = t.name.trim_end_matches(".lora_a");
        let a = Tensor::from_slice(&vals[&t.name]).reshape([4, t.dims[0] as i64]);
        let bt = &vals[&format!("{w}.lora_b")];
        let b = Tensor::from_slice(bt).reshape([bt.len() as i64 / 4, 4]);
        let want = Tensor::from_slice(&bv[w]) + (b.matmul(&a) * (0.5 * 8.0 / 4.0)).flatten(0, -1);
        common::assert_close(&fv[w], &want, 1e-6, w);
        assert!(fv[w] != bv[w], "{w}: the adapter changed nothing");
    }
    let modelfile = std::fs::read_to_string(dir.path().join("lora/Modelfile")).unwrap();
    assert!(
        modelfile.contains("FROM ./base.gguf\nADAPTER ./adapter.gguf\n"),
        "{modelfile}"
    );
}

#[test]
fn bitlora_exports_its_ternary_weights() {
    let (dir, model) = setup();
    let adir = dir.path().join("bit");
    let adapter = random_adapter(&model, Quant::Ternary, &adir);
    let out = dir.path().join("bit.gguf");
    ok(&stylerl(&[
        "export-gguf",
        "--adapter-only",
        p(&adir),
        "--model",
        p(&model),
        "--out",
        p(&out),
    ]));
    let vals = gguf_values(&GgufFile::open(&out).unwrap());
    let l = &adapter.layers["model.layers.1.mlp.down_proj"];
    let a = flat(&bitlora::ternary_quantize(&l.a));
    assert_eq!(vals["blk.1.ffn_down.weight.lora_a"], a);
    let mut levels: Vec<f32> = a.iter().map(|x| x.abs()).collect();
    levels.sort_by(f32::total_cmp);
    levels.dedup();
    assert!(
        levels.len() <= 2,
        "ternary: 0 and one scale, got {levels:?}"
    );
    assert_ne!(a, flat(&l.a), "latent weights must not be exported");
}

#[test]
fn bad_input_fails_in_one_line_and_leaves_no_file() {
    let (dir, model) = setup();
    let out = dir.path().join("o/x.gguf");
    let e = err_line(&stylerl(&[
        "export-gguf",
        "--model",
        "/nonexistent/m",
        "--out",
        p(&out),
    ]));
    assert!(
        e.contains("/nonexistent/m") && e.contains("config.json"),
        "{e}"
    );
    let e = err_line(&stylerl(&[
        "export-gguf",
        "--model",
        p(&model),
        "--out",
        p(&out),
        "--type",
        "q4_k",
    ]));
    assert!(
        e.contains("unknown --type 'q4_k'") && e.contains("q8_0"),
        "{e}"
    );
    let e = err_line(&stylerl(&["export-gguf", "--out", p(&out)]));
    assert!(e.contains("--model"), "{e}");
    let e = err_line(&stylerl(&[
        "export-gguf",
        "--adapter-only",
        "/nonexistent/a",
        "--model",
        p(&model),
        "--out",
        p(&out),
    ]));
    assert!(e.contains("/nonexistent/a"), "{e}");
    // A non-finite weight is named, and no file (nor temp file) is left.
    let mut w = safetensors(&model.join("model.safetensors"));
    let name = "model.layers.1.mlp.up_proj.weight";
    let t = w[name].copy();
    let _ = t.flatten(0, -1).get(5).fill_(f64::INFINITY);
    w.insert(name.to_string(), t);
    let named: Vec<(String, Tensor)> = w.into_iter().collect();
    Tensor::write_safetensors(&named, model.join("model.safetensors")).unwrap();
    let e = err_line(&stylerl(&[
        "export-gguf",
        "--model",
        p(&model),
        "--out",
        p(&out),
    ]));
    // Refused when the model loads (every command refuses such weights), before export.
    assert!(
        e.contains("model.layers.1.mlp.up_proj.weight") && e.contains("NaN or infinite"),
        "{e}"
    );
    let left: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
    // An existing file is kept unless --force.
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, b"keep").unwrap();
    let e = err_line(&stylerl(&[
        "export-gguf",
        "--model",
        p(&model),
        "--out",
        p(&out),
    ]));
    assert!(e.contains("--force"), "{e}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep");
}

/// The writer's every metadata type, nested arrays, a non-default alignment and all four
/// tensor encodings, read back by the `gguf` Python package (llama.cpp's gguf-py, installed
/// into .venv by scripts/test.sh): the values and the tensor bytes are what gguf-py sees.
#[test]
fn gguf_py_reads_what_the_writer_writes() {
    use stylerl::gguf::writer::{write_file, TensorSpec};
    let python = common::root().join(".venv/bin/python");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.gguf");
    let s = |x: &str| Value::Str(x.into());
    let meta = vec![
        ("general.alignment".to_string(), Value::U32(64)),
        ("t.u8".to_string(), Value::U8(200)),
        ("t.i8".to_string(), Value::I8(-100)),
        ("t.u16".to_string(), Value::U16(60000)),
        ("t.i16".to_string(), Value::I16(-30000)),
        ("t.u32".to_string(), Value::U32(4_000_000_000)),
        ("t.i32".to_string(), Value::I32(-2_000_000_000)),
        ("t.f32".to_string(), Value::F32(0.1)),
        ("t.bool".to_string(), Value::Bool(true)),
        ("t.str".to_string(), s("héllo Ġ")),
        ("t.u64".to_string(), Value::U64(u64::MAX)),
        ("t.i64".to_string(), Value::I64(i64::MIN)),
        ("t.f64".to_string(), Value::F64(-1e300)),
        (
            "t.strs".to_string(),
            Value::Array(vec![s("a b"), s(""), s("<|im_end|>")]),
        ),
        (
            "t.i32s".to_string(),
            Value::Array(vec![Value::I32(3), Value::I32(-1)]),
        ),
        (
            "t.f32s".to_string(),
            Value::Array(vec![Value::F32(1.5), Value::F32(-2.0)]),
        ),
    ];
    let specs = vec![
        TensorSpec {
            name: "a.f32".into(),
            dims: vec![3, 2],
            ty: GgmlType::F32,
        },
        TensorSpec {
            name: "b.f16".into(),
            dims: vec![5],
            ty: GgmlType::F16,
        },
        TensorSpec {
            name: "c.bf16".into(),
            dims: vec![4, 3],
            ty: GgmlType::BF16,
        },
        TensorSpec {
            name: "d.q8_0".into(),
            dims: vec![64, 3],
            ty: GgmlType::Q8_0,
        },
    ];
    let data: Vec<Vec<f32>> = specs
        .iter()
        .map(|t| {
            (0..t.n_elements())
                .map(|i| (i as f32 * 0.37).sin() * 3.0)
                .collect()
        })
        .collect();
    write_file(&file, &meta, &specs, |i| Ok(data[i].clone())).unwrap();
    let script = r#"
import json, sys
import numpy as np
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
out = {"alignment": int(r.alignment), "fields": {}, "tensors": {}}
for k, f in r.fields.items():
    if not k.startswith("GGUF."):
        v = f.contents()
        out["fields"][k] = [[t.name for t in f.types], v if not isinstance(v, float) else repr(v)]
for t in r.tensors:
    out["tensors"][t.name] = [t.tensor_type.name, [int(x) for x in t.shape], bytes(np.asarray(t.data).tobytes()).hex()]
print(json.dumps(out))
"#;
    let o = Command::new(&python)
        .args(["-c", script, p(&file)])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}: run scripts/test.sh once (it installs the Python reference)",
                python.display()
            )
        });
    assert!(
        o.status.success(),
        "gguf-py failed (run scripts/test.sh once to install it): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["alignment"], 64);
    let f = &v["fields"];
    let field = |k: &str| (f[k][0].clone(), f[k][1].clone());
    use serde_json::json;
    assert_eq!(field("t.u8"), (json!(["UINT8"]), json!(200)));
    assert_eq!(field("t.i8"), (json!(["INT8"]), json!(-100)));
    assert_eq!(field("t.u16"), (json!(["UINT16"]), json!(60000)));
    assert_eq!(field("t.i16"), (json!(["INT16"]), json!(-30000)));
    assert_eq!(field("t.u32"), (json!(["UINT32"]), json!(4_000_000_000u64)));
    assert_eq!(field("t.i32"), (json!(["INT32"]), json!(-2_000_000_000)));
    assert_eq!(
        field("t.f32"),
        (json!(["FLOAT32"]), json!(format!("{:?}", 0.1f32 as f64)))
    );
    assert_eq!(field("t.bool"), (json!(["BOOL"]), json!(true)));
    assert_eq!(field("t.str"), (json!(["STRING"]), json!("héllo Ġ")));
    assert_eq!(field("t.u64"), (json!(["UINT64"]), json!(u64::MAX)));
    assert_eq!(field("t.i64"), (json!(["INT64"]), json!(i64::MIN)));
    assert_eq!(field("t.f64"), (json!(["FLOAT64"]), json!("-1e+300")));
    assert_eq!(
        field("t.strs"),
        (json!(["ARRAY", "STRING"]), json!(["a b", "", "<|im_end|>"]))
    );
    assert_eq!(field("t.i32s"), (json!(["ARRAY", "INT32"]), json!([3, -1])));
    assert_eq!(
        field("t.f32s"),
        (json!(["ARRAY", "FLOAT32"]), json!([1.5, -2.0]))
    );
    let g = GgufFile::open(&file).unwrap();
    for t in &g.tensors {
        let [ty, shape, hex] = [0, 1, 2].map(|i| v["tensors"][&t.name][i].clone());
        assert_eq!(
            ty,
            json!(format!("{:?}", t.ty).to_uppercase()),
            "{}",
            t.name
        );
        assert_eq!(shape, json!(t.dims), "{}", t.name);
        let ours: String = g
            .tensor_bytes(t)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, json!(ours), "{}: bytes", t.name);
    }
}

/// Qwen2, Qwen3 and GPT-2 export under llama.cpp's qwen2/qwen3/gpt2 names: every HF tensor
/// (biases, q/k norms, positions included) appears once, q/k unpermuted (their RoPE rotates
/// halves, as HF does; GPT-2 has none), GPT-2's Conv1D [in, out] weights as [out, in], with
/// the architecture's hparams; Qwen3's head_dim (24, not 64/4) is written as key/value length.
#[test]
fn other_families_export_with_their_names_unpermuted() {
    for (family, extra) in [
        ("qwen2", vec!["blk.0.attn_q.bias", "blk.1.attn_v.bias"]),
        (
            "qwen3",
            vec!["blk.0.attn_q_norm.weight", "blk.1.attn_k_norm.weight"],
        ),
        (
            "gpt2",
            vec![
                "position_embd.weight",
                "blk.1.attn_qkv.bias",
                "output_norm.bias",
                "output.weight",
            ],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join(family);
        common::tiny_family(&model, family, 5);
        let gguf = dir.path().join("m.gguf");
        export_full(&model, &gguf);
        let g = GgufFile::open(&gguf).unwrap();
        assert_eq!(
            g.get("general.architecture"),
            Some(&Value::Str(family.into())),
            "{family}"
        );
        let mut keys = vec![("attention.head_count", 4), ("block_count", 2)];
        match family {
            "qwen3" => keys.push(("attention.key_length", 24)),
            "qwen2" => keys.push(("attention.head_count_kv", 2)),
            _ => keys.push(("feed_forward_length", 256)),
        }
        for (key, want) in keys {
            let k = format!("{family}.{key}");
            assert_eq!(g.get(&k).and_then(Value::as_u64), Some(want), "{k}");
        }
        let got = gguf_values(&g);
        for n in &extra {
            assert!(got.contains_key(*n), "{family}: no {n} in {:?}", got.keys());
        }
        let want = safetensors(&model.join("model.safetensors"));
        let tied = family == "qwen2";
        let hf: Vec<_> = want
            .keys()
            .filter(|k| !(tied && *k == "lm_head.weight"))
            .collect();
        // GPT-2's head is written out as output.weight (a copy of wte).
        let gpt2 = family == "gpt2";
        assert_eq!(
            got.len(),
            hf.len() + gpt2 as usize,
            "{family}: {:?}",
            got.keys()
        );
        for n in hf {
            let gn = stylerl::gguf::tensors::gguf_name(n).unwrap();
            let conv1d = gpt2 && want[n].dim() == 2 && !n.contains(".wte") && !n.contains(".wpe");
            let w = if conv1d {
                want[n].tr()
            } else {
                want[n].shallow_clone()
            };
            assert_eq!(got[&gn], flat(&w), "{family}: {n} as {gn}");
        }
        if gpt2 {
            assert_eq!(got["output.weight"], got["token_embd.weight"]);
        }
    }
}

/// What llama.cpp's graph for the family cannot hold (here q/k/v biases on Qwen3, which the
/// decoder runs) is refused in one line naming the family and the supported ones, before
/// anything is written.
#[test]
fn unsupported_model_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("qwen3");
    common::tiny_family(&model, "qwen3", 1);
    let mut cfg = common::tiny_config("qwen3");
    cfg["attention_bias"] = true.into();
    std::fs::write(model.join("config.json"), cfg.to_string()).unwrap();
    let out = dir.path().join("o/g.gguf");
    for args in [
        vec!["export-gguf", "--model", p(&model), "--out", p(&out)],
        vec![
            "export-gguf",
            "--adapter-only",
            p(dir.path()),
            "--model",
            p(&model),
            "--out",
            p(&out),
        ],
    ] {
        let e = err_line(&stylerl(&args));
        assert!(
            e.contains("qwen3") && e.contains("attention_bias") && e.contains("qwen2, qwen3, gpt2"),
            "{e}"
        );
    }
    assert!(!out.exists() && !out.with_file_name("Modelfile").exists());
}
