//! Prefix-shared scoring (each prompt run once, its keys/values copied to its G rows) must
//! give the log-probs and the adapter gradients of scoring every row in full.
use stylerl::adapter::attach as adapters;
use stylerl::adapter::lora::{LoraConfig, Quant};
use stylerl::infer::generate::left_pad;
use stylerl::infer::{shared_prompt_logprobs, token_logprobs};
use stylerl::model::{Llama, LlamaConfig};
use tch::{Device, Kind, Tensor};

mod common;
use common::assert_close;

/// The paths compared here (shared prefix vs full rows, merged vs unmerged weights) run the
/// same two-layer forward with sums in another order; float32 then agrees to about 1e-6 of the
/// values' magnitude, and 1e-4 leaves room for MKL's vendor-specific kernels while any real
/// mistake (a wrong position, mask or scale) moves values by far more.
const RTOL: f64 = 1e-4;

fn prompts() -> Vec<Vec<i64>> {
    vec![vec![5, 17, 3, 88, 42], vec![9, 61, 23]]
}

/// Two completions of prompt 0 and three of prompt 1, of different lengths.
fn completions() -> Vec<(usize, Vec<i64>)> {
    vec![
        (0, vec![11, 70, 4]),
        (0, vec![30]),
        (1, vec![8, 8, 19, 2]),
        (1, vec![50, 13]),
        (1, vec![44, 45, 46]),
    ]
}

/// A tiny model with a LoRA adapter whose B is non-zero, so A gets gradients too.
fn model_with_adapter() -> (Llama, stylerl::adapter::lora::LoraAdapter) {
    let mut m =
        Llama::random_from_config(LlamaConfig::tiny(97), Device::Cpu, Kind::Float, 5).unwrap();
    let cfg = LoraConfig {
        r: 4,
        alpha: 8.0,
        ..Default::default()
    };
    tch::manual_seed(9);
    let ad = adapters::new_trainable(&mut m, &cfg, Quant::None).unwrap();
    tch::no_grad(|| {
        for l in ad.layers.values() {
            let _ = l.b.shallow_clone().normal_(0.0, 0.05);
        }
    });
    (m, ad)
}

fn grads(ad: &stylerl::adapter::lora::LoraAdapter) -> Vec<Tensor> {
    ad.parameters()
        .iter()
        .map(|p| {
            let g = p.grad();
            let out = if g.defined() {
                g.copy()
            } else {
                p.zeros_like()
            };
            let _ = p.grad().zero_();
            out
        })
        .collect()
}

#[test]
fn shared_prompt_scoring_equals_full_rows_in_values_and_gradients() {
    check_shared_equals_full(prompts());
}

#[test]
fn a_common_head_run_once_keeps_values_and_gradients() {
    // A 20-token head every prompt starts with (chat template + instruction), then tails of
    // different lengths: the head runs once, the tails follow it left-padded.
    let head: Vec<i64> = (0..20).map(|i| 3 + (i * 11) % 90).collect();
    let with_head = prompts()
        .into_iter()
        .map(|t| [&head[..], &t[..]].concat())
        .collect();
    check_shared_equals_full(with_head);
}

fn check_shared_equals_full(prompts: Vec<Vec<i64>>) {
    let (m, ad) = model_with_adapter();
    let comps = completions();
    let width = comps.iter().map(|(_, c)| c.len()).max().unwrap();
    // Per-row weights make the loss depend on each row differently.
    let weights = Tensor::from_slice(&[1.0f32, -0.5, 2.0, 0.7, -1.3]).unsqueeze(1);

    // Full rows: prompt + completion, left-padded, scored from the prompt's end on.
    let mut full_lp = Vec::new();
    for (p, c) in &comps {
        let row: Vec<i64> = prompts[*p].iter().chain(c).copied().collect();
        let (ids, mask) = left_pad(&[row.as_slice()], 0);
        let lp = token_logprobs(&m, &ids, Some(&mask), prompts[*p].len() as i64, 0.8);
        full_lp.push(Tensor::constant_pad_nd(&lp, [0, (width - c.len()) as i64]));
    }
    let full = Tensor::cat(&full_lp, 0);

    let owned = prompts.clone();
    let prompt_refs: Vec<&[i64]> = owned.iter().map(|p| p.as_slice()).collect();
    let (p_ids, p_mask) = left_pad(&prompt_refs, 0);
    let mut c_ids = vec![0i64; comps.len() * width];
    let mut c_mask = vec![0f32; comps.len() * width];
    for (r, (_, c)) in comps.iter().enumerate() {
        for (j, &t) in c.iter().enumerate() {
            c_ids[r * width + j] = t;
            c_mask[r * width + j] = 1.0;
        }
    }
    let shape = [comps.len() as i64, width as i64];
    let c_ids = Tensor::from_slice(&c_ids).view(shape);
    let c_mask = Tensor::from_slice(&c_mask).view(shape);
    let rows = Tensor::from_slice(&comps.iter().map(|(p, _)| *p as i64).collect::<Vec<_>>());
    let shared = shared_prompt_logprobs(&m, &p_ids, &p_mask, &rows, &c_ids, &c_mask, 0.8);

    assert_close(
        &(&shared * &c_mask),
        &(&full * &c_mask),
        RTOL,
        "shared-prefix log-probs",
    );
    // Sanity: the values are real log-probs, not all zeros.
    assert!((&full * &c_mask).abs().sum(Kind::Float).double_value(&[]) > 1.0);

    (&full * &c_mask * &weights).sum(Kind::Float).backward();
    let g_full = grads(&ad);
    (&shared * &c_mask * &weights).sum(Kind::Float).backward();
    let g_shared = grads(&ad);
    let mut largest = 0f64;
    for (i, (a, b)) in g_full.iter().zip(&g_shared).enumerate() {
        largest = largest.max(a.abs().max().double_value(&[]));
        assert_close(b, a, RTOL, &format!("adapter gradient {i}"));
    }
    assert!(
        largest > 1e-3,
        "no gradient reached the adapter ({largest})"
    );
}

