//! SFT and Dr.GRPO loss math against hand-computed tensors; micro-batch invariance.
use stylerl::train::loss::*;
use tch::{Device, Kind, Tensor};

mod common;
use common::assert_close;

fn t2(v: &[&[f32]]) -> Tensor {
    let rows: Vec<Tensor> = v.iter().map(|r| Tensor::from_slice(r)).collect();
    Tensor::stack(&rows, 0)
}

fn vals(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.detach().to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < tol)
}

fn cfg(b: i64, lmax: i64, beta: f64) -> GrpoLossConfig {
    GrpoLossConfig {
        eps_low: 0.2,
        eps_high: 0.2,
        beta,
        num_completions: b,
        max_completion_length: lmax,
    }
}

#[test]
fn advantages_by_hand() {
    let r = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 4.0, 4.0]);
    assert!(close(
        &vals(&advantages(&r, 3, StdScale::None).unwrap()),
        &[-1.0, 0.0, 1.0, 0.0, 0.0, 0.0],
        1e-7
    ));
    let d = 1.0 / (1.0 + 1e-4); // group std of 1,2,3 is 1; of 4,4,4 is 0
    assert!(close(
        &vals(&advantages(&r, 3, StdScale::Group).unwrap()),
        &[-d, 0.0, d, 0.0, 0.0, 0.0],
        1e-6
    ));
    // batch std (n−1) of 1,2,3,4,4,4: mean 3, ss = 4+1+0+1+1+1 = 8, var 1.6
    let s = 1.6f64.sqrt() + 1e-4;
    assert!(close(
        &vals(&advantages(&r, 3, StdScale::Batch).unwrap()),
        &[-1.0 / s, 0.0, 1.0 / s, 0.0, 0.0, 0.0],
        1e-6
    ));
    assert!(advantages(&r, 4, StdScale::None)
        .unwrap_err()
        .to_string()
        .contains("groups of 4"));
}

#[test]
fn grpo_loss_clips_both_sides_with_constant_normaliser() {
    let ratio = t2(&[&[1.0, 1.5, 0.7], &[1.1, 0.6, 2.0]]);
    let new = ratio.log().set_requires_grad(true);
    let old = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
    let adv = Tensor::from_slice(&[1.0f32, -0.5]);
    let mask = t2(&[&[1.0, 1.0, 1.0], &[1.0, 1.0, 0.0]]);
    // B = 4 completions in the rollout batch, L_max = 5
    let (loss, st) = grpo_loss(&new, &old, &adv, &mask, None, &cfg(4, 5, 0.0));
    // row 0 (A=1):    1.0, min(1.5, 1.2) = 1.2 (high clip), min(0.7, 0.8) = 0.7
    // row 1 (A=−0.5): −0.55, min(−0.3, −0.4) = −0.4 (low clip), masked
    let want = -(1.0 + 1.2 + 0.7 - 0.55 - 0.4) / 20.0;
    assert!(
        (loss.double_value(&[]) - want).abs() < 1e-6,
        "{} vs {want}",
        loss.double_value(&[])
    );
    assert_eq!(
        (st.tokens, st.clipped_low, st.clipped_high),
        (5.0, 1.0, 1.0)
    );
    assert!((st.clip_ratio_region() - 0.4).abs() < 1e-12);
    assert!((st.mean_ratio() - 4.9 / 5.0).abs() < 1e-6);
    // gradient: −ρA/(B·L_max) where unclipped, 0 where clipped or masked
    loss.backward();
    let g = vals(&new.grad());
    assert!(
        close(
            &g,
            &[-1.0 / 20.0, 0.0, -0.7 / 20.0, 0.55 / 20.0, 0.0, 0.0],
            1e-6
        ),
        "{g:?}"
    );
}

#[test]
fn grpo_k3_kl_term_uses_the_same_normaliser() {
    let ratio = t2(&[&[1.0, 1.5], &[0.9, 1.1]]);
    let new = ratio.log();
    let old = new.detach();
    let reference = Tensor::zeros([2, 2], (Kind::Float, Device::Cpu));
    let adv = Tensor::from_slice(&[0.5f32, -1.0]);
    let mask = t2(&[&[1.0, 1.0], &[1.0, 0.0]]);
    let (l0, _) = grpo_loss(&new, &old, &adv, &mask, Some(&reference), &cfg(2, 4, 0.0));
    let (l1, st) = grpo_loss(&new, &old, &adv, &mask, Some(&reference), &cfg(2, 4, 0.1));
    // k3 with ref = 0: 1/ρ + ln ρ − 1
    let k3 = |r: f64| 1.0 / r + r.ln() - 1.0;
    let kl = k3(1.0) + k3(1.5) + k3(0.9);
    assert!((st.kl_sum - kl).abs() < 1e-6);
    // ρ = 1 everywhere here (old = new), so the surrogate is A per token
    assert!((l0.double_value(&[]) + (0.5 + 0.5 - 1.0) / 8.0).abs() < 1e-6);
    assert!((l1.double_value(&[]) - l0.double_value(&[]) - 0.1 * kl / 8.0).abs() < 1e-6);
}

