//! AdamW and clipping against hand-computed numbers; state save/load resumes exactly.
//! (tests/parity/test_lora_math.py compares the same code with torch.optim.AdamW.)
use stylerl::train::optim::*;
use tch::{Device, Kind, Tensor};

fn leaf(v: &[f32]) -> Tensor {
    Tensor::from_slice(v).set_requires_grad(true)
}

fn set_grad(p: &Tensor, g: &[f32]) {
    // d/dp of Σ p·g is g
    let mut p2 = p.shallow_clone();
    p2.zero_grad();
    (p * Tensor::from_slice(g)).sum(Kind::Float).backward();
}

fn vals(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.detach().to_kind(Kind::Double)).unwrap()
}

#[test]
fn two_adamw_steps_match_hand_computation() {
    // Hand computation (see the module doc's update rule): lr 0.1, wd 0.1, β 0.9/0.999.
    // Step 1: p·0.99, m = 0.1g, v = 0.001g², m̂/√v̂ = sign(g) → p − 0.1·sign(g).
    let p = leaf(&[1.0, -2.0]);
    let mut opt = AdamW::new(
        vec![p.shallow_clone()],
        AdamWConfig {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.1,
        },
    );
    set_grad(&p, &[0.5, -1.0]);
    opt.step();
    let v1 = vals(&p);
    assert!(
        (v1[0] - 0.890000002).abs() < 1e-6 && (v1[1] + 1.880000001).abs() < 1e-6,
        "{v1:?}"
    );
    set_grad(&p, &[0.1, 0.2]);
    opt.step();
    let v2 = vals(&p);
    assert!((v2[0] - 0.8007959063646517).abs() < 1e-6, "{v2:?}");
    assert!((v2[1] + 1.8100973939804945).abs() < 1e-6, "{v2:?}");
}

#[test]
fn params_without_grad_are_skipped() {
    let p = leaf(&[1.0]);
    let q = leaf(&[3.0]);
    let mut opt = AdamW::new(
        vec![p.shallow_clone(), q.shallow_clone()],
        AdamWConfig {
            lr: 0.1,
            ..Default::default()
        },
    );
    set_grad(&p, &[1.0]);
    opt.step();
    assert_eq!(vals(&q), vec![3.0]);
    assert!(vals(&p)[0] < 1.0);
}

#[test]
fn clip_grad_norm_scales_to_max_and_returns_total() {
    let a = leaf(&[0.0, 0.0]);
    let b = leaf(&[0.0]);
    set_grad(&a, &[3.0, 4.0]);
    set_grad(&b, &[12.0]);
    let ps = vec![a.shallow_clone(), b.shallow_clone()];
    assert!((grad_norm(&ps) - 13.0).abs() < 1e-5);
    let total = clip_grad_norm(&ps, 6.5);
    assert!((total - 13.0).abs() < 1e-5);
    let ga = vals(&a.grad());
    let c = 6.5 / (13.0 + 1e-6);
    assert!((ga[0] - 3.0 * c).abs() < 1e-5 && (ga[1] - 4.0 * c).abs() < 1e-5);
    assert!((vals(&b.grad())[0] - 12.0 * c).abs() < 1e-5);
    // below the limit nothing changes
    assert!((clip_grad_norm(&ps, 100.0) - 6.5).abs() < 1e-4);
    assert!((vals(&b.grad())[0] - 12.0 * c).abs() < 1e-5);
    // a NaN gradient shows in the returned norm
    set_grad(&b, &[f32::NAN]);
    assert!(clip_grad_norm(&ps, 1.0).is_nan());
}

#[test]
fn saved_state_resumes_exactly() {
    tch::manual_seed(5);
    let init = Tensor::randn([3, 4], (Kind::Float, Device::Cpu));
    let grads: Vec<Tensor> = (0..6)
        .map(|_| Tensor::randn([3, 4], (Kind::Float, Device::Cpu)))
        .collect();
    let cfg = AdamWConfig {
        lr: 0.05,
        weight_decay: 0.02,
        ..Default::default()
    };
    let apply =
        |p: &Tensor, g: &Tensor| set_grad(p, &Vec::<f32>::try_from(g.reshape([-1])).unwrap());
    let flat = |p: &Tensor| p.reshape([-1]);
    // uninterrupted
    let p = init.copy().reshape([-1]).set_requires_grad(true);
    let mut opt = AdamW::new(vec![p.shallow_clone()], cfg);
    for g in &grads {
        apply(&p, g);
        opt.step();
    }
    // 3 steps, save, fresh optimizer + params loaded, 3 more
    let q = init.copy().reshape([-1]).set_requires_grad(true);
    let mut o1 = AdamW::new(vec![q.shallow_clone()], cfg);
    for g in &grads[..3] {
        apply(&q, g);
        o1.step();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opt.safetensors");
    o1.save(&path).unwrap();
    let r = flat(&q).detach().copy().set_requires_grad(true);
    let mut o2 = AdamW::new(vec![r.shallow_clone()], AdamWConfig::default());
    o2.load(&path).unwrap();
    assert_eq!(o2.cfg, cfg);
    for g in &grads[3..] {
        apply(&r, g);
        o2.step();
    }
    assert!(p.equal(&r), "resumed parameters differ");
    // wrong parameter count is a clear error
    let mut o3 = AdamW::new(vec![r.shallow_clone(), r.shallow_clone()], cfg);
    assert!(o3
        .load(&path)
        .unwrap_err()
        .to_string()
        .contains("optimizer state is for 1 tensors"));
}
