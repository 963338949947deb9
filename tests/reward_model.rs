//! `RewardModel` with a fake lookup encoder whose cosines are known exactly: R_style sum and
//! mean, dropout with its safeguard, empty and one-sentence texts, one batched encoder call
//! per batch with a cache, and R_total's weighting.
mod common;
use common::Lookup;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use stylerl::encoder::SentenceEncoder;
use stylerl::reward::{Aggregation, RewardConfig, RewardModel, Rollout};

/// The lookup encoder (known sentences → fixed 2-d vectors) that also records every call.
struct Fake {
    table: Lookup,
    calls: AtomicUsize,
    seen: Mutex<Vec<Vec<String>>>,
}

impl SentenceEncoder for Fake {
    fn encode(&self, s: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().unwrap().push(s.to_vec());
        self.table.encode(s)
    }
    fn dim(&self) -> usize {
        self.table.dim()
    }
    fn name(&self) -> String {
        "fake".into()
    }
}

const H: f32 = std::f32::consts::FRAC_1_SQRT_2;

fn fake() -> Arc<Fake> {
    let table = Lookup::new(&[
        // References: r0 = x, r1 = y, r2 = diagonal.
        ("R zero.", [1.0, 0.0]),
        ("R one.", [0.0, 1.0]),
        ("R two.", [1.0, 1.0]),
        // Generated: A ∥ r0, B ∥ r1, C ∥ r2 (scaled: the cosine ignores length), D at 60° from x.
        ("A.", [2.0, 0.0]),
        ("B.", [0.0, 3.0]),
        ("C.", [0.5, 0.5]),
        ("D.", [0.5, 0.866_025_4]),
    ]);
    Arc::new(Fake {
        table,
        calls: AtomicUsize::new(0),
        seen: Mutex::new(vec![]),
    })
}

fn refs() -> Vec<String> {
    vec!["R zero.".into(), "R one.".into(), "R two.".into()]
}

fn cfg_no_dropout() -> RewardConfig {
    let mut c = RewardConfig::default();
    c.dropout.enabled = false;
    c
}

fn ro<'a>(input: &'a str, output: &'a str) -> Rollout<'a> {
    Rollout {
        input,
        output,
        output_tokens: 3,
        input_tokens: 3,
    }
}

fn close(a: f64, b: f64) {
    // Relative: hand values through a few float32 cosines and sums.
    assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
}

#[test]
fn style_sum_and_best_matches() {
    let enc = fake();
    let m = RewardModel::with_encoder(&cfg_no_dropout(), enc.clone(), refs()).unwrap();
    let s = m.score_batch(&[ro("A. B.", "A. B. C. D.")], 0).unwrap();
    let r = &s.rewards[0];
    // A→r0 (1), B→r1 (1), C→r2 (1), D: cos to r0 0.5, r1 0.866, r2 (0.5+0.866)/√2 = 0.9659 → r2.
    let best: Vec<usize> = r.style.sentences.iter().map(|x| x.reference).collect();
    assert_eq!(best, vec![0, 1, 2, 2]);
    let d_sim = (0.5 + 0.866_025_4) * H as f64;
    close(r.style.sentences[3].similarity, d_sim);
    close(r.r_style, 3.0 + d_sim);
    close(r.style.r_style_undropped, 3.0 + d_sim);
    assert_eq!(r.style.n_sentences, 4);
    // Full rows: A = [1, 0, 1/√2].
    let row: Vec<f64> = r.style.rows[0].iter().map(|&v| v as f64).collect();
    assert_eq!(r.style.rows.len(), 4);
    close(row[0], 1.0);
    close(row[1], 0.0);
    close(row[2], H as f64);
    assert!(r
        .style
        .sentences
        .iter()
        .all(|x| !x.dropped && x.dropout_rate == 0.0));
}

#[test]
fn mean_aggregation() {
    let mut c = cfg_no_dropout();
    c.aggregation = Aggregation::Mean;
    let m = RewardModel::with_encoder(&c, fake(), refs()).unwrap();
    let r = &m.score_batch(&[ro("x", "A. D.")], 0).unwrap().rewards[0];
    close(r.r_style, (1.0 + (0.5 + 0.866_025_4) * H as f64) / 2.0);
}

