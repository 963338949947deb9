//! The Rust half of tests/parity/test_lora_math.py (ignored in a plain `cargo test`).
//!
//! The pytest writes inputs into $STYLERL_PARITY_DIR (a tiny transformers Llama, PEFT
//! adapters, random optimizer inputs), runs
//!   cargo test --release --test lora_peft_io -- --ignored
//! and then checks what this test wrote there against PEFT / torch / transformers:
//!   rust_read/<name>.safetensors  PEFT adapters as stylerl's loader read them
//!   stylerl_adapter*/             adapters saved by stylerl, for PeftModel.from_pretrained
//!   init.safetensors              a large fresh A, for the kaiming bound
//!   merged.safetensors            merge_weight on the base weights with the PEFT adapter
//!   optim_rust.safetensors        AdamW + clip_grad_norm over the given gradients
//!   sched_rust.json               learning rates of the three schedules
use std::path::{Path, PathBuf};
use stylerl::adapter::lora::*;
use stylerl::adapter::peft;
use stylerl::io::tensorfile;
use stylerl::train::optim::{clip_grad_norm, AdamW, AdamWConfig};
use stylerl::train::schedule::{Schedule, ScheduleKind};
use tch::{Device, Kind, Tensor};

fn dir() -> PathBuf {
    PathBuf::from(
        std::env::var("STYLERL_PARITY_DIR")
            .expect("set STYLERL_PARITY_DIR (run through tests/parity/test_lora_math.py)"),
    )
}

fn modules(d: &Path) -> Vec<(String, i64, i64)> {
    let v: Vec<(String, i64, i64)> =
        serde_json::from_str(&std::fs::read_to_string(d.join("modules.json")).unwrap()).unwrap();
    v
}

fn randomize_b(a: &LoraAdapter) {
    tch::no_grad(|| {
        for l in a.layers.values() {
            let _ = l.b.shallow_clone().normal_(0.0, 0.05);
        }
    });
}

fn read_peft_adapters(d: &Path) {
    for name in ["peft_adapter", "peft_adapter_rs"] {
        let a = peft::load_adapter(&d.join(name), Device::Cpu).unwrap();
        peft::check_against(&a, &modules(d), name).unwrap();
        let mut out = Vec::new();
        for (p, l) in &a.layers {
            out.push((format!("{p}.A"), l.a.detach()));
            out.push((format!("{p}.B"), l.b.detach()));
            out.push((format!("{p}.scaling"), Tensor::from_slice(&[l.scaling])));
        }
        tensorfile::write(
            &d.join("rust_read").join(format!("{name}.safetensors")),
            &out,
            None,
        )
        .unwrap();
    }
}

fn write_adapters(d: &Path) {
    let base = d.join("base").display().to_string();
    let mods = modules(d);
    tch::manual_seed(42);
    let all = LoraConfig {
        r: 4,
        alpha: 8.0,
        dropout: 0.05,
        use_rslora: false,
        target_modules: TargetModules::One("all-linear".into()),
    };
    let a = LoraAdapter::new(&all, &mods, Quant::None, Device::Cpu).unwrap();
    randomize_b(&a);
    peft::save_adapter(&a, &d.join("stylerl_adapter"), Some(&base)).unwrap();
    let rs = LoraConfig {
        r: 16,
        alpha: 8.0,
        dropout: 0.0,
        use_rslora: true,
        target_modules: TargetModules::List(vec!["q_proj".into(), "v_proj".into()]),
    };
    let b = LoraAdapter::new(&rs, &mods, Quant::None, Device::Cpu).unwrap();
    randomize_b(&b);
    peft::save_adapter(&b, &d.join("stylerl_adapter_rs"), Some(&base)).unwrap();
    let c = LoraAdapter::new(&all, &mods, Quant::Ternary, Device::Cpu).unwrap();
    randomize_b(&c);
    let sizes = peft::save_adapter(&c, &d.join("stylerl_bitlora"), Some(&base)).unwrap();
    std::fs::write(d.join("bitlora_sizes.json"), serde_json::json!({"fp32_payload": sizes.fp32_payload, "packed_payload": sizes.packed_payload, "fp32_file": sizes.fp32_file, "packed_file": sizes.packed_file}).to_string()).unwrap();
    // the trainable line for the PEFT comparison (all = base params + adapter params)
    let base_params: i64 = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(d.join("base_params.json")).unwrap(),
    )
    .unwrap()["count"]
        .as_i64()
        .unwrap();
    let line = trainable_line(a.num_parameters(), base_params + a.num_parameters());
    std::fs::write(d.join("trainable_line.txt"), line).unwrap();
    // a large fresh A for the init distribution
    let big = LoraLayer::new(
        400,
        8,
        &LoraConfig {
            r: 64,
            ..all.clone()
        },
        Quant::None,
        Device::Cpu,
    );
    tensorfile::write(
        &d.join("init.safetensors"),
        &[("A".into(), big.a.detach())],
        None,
    )
    .unwrap();
}

