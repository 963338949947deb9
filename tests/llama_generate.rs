//! Generation invariants on a tiny random Llama: seeded sampling is reproducible, prefix
//! sharing equals separate prompt passes, batching does not change a prompt's samples,
//! reported log-probs equal re-scoring, EOS stops a row.
use stylerl::infer::generate::left_pad;
use stylerl::infer::{generate, token_logprobs, GenerateConfig, Sample, SamplingConfig};
use stylerl::model::{Llama, LlamaConfig};
use tch::{Device, Kind};

mod common;
use common::assert_close;

/// Log-probs from prefix-shared, separate and re-scoring passes sum in other orders; float32
/// keeps them within about 1e-6 of their magnitude, 1e-4 leaves room for vendor kernels.
const RTOL: f64 = 1e-4;

fn tiny() -> Llama {
    // One torch thread: decode steps (≤ 8 rows) then run through the AVX-512 decode kernel
    // where the CPU has it, so these invariants cover it too.
    tch::set_num_threads(1);
    Llama::random_from_config(LlamaConfig::tiny(97), Device::Cpu, Kind::Float, 5).unwrap()
}

fn prompts() -> Vec<Vec<i64>> {
    vec![vec![4, 8, 15, 16, 23, 42], vec![9, 1], vec![33, 34, 35, 36]]
}

fn sampling_cfg(seed: u64) -> GenerateConfig {
    GenerateConfig {
        max_new_tokens: 12,
        sampling: SamplingConfig {
            greedy: false,
            temperature: 0.9,
            top_k: Some(40),
            top_p: Some(0.95),
        },
        seed,
        eos_ids: vec![],
        pad_id: 0,
        share_prefix: true,
        common_prefix: false,
        rng_prompt_offset: 0,
    }
}

fn tokens(s: &[Sample]) -> Vec<Vec<i64>> {
    s.iter().map(|x| x.tokens.clone()).collect()
}

#[test]
fn seeded_sampling_is_reproducible() {
    let m = tiny();
    let a = generate(&m, &prompts(), 3, &sampling_cfg(11)).unwrap();
    let b = generate(&m, &prompts(), 3, &sampling_cfg(11)).unwrap();
    let c = generate(&m, &prompts(), 3, &sampling_cfg(12)).unwrap();
    assert_eq!(a, b);
    assert_ne!(
        tokens(&a),
        tokens(&c),
        "a different seed should give different samples"
    );
    // Samples of one prompt differ from each other (independent streams).
    assert_ne!(a[0].tokens, a[1].tokens);
    assert_eq!(a.len(), 9);
    assert!(a
        .iter()
        .all(|s| s.tokens.len() == 12 && s.logprobs.len() == 12));
}

#[test]
fn prefix_sharing_equals_separate_prompt_passes() {
    let m = tiny();
    let shared = generate(&m, &prompts(), 4, &sampling_cfg(7)).unwrap();
    let separate = generate(
        &m,
        &prompts(),
        4,
        &GenerateConfig {
            share_prefix: false,
            ..sampling_cfg(7)
        },
    )
    .unwrap();
    assert_eq!(tokens(&shared), tokens(&separate));
    for (i, (a, b)) in shared.iter().zip(&separate).enumerate() {
        assert_close(
            &a.logprobs,
            &b.logprobs,
            RTOL,
            &format!("sample {i} log-probs"),
        );
    }
}

#[test]
fn a_common_head_run_once_equals_full_prompt_passes() {
    use stylerl::infer::generate::{common_prefix_len, MIN_COMMON_PREFIX};
    let m = tiny();
    // A 20-token head shared by every prompt (a prompted system's examples), then tails of
    // different lengths, so the tails are left-padded after the head.
    let head: Vec<i64> = (0..20).map(|i| 3 + (i * 7) % 90).collect();
    let tails: [&[i64]; 3] = [&[5, 6, 7, 8, 9], &[11], &[40, 41, 42]];
    let ps: Vec<Vec<i64>> = tails.iter().map(|t| [&head[..], t].concat()).collect();
    let rows: Vec<&[i64]> = ps.iter().map(|p| p.as_slice()).collect();
    assert_eq!(common_prefix_len(&rows), 20);
    assert!(20 >= MIN_COMMON_PREFIX);
    for (g, share) in [(1, false), (2, false), (3, true)] {
        let plain = GenerateConfig {
            share_prefix: share,
            ..sampling_cfg(5)
        };
        let once = plain.clone().common_prefix(true);
        let a = generate(&m, &ps, g, &plain).unwrap();
        let b = generate(&m, &ps, g, &once).unwrap();
        assert_eq!(tokens(&a), tokens(&b), "G = {g}, share_prefix = {share}");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_close(
                &x.logprobs,
                &y.logprobs,
                RTOL,
                &format!("G = {g}, sample {i}"),
            );
        }
    }
}

