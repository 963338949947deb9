//! Forward-pass invariants on a tiny random Llama (no weights needed): the KV cache gives the
//! full forward's logits, left padding changes nothing, gradients reach adapter parameters.
use stylerl::infer::generate::left_pad;
use stylerl::infer::token_logprobs;
use stylerl::model::{LinearAdapter, Llama, LlamaConfig};
use tch::{Device, Kind, Tensor};

mod common;
use common::assert_close;

/// Cached vs full and batched vs single forwards sum in other orders (and through the decode
/// kernel or MKL); float32 keeps them within about 1e-6 of the logits' magnitude, 1e-4 leaves
/// room for either vendor's kernels while a wrong position or mask moves logits by O(1).
const RTOL: f64 = 1e-4;

fn tiny() -> Llama {
    // One torch thread: decode steps (≤ 8 rows) then run through the AVX-512 decode kernel
    // where the CPU has it, so these invariants cover it too.
    tch::set_num_threads(1);
    Llama::random_from_config(LlamaConfig::tiny(97), Device::Cpu, Kind::Float, 3).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn cached_decoding_equals_full_forward() {
    let m = tiny();
    let _g = tch::no_grad_guard();
    let ids: Vec<i64> = vec![5, 17, 3, 88, 42, 9, 61, 23, 7, 30, 11, 70];
    let full = m.forward(&Tensor::from_slice(&ids).unsqueeze(0), None, None);
    let mut cache = m.new_cache(1, ids.len() as i64);
    let pre = m.forward(
        &Tensor::from_slice(&ids[..5]).unsqueeze(0),
        None,
        Some(&mut cache),
    );
    assert_close(&pre, &full.narrow(1, 0, 5), RTOL, "prefilled logits");
    for t in 5..ids.len() {
        let step = m.forward(
            &Tensor::from_slice(&ids[t..t + 1]).unsqueeze(0),
            None,
            Some(&mut cache),
        );
        let what = format!("position {t}: cached logits");
        assert_close(&step.squeeze_dim(1), &full.select(1, t as i64), RTOL, &what);
    }
    assert_eq!(cache.len, ids.len() as i64);
}

#[test]
fn left_padded_batch_equals_one_by_one() {
    let m = tiny();
    let _g = tch::no_grad_guard();
    let rows: Vec<Vec<i64>> = vec![vec![4, 8, 15, 16, 23, 42], vec![9, 1], vec![33, 34, 35, 36]];
    let refs: Vec<&[i64]> = rows.iter().map(|r| r.as_slice()).collect();
    let (ids, mask) = left_pad(&refs, 0);
    let batched = m.forward(&ids, Some(&mask), None);
    let t = ids.size()[1];
    for (i, r) in rows.iter().enumerate() {
        let alone = m
            .forward(&Tensor::from_slice(r).unsqueeze(0), None, None)
            .get(0);
        let n = r.len() as i64;
        let what = format!("row {i} batched");
        assert_close(
            &batched.get(i as i64).narrow(0, t - n, n),
            &alone,
            RTOL,
            &what,
        );
    }
    // Continue the batch with the cache: each row's next-token logits still match its own run.
    let mut cache = m.new_cache(3, t + 1);
    let _ = m.forward(&ids, Some(&mask), Some(&mut cache));
    let next = Tensor::from_slice(&[50i64, 51, 52]).unsqueeze(1);
    let step = m.forward(&next, None, Some(&mut cache));
    for (i, r) in rows.iter().enumerate() {
        let mut ext = r.clone();
        ext.push(50 + i as i64);
        let alone = m
            .forward(&Tensor::from_slice(&ext).unsqueeze(0), None, None)
            .get(0);
        let what = format!("row {i}: cached step after padding");
        assert_close(
            &step.get(i as i64).get(0),
            &alone.get(r.len() as i64),
            RTOL,
            &what,
        );
    }
}

#[test]
fn token_logprobs_match_log_softmax_of_the_forward() {
    let m = tiny();
    let _g = tch::no_grad_guard();
    let ids = Tensor::from_slice(&[3i64, 14, 15, 92, 65, 35]).unsqueeze(0);
    let lp = token_logprobs(&m, &ids, None, 2, 0.7);
    let logits = m.forward(&ids, None, None).get(0);
    for (j, t) in (2..6).enumerate() {
        let row = (logits.get(t - 1) / 0.7).log_softmax(-1, Kind::Float);
        let want = row.double_value(&[ids.int64_value(&[0, t])]);
        let got = lp.double_value(&[0, j as i64]);
        assert_close(&got, &want, RTOL, &format!("t={t}: token log-prob"));
    }
}

/// A rank-1 adapter with a trainable vector, standing in for LoRA.
struct Probe {
    a: Tensor,
}

impl LinearAdapter for Probe {
    fn delta(&self, x: &Tensor) -> Tensor {
        x.matmul(&self.a.unsqueeze(1)).expand([-1, -1, 32], false)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

#[test]
fn gradients_reach_adapters_and_not_base_weights() {
    let mut m = tiny();
    assert_eq!(m.module_paths().len(), 2 * 7 + 1);
    assert_eq!(m.module_paths()[0], "model.layers.0.self_attn.q_proj");
    let a = Tensor::full([32], 0.01, (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let q = m.linear_mut("model.layers.1.self_attn.o_proj").unwrap();
    q.adapters.push(Box::new(Probe {
        a: a.shallow_clone(),
    }));
    let ids = Tensor::from_slice(&[3i64, 14, 15, 92, 65]).unsqueeze(0);
    let loss = -token_logprobs(&m, &ids, None, 1, 1.0).sum(Kind::Float);
    loss.backward();
    assert!(
        a.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0,
        "no gradient reached the adapter"
    );
    assert!(
        !m.linears().iter().any(|l| l.weight.requires_grad()),
        "base weights must stay frozen"
    );
    // Disabling adapters gives the base model back.
    let with = tch::no_grad(|| m.forward(&ids, None, None));
    m.set_adapters_enabled(false);
    let without = tch::no_grad(|| m.forward(&ids, None, None));
    m.set_adapters_enabled(true);
    assert!(max_diff(&with, &without) > 1e-6);
}