#[test]
fn empty_and_one_sentence_outputs() {
    let m = RewardModel::with_encoder(&cfg_no_dropout(), fake(), refs()).unwrap();
    let s = m
        .score_batch(&[ro("A.", ""), ro("A.", "   \n "), ro("A.", "B.")], 0)
        .unwrap();
    for r in &s.rewards[..2] {
        assert_eq!(r.style.n_sentences, 0);
        close(r.r_style, 0.0);
        assert!(!r.style.dropout_cancelled);
    }
    close(s.rewards[2].r_style, 1.0);
    // Only B's row in S: inner = std([0, 1, 1/√2]); outer = 0 (one sentence).
    let row = [0.0f64, 1.0, H as f64];
    let mean = row.iter().sum::<f64>() / 3.0;
    let std = (row.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 3.0).sqrt();
    close(s.dynamics.inner, std);
    close(s.dynamics.outer, 0.0);
}

#[test]
fn dropout_drops_the_dominant_reference_and_the_safeguard_restores() {
    // M: D = [1/√2, 1/√2, √2] → q = [0.5, 0.5, 1]; gamma 1000 → p ≈ [0, 0, 1].
    let mut c = RewardConfig::default();
    c.dropout.gamma = 1000.0;
    c.dropout.eps_min = 0.0;
    c.dropout.eps_max = 1.0;
    let m = RewardModel::with_encoder(&c, fake(), refs()).unwrap();
    assert!(
        m.rates[0] < 1e-12 && m.rates[1] < 1e-12 && (m.rates[2] - 1.0).abs() < 1e-12,
        "{:?}",
        m.rates
    );
    let s = m
        .score_batch(&[ro("x", "A. B. C."), ro("x", "C. D."), ro("x", "A.")], 5)
        .unwrap();
    // Text 1: C (r2) dropped → 2.
    let r = &s.rewards[0];
    close(r.r_style, 2.0);
    close(r.style.r_style_undropped, 3.0);
    assert_eq!(r.style.n_dropped, 1);
    assert!(r.style.sentences[2].dropped && !r.style.dropout_cancelled);
    // Text 2: both sentences match r2, both dropped → safeguard: full undropped value.
    let r = &s.rewards[1];
    let d_sim = (0.5 + 0.866_025_4) * H as f64;
    assert!(r.style.dropout_cancelled);
    assert_eq!(r.style.n_dropped, 0);
    close(r.r_style, 1.0 + d_sim);
    assert!(r.style.sentences.iter().all(|x| !x.dropped));
    close(s.rewards[2].r_style, 1.0);
    let means = s.means();
    close(means.dropped_fraction, 1.0 / 6.0);
    close(means.cancelled_fraction, 1.0 / 3.0);
}

#[test]
fn dropout_draws_reproducible_per_step() {
    let mut c = RewardConfig::default();
    c.dropout.eps_min = 0.5;
    c.dropout.eps_max = 0.5;
    c.dropout.seed = 11;
    let m = RewardModel::with_encoder(&c, fake(), refs()).unwrap();
    let text = ["A. B."; 40].join(" ");
    let pattern = |step| {
        let s = m.score_batch(&[ro("x", &text)], step).unwrap();
        s.rewards[0]
            .style
            .sentences
            .iter()
            .map(|x| x.dropped)
            .collect::<Vec<_>>()
    };
    assert_eq!(pattern(3), pattern(3));
    assert_ne!(pattern(3), pattern(4));
    let n = pattern(9).iter().filter(|&&d| d).count();
    assert!((20..=60).contains(&n), "{n} of 80 dropped at rate 0.5");
}

