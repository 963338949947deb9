//! Usage-keyed style reward dropout (`reward.dropout.rates = "usage"`): a reference the
//! policy's sentences land on more often than the inputs' sentences do loses reward in the
//! next batches; one used as often as the inputs use it keeps its reward.
mod common;
use common::Lookup;
use std::sync::Arc;
use stylerl::reward::config::{DropoutMode, DropoutRates};
use stylerl::reward::{RewardConfig, RewardModel, Rollout};

/// Two orthogonal references; inputs sit on "A" or "B" half the time each, and the generated
/// sentences "Xa." / "Xb." match "A" / "B" with cosine 1.
fn model(rates: DropoutRates) -> RewardModel {
    let table = Lookup::new(&[
        ("A.", [1.0, 0.0]),
        ("B.", [0.0, 1.0]),
        ("Ia.", [1.0, 0.0]),
        ("Ib.", [0.0, 1.0]),
        ("Xa.", [1.0, 0.0]),
        ("Xb.", [0.0, 1.0]),
    ]);
    let mut cfg = common::style_only_dropout_config();
    cfg.dropout.mode = DropoutMode::Expected;
    cfg.dropout.rates = rates;
    cfg.dropout.prior = 0.0;
    cfg.dropout.decay = 0.5;
    RewardModel::with_encoder(&cfg, Arc::new(table), vec!["A.".into(), "B.".into()]).unwrap()
}

fn ro(input: &'static str, output: &'static str) -> Rollout<'static> {
    Rollout {
        input,
        output,
        output_tokens: 2,
        input_tokens: 2,
    }
}

/// The policy sends every sentence to "A" while the inputs are split evenly.
fn collapsed_batch() -> Vec<Rollout<'static>> {
    vec![
        ro("Ia.", "Xa."),
        ro("Ib.", "Xa."),
        ro("Ia.", "Xa."),
        ro("Ib.", "Xa."),
    ]
}

#[test]
fn over_used_reference_is_dropped_in_later_batches() {
    let mut rm = model(DropoutRates::Usage);
    // First batch: no history, no dropout.
    let s0 = rm.score_batch(&collapsed_batch(), 0).unwrap();
    assert!(s0.rewards.iter().all(|r| (r.r_style - 1.0).abs() < 1e-6));
    assert_eq!(s0.input_best, vec![vec![0], vec![1], vec![0], vec![1]]);
    rm.observe_usage(&s0);
    // Outputs use "A" with share 1, inputs 0.5: rate 1 − 0.5/1 = 0.5 (eps_max 0.9).
    let rates = rm.current_rates();
    assert!(
        (rates[0] - 0.5).abs() < 1e-9 && rates[1] == 0.0,
        "{rates:?}"
    );
    let s1 = rm
        .score_batch(&[ro("Ia.", "Xa."), ro("Ia.", "Xb.")], 1)
        .unwrap();
    assert!(
        (s1.rewards[0].r_style - 0.5).abs() < 1e-6,
        "{}",
        s1.rewards[0].r_style
    );
    assert!(
        (s1.rewards[1].r_style - 1.0).abs() < 1e-6,
        "{}",
        s1.rewards[1].r_style
    );
    assert!((s1.means().mean_rate - 0.25).abs() < 1e-9);
    // Scoring alone changes nothing: the counts move only through observe_usage.
    assert_eq!(rm.current_rates(), rates);
    // A policy that follows the inputs' distribution earns the rate back towards 0.
    for step in 2..12 {
        let b = vec![ro("Ia.", "Xa."), ro("Ib.", "Xb.")];
        let s = rm.score_batch(&b, step).unwrap();
        rm.observe_usage(&s);
    }
    assert!(rm.current_rates()[0] < 0.01, "{:?}", rm.current_rates());
}

#[test]
fn static_rates_ignore_what_the_policy_generates() {
    let mut rm = model(DropoutRates::Static);
    for step in 0..4 {
        let s = rm.score_batch(&collapsed_batch(), step).unwrap();
        assert!(s.input_best.is_empty());
        rm.observe_usage(&s);
        // Two orthogonal references dominate nothing: every static rate is eps_min = 0.
        assert!(s.rewards.iter().all(|r| (r.r_style - 1.0).abs() < 1e-6));
    }
    assert!(rm.usage.is_none());
}

#[test]
fn bad_usage_settings_are_refused() {
    for (key, v) in [
        ("decay", 1.0),
        ("decay", -0.1),
        ("decay", f64::NAN),
        ("prior", -1.0),
    ] {
        let mut cfg = RewardConfig::default();
        cfg.dropout.rates = DropoutRates::Usage;
        match key {
            "decay" => cfg.dropout.decay = v,
            _ => cfg.dropout.prior = v,
        }
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains(&format!("reward.dropout.{key}")), "{e}");
    }
}