#[test]
fn micro_batches_do_not_change_loss_or_gradient() {
    tch::manual_seed(21);
    let (b, l, v) = (8i64, 6i64, 11i64);
    let w = (Tensor::randn([v, v], (Kind::Float, Device::Cpu)) * 0.3).set_requires_grad(true);
    let feats = Tensor::randn([b, l, v], (Kind::Float, Device::Cpu));
    let ids = Tensor::randint(v, [b, l], (Kind::Int64, Device::Cpu));
    let old = token_logprobs(
        &(feats.matmul(&w.tr()) + Tensor::randn([b, l, v], (Kind::Float, Device::Cpu)) * 0.3),
        &ids,
        0.7,
    )
    .detach();
    let adv = Tensor::randn([b], (Kind::Float, Device::Cpu));
    let lens = [6, 3, 5, 1, 6, 2, 4, 6];
    let mask = Tensor::stack(
        &lens
            .iter()
            .map(|&n| {
                Tensor::arange(l, (Kind::Int64, Device::Cpu))
                    .lt(n)
                    .to_kind(Kind::Float)
            })
            .collect::<Vec<_>>(),
        0,
    );
    let c = GrpoLossConfig {
        eps_low: 0.1,
        eps_high: 0.15,
        beta: 0.0,
        num_completions: b,
        max_completion_length: 10,
    };
    let run = |chunks: &[i64]| {
        let mut wg = w.shallow_clone();
        wg.zero_grad();
        let mut total = 0.0;
        let mut stats = GrpoStats::default();
        let mut start = 0;
        for &n in chunks {
            let lp = token_logprobs(
                &feats.narrow(0, start, n).matmul(&w.tr()),
                &ids.narrow(0, start, n),
                0.7,
            );
            let (loss, st) = grpo_loss(
                &lp,
                &old.narrow(0, start, n),
                &adv.narrow(0, start, n),
                &mask.narrow(0, start, n),
                None,
                &c,
            );
            loss.backward();
            total += loss.double_value(&[]);
            stats.add(&st);
            start += n;
        }
        (total, w.grad().copy(), stats)
    };
    let (l_full, g_full, s_full) = run(&[8]);
    for chunks in [&[3i64, 3, 2][..], &[1; 8][..], &[5, 3][..]] {
        let (lm, gm, sm) = run(chunks);
        // Chunks only change the order of float32 sums over 8 rows: 1e-5 of the magnitude.
        assert_close(&lm, &l_full, 1e-5, &format!("{chunks:?}: loss"));
        assert_close(&gm, &g_full, 1e-5, &format!("{chunks:?}: gradient"));
        assert!((sm.clip_ratio_region() - s_full.clip_ratio_region()).abs() < 1e-12);
    }
    assert!(
        g_full.abs().max().double_value(&[]) > 1e-4,
        "gradient should be non-trivial"
    );
    assert!(
        s_full.clip_ratio_region() > 0.0,
        "the case should exercise clipping"
    );
}

#[test]
fn causal_lm_loss_shifts_and_ignores_minus_100() {
    // B=1, T=4, V=3; labels: prompt (−100), two answer tokens, padding (−100)
    let logits = Tensor::from_slice(&[
        0.1f32, 0.2, 0.3, 1.0, -1.0, 0.5, 2.0, 0.0, -2.0, 0.3, 0.3, 0.3,
    ])
    .reshape([1, 4, 3]);
    let labels = Tensor::from_slice(&[-100i64, 2, 0, -100]).reshape([1, 4]);
    // position 0 predicts label 2, position 1 predicts label 0
    let lse = |r: [f64; 3]| r.iter().map(|x| x.exp()).sum::<f64>().ln();
    let want = ((lse([0.1, 0.2, 0.3]) - 0.3) + (lse([1.0, -1.0, 0.5]) - 1.0)) / 2.0;
    let got = causal_lm_loss(&logits, &labels).double_value(&[]);
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    let (sum, n) = token_ce_sum(&logits.narrow(1, 0, 3), &labels.narrow(1, 1, 3));
    assert_eq!(n, 2);
    assert!((sum.double_value(&[]) - 2.0 * want).abs() < 1e-5);
    // temperature-scaled log-probs
    let lp = token_logprobs(
        &logits,
        &Tensor::from_slice(&[0i64, 1, 2, 0]).reshape([1, 4]),
        2.0,
    );
    let want0 = 0.05 - lse([0.05, 0.1, 0.15]);
    assert!((vals(&lp)[0] - want0).abs() < 1e-6);
}

#[test]
fn sft_batch_loss_counts_only_answer_tokens() {
    use stylerl::train::batch::*;
    tch::manual_seed(8);
    let xs = vec![
        SftExample {
            prompt: vec![1, 2, 3],
            answer: vec![4, 5],
        },
        SftExample {
            prompt: vec![6],
            answer: vec![7, 8, 9, 2],
        },
    ];
    let b = collate_sft(&xs, 0, Device::Cpu);
    let logits = Tensor::randn([2, 5, 10], (Kind::Float, Device::Cpu));
    let (sum, n) = token_ce_sum(&logits.narrow(1, 0, 4), &b.labels.narrow(1, 1, 4));
    assert_eq!(n, b.loss_tokens);
    assert_eq!(n, 6);
    // the mean equals the loss of the answer tokens computed one by one
    let lp = logits.log_softmax(-1, Kind::Float);
    let pick = |r: i64, t: i64, id: i64| -lp.double_value(&[r, t, id]);
    let want = pick(0, 2, 4)
        + pick(0, 3, 5)
        + pick(1, 0, 7)
        + pick(1, 1, 8)
        + pick(1, 2, 9)
        + pick(1, 3, 2);
    assert!((sum.double_value(&[]) - want).abs() < 1e-4);
    assert!((causal_lm_loss(&logits, &b.labels).double_value(&[]) - want / 6.0).abs() < 1e-5);
}
