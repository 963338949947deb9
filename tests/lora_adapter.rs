//! LoRA math, targeting, the trainable line, composition, merge and the PEFT files.
use stylerl::adapter::lora::*;
use stylerl::adapter::peft;
use tch::{Device, Kind, Tensor};

mod common;
use common::assert_close;

/// The products compared here have at most a few dozen terms per sum: float32 keeps two orders
/// of summation within about 1e-6 of the values' magnitude, so 1e-5 is tight yet vendor-proof.
const RTOL: f64 = 1e-5;

fn cfg(r: i64, alpha: f64, targets: TargetModules) -> LoraConfig {
    LoraConfig {
        r,
        alpha,
        dropout: 0.0,
        use_rslora: false,
        target_modules: targets,
    }
}

fn list(names: &[&str]) -> TargetModules {
    TargetModules::List(names.iter().map(|s| s.to_string()).collect())
}

/// The linear modules of a 2-layer Llama with hidden 32, kv 16, mlp 48, vocab 64.
fn llama_modules() -> Vec<(String, i64, i64)> {
    let mut m = common::tiny_llama_layer_modules();
    m.push(("lm_head".into(), 32, 64));
    m
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

#[test]
fn targeting_follows_peft_suffix_rules() {
    let c = cfg(8, 16.0, list(&["q_proj", "v_proj"]));
    assert!(c.is_targeted("model.layers.3.self_attn.q_proj"));
    assert!(c.is_targeted("q_proj"));
    assert!(!c.is_targeted("model.layers.3.self_attn.qq_proj"));
    assert!(!c.is_targeted("model.layers.3.self_attn.k_proj"));
    let all = cfg(8, 16.0, TargetModules::One("all-linear".into()));
    assert!(all.is_targeted("model.layers.0.mlp.down_proj"));
    assert!(!all.is_targeted("lm_head"));
    let re = cfg(
        8,
        16.0,
        TargetModules::One(r".*\.1\.self_attn\.(q|v)_proj".into()),
    );
    assert!(re.is_targeted("model.layers.1.self_attn.v_proj"));
    assert!(!re.is_targeted("model.layers.0.self_attn.v_proj"));
    let a = LoraAdapter::new(&all, &llama_modules(), Quant::None, Device::Cpu).unwrap();
    assert_eq!(a.layers.len(), 14);
    let e = LoraAdapter::new(
        &cfg(8, 16.0, list(&["qkv"])),
        &llama_modules(),
        Quant::None,
        Device::Cpu,
    )
    .unwrap_err();
    assert!(e.to_string().contains("matches no linear module"), "{e}");
}

#[test]
fn config_toml_rejects_unknown_keys_and_reads_both_target_forms() {
    let c: LoraConfig =
        stylerl::config::parse("r = 4\nalpha = 8\ntarget_modules = [\"q_proj\"]\n", &[]).unwrap();
    assert_eq!(c.target_modules, list(&["q_proj"]));
    assert_eq!(c.scaling(), 2.0);
    let c: LoraConfig = stylerl::config::parse(
        "target_modules = \"all-linear\"\nuse_rslora = true\nr = 16\nalpha = 8\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.scaling(), 2.0); // 8/√16
    let e = stylerl::config::parse::<LoraConfig>("rank = 4\n", &[]).unwrap_err();
    assert!(e.to_string().contains("rank"), "{e}");
    assert!(cfg(0, 1.0, list(&["q_proj"])).validate().is_err());
}

#[test]
fn init_is_kaiming_uniform_and_b_zero() {
    assert!((kaiming_uniform_bound(48) - 1.0 / 48f64.sqrt()).abs() < 1e-15);
    tch::manual_seed(0);
    let c = cfg(64, 16.0, list(&["q_proj"]));
    let l = LoraLayer::new(400, 32, &c, Quant::None, Device::Cpu);
    let bound = 1.0 / 20.0;
    let amax = l.a.abs().max().double_value(&[]);
    assert!(
        amax <= bound && amax > 0.99 * bound,
        "max |A| {amax} vs bound {bound}"
    );
    // uniform: variance bound²/3
    let var = l.a.var(true).double_value(&[]);
    assert!((var / (bound * bound / 3.0) - 1.0).abs() < 0.03, "{var}");
    assert_eq!(l.b.abs().sum(Kind::Float).double_value(&[]), 0.0);
    assert!(l.a.requires_grad() && l.b.requires_grad());
    assert_eq!(l.a.size(), vec![64, 400]);
    assert_eq!(l.b.size(), vec![32, 64]);
}

#[test]
fn delta_is_scaled_b_a_x_in_f32_and_cast_back() {
    tch::manual_seed(1);
    let a = Tensor::randn([4, 6], (Kind::Float, Device::Cpu));
    let b = Tensor::randn([5, 4], (Kind::Float, Device::Cpu));
    let l = LoraLayer::from_tensors(&a, &b, 2.5, 0.3, Quant::None, Device::Cpu);
    let x = Tensor::randn([2, 3, 6], (Kind::Float, Device::Cpu));
    let want = x.matmul(&a.tr()).matmul(&b.tr()) * 2.5;
    let got = l.delta(&x, false);
    assert_close(&got, &want, RTOL, "delta vs scaled B·A·x");
    // bf16 input: computed in f32, returned in bf16
    let xb = x.to_kind(Kind::BFloat16);
    let gb = l.delta(&xb, false);
    assert_eq!(gb.kind(), Kind::BFloat16);
    let wb =
        (xb.to_kind(Kind::Float).matmul(&a.tr()).matmul(&b.tr()) * 2.5).to_kind(Kind::BFloat16);
    assert!(max_diff(&gb, &wb) == 0.0);
    // dropout only in training: some outputs change, eval is deterministic
    let t1 = l.delta(&x, true);
    assert!(max_diff(&t1, &want) > 1e-3);
    assert!(max_diff(&l.delta(&x, false), &got) == 0.0);
    // merge equals applying the adapter
    let w = Tensor::randn([5, 6], (Kind::Float, Device::Cpu));
    let merged = merge_weight(&w, &a, &b, 2.5);
    let applied = x.matmul(&w.tr()) + &got;
    assert_close(&x.matmul(&merged.tr()), &applied, RTOL, "merged vs applied");
    assert_close(
        &l.delta_weight(),
        &(b.matmul(&a) * 2.5),
        RTOL,
        "delta weight",
    );
}

/// The mixed bf16 mode's term: the same value as the f32 term to bf16's rounding, in bf16,
/// with gradients reaching the f32 masters; with dropout, the f32 path's mask (same seed).
#[test]
fn delta_low_is_the_f32_term_rounded_and_trains_the_f32_masters() {
    tch::manual_seed(2);
    let a = Tensor::randn([8, 64], (Kind::Float, Device::Cpu));
    let b = Tensor::randn([48, 8], (Kind::Float, Device::Cpu));
    let l = LoraLayer::from_tensors(&a, &b, 2.0, 0.25, Quant::None, Device::Cpu);
    let x = Tensor::randn([3, 5, 64], (Kind::Float, Device::Cpu));
    let xl = x.to_kind(Kind::BFloat16);
    let want = l.delta(&xl.to_kind(Kind::Float), false);
    let got = l.delta_low(&x, &xl, false);
    assert_eq!(got.kind(), Kind::BFloat16);
    // Three bf16 roundings (A, B, the rank-8 intermediate) on sums of 64 and 8 terms:
    // a few parts in a thousand of the term's scale.
    let scale = want.abs().max().double_value(&[]);
    let err = max_diff(&got, &want) / scale;
    assert!(err < 0.02, "bf16 term off by {err:.4} of its scale");
    // With dropout each draw differs, and the mean over draws is the term: the mask is
    // unscaled, so a missing 1/(1−p) would leave the mean 25 % short. (Not seeded: torch's
    // generator is shared with the tests running beside this one.)
    let draws: Vec<Tensor> = (0..400)
        .map(|_| l.delta_low(&x, &xl, true).to_kind(Kind::Float))
        .collect();
    assert!(max_diff(&draws[0], &draws[1]) > 0.0);
    let mean = Tensor::stack(&draws, 0).mean_dim(0, false, Kind::Float);
    let err = max_diff(&mean, &want) / scale;
    assert!(
        err < 0.1,
        "mean of dropout draws off by {err:.4} of the term's scale"
    );
    let got = l.delta_low(&x, &xl, false);
    got.to_kind(Kind::Float).sum(Kind::Float).backward();
    assert_eq!(l.a.grad().kind(), Kind::Float);
    let (ga, gb) = (l.a.grad(), l.b.grad());
    assert!(
        ga.isfinite().all().int64_value(&[]) == 1
            && ga.abs().sum(Kind::Float).double_value(&[]) > 0.0
    );
    assert!(
        gb.isfinite().all().int64_value(&[]) == 1
            && gb.abs().sum(Kind::Float).double_value(&[]) > 0.0
    );
    // Bit-LoRA keeps the f32 math and rounds the result.
    let t = LoraLayer::from_tensors(&a, &b, 2.0, 0.0, Quant::Ternary, Device::Cpu);
    let want = t.delta(&x, false).to_kind(Kind::BFloat16);
    assert!(max_diff(&t.delta_low(&x, &xl, false), &want) == 0.0);
}

#[test]
fn lora_set_composes_adapters_with_weights() {
    tch::manual_seed(2);
    let mods = llama_modules();
    let a1 = LoraAdapter::new(
        &cfg(4, 8.0, list(&["q_proj"])),
        &mods,
        Quant::None,
        Device::Cpu,
    )
    .unwrap();
    let a2 = LoraAdapter::new(
        &cfg(2, 2.0, list(&["q_proj", "v_proj"])),
        &mods,
        Quant::None,
        Device::Cpu,
    )
    .unwrap();
    for a in [&a1, &a2] {
        for l in a.layers.values() {
            tch::no_grad(|| {
                let _ = l.b.shallow_clone().normal_(0.0, 0.1);
            });
        }
    }
    let x = Tensor::randn([3, 32], (Kind::Float, Device::Cpu));
    let p = "model.layers.0.self_attn.q_proj";
    let d1 = a1.delta(p, &x, false).unwrap();
    let d2 = a2.delta(p, &x, false).unwrap();
    let mut set = LoraSet::new();
    set.push(a1, 0.5);
    set.push(a2, -2.0);
    let got = set.delta(p, &x, false).unwrap();
    assert_close(&got, &(d1 * 0.5 - d2 * 2.0), RTOL, "weighted sum of deltas");
    // v_proj only in the second adapter; k_proj in none
    let v = "model.layers.1.self_attn.v_proj";
    assert_close(
        &set.delta(v, &x, false).unwrap(),
        &(set.adapters[1].0.delta(v, &x, false).unwrap() * -2.0),
        RTOL,
        "v_proj delta from the second adapter only",
    );
    assert!(set
        .delta("model.layers.1.self_attn.k_proj", &x, false)
        .is_none());
    assert!(!set.covers("model.layers.1.self_attn.k_proj"));
    assert_eq!(
        parse_adapter_spec("runs/a:0.5").unwrap(),
        ("runs/a".into(), 0.5)
    );
    assert_eq!(
        parse_adapter_spec("runs/a").unwrap(),
        ("runs/a".into(), 1.0)
    );
    assert_eq!(
        parse_adapter_spec("C:/x/y").unwrap(),
        ("C:/x/y".into(), 1.0)
    );
}

#[test]
fn trainable_line_matches_peft_format() {
    assert_eq!(
        trainable_line(3712, 21280),
        "trainable params: 3,712 || all params: 21,280 || trainable%: 17.4436"
    );
    assert_eq!(thousands(134515008), "134,515,008");
    assert_eq!(thousands(999), "999");
    let a = LoraAdapter::new(
        &cfg(8, 16.0, list(&["q_proj", "v_proj"])),
        &llama_modules(),
        Quant::None,
        Device::Cpu,
    )
    .unwrap();
    // per layer q: 8·32 + 32·8, v: 8·32 + 16·8
    assert_eq!(a.num_parameters(), 2 * (512 + 384));
    assert_eq!(a.parameters().len(), 8);
}

#[test]
fn save_and_load_round_trip_in_peft_layout() {
    tch::manual_seed(3);
    let dir = tempfile::tempdir().unwrap();
    let c = LoraConfig {
        dropout: 0.1,
        ..cfg(4, 8.0, list(&["q_proj", "down_proj"]))
    };
    let a = LoraAdapter::new(&c, &llama_modules(), Quant::None, Device::Cpu).unwrap();
    tch::no_grad(|| {
        for l in a.layers.values() {
            let _ = l.b.shallow_clone().normal_(0.0, 0.1);
        }
    });
    let sizes = peft::save_adapter(&a, dir.path(), Some("models/x")).unwrap();
    assert_eq!(sizes.fp32_payload, 4 * a.num_parameters() as usize);
    assert!(sizes.packed_file.is_none());
    let cfgj: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cfgj["peft_type"], "LORA");
    assert_eq!(cfgj["lora_alpha"], 8);
    assert_eq!(
        cfgj["target_modules"],
        serde_json::json!(["down_proj", "q_proj"])
    );
    assert_eq!(cfgj["base_model_name_or_path"], "models/x");
    let f = stylerl::io::tensorfile::read(&dir.path().join("adapter_model.safetensors")).unwrap();
    let k = "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight";
    assert_eq!(f.get(k, dir.path()).unwrap().size(), vec![4, 48]);
    assert_eq!(f.tensors.len(), 8);
    let b = peft::load_adapter(dir.path(), Device::Cpu).unwrap();
    assert_eq!(b.config.r, 4);
    assert_eq!(b.config.dropout, 0.1);
    assert_eq!(b.layers.len(), a.layers.len());
    for (p, l) in &a.layers {
        let m = &b.layers[p];
        assert!(m.a.equal(&l.a) && m.b.equal(&l.b), "{p}");
        assert_eq!(m.scaling, 2.0);
    }
    peft::check_against(&b, &llama_modules(), "x").unwrap();
    let mut other = llama_modules();
    other[0].1 = 64;
    assert!(peft::check_against(&b, &other, "x")
        .unwrap_err()
        .to_string()
        .contains("model.layers.0.self_attn.q_proj"));
}

#[test]
fn loader_errors_name_the_problem() {
    tch::manual_seed(4);
    let dir = tempfile::tempdir().unwrap();
    let a = LoraAdapter::new(
        &cfg(4, 8.0, list(&["q_proj"])),
        &llama_modules(),
        Quant::None,
        Device::Cpu,
    )
    .unwrap();
    peft::save_adapter(&a, dir.path(), None).unwrap();
    let wpath = dir.path().join("adapter_model.safetensors");
    let mut f = stylerl::io::tensorfile::read(&wpath).unwrap().tensors;
    // missing B
    let keep: Vec<(String, Tensor)> = f
        .iter()
        .filter(|(k, _)| !k.ends_with("layers.1.self_attn.q_proj.lora_B.weight"))
        .map(|(k, t)| (k.clone(), t.shallow_clone()))
        .collect();
    stylerl::io::tensorfile::write(&wpath, &keep, None).unwrap();
    let e = peft::load_adapter(dir.path(), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing") && e.contains("layers.1.self_attn.q_proj.lora_B"),
        "{e}"
    );
    // mis-shaped A
    f[0].1 = Tensor::zeros([3, 32], (Kind::Float, Device::Cpu));
    stylerl::io::tensorfile::write(&wpath, &f, None).unwrap();
    let e = peft::load_adapter(dir.path(), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("r = 4"), "{e}");
    // unknown key
    f[0].1 = Tensor::zeros([4, 32], (Kind::Float, Device::Cpu));
    f.push((
        "base_model.model.lm_head.weight".into(),
        Tensor::zeros([2], (Kind::Float, Device::Cpu)),
    ));
    stylerl::io::tensorfile::write(&wpath, &f, None).unwrap();
    let e = peft::load_adapter(dir.path(), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unexpected tensor 'base_model.model.lm_head.weight'"),
        "{e}"
    );
    // PEFT's named-adapter keys load
    f.pop();
    let named: Vec<(String, Tensor)> = f
        .iter()
        .map(|(k, t)| (k.replace(".weight", ".default.weight"), t.shallow_clone()))
        .collect();
    stylerl::io::tensorfile::write(&wpath, &named, None).unwrap();
    assert_eq!(
        peft::load_adapter(dir.path(), Device::Cpu)
            .unwrap()
            .layers
            .len(),
        2
    );
    // unsupported feature in the config
    let cp = dir.path().join("adapter_config.json");
    let text = std::fs::read_to_string(&cp)
        .unwrap()
        .replace("\"use_dora\": false", "\"use_dora\": true");
    std::fs::write(&cp, text).unwrap();
    assert!(peft::load_adapter(dir.path(), Device::Cpu)
        .unwrap_err()
        .to_string()
        .contains("use_dora"));
    // no directory
    let e = peft::load_adapter(&dir.path().join("nope"), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("adapter_config.json"), "{e}");
}

#[test]
fn merge_into_and_load_set_compose_saved_adapters() {
    tch::manual_seed(6);
    let mods = llama_modules();
    let dir = tempfile::tempdir().unwrap();
    let mk = |targets: &[&str], name: &str| {
        let a =
            LoraAdapter::new(&cfg(4, 8.0, list(targets)), &mods, Quant::None, Device::Cpu).unwrap();
        tch::no_grad(|| {
            for l in a.layers.values() {
                let _ = l.b.shallow_clone().normal_(0.0, 0.1);
            }
        });
        peft::save_adapter(&a, &dir.path().join(name), None).unwrap();
        a
    };
    let a1 = mk(&["q_proj"], "one");
    let a2 = mk(&["q_proj", "up_proj"], "two");
    let specs = vec![
        format!("{}:0.5", dir.path().join("one").display()),
        dir.path().join("two").display().to_string(),
    ];
    let set = peft::load_set(&specs, Device::Cpu).unwrap();
    assert_eq!(set.adapters.len(), 2);
    assert_eq!(set.adapters[0].1, 0.5);
    assert!(!set.adapters[0]
        .0
        .layers
        .values()
        .next()
        .unwrap()
        .a
        .requires_grad());
    let mut weights: Vec<(String, Tensor)> = mods
        .iter()
        .map(|(p, i, o)| {
            (
                format!("{p}.weight"),
                Tensor::randn([*o, *i], (Kind::Float, Device::Cpu)).to_kind(Kind::BFloat16),
            )
        })
        .collect();
    let before: Vec<Tensor> = weights.iter().map(|(_, w)| w.copy()).collect();
    assert_eq!(set.merge_into(&mut weights).unwrap(), 4);
    let q = "model.layers.0.self_attn.q_proj";
    let want = before[0].to_kind(Kind::Float)
        + a1.layers[q].delta_weight() * 0.5
        + a2.layers[q].delta_weight();
    assert_eq!(weights[0].1.kind(), Kind::BFloat16);
    assert!(max_diff(&weights[0].1, &want) < 0.05); // bf16 rounding
    assert!(weights[1].1.equal(&before[1]), "k_proj is not adapted");
    weights.retain(|(k, _)| !k.contains("up_proj"));
    assert!(set
        .merge_into(&mut weights)
        .unwrap_err()
        .to_string()
        .contains("up_proj"));
    let e = peft::load_set(&["/nonexistent/adapter:2".to_string()], Device::Cpu).unwrap_err();
    assert!(
        format!("{e:#}").contains("--adapter /nonexistent/adapter:2"),
        "{e:#}"
    );
}

#[test]
fn handles_share_tensors_flag_and_weight_with_their_adapter() {
    tch::manual_seed(7);
    let c = LoraConfig {
        dropout: 0.5,
        ..cfg(4, 8.0, list(&["q_proj"]))
    };
    let a = LoraAdapter::new(&c, &llama_modules(), Quant::None, Device::Cpu).unwrap();
    let hs = a.handles(0.25);
    assert_eq!(hs.len(), 2);
    let h = &hs[0];
    assert_eq!(h.path, "model.layers.0.self_attn.q_proj");
    let x = Tensor::randn([3, 32], (Kind::Float, Device::Cpu));
    // gradient through the handle reaches the adapter's own B (B = 0 gives output 0)
    a.set_training(false);
    h.delta(&x).square().sum(Kind::Float).backward();
    let l = &a.layers[&h.path];
    assert!(l.b.grad().defined());
    let mut opt = stylerl::train::optim::AdamW::new(a.parameters(), Default::default());
    (h.delta(&x) - 1.0).square().sum(Kind::Float).backward();
    opt.step();
    // the update made through the adapter's parameters shows in the handle
    let want = l.delta(&x, false) * 0.25;
    assert!(want.abs().max().double_value(&[]) > 0.0);
    assert_close(&h.delta(&x), &want, RTOL, "handle delta after the update");
    // dropout follows the adapter's flag
    a.set_training(true);
    assert!(max_diff(&h.delta(&x), &want) > 1e-4);
    a.set_training(false);
    assert!(max_diff(&h.delta(&x), &want) == 0.0);
    // in-place restore (as checkpoint resume does) is seen by the handle
    let dir = tempfile::tempdir().unwrap();
    peft::save_adapter(&a, dir.path(), None).unwrap();
    tch::no_grad(|| {
        let _ = l.b.shallow_clone().zero_();
    });
    assert!(h.delta(&x).abs().max().double_value(&[]) == 0.0);
    peft::load_values_into(&a, &dir.path().join("adapter_model.safetensors")).unwrap();
    assert_close(&h.delta(&x), &want, RTOL, "handle delta after restore");
}
