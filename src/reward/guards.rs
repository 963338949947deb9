//! Reward guards from the evaluation's reader checks (docs/method.md#reward-guards), each off
//! by default: R_facts (facts kept), R_defects (loops, assistant speech, copied reference
//! passages, empty text) and R_fluency (the output far less likely than its input under a
//! frozen base model). Each is ≤ 0, so a guard only takes away what a broken rewrite earned.
use crate::text::defects::Defects;
use crate::text::facts::FactCheck;
use serde::{Deserialize, Serialize};

/// `[reward.facts]`: −weight for each kind of fact change (a number, amount, date or time
/// lost or altered; one invented; a negation flipped; a name invented), so up to −4·weight.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FactsConfig {
    /// 0 disables it.
    pub weight: f64,
}

/// `[reward.defects]`: −weight when the output loops, speaks as an assistant, copies a run of
/// reference words, or is empty. Cut-off outputs are the length penalty's business.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DefectsConfig {
    /// 0 disables it.
    pub weight: f64,
}

/// `[reward.fluency]`: −weight × max(0, NLL(output) − NLL(input) − margin), mean per-token
/// NLLs of the texts alone under a frozen base model (the evaluation's fluency measure).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FluencyConfig {
    /// 0 disables it (and the model is not loaded).
    pub weight: f64,
    /// Nats per token the output may exceed its input by before the penalty starts.
    pub margin: f64,
    /// The frozen base model directory.
    pub model: String,
    /// Texts per forward pass.
    pub batch_size: usize,
}

impl Default for FluencyConfig {
    fn default() -> Self {
        FluencyConfig {
            weight: 0.0,
            margin: 0.5,
            model: "models/smollm2-135m-instruct".into(),
            batch_size: 16,
        }
    }
}

/// R_facts of one rollout.
pub fn r_facts(cfg: &FactsConfig, f: &FactCheck) -> f64 {
    if cfg.weight == 0.0 {
        return 0.0;
    }
    let kinds = [
        f.number_changed(),
        f.number_invented(),
        f.negation_flip(),
        f.name_invented(),
    ];
    -cfg.weight * kinds.iter().filter(|&&k| k).count() as f64
}

/// R_defects of one rollout.
pub fn r_defects(cfg: &DefectsConfig, d: &Defects) -> f64 {
    if cfg.weight == 0.0 {
        return 0.0;
    }
    if d.repetition || d.assistant || d.copied_reference || d.empty {
        -cfg.weight
    } else {
        0.0
    }
}

/// R_fluency of one rollout from the two mean NLLs (`None`: a text too short to score, no
/// penalty).
pub fn r_fluency(cfg: &FluencyConfig, nll_output: Option<f64>, nll_input: Option<f64>) -> f64 {
    match (cfg.weight, nll_output, nll_input) {
        (w, Some(o), Some(i)) if w > 0.0 => -w * (o - i - cfg.margin).max(0.0),
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::facts::check_facts;

    #[test]
    fn guards_are_zero_when_off_or_clean_and_negative_otherwise() {
        let on = FactsConfig { weight: 0.5 };
        let clean = check_facts("Bay 12 is free on Friday.", "On Friday, bay 12 is free.");
        assert_eq!(r_facts(&on, &clean), 0.0);
        let broken = check_facts(
            "Please don't park in bay 12 on Friday.",
            "Please park in bay 13 on Friday with Tomasz Wren.",
        );
        assert_eq!(r_facts(&on, &broken), -1.5, "{broken:?}");
        assert_eq!(r_facts(&FactsConfig::default(), &broken), 0.0);
        let d = Defects {
            repetition: true,
            ..Default::default()
        };
        assert_eq!(r_defects(&DefectsConfig { weight: 2.0 }, &d), -2.0);
        let cut = Defects {
            truncated: true,
            ..Default::default()
        };
        assert_eq!(r_defects(&DefectsConfig { weight: 2.0 }, &cut), 0.0);
        let f = FluencyConfig {
            weight: 1.0,
            margin: 0.5,
            ..Default::default()
        };
        assert_eq!(r_fluency(&f, Some(4.0), Some(3.8)), 0.0);
        assert!((r_fluency(&f, Some(5.0), Some(3.5)) + 1.0).abs() < 1e-12);
        assert_eq!(r_fluency(&f, None, Some(3.5)), 0.0);
    }
}
