//! Style reward dropout's modes under `aggregation = "mean"`: the paper's sampled drops
//! with the all-dropped safeguard favour one-sentence texts; `mode = "expected"` and
//! `mode = "fallback"` do not.
mod common;
use common::Lookup;
use std::sync::Arc;
use stylerl::reward::config::DropoutMode;
use stylerl::reward::{RewardConfig, RewardModel, Rollout};

/// Two identical references dominate (D = 1, rate eps_max = 0.5); a third is orthogonal
/// (D = 0, rate 0). The generated sentence "Sa." matches the dominant pair with cosine 1.
fn model(mode: DropoutMode) -> RewardModel {
    let table = Lookup::new(&[
        ("Dominant one.", [1.0, 0.0]),
        ("Dominant two.", [1.0, 0.0]),
        ("Rare.", [0.0, 1.0]),
        ("Sa.", [1.0, 0.0]),
    ]);
    let mut cfg = common::style_only_dropout_config();
    cfg.dropout.mode = mode;
    cfg.dropout.eps_max = 0.5;
    let refs = vec![
        "Dominant one.".into(),
        "Dominant two.".into(),
        "Rare.".into(),
    ];
    RewardModel::with_encoder(&cfg, Arc::new(table), refs).unwrap()
}

/// Mean R_style of the one- and two-sentence texts over `steps` independent batches.
fn mean_style(rm: &RewardModel, steps: u64) -> (f64, f64) {
    let ro = |o: &'static str| Rollout {
        input: "In.",
        output: o,
        output_tokens: 2,
        input_tokens: 2,
    };
    let (mut one, mut two) = (0.0, 0.0);
    for step in 0..steps {
        let s = rm.score_batch(&[ro("Sa."), ro("Sa. Sa.")], step).unwrap();
        assert_eq!(s.rewards[1].style.n_sentences, 2);
        one += s.rewards[0].r_style;
        two += s.rewards[1].r_style;
    }
    (one / steps as f64, two / steps as f64)
}

/// The deterministic modes mark nothing dropped, and the undropped value is still logged.
fn nothing_marked_dropped(rm: &RewardModel) {
    let ro = Rollout {
        input: "In.",
        output: "Sa. Sa.",
        output_tokens: 2,
        input_tokens: 2,
    };
    let s = rm.score_batch(&[ro], 7).unwrap();
    assert_eq!(s.rewards[0].style.n_dropped, 0);
    assert!((s.rewards[0].style.r_style_undropped - 1.0).abs() < 1e-6);
}

#[test]
fn sampled_dropout_with_the_safeguard_rewards_one_sentence_texts() {
    let (one, two) = mean_style(&model(DropoutMode::Sample), 400);
    // One sentence: dropped → safeguard → full reward, always.
    assert!((one - 1.0).abs() < 1e-6, "{one}");
    // Two sentences: E = (1 − p) + p² = 0.75 at p = 0.5 (400 draws: sd ≈ 0.012).
    assert!((two - 0.75).abs() < 0.06, "{two}");
}

#[test]
fn expected_dropout_weights_by_one_minus_rate_whatever_the_sentence_count() {
    let rm = model(DropoutMode::Expected);
    let (one, two) = mean_style(&rm, 3);
    assert!((one - 0.5).abs() < 1e-6, "{one}");
    assert!((two - 0.5).abs() < 1e-6, "{two}");
    nothing_marked_dropped(&rm);
}

#[test]
fn fallback_dropout_hands_a_dropped_reference_to_the_next() {
    let rm = model(DropoutMode::Fallback);
    let (one, two) = mean_style(&rm, 3);
    // "Sa." has two dominant candidates at p = 0.5 (cosine 1) and a rare one (cosine 0):
    // 0.5·1 + 0.5·0.5·1 + 0.25·0 = 0.75 per sentence, whatever the sentence count (the
    // expected mode gives 0.5: the whole contribution times 1 − p).
    assert!((one - 0.75).abs() < 1e-6, "{one}");
    assert!((two - 0.75).abs() < 1e-6, "{two}");
    nothing_marked_dropped(&rm);
    let ok: RewardConfig = toml::from_str("[dropout]\nmode = \"fallback\"\n").unwrap();
    assert_eq!(ok.dropout.mode, DropoutMode::Fallback);
}

#[test]
fn dropout_mode_parses_from_toml_and_rejects_unknown_values() {
    let ok: RewardConfig = toml::from_str("[dropout]\nmode = \"expected\"\n").unwrap();
    assert_eq!(ok.dropout.mode, DropoutMode::Expected);
    assert_eq!(RewardConfig::default().dropout.mode, DropoutMode::Sample);
    let e = toml::from_str::<RewardConfig>("[dropout]\nmode = \"mean\"\n").unwrap_err();
    assert!(e.to_string().contains("expected"), "{e}");
}