#[test]
fn one_encoder_call_per_batch_with_cache_and_dedup() {
    let enc = fake();
    let m = RewardModel::with_encoder(&cfg_no_dropout(), enc.clone(), refs()).unwrap();
    assert_eq!(
        enc.calls.load(Ordering::SeqCst),
        1,
        "references embedded once"
    );
    m.score_batch(&[ro("x", "A. B."), ro("x", "B. C."), ro("x", "A.")], 0)
        .unwrap();
    assert_eq!(
        enc.calls.load(Ordering::SeqCst),
        2,
        "one call for the whole batch"
    );
    let last = enc.seen.lock().unwrap().last().unwrap().clone();
    assert_eq!(
        last,
        vec!["A.", "B.", "C."],
        "each distinct sentence encoded once"
    );
    m.score_batch(&[ro("x", "C. A."), ro("x", "D. D.")], 1)
        .unwrap();
    assert_eq!(
        enc.seen.lock().unwrap().last().unwrap().clone(),
        vec!["D."],
        "cached sentences not re-encoded"
    );
    m.score_batch(&[ro("x", "A. B. C. D.")], 2).unwrap();
    assert_eq!(
        enc.calls.load(Ordering::SeqCst),
        3,
        "an all-cached batch makes no call"
    );
    assert_eq!(m.style.cache_len(), 4);
}

#[test]
fn cache_is_bounded() {
    let mut c = cfg_no_dropout();
    c.cache_size = 2;
    let enc = fake();
    let m = RewardModel::with_encoder(&c, enc.clone(), refs()).unwrap();
    m.score_batch(&[ro("x", "A. B.")], 0).unwrap();
    assert_eq!(m.style.cache_len(), 2);
    m.score_batch(&[ro("x", "C.")], 0).unwrap();
    assert!(m.style.cache_len() <= 2);
    // Results do not depend on the cache.
    let r = m.score_batch(&[ro("x", "A. C. D.")], 0).unwrap();
    close(r.rewards[0].r_style, 2.0 + (0.5 + 0.866_025_4) * H as f64);
}

#[test]
fn total_is_the_weighted_sum_with_hand_values() {
    let mut c = cfg_no_dropout();
    c.weights.style = 0.5;
    c.weights.length = 2.0;
    c.weights.punctuation = 3.0;
    c.entities.weight = 0.25;
    c.length.ratio = 1.0;
    c.length.slack = 0.0;
    c.length.cache = 4.0;
    c.punctuation.ratio = 1.0;
    c.punctuation.slack = 0.0;
    c.punctuation.cache = 2.0;
    let m = RewardModel::with_encoder(&c, fake(), refs()).unwrap();
    // Input entities {alice, 2024-03-01}; the output "A. B. C." has none (sentence-initial letters).
    let input = "Alice left on 2024-03-01.";
    let r = m
        .score_batch(
            &[Rollout {
                input,
                output: "A. B. C.",
                output_tokens: 9,
                input_tokens: 8,
            }],
            0,
        )
        .unwrap();
    let r = &r.rewards[0];
    close(r.r_style, 3.0);
    // L_max = 8, cache 4 → zone 4..8; L = 9 → −1.
    close(r.r_length, -1.0);
    // Input punctuation: '-', '-', '.' = 3; limit 3, cache 2 → zone 1..3; output 3 → −1.
    assert_eq!(r.punctuation.input, 3);
    close(r.r_punctuation, -1.0);
    // Output has no entities: F1 = 0 → R_ne = 0.25 · (0 − 1).
    close(r.entities.f1, 0.0);
    close(r.r_ne_overlap, -0.25);
    close(r.r_total, 0.5 * 3.0 + 2.0 * -1.0 - 0.25 + 3.0 * -1.0);
}

#[test]
fn bad_config_and_empty_reference_are_errors() {
    let mut c = RewardConfig::default();
    c.dropout.eps_min = 0.95;
    let e = RewardModel::with_encoder(&c, fake(), refs())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("eps_min"), "{e}");
    let e = RewardModel::with_encoder(&cfg_no_dropout(), fake(), vec![])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("reference"), "{e}");
    let e = RewardModel::from_config(&RewardConfig::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("reward.reference is empty"), "{e}");
}

