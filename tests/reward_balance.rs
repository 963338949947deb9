//! R_balance (`[reward.balance]`): each generated sentence earns clip(ln(e_k / g_k)) for its
//! closest reference k over *all* references, from the counts of the batches before it.
mod common;
use common::Lookup;
use std::sync::Arc;
use stylerl::reward::config::StyleTarget;
use stylerl::reward::{RewardConfig, RewardModel, Rollout};

/// References A = [1, 0] and B = [0, 1]. The input sits on B; "Sa." on A, "Sb." on B.
/// Anchoring with one neighbour lets a text be scored against B only, so "Sa." has anchored
/// best B (cosine 0) but closest reference A: R_balance must count A.
fn model(weight: f64) -> RewardModel {
    let table = Lookup::new(&[
        ("Ref a.", [1.0, 0.0]),
        ("Ref b.", [0.0, 1.0]),
        ("In.", [0.0, 1.0]),
        ("Sa.", [1.0, 0.0]),
        ("Sb.", [0.0, 1.0]),
    ]);
    let mut cfg = common::style_only_dropout_config();
    cfg.dropout.enabled = false;
    cfg.style_target = StyleTarget::Neighbours;
    cfg.neighbours = 1;
    cfg.balance.weight = weight;
    cfg.balance.prior = 0.0;
    cfg.balance.clip = 2.0;
    cfg.balance.decay = 0.5;
    let refs = vec!["Ref a.".into(), "Ref b.".into()];
    RewardModel::with_encoder(&cfg, Arc::new(table), refs).unwrap()
}

fn ro(output: &'static str) -> Rollout<'static> {
    Rollout {
        input: "In.",
        output,
        output_tokens: 2,
        input_tokens: 2,
    }
}

#[test]
fn balance_rewards_the_references_the_outputs_under_use() {
    let mut rm = model(1.0);
    let batch = [ro("Sa."), ro("Sa."), ro("Sb.")];
    // No history: every ratio is 0.
    let s = rm.score_batch(&batch, 0).unwrap();
    assert!(s.rewards.iter().all(|r| r.r_balance == 0.0));
    assert_eq!(s.output_best_all, vec![vec![0], vec![0], vec![1]]);
    // The anchored best of "Sa." is B, so the style term sees cosine 0 there.
    assert_eq!(s.rewards[0].style.sentences[0].reference, 1);
    rm.observe_usage(&s);
    // Outputs used A twice and B once; the inputs only B: A → −clip, B → ln(1 / (1/3)).
    let s = rm
        .score_batch(&[ro("Sa."), ro("Sb."), ro("Sa. Sb.")], 1)
        .unwrap();
    let ln3 = 3.0f64.ln();
    let b: Vec<f64> = s.rewards.iter().map(|r| r.r_balance).collect();
    assert!((b[0] + 2.0).abs() < 1e-12, "{b:?}");
    assert!((b[1] - ln3).abs() < 1e-12, "{b:?}");
    assert!((b[2] - (ln3 - 2.0) / 2.0).abs() < 1e-12, "{b:?}");
    // It enters the total with its weight, and nothing else changed.
    let off = model(0.0).score_batch(&[ro("Sa."), ro("Sb.")], 1).unwrap();
    for (on, off) in s.rewards.iter().zip(&off.rewards) {
        assert!((on.r_total - off.r_total - on.r_balance).abs() < 1e-12);
        assert_eq!(off.r_balance, 0.0);
    }
    assert!(model(0.0).balance.is_none());
}

#[test]
fn balance_parses_and_rejects_bad_values() {
    let ok: RewardConfig = toml::from_str("[balance]\nweight = 0.5\nclip = 1.5\n").unwrap();
    assert_eq!(ok.balance.weight, 0.5);
    assert_eq!(ok.balance.clip, 1.5);
    ok.validate().unwrap();
    assert_eq!(RewardConfig::default().balance.weight, 0.0);
    for (k, v) in [
        ("weight", "-1.0"),
        ("clip", "0.0"),
        ("decay", "1.0"),
        ("prior", "nan"),
    ] {
        let c: RewardConfig = toml::from_str(&format!("[balance]\n{k} = {v}\n")).unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(&format!("reward.balance.{k}")), "{e}");
    }
    assert!(toml::from_str::<RewardConfig>("[balance]\nweigth = 1.0\n").is_err());
}
