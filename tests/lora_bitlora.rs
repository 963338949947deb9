//! Bit-LoRA: straight-through gradients, learning from B = 0, the packed file and sizes.
use stylerl::adapter::bitlora::*;
use stylerl::adapter::lora::*;
use stylerl::adapter::peft;
use stylerl::train::optim::{AdamW, AdamWConfig};
use tch::{Device, Kind, Tensor};

mod common;
use common::assert_close;

/// Short products (≤ 256 terms per sum): float32 keeps two summation orders within about 1e-6
/// of the values' magnitude; 1e-5 stays tight on any vendor's kernels.
const RTOL: f64 = 1e-5;

fn opts() -> (Kind, Device) {
    (Kind::Float, Device::Cpu)
}

#[test]
fn straight_through_gradient_equals_gradient_wrt_quantized_weight() {
    tch::manual_seed(10);
    let w = Tensor::randn([4, 6], opts()).set_requires_grad(true);
    let x = Tensor::randn([3, 6], opts());
    let target = Tensor::randn([3, 4], opts());
    // loss through the STE weight
    let y = x.matmul(&ternary_ste(&w).tr());
    let loss = (&y - &target).square().sum(Kind::Float);
    loss.backward();
    let g_ste = w.grad().copy();
    // loss with the quantized weight as its own leaf
    let wq = ternary_quantize(&w).detach().set_requires_grad(true);
    let loss_q = (x.matmul(&wq.tr()) - &target).square().sum(Kind::Float);
    loss_q.backward();
    assert_close(&loss, &loss_q, RTOL, "loss through the STE");
    assert_close(&g_ste, &wq.grad(), RTOL, "STE gradient");
    assert!(g_ste.abs().sum(Kind::Float).double_value(&[]) > 0.0);
}

#[test]
fn forward_uses_ternary_factors() {
    tch::manual_seed(11);
    let a = Tensor::randn([2, 5], opts());
    let b = Tensor::randn([3, 2], opts());
    let l = LoraLayer::from_tensors(&a, &b, 1.5, 0.0, Quant::Ternary, Device::Cpu);
    let x = Tensor::randn([4, 5], opts());
    let want = x
        .matmul(&ternary_quantize(&a).tr())
        .matmul(&ternary_quantize(&b).tr())
        * 1.5;
    assert_close(&l.delta(&x, false), &want, RTOL, "ternary delta");
}

#[test]
fn b_starting_at_zero_still_learns() {
    // Toy regression y = x Mᵀ through a Bit-LoRA delta starting at B = 0.
    tch::manual_seed(12);
    let cfg = LoraConfig {
        r: 4,
        alpha: 4.0,
        dropout: 0.0,
        use_rslora: false,
        target_modules: TargetModules::List(vec!["p".into()]),
    };
    let ad = LoraAdapter::new(&cfg, &[("p".into(), 8, 6)], Quant::Ternary, Device::Cpu).unwrap();
    let l = &ad.layers["p"];
    let x = Tensor::randn([64, 8], opts());
    let m = Tensor::randn([6, 8], opts()) * 0.5;
    let y = x.matmul(&m.tr());
    let mut opt = AdamW::new(
        ad.parameters(),
        AdamWConfig {
            lr: 1e-2,
            weight_decay: 0.0,
            ..Default::default()
        },
    );
    let loss_of = || (l.delta(&x, true) - &y).square().mean(Kind::Float);
    let first = loss_of().double_value(&[]);
    for _ in 0..200 {
        opt.zero_grad();
        loss_of().backward();
        opt.step();
    }
    let last = loss_of().double_value(&[]);
    let b_nonzero = ternary_quantize(&l.b)
        .ne(0.0)
        .sum(Kind::Int64)
        .int64_value(&[]);
    assert!(
        l.b.abs().max().double_value(&[]) > 1e-3,
        "latent B did not move"
    );
    assert!(b_nonzero > 0, "ternary B is still all zero");
    assert!(last < 0.8 * first, "loss {first} → {last}");
}

#[test]
fn bitlora_saves_dequantized_and_packed_and_reports_sizes() {
    tch::manual_seed(13);
    let cfg = LoraConfig {
        r: 8,
        alpha: 16.0,
        dropout: 0.0,
        use_rslora: false,
        target_modules: TargetModules::One("all-linear".into()),
    };
    let mods = vec![
        ("model.layers.0.mlp.up_proj".to_string(), 256, 512),
        ("model.layers.0.mlp.down_proj".to_string(), 512, 256),
        ("lm_head".to_string(), 256, 1000),
    ];
    let ad = LoraAdapter::new(&cfg, &mods, Quant::Ternary, Device::Cpu).unwrap();
    tch::no_grad(|| {
        for l in ad.layers.values() {
            let _ = l.b.shallow_clone().normal_(0.0, 0.02);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let s = peft::save_adapter(&ad, dir.path(), None).unwrap();
    let ratio = s.fp32_payload as f64 / s.packed_payload.unwrap() as f64;
    assert!((15.5..=16.0).contains(&ratio), "payload ratio {ratio}");
    let file_ratio = s.fp32_file as f64 / s.packed_file.unwrap() as f64;
    assert!(file_ratio > 10.0, "file ratio {file_ratio}");
    // The PEFT-format file holds exactly the dequantized factors …
    let plain = peft::load_adapter(dir.path(), Device::Cpu).unwrap();
    // … and the packed file unpacks to the same values.
    let packed = peft::load_ternary_adapter(dir.path(), Device::Cpu).unwrap();
    assert_eq!(plain.layers.len(), 2);
    for (p, l) in &ad.layers {
        assert!(plain.layers[p].a.equal(&ternary_quantize(&l.a)), "{p}");
        assert!(plain.layers[p].b.equal(&ternary_quantize(&l.b)), "{p}");
        assert!(packed.layers[p].a.equal(&plain.layers[p].a));
        assert!(packed.layers[p].b.equal(&plain.layers[p].b));
        // at most three distinct values per tensor
        let u = plain.layers[p]
            .a
            .flatten(0, -1)
            .unique_dim(0, true, false, false)
            .0
            .numel();
        assert!(u <= 3);
    }
    let x = Tensor::randn([2, 256], opts());
    let p = "model.layers.0.mlp.up_proj";
    let want = plain.delta(p, &x, false).unwrap();
    assert_close(
        &ad.delta(p, &x, false).unwrap(),
        &want,
        RTOL,
        "loaded ternary delta",
    );
}