/// The guards: off by default (r_total unchanged); on, a rollout that changes facts or loops
/// loses exactly its guard terms in r_total, a faithful one loses nothing.
#[test]
fn fact_and_defect_guards_enter_the_total_only_when_on() {
    let input = "Please don't park in bay 12 on Friday.";
    let faithful = "On Friday, please do not park in bay 12.";
    let broken = "Please park in bay 13 on Friday. Please park in bay 13 on Friday.";
    let enc: Arc<dyn SentenceEncoder> =
        Arc::from(stylerl::encoder::load_with("stylometric", &Default::default()).unwrap());
    let refs = vec![
        "Once upon a time a snail dreamed.".to_string(),
        "The crows laughed.".into(),
    ];
    let off = RewardModel::with_encoder(&cfg_no_dropout(), enc.clone(), refs.clone()).unwrap();
    let s0 = off
        .score_batch(&[ro(input, faithful), ro(input, broken)], 0)
        .unwrap();
    for r in &s0.rewards {
        assert_eq!((r.r_facts, r.r_defects, r.r_fluency), (0.0, 0.0, 0.0));
    }
    let mut c = cfg_no_dropout();
    c.facts.weight = 0.5;
    c.defects.weight = 2.0;
    let on = RewardModel::with_encoder(&c, enc, refs).unwrap();
    let s1 = on
        .score_batch(&[ro(input, faithful), ro(input, broken)], 0)
        .unwrap();
    assert_eq!((s1.rewards[0].r_facts, s1.rewards[0].r_defects), (0.0, 0.0));
    // bay 12 → 13 (a number changed) and the negation lost: two kinds; the repeated sentence loops.
    assert_eq!(s1.rewards[1].r_facts, -1.0);
    assert_eq!(s1.rewards[1].r_defects, -2.0);
    close(s1.rewards[1].r_total, s0.rewards[1].r_total - 3.0);
    close(s1.rewards[0].r_total, s0.rewards[0].r_total);
    let m = s1.means();
    close(m.r_facts, -0.5);
    close(m.r_defects, -1.0);
}

/// R_fluency with the real base model: gibberish is far less likely than its input and pays
/// −w · (Δ − margin); a plain rewrite within the margin pays nothing; Δ is the difference of
/// the two texts' mean NLLs computed directly with `mean_nll`.
#[test]
fn fluency_guard_penalises_text_the_base_model_finds_unlikely() {
    let smol = common::smol_dir();
    if !smol.join("model.safetensors").exists() {
        eprintln!("skipped: {} missing (run scripts/setup.sh)", smol.display());
        return;
    }
    tch::set_num_threads(1);
    let mut c = cfg_no_dropout();
    c.fluency.weight = 2.0;
    c.fluency.margin = 0.5;
    c.fluency.model = smol.display().to_string();
    let enc: Arc<dyn SentenceEncoder> =
        Arc::from(stylerl::encoder::load_with("stylometric", &Default::default()).unwrap());
    let mut m = RewardModel::with_encoder(&c, enc, vec!["The crows laughed.".into()]).unwrap();
    m.fluency = Some(stylerl::reward::fluency::FluencyScorer::load(&c.fluency.model, 4).unwrap());
    let input = "We met at the station at noon and walked to the river.";
    let plain = "At noon we met at the station and walked down to the river.";
    let junk = "river noon the station walked we at met and to at the zzq qq";
    let s = m
        .score_batch(&[ro(input, plain), ro(input, junk)], 0)
        .unwrap();
    let (model, tok, _) = stylerl::adapter::load::load_policy(
        &stylerl::adapter::load::ModelSection::cpu_f32(smol.clone()),
    )
    .unwrap();
    let nll = |t: &str| {
        stylerl::infer::scoring::mean_nll(&model, &[tok.encode(t, true).unwrap()], 1)[0].unwrap()
    };
    let (d_plain, d_junk) = (nll(plain) - nll(input), nll(junk) - nll(input));
    // The scorer runs the texts as one left-padded batch, this check one at a time: the
    // matmuls take other paths (on Intel MKL ~1e-6 apart), so the deltas are compared
    // relative to the NLLs they are differences of (each ~4 nats), not to the deltas.
    let scale = nll(input).max(nll(junk)).max(nll(plain));
    let near = |a: f64, b: f64| {
        assert!(
            (a - b).abs() <= 1e-5 * scale,
            "{a} vs {b} (NLLs up to {scale})"
        )
    };
    near(s.rewards[0].fluency_delta.unwrap(), d_plain);
    near(s.rewards[1].fluency_delta.unwrap(), d_junk);
    assert!(
        d_junk > 1.0,
        "gibberish should be far less likely: Δ {d_junk}"
    );
    near(s.rewards[1].r_fluency / 2.0, -(d_junk - 0.5));
    assert_eq!(s.rewards[0].r_fluency, -2.0 * (d_plain - 0.5).max(0.0));
}