fn merge(d: &Path) {
    let a = peft::load_adapter(&d.join("peft_adapter"), Device::Cpu).unwrap();
    let base = tensorfile::read(&d.join("base").join("model.safetensors")).unwrap();
    let mut out = Vec::new();
    for (p, l) in &a.layers {
        let w = base.get(&format!("{p}.weight"), &d.join("base")).unwrap();
        out.push((
            format!("{p}.weight"),
            merge_weight(w, &l.a, &l.b, l.scaling),
        ));
    }
    tensorfile::write(&d.join("merged.safetensors"), &out, None).unwrap();
}

fn optim(d: &Path) {
    let f = tensorfile::read(&d.join("optim_case.safetensors")).unwrap();
    let meta = &f.metadata;
    let g = |k: &str| meta[k].parse::<f64>().unwrap();
    let cfg = AdamWConfig {
        lr: g("lr"),
        beta1: g("beta1"),
        beta2: g("beta2"),
        eps: g("eps"),
        weight_decay: g("weight_decay"),
    };
    let (n, steps, max_norm) = (g("num_params") as usize, g("steps") as usize, g("max_norm"));
    let params: Vec<Tensor> = (0..n)
        .map(|i| {
            f.get(&format!("p{i}"), d)
                .unwrap()
                .copy()
                .set_requires_grad(true)
        })
        .collect();
    let mut opt = AdamW::new(params.iter().map(|p| p.shallow_clone()).collect(), cfg);
    let mut out = Vec::new();
    let mut norms = Vec::new();
    for s in 0..steps {
        opt.zero_grad();
        // loss Σ p·g gives gradient g exactly
        let mut loss = Tensor::zeros([], (Kind::Float, Device::Cpu));
        for (i, p) in params.iter().enumerate() {
            loss = loss + (p * f.get(&format!("g{s}_{i}"), d).unwrap()).sum(Kind::Float);
        }
        loss.backward();
        norms.push(clip_grad_norm(&params, max_norm));
        opt.set_lr(cfg.lr * (1.0 - s as f64 / steps as f64));
        opt.step();
        for (i, p) in params.iter().enumerate() {
            out.push((format!("s{s}_p{i}"), p.detach().copy()));
        }
    }
    out.push(("norms".into(), Tensor::from_slice(&norms)));
    tensorfile::write(&d.join("optim_rust.safetensors"), &out, None).unwrap();
}

fn schedules(d: &Path) {
    let mut m = serde_json::Map::new();
    for (name, kind) in [
        ("cosine", ScheduleKind::Cosine),
        ("linear", ScheduleKind::Linear),
        ("constant", ScheduleKind::Constant),
    ] {
        let s = Schedule {
            kind,
            base_lr: 3e-4,
            warmup_steps: 7,
            total_steps: 50,
        };
        m.insert(
            name.into(),
            serde_json::json!((0..60).map(|k| s.lr_at(k)).collect::<Vec<f64>>()),
        );
    }
    std::fs::write(
        d.join("sched_rust.json"),
        serde_json::Value::Object(m).to_string(),
    )
    .unwrap();
}

#[test]
#[ignore = "run by tests/parity/test_lora_math.py"]
fn parity_dump() {
    let d = dir();
    read_peft_adapters(&d);
    write_adapters(&d);
    merge(&d);
    optim(&d);
    schedules(&d);
}
