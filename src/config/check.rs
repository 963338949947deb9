//! Range checks shared by every command's settings.
//!
//! Each check fails with one line of the form `KEY = VALUE: must be …`, so the message
//! names the setting, what it was given and what it accepts. Configs call these from their
//! `validate()` before anything heavy (model, encoder, data) is loaded.
use anyhow::{bail, Context, Result};

/// A finite number > 0 (learning rates, clip norms, temperatures).
pub fn positive_finite(key: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && v > 0.0) {
        bail!("{key} = {v}: must be a finite number > 0");
    }
    Ok(())
}

/// A finite number ≥ 0 (clip ranges, KL weight, weight decay).
pub fn nonneg_finite(key: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && v >= 0.0) {
        bail!("{key} = {v}: must be a finite number ≥ 0");
    }
    Ok(())
}

/// A finite number in [0, 1) (Adam betas, dropout probabilities).
pub fn unit_half_open(key: &str, v: f64) -> Result<()> {
    if !(0.0..1.0).contains(&v) {
        bail!("{key} = {v}: must be in [0, 1)");
    }
    Ok(())
}

/// A count of at least 1 (steps, lengths, batch sizes).
pub fn at_least_one(key: &str, v: u64) -> Result<()> {
    if v < 1 {
        bail!("{key} = {v}: must be ≥ 1");
    }
    Ok(())
}

/// The smallest sampling temperature: logits divided by less overflow f32 into inf, and
/// every probability becomes NaN (empty text, exit 0).
pub const MIN_TEMPERATURE: f64 = 1e-6;

/// Sampling temperature: finite and ≥ [`MIN_TEMPERATURE`] unless decoding is greedy (then
/// unused).
pub fn temperature(key: &str, v: f64, greedy: bool) -> Result<()> {
    if !greedy && !(v.is_finite() && v > 0.0) {
        bail!("{key} = {v}: must be a finite number > 0 (or decode greedily)");
    }
    if !greedy && v < MIN_TEMPERATURE {
        bail!("{key} = {v:e}: must be > 0 and at least {MIN_TEMPERATURE:e}, as smaller ones overflow the logits (decode greedily for the most likely token)");
    }
    Ok(())
}

/// Nucleus mass: 0 < p ≤ 1 (0 would keep no token, above 1 means nothing).
pub fn top_p(key: &str, v: Option<f64>) -> Result<()> {
    if let Some(p) = v {
        if !(p > 0.0 && p <= 1.0) {
            bail!("{key} = {p}: must be in (0, 1] (leave it out for no nucleus cut)");
        }
    }
    Ok(())
}

/// Top-k: at least one token kept.
pub fn top_k(key: &str, v: Option<i64>) -> Result<()> {
    if let Some(k) = v {
        if k < 1 {
            bail!("{key} = {k}: must be ≥ 1 (leave it out for no top-k cut)");
        }
    }
    Ok(())
}

/// The most CPU threads accepted: 4 × the machine's cores, at most 1024 (libtorch starts
/// one OpenMP thread each; tens of thousands overflow the stack).
pub fn max_threads() -> i64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    (4 * cores).clamp(1, 1024)
}

/// A CPU thread count in 1..=[`max_threads`].
pub fn threads(key: &str, n: i64) -> Result<()> {
    let max = max_threads();
    if !(1..=max).contains(&n) {
        bail!("{key} = {n}: must be in 1..={max} (4 × this machine's cores, at most 1024)");
    }
    Ok(())
}

/// A device string that parses and, for CUDA, names a visible device.
pub fn device(key: &str, v: &str) -> Result<()> {
    // Context, not a new error: the CLI finds the NoCuda inside to exit 2.
    crate::util::parse_device(v).with_context(|| format!("{key} = {v}"))?;
    Ok(())
}

/// A dtype string that parses.
pub fn dtype(key: &str, v: &str) -> Result<()> {
    crate::util::parse_dtype(v).map_err(|e| anyhow::anyhow!("{key} = {v}: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_key_value_and_range() {
        let e = positive_finite("train.optimizer.lr", f64::NAN)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "train.optimizer.lr = NaN: must be a finite number > 0");
        assert!(positive_finite("x", f64::INFINITY).is_err());
        assert!(positive_finite("x", 0.0).is_err());
        assert!(positive_finite("x", 1e-9).is_ok());
        assert!(nonneg_finite("x", 0.0).is_ok() && nonneg_finite("x", -0.1).is_err());
        assert!(temperature("t", 0.0, true).is_ok() && temperature("t", 0.0, false).is_err());
        let e = top_p("grpo.top_p", Some(1.5)).unwrap_err().to_string();
        assert!(e.starts_with("grpo.top_p = 1.5: must be in (0, 1]"), "{e}");
        assert!(top_p("p", Some(0.0)).is_err() && top_p("p", Some(f64::NAN)).is_err());
        assert!(top_p("p", Some(1.0)).is_ok() && top_p("p", None).is_ok());
        assert!(top_k("k", Some(0)).is_err() && top_k("k", Some(1)).is_ok());
        assert!(at_least_one("s", 0).is_err() && at_least_one("s", 1).is_ok());
        assert!(unit_half_open("b", 1.0).is_err() && unit_half_open("b", 0.999).is_ok());
    }
}