#[test]
fn common_prefix_leaves_every_row_a_token_of_its_own() {
    use stylerl::infer::generate::common_prefix_len;
    let same: Vec<i64> = (1..30).collect();
    assert_eq!(common_prefix_len(&[&same, &same]), 28);
    assert_eq!(common_prefix_len(&[&same, &same[..5]]), 4);
    assert_eq!(common_prefix_len(&[&[1, 2, 3], &[1, 9, 3]]), 1);
    assert_eq!(common_prefix_len(&[&[4, 2], &[1, 2]]), 0);
    assert_eq!(common_prefix_len(&[]), 0);
}

#[test]
fn batching_does_not_change_a_prompts_samples() {
    let m = tiny();
    let all = generate(&m, &prompts(), 2, &sampling_cfg(3)).unwrap();
    for (i, p) in prompts().into_iter().enumerate() {
        // Alone, the prompt keeps its random streams through the offset.
        let cfg = GenerateConfig {
            rng_prompt_offset: i,
            ..sampling_cfg(3)
        };
        let alone = generate(&m, &[p], 2, &cfg).unwrap();
        assert_eq!(tokens(&alone), tokens(&all[i * 2..i * 2 + 2]), "prompt {i}");
    }
    let greedy = GenerateConfig {
        sampling: SamplingConfig {
            greedy: true,
            ..Default::default()
        },
        ..sampling_cfg(0)
    };
    let batch = generate(&m, &prompts(), 1, &greedy).unwrap();
    for (i, p) in prompts().into_iter().enumerate() {
        let alone = generate(&m, &[p], 1, &greedy).unwrap();
        assert_eq!(alone[0].tokens, batch[i].tokens, "greedy prompt {i}");
    }
}

#[test]
fn reported_logprobs_equal_rescoring_at_the_same_temperature() {
    let m = tiny();
    let cfg = sampling_cfg(21);
    let out = generate(&m, &prompts(), 2, &cfg).unwrap();
    let _g = tch::no_grad_guard();
    for s in &out {
        let p = &prompts()[s.prompt_index];
        let full: Vec<i64> = p.iter().chain(&s.tokens).copied().collect();
        let refs = [full.as_slice()];
        let (ids, mask) = left_pad(&refs, 0);
        let lp = token_logprobs(
            &m,
            &ids,
            Some(&mask),
            p.len() as i64,
            cfg.sampling.temperature,
        );
        assert_close(
            &lp.get(0),
            &s.logprobs,
            RTOL,
            "rescored vs sampled log-probs",
        );
    }
}

#[test]
fn eos_stops_each_row_on_its_own() {
    let m = tiny();
    let greedy = GenerateConfig {
        sampling: SamplingConfig {
            greedy: true,
            ..Default::default()
        },
        ..sampling_cfg(0)
    };
    let free = generate(&m, &prompts(), 1, &greedy).unwrap();
    // Make row 1's third token an EOS id: that row stops there, the others run to the end
    // unless the same token appears in them too.
    let stop = free[1].tokens[2];
    let cfg = GenerateConfig {
        eos_ids: vec![stop],
        ..greedy
    };
    let out = generate(&m, &prompts(), 1, &cfg).unwrap();
    for (a, b) in free.iter().zip(&out) {
        let cut = a
            .tokens
            .iter()
            .position(|&t| t == stop)
            .map(|i| i + 1)
            .unwrap_or(a.tokens.len());
        assert_eq!(b.tokens, a.tokens[..cut].to_vec());
        assert_eq!(
            b.stopped_at_eos,
            cut < a.tokens.len() || a.tokens.last() == Some(&stop)
        );
    }
    assert!(out[1].stopped_at_eos && out[1].tokens.len() <= 3);
}
