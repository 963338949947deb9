//! TOML configuration with `--set key=value` overrides.
//!
//! Every config struct derives `Deserialize` with `deny_unknown_fields`, so a typo is an
//! error naming the key rather than a silently ignored setting. Overrides are applied to
//! the parsed TOML tree before it is turned into the struct, so they are checked the same way.
pub mod check;

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use std::path::Path;

/// Reads `path`, applies `key=value` overrides, and deserializes into `T`.
pub fn load<T: DeserializeOwned>(path: &Path, overrides: &[String]) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}: check the path", path.display()))?;
    parse(&text, overrides).with_context(|| format!("config {}", path.display()))
}

/// Parses TOML text, applies overrides, deserializes.
pub fn parse<T: DeserializeOwned>(text: &str, overrides: &[String]) -> Result<T> {
    let mut root: toml::Value =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", one_line(&e.to_string())))?;
    for o in overrides {
        apply_override(&mut root, o)?;
    }
    T::deserialize(root).map_err(|e| anyhow::anyhow!("{}", one_line(&e.to_string())))
}

/// Sets `a.b.c=value` in the tree. The value is read as a TOML literal (number, bool,
/// array, quoted string); anything that is not valid TOML is taken as a bare string.
pub fn apply_override(root: &mut toml::Value, spec: &str) -> Result<()> {
    // A raw newline would end the TOML line and let the value set other keys.
    if let Some(c) = spec.chars().find(|c| c.is_control()) {
        bail!(
            "--set {spec:?} holds the control character {c:?}: give one line (write \\n inside a quoted TOML string for a newline)"
        );
    }
    let Some((key, raw)) = spec.split_once('=') else {
        bail!("--set '{spec}': expected key=value");
    };
    let key = key.trim();
    if key.is_empty() {
        bail!("--set '{spec}': empty key");
    }
    let value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").unwrap(),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let parts: Vec<&str> = key.split('.').collect();
    let mut node = root;
    for p in &parts[..parts.len() - 1] {
        let table = node
            .as_table_mut()
            .with_context(|| format!("--set {key}: '{p}' is inside a non-table value"))?;
        node = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
    }
    let table = node
        .as_table_mut()
        .with_context(|| format!("--set {key}: parent is not a table"))?;
    table.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        gamma: f64,
        name: String,
    }
    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        steps: u32,
        inner: Inner,
    }

    #[test]
    fn overrides_apply_and_type_check() {
        let c: Outer = parse(
            "steps = 3\n[inner]\ngamma = 10.0\nname = \"a\"\n",
            &[
                "inner.gamma=5.5".into(),
                "steps=7".into(),
                "inner.name=hello world".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.steps, 7);
        assert_eq!(c.inner.gamma, 5.5);
        assert_eq!(c.inner.name, "hello world");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = parse::<Outer>(
            "steps = 3\nstepz = 4\n[inner]\ngamma = 1.0\nname = \"a\"\n",
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("stepz"), "{e}");
        let e = parse::<Outer>(
            "steps = 3\n[inner]\ngamma = 1.0\nname = \"a\"\n",
            &["inner.gama=2".into()],
        )
        .unwrap_err();
        assert!(e.to_string().contains("gama"), "{e}");
        assert!(parse::<Outer>(
            "steps = 3\n[inner]\ngamma = 1.0\nname = \"a\"\n",
            &["nokey".into()]
        )
        .is_err());
    }
}
