//! The fused decode step (`model::fused_step`) against the op-by-op forward on the same packed
//! bf16 sampling weights: the same hidden states to rounding, the same cache afterwards, over
//! left-padded rows and several steps, for each family it serves; and it declines (leaving
//! the cache untouched) where it does not apply.
mod common;
use common::assert_close;
use stylerl::model::fused_step;
use stylerl::model::llama::{Mlp, Qkv};
use stylerl::model::{decode_packed, Llama, LlamaConfig};
use tch::{Device, Kind, Tensor};

/// Sums in another order (attention) through a few layers: f32 rounding, far below the
/// bf16 weights' own error.
const RTOL: f64 = 2e-5;

fn model(family: &str, seed: u64) -> Llama {
    tch::set_num_threads(1);
    let config = match family {
        "llama" => LlamaConfig::tiny(97),
        f => {
            let mut c = common::tiny_config(f);
            c["vocab_size"] = serde_json::json!(97);
            LlamaConfig::from_json(&c).unwrap()
        }
    };
    let mut m = Llama::random_from_config(config, Device::Cpu, Kind::Float, seed).unwrap();
    // Random biases and norm weights, so their paths are exercised (the init gives 0 and 1).
    let _g = tch::no_grad_guard();
    for layer in &mut m.layers {
        let a = &layer.self_attn;
        let mut ts: Vec<&Tensor> = a
            .linears()
            .into_iter()
            .filter_map(|l| l.bias.as_ref())
            .collect();
        ts.push(&layer.input_layernorm.weight);
        ts.push(&layer.post_attention_layernorm.weight);
        ts.extend(a.q_norm.iter().chain(a.k_norm.iter()).map(|n| &n.weight));
        for t in ts {
            let mut t = t.shallow_clone();
            t.copy_(&(Tensor::randn_like(&t) * 0.3 + 1.0));
        }
    }
    m
}

/// Left-padded prompts of three rows, prefilled into two identical caches.
fn prefilled(m: &Llama) -> (stylerl::model::KvCache, stylerl::model::KvCache) {
    let ids =
        Tensor::from_slice(&[5i64, 17, 3, 88, 42, 0, 0, 9, 61, 23, 0, 0, 0, 7, 30]).view([3, 5]);
    let mask = Tensor::from_slice(&[1i64, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1]).view([3, 5]);
    let (mut a, mut b) = (m.new_cache(3, 16), m.new_cache(3, 16));
    let ha = m.forward_hidden(&ids, Some(&mask), Some(&mut a));
    let hb = m.forward_hidden(&ids, Some(&mask), Some(&mut b));
    assert!(ha.equal(&hb));
    (a, b)
}

fn agrees_with_the_op_path(family: &str, kind: Kind) {
    let mut m = model(family, 11);
    if !decode_packed::enabled() {
        eprintln!("skipped: the packed kernel needs AVX-512F/BW and one thread");
        return;
    }
    m.prepare_sampling(Some(kind));
    let _g = tch::no_grad_guard();
    let (mut fused, mut ops) = prefilled(&m);
    for step in 0..8i64 {
        let next = Tensor::from_slice(&[
            (7 * step + 3) % 97,
            (11 * step + 1) % 97,
            (5 * step + 60) % 97,
        ])
        .view([3, 1]);
        let got = fused_step::step(&m, &next, &mut fused).expect("the fused step applies");
        let want = m.forward_hidden(&next, None, Some(&mut ops));
        assert_eq!(got.size(), want.size());
        assert_close(
            &got,
            &want,
            RTOL,
            &format!("{family} step {step}: hidden states"),
        );
        let logits = |h: &Tensor| m.lm_head.forward(h);
        assert_close(
            &logits(&got),
            &logits(&want),
            RTOL,
            &format!("{family} step {step}: logits"),
        );
    }
    assert_eq!(fused.len, ops.len);
    assert!(fused.valid.equal(&ops.valid), "{family}: valid slots");
    assert!(
        fused.next_pos.equal(&ops.next_pos),
        "{family}: next positions"
    );
    let n = fused.len;
    for l in 0..m.layers.len() {
        for (a, b) in [(&fused.k[l], &ops.k[l]), (&fused.v[l], &ops.v[l])] {
            assert_close(
                &a.narrow(2, 0, n),
                &b.narrow(2, 0, n),
                RTOL,
                &format!("{family} layer {l}: cache"),
            );
        }
    }
}

#[test]
fn llama_steps_agree_with_the_op_path() {
    agrees_with_the_op_path("llama", Kind::BFloat16);
}

#[test]
fn llama_steps_on_int8_weights_agree_with_the_op_path() {
    agrees_with_the_op_path("llama", Kind::Int8);
}

#[test]
fn qwen2_steps_with_biases_agree_with_the_op_path() {
    agrees_with_the_op_path("qwen2", Kind::BFloat16);
}

#[test]
fn qwen3_steps_with_qk_norms_agree_with_the_op_path() {
    agrees_with_the_op_path("qwen3", Kind::BFloat16);
}

#[test]
fn declines_what_it_does_not_serve_and_leaves_the_cache_alone() {
    let _g = tch::no_grad_guard();
    let next = Tensor::from_slice(&[4i64, 5, 6]).view([3, 1]);
    // f32 sampling weights (no packed panels), and GPT-2 (LayerNorm, fused qkv).
    let mut f32_model = model("llama", 3);
    f32_model.prepare_sampling(Some(Kind::Float));
    let mut gpt2 = model("gpt2", 3);
    gpt2.prepare_sampling(Some(Kind::BFloat16));
    assert!(matches!(gpt2.layers[0].self_attn.qkv, Qkv::Fused(_)));
    assert!(matches!(gpt2.layers[0].mlp, Mlp::Gelu { .. }));
    // A packed model asked for two tokens a row, or with a layer left unpacked.
    let mut partly = model("llama", 3);
    partly.prepare_sampling(Some(Kind::BFloat16));
    partly.layers[1].mlp.linears_mut()[0].packed = None;
    let mut packed = model("llama", 3);
    packed.prepare_sampling(Some(Kind::BFloat16));
    for (what, m, ids) in [
        ("f32 sampling weights", &f32_model, next.shallow_clone()),
        ("GPT-2", &gpt2, next.shallow_clone()),
        ("a layer without panels", &partly, next.shallow_clone()),
        ("two tokens a row", &packed, next.repeat([1, 2])),
    ] {
        let (mut cache, _) = prefilled(m);
        let before = (cache.len, cache.valid.copy(), cache.next_pos.copy());
        assert!(
            fused_step::step(m, &ids, &mut cache).is_none(),
            "{what}: should decline"
        );
        assert_eq!(cache.len, before.0, "{what}: length moved");
        assert!(
            cache.valid.equal(&before.1) && cache.next_pos.equal(&before.2),
            "{what}: bookkeeping moved"
        );
        // The public entry falls back to the op path and still moves the cache on.
        let h = fused_step::forward_hidden(m, &ids, &mut cache);
        assert_eq!(h.size()[1], ids.size()[1], "{what}");
        assert_eq!(cache.len, before.0 + ids.size()[1], "{what}");
    }
}