#[test]
fn one_token_completions_need_no_completion_pass() {
    let (m, _ad) = model_with_adapter();
    let _g = tch::no_grad_guard();
    let owned = prompts();
    let refs: Vec<&[i64]> = owned.iter().map(|p| p.as_slice()).collect();
    let (p_ids, p_mask) = left_pad(&refs, 0);
    let c_ids = Tensor::from_slice(&[7i64, 12, 40]).view([3, 1]);
    let c_mask = Tensor::ones([3, 1], (Kind::Float, Device::Cpu));
    let rows = Tensor::from_slice(&[0i64, 1, 1]);
    let shared = shared_prompt_logprobs(&m, &p_ids, &p_mask, &rows, &c_ids, &c_mask, 1.0);
    for (r, (p, t)) in [(0usize, 7i64), (1, 12), (1, 40)].iter().enumerate() {
        let row: Vec<i64> = owned[*p].iter().copied().chain([*t]).collect();
        let ids = Tensor::from_slice(&row).unsqueeze(0);
        let lp = token_logprobs(&m, &ids, None, owned[*p].len() as i64, 1.0);
        let want = lp.get(0).get(0);
        assert_close(
            &shared.get(r as i64).get(0),
            &want,
            RTOL,
            &format!("row {r}"),
        );
    }
}

#[test]
fn merged_adapters_give_the_unmerged_forward() {
    let (mut m, ad) = model_with_adapter();
    let _g = tch::no_grad_guard();
    let ids = Tensor::from_slice(&[5i64, 17, 3, 88, 42, 9]).view([2, 3]);
    let unmerged = m.forward(&ids, None, None);
    m.prepare_sampling(Some(m.kind));
    let with_adapter = m
        .linears()
        .iter()
        .filter(|l| !l.adapters.is_empty())
        .count();
    assert!(with_adapter > 0);
    assert!(m
        .linears()
        .iter()
        .all(|l| l.merged.is_some() == !l.adapters.is_empty()));
    let merged = m.forward(&ids, None, None);
    assert_close(&merged, &unmerged, RTOL, "merged forward");
    // The adapter matters here, so a merge that ignored it would fail the check above.
    m.set_adapters_enabled(false);
    let base = m.forward(&ids, None, None);
    m.set_adapters_enabled(true);
    assert!((&base - &unmerged).abs().max().double_value(&[]) > 1e-3);
    m.prepare_sampling(None);
    assert!(m.linears().iter().all(|l| l.merged.is_none()));
    let _ = ad;
}

#[test]
fn folding_frozen_adapters_into_the_weights_keeps_the_forward() {
    let (mut m, _ad) = model_with_adapter();
    let _g = tch::no_grad_guard();
    let ids = Tensor::from_slice(&[5i64, 17, 3, 88, 42, 9]).view([2, 3]);
    let before = m.forward(&ids, None, None);
    let attached = m
        .linears()
        .iter()
        .filter(|l| !l.adapters.is_empty())
        .count();
    assert_eq!(adapters::fold_attached(&mut m), attached);
    assert!(m.linears().iter().all(|l| l.adapters.is_empty()));
    let after = m.forward(&ids, None, None);
    assert_close(&after, &before, RTOL, "folded forward");
}
