//! The recipe's added reward terms: R_rewrite (near-copy penalty), R_meaning (content-encoder
//! penalty) and their place in R_total, with a fake content encoder whose cosines are known.
mod common;
use common::Lookup;
use std::collections::HashMap;
use std::sync::Arc;
use stylerl::encoder::SentenceEncoder;
use stylerl::reward::config::{MeaningConfig, RewriteConfig};
use stylerl::reward::meaning::meaning_kept;
use stylerl::reward::penalties::{r_meaning, r_rewrite};
use stylerl::reward::{RewardConfig, RewardModel, Rollout};

fn close(a: f64, b: f64) {
    assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} vs {b}");
}

/// Cosines come from f32 vectors: a few f32 ulps of their magnitude.
fn close_f32(a: f64, b: f64) {
    assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
}

#[test]
fn rewrite_penalty_is_zero_below_threshold_and_minus_weight_for_a_copy() {
    let c = RewriteConfig {
        weight: 2.0,
        threshold: 0.8,
    };
    close(r_rewrite(&c, 0.5), 0.0);
    close(r_rewrite(&c, 0.8), 0.0);
    close(r_rewrite(&c, 0.9), -1.0);
    close(r_rewrite(&c, 1.0), -2.0);
    let off = RewriteConfig {
        weight: 0.0,
        threshold: 0.8,
    };
    close(r_rewrite(&off, 1.0), 0.0);
}

#[test]
fn meaning_penalty_is_flat_above_threshold_and_linear_below() {
    let c = MeaningConfig {
        weight: 4.0,
        threshold: 0.75,
        encoder: String::new(),
    };
    close(r_meaning(&c, 1.0), 0.0);
    close(r_meaning(&c, 0.75), 0.0);
    close(r_meaning(&c, 0.5), -1.0);
    close(r_meaning(&c, -0.25), -4.0);
}

fn lookup() -> Arc<Lookup> {
    let mut t = HashMap::new();
    t.insert("The cat sat.".to_string(), vec![1.0, 0.0]);
    t.insert("A cat was sitting.".to_string(), vec![0.8, 0.6]); // cos 0.8
    t.insert("Buy stocks now.".to_string(), vec![0.0, 1.0]); // cos 0
    t.insert(String::new(), vec![1.0, 0.0]); // an empty output must still score 0
    Arc::new(Lookup(t))
}

#[test]
fn meaning_kept_is_the_cosine_of_whole_texts_and_zero_for_empty_output() {
    let enc = lookup();
    let got = meaning_kept(
        enc.as_ref(),
        &[
            ("The cat sat.", "A cat was sitting."),
            ("The cat sat.", "Buy stocks now."),
            ("The cat sat.", "  "),
        ],
    )
    .unwrap();
    close_f32(got[0], 0.8);
    close(got[1], 0.0);
    close(got[2], 0.0);
    assert!(meaning_kept(enc.as_ref(), &[]).unwrap().is_empty());
}

/// Only the rewrite (1 from 0.8) and meaning (2 below 0.9) terms, no dropout.
fn recipe_cfg() -> RewardConfig {
    let mut cfg = RewardConfig::default();
    cfg.dropout.enabled = false;
    cfg.weights.style = 0.0;
    cfg.weights.length = 0.0;
    cfg.weights.punctuation = 0.0;
    cfg.entities.weight = 0.0;
    cfg.rewrite = RewriteConfig {
        weight: 1.0,
        threshold: 0.8,
    };
    cfg.meaning = MeaningConfig {
        weight: 2.0,
        threshold: 0.9,
        encoder: "lookup".into(),
    };
    cfg
}

