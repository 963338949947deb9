//! The NaN guard: a non-finite loss or gradient norm skips the update (the caller zeroes
//! the gradients and moves on), is counted, and K such steps in a row stop the run with
//! one clear error instead of training on garbage.
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NanGuard {
    /// Consecutive bad steps allowed before the run stops (≥ 1).
    pub max_in_a_row: u32,
    pub streak: u32,
    pub total: u64,
    /// The config key that sets `max_in_a_row`, named in the stop message.
    #[serde(skip)]
    pub key: &'static str,
}

impl NanGuard {
    pub fn new(max_in_a_row: u32, key: &'static str) -> NanGuard {
        NanGuard {
            max_in_a_row: max_in_a_row.max(1),
            streak: 0,
            total: 0,
            key,
        }
    }

    /// Continues a saved streak and count under this run's limit and key.
    pub fn resumed(&self, saved: &NanGuard) -> NanGuard {
        NanGuard {
            streak: saved.streak,
            total: saved.total,
            ..*self
        }
    }

    /// The guard a checkpoint saved in its `extra` (key `nan_guard`), if any: a resumed run
    /// continues its streak, as it would have without the interruption.
    pub fn saved_in(extra: &serde_json::Value) -> Result<Option<NanGuard>> {
        match extra.get("nan_guard") {
            Some(g) => serde_json::from_value(g.clone())
                .map(Some)
                .map_err(|e| anyhow::anyhow!("checkpoint: bad nan_guard state: {e}")),
            None => Ok(None),
        }
    }

    /// Ok(true): apply the update. Ok(false): skip it (counted). Err: too many in a row.
    pub fn check(&mut self, step: u64, values: &[f64]) -> Result<bool> {
        if values.iter().all(|v| v.is_finite()) {
            self.streak = 0;
            return Ok(true);
        }
        self.streak += 1;
        self.total += 1;
        if self.streak >= self.max_in_a_row {
            bail!(
                "step {step}: non-finite loss or gradient {} steps in a row ({} in total): lower the learning rate, check the data, or raise {}",
                self.streak,
                self.total,
                self.key
            );
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_counts_and_stops() {
        let mut g = NanGuard::new(3, "grpo.nan_patience");
        assert!(g.check(1, &[0.5, 1.0]).unwrap());
        assert!(!g.check(2, &[f64::NAN, 1.0]).unwrap());
        assert!(!g.check(3, &[0.1, f64::INFINITY]).unwrap());
        assert!(g.check(4, &[0.1]).unwrap());
        assert_eq!((g.streak, g.total), (0, 2));
        assert!(!g.check(5, &[f64::NAN]).unwrap());
        assert!(!g.check(6, &[f64::NAN]).unwrap());
        let e = g.check(7, &[f64::NAN]).unwrap_err().to_string();
        assert!(
            e.contains("step 7")
                && e.contains("3 steps in a row")
                && e.ends_with("raise grpo.nan_patience"),
            "{e}"
        );
    }
}
