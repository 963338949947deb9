//! Checkpoints: round trip, crash leftovers ignored, keep-last-K, Bit-LoRA latent weights,
//! and a resumed toy training run that ends equal to an uninterrupted one.
use stylerl::adapter::lora::*;
use stylerl::rng::SplitMix64;
use stylerl::train::checkpoint::{self, DataPosition, TrainerState};
use stylerl::train::optim::{AdamW, AdamWConfig};
use tch::{Device, Kind, Tensor};

fn mods() -> Vec<(String, i64, i64)> {
    vec![("m.l0.q_proj".into(), 6, 5), ("m.l1.q_proj".into(), 6, 5)]
}

fn adapter(quant: Quant, seed: i64) -> LoraAdapter {
    tch::manual_seed(seed);
    let c = LoraConfig {
        r: 2,
        alpha: 4.0,
        dropout: 0.0,
        use_rslora: false,
        target_modules: TargetModules::List(vec!["q_proj".into()]),
    };
    LoraAdapter::new(&c, &mods(), quant, Device::Cpu).unwrap()
}

/// One deterministic toy step: regress both deltas onto a fixed target.
fn train_step(a: &LoraAdapter, opt: &mut AdamW, step: u64) {
    tch::manual_seed(100 + step as i64);
    let x = Tensor::randn([4, 6], (Kind::Float, Device::Cpu));
    let y = Tensor::randn([4, 5], (Kind::Float, Device::Cpu));
    opt.zero_grad();
    let mut loss = Tensor::zeros([], (Kind::Float, Device::Cpu));
    for p in a.layers.keys() {
        loss = loss
            + (a.delta(p, &x, true).unwrap() - &y)
                .square()
                .mean(Kind::Float);
    }
    loss.backward();
    opt.set_lr(0.01 * (1.0 + step as f64));
    opt.step();
}

fn state(step: u64, rng: SplitMix64) -> TrainerState {
    TrainerState {
        step,
        scheduler_step: step,
        seed: 9,
        rng,
        data: DataPosition {
            epoch: 1,
            index: step * 2,
            order_seed: 77,
        },
        extra: serde_json::json!({"nan_streak": 0}),
    }
}

fn run_resumed(quant: Quant) -> (LoraAdapter, LoraAdapter) {
    // uninterrupted: 6 steps
    let a = adapter(quant, 1);
    let mut o = AdamW::new(a.parameters(), AdamWConfig::default());
    for s in 0..6 {
        train_step(&a, &mut o, s);
    }
    // interrupted after a checkpoint at step 3, then resumed into fresh objects
    let dir = tempfile::tempdir().unwrap();
    let b = adapter(quant, 1);
    let mut ob = AdamW::new(b.parameters(), AdamWConfig::default());
    let mut rng = SplitMix64::new(5);
    for s in 0..3 {
        train_step(&b, &mut ob, s);
        rng.next();
    }
    checkpoint::save(dir.path(), &state(3, rng), &b, &ob, Some("base"), 2).unwrap();
    train_step(&b, &mut ob, 3); // work lost in the "crash"
    let c = adapter(quant, 999); // different init: everything must come from the checkpoint
    let mut oc = AdamW::new(c.parameters(), AdamWConfig::default());
    let (dir3, st) = checkpoint::load_latest(dir.path(), &c, &mut oc)
        .unwrap()
        .unwrap();
    assert!(dir3.ends_with("step-3"));
    assert_eq!(st, state(3, rng));
    for s in st.step..6 {
        train_step(&c, &mut oc, s);
    }
    (a, c)
}

#[test]
fn resumed_run_equals_uninterrupted_run() {
    for quant in [Quant::None, Quant::Ternary] {
        let (a, c) = run_resumed(quant);
        for (p, l) in &a.layers {
            assert!(
                l.a.equal(&c.layers[p].a) && l.b.equal(&c.layers[p].b),
                "{quant:?} {p}"
            );
        }
        assert!(a
            .layers
            .values()
            .any(|l| l.b.abs().sum(Kind::Float).double_value(&[]) > 0.0));
    }
}

#[test]
fn leftovers_are_ignored_and_old_checkpoints_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    assert!(checkpoint::latest(root).unwrap().is_none());
    let a = adapter(Quant::None, 2);
    let o = AdamW::new(a.parameters(), AdamWConfig::default());
    for s in [10u64, 20, 30] {
        checkpoint::save(root, &state(s, SplitMix64::new(s)), &a, &o, None, 2).unwrap();
    }
    let steps: Vec<u64> = checkpoint::list(root)
        .unwrap()
        .into_iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(steps, vec![20, 30]);
    assert_eq!(
        std::fs::read_to_string(root.join("latest")).unwrap().trim(),
        "step-30"
    );
    // a crash while writing step 40: the temp dir exists, latest still names step-30
    std::fs::create_dir_all(root.join(".tmp-step-40")).unwrap();
    std::fs::write(root.join(".tmp-step-40/optimizer.safetensors"), b"torn").unwrap();
    // a crash after the rename but before trainer_state.json would leave an incomplete dir
    std::fs::create_dir_all(root.join("step-50")).unwrap();
    assert!(checkpoint::latest(root)
        .unwrap()
        .unwrap()
        .ends_with("step-30"));
    // latest missing or stale: fall back to the highest complete step
    std::fs::remove_file(root.join("latest")).unwrap();
    assert!(checkpoint::latest(root)
        .unwrap()
        .unwrap()
        .ends_with("step-30"));
    std::fs::write(root.join("latest"), "step-99\n").unwrap();
    assert!(checkpoint::latest(root)
        .unwrap()
        .unwrap()
        .ends_with("step-30"));
    // the next save replaces the stale temp dir
    checkpoint::save(root, &state(40, SplitMix64::new(1)), &a, &o, None, 2).unwrap();
    assert!(!root.join(".tmp-step-40").exists());
    assert_eq!(
        checkpoint::read_state(&root.join("step-40")).unwrap().step,
        40
    );
    // each checkpoint's adapter is a PEFT adapter directory
    let loaded = stylerl::adapter::peft::load_adapter(&root.join("step-40"), Device::Cpu).unwrap();
    assert_eq!(loaded.layers.len(), 2);
}

#[test]
fn mismatched_resume_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = adapter(Quant::None, 3);
    let o = AdamW::new(a.parameters(), AdamWConfig::default());
    let p = checkpoint::save(dir.path(), &state(1, SplitMix64::new(1)), &a, &o, None, 1).unwrap();
    let t = adapter(Quant::Ternary, 3);
    let mut ot = AdamW::new(t.parameters(), AdamWConfig::default());
    let e = checkpoint::restore(&p, &t, &mut ot)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not from a Bit-LoRA run"), "{e}");
}