#[test]
fn total_reward_adds_rewrite_and_meaning_terms() {
    let cfg = recipe_cfg();
    let style: Arc<dyn SentenceEncoder> = lookup();
    let rm = RewardModel::with_encoder(&cfg, style, vec!["The cat sat.".into()])
        .unwrap()
        .with_content(lookup());
    let ro = |o: &'static str| Rollout {
        input: "The cat sat.",
        output: o,
        output_tokens: 3,
        input_tokens: 3,
    };
    let s = rm
        .score_batch(
            &[
                ro("The cat sat."),
                ro("A cat was sitting."),
                ro("Buy stocks now."),
            ],
            0,
        )
        .unwrap();
    // A copy: edit similarity 1 → R_rewrite −1; meaning kept → 0.
    close(s.rewards[0].r_rewrite, -1.0);
    close(s.rewards[0].r_meaning, 0.0);
    close(s.rewards[0].r_total, -1.0);
    // A paraphrase: rewritten; cos 0.8 < 0.9 → 2·(0.8 − 0.9) = −0.2.
    close(s.rewards[1].r_rewrite, 0.0);
    close_f32(s.rewards[1].r_meaning, -0.2);
    assert_eq!(
        s.rewards[1].meaning_cos.map(|c| (c * 1e6).round()),
        Some(0.8e6)
    );
    // Meaning lost: 2·(0 − 0.9) = −1.8.
    close(s.rewards[2].r_total, -1.8);
    close_f32(s.means().r_meaning, (0.0 - 0.2 - 1.8) / 3.0);

    // Without a content encoder the meaning term cannot silently vanish.
    let style: Arc<dyn SentenceEncoder> = lookup();
    let rm = RewardModel::with_encoder(&cfg, style, vec!["The cat sat.".into()]).unwrap();
    let e = rm.score_batch(&[ro("The cat sat.")], 0).unwrap_err();
    assert!(e.to_string().contains("reward.meaning"), "{e}");
}

#[test]
fn reward_config_rejects_bad_recipe_values() {
    for (k, v) in [
        ("reward.rewrite.threshold", "1.0"),
        ("reward.rewrite.weight", "-1"),
        ("reward.meaning.weight", "nan"),
        ("reward.meaning.threshold", "2"),
    ] {
        let cfg: anyhow::Result<RewardFile> =
            stylerl::config::parse("[reward]\n", &[format!("{k}={v}")]);
        let err = match cfg {
            Ok(f) => f.reward.validate().unwrap_err().to_string(),
            Err(e) => e.to_string(),
        };
        let key = k.trim_start_matches("reward.");
        assert!(err.contains(key), "{k}={v}: {err}");
    }
}

#[derive(serde::Deserialize)]
struct RewardFile {
    reward: RewardConfig,
}

/// `reward.normalise = "group"`: GRPO's numbers are each term standardised within its group
/// and summed with its weight; "none" (the default) leaves the plain totals. An unknown value
/// is refused naming the key.
#[test]
fn group_normalisation_replaces_totals_only_when_asked() {
    let mut cfg = recipe_cfg();
    let ro = |o: &'static str| Rollout {
        input: "The cat sat.",
        output: o,
        output_tokens: 3,
        input_tokens: 3,
    };
    let outs = [
        ro("The cat sat."),
        ro("A cat was sitting."),
        ro("Buy stocks now."),
        ro("A cat was sitting."),
    ];
    let score = |cfg: &RewardConfig| {
        let style: Arc<dyn SentenceEncoder> = lookup();
        RewardModel::with_encoder(cfg, style, vec!["The cat sat.".into()])
            .unwrap()
            .with_content(lookup())
            .score_batch(&outs, 0)
            .unwrap()
    };
    let plain = score(&cfg);
    assert_eq!(plain.for_advantages(&cfg, 2), plain.totals());

    cfg.normalise = stylerl::reward::config::Normalise::Group;
    let s = score(&cfg);
    let got = s.for_advantages(&cfg, 2);
    let want = stylerl::reward::normalise::group_normalised_total(
        &[
            s.rewards.iter().map(|r| r.r_rewrite).collect(),
            s.rewards.iter().map(|r| r.r_meaning).collect(),
        ],
        &[1.0, 2.0],
        2,
    );
    for (g, w) in got.iter().zip(&want) {
        close(*g, *w);
    }
    // Group 1 = (copy, paraphrase): rewrite −1 vs 0 and meaning 0 vs −0.2 standardise to ∓0.707
    // each, so with weights 1 and 2 the copy gets −0.707 + 2·0.707 = +0.707, where the plain totals
    // (−1 vs −0.2) ranked it below the paraphrase.
    assert!(got[0] > got[1], "{got:?}");
    assert!(plain.totals()[0] < plain.totals()[1]);
    // Zero mean in every group.
    close(got[0] + got[1], 0.0);
    close(got[2] + got[3], 0.0);

    let e = stylerl::config::parse::<RewardFile>("[reward]\nnormalise = \"batch\"\n", &[])
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(e.contains("normalise"), "{e}");
}
