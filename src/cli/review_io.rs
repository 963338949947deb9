//! Files of a blind review, read and written the same way by `review make | score | pool` and
//! `review agree`: one error line naming the file and the flag on every failure.
use crate::eval::review::{parse_verdict, Key, Verdict};
use anyhow::{bail, Context, Result};
use std::path::Path;

pub fn read(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// Refuses to overwrite any of `paths` unless `force`; `flags` names where to choose another.
pub fn refuse_existing(paths: &[&Path], force: bool, flags: &str) -> Result<()> {
    if force {
        return Ok(());
    }
    if let Some(p) = paths.iter().find(|p| p.exists()) {
        bail!(
            "{} exists: pass --force to replace it, or choose another {flags}",
            p.display()
        );
    }
    Ok(())
}

/// A key written by `review make`; `what` names the flag or role in errors.
pub fn read_key(path: &Path, what: &str) -> Result<Key> {
    serde_json::from_str(&read(path, what)?).with_context(|| {
        format!(
            "{what} {}: not a review key (made by `stylerl review make`)",
            path.display()
        )
    })
}

/// A reader's verdicts (JSON lines, blank lines skipped) for the sheet `sheet_id`.
pub fn read_verdicts(path: &Path, what: &str, sheet_id: &str) -> Result<Vec<Verdict>> {
    read(path, what)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| parse_verdict(l, n + 1, sheet_id))
        .collect::<Result<_>>()
        .with_context(|| format!("{what} {}", path.display()))
}
