//! STEL-or-Content accuracy of an encoder (docs/method.md#stel-or-content).
//!
//! A triple holds an anchor a, a sentence s in a's style with other content, and a sentence c
//! with a's content in another style. The encoder is right on a triple when
//! cos(a, s) > cos(a, c). A style encoder scores near 1; a content encoder near 0. Ties count
//! as wrong: an encoder that maps everything to one vector must not score 0.5 by luck.
use crate::encoder::{cosine, SentenceEncoder};
use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
pub struct Triple {
    #[serde(default)]
    pub id: String,
    pub feature: String,
    pub anchor: String,
    pub same_style: String,
    pub same_content: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeatureScore {
    pub feature: String,
    pub n: usize,
    pub correct: usize,
    pub accuracy: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StelReport {
    pub encoder: String,
    pub n: usize,
    pub accuracy: f64,
    pub features: Vec<FeatureScore>,
}

/// Reads a JSON-Lines triple file; every line must parse (errors name file:line).
pub fn load_triples(path: &Path) -> Result<Vec<Triple>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read STEL triples {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let t: Triple = serde_json::from_str(line).with_context(|| {
            format!(
                "{}:{}: not a STEL triple (need feature, anchor, same_style, same_content)",
                path.display(),
                i + 1
            )
        })?;
        out.push(t);
    }
    if out.is_empty() {
        bail!("{} holds no STEL triples", path.display());
    }
    Ok(out)
}

/// Whether each triple is scored right, from the three cosines' inputs (pure).
pub fn judge(cos_style: f32, cos_content: f32) -> bool {
    cos_style > cos_content
}

/// Accuracy overall and per feature (features in name order).
pub fn stel_accuracy(enc: &dyn SentenceEncoder, triples: &[Triple]) -> Result<StelReport> {
    ensure!(!triples.is_empty(), "no STEL triples to score");
    let texts: Vec<String> = triples
        .iter()
        .flat_map(|t| {
            [
                t.anchor.clone(),
                t.same_style.clone(),
                t.same_content.clone(),
            ]
        })
        .collect();
    let mut v = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(96) {
        v.extend(enc.encode(chunk)?);
    }
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut correct = 0;
    for (k, t) in triples.iter().enumerate() {
        let (a, s, c) = (&v[3 * k], &v[3 * k + 1], &v[3 * k + 2]);
        let ok = judge(cosine(a, s), cosine(a, c));
        correct += ok as usize;
        let e = per.entry(t.feature.clone()).or_default();
        e.0 += 1;
        e.1 += ok as usize;
    }
    Ok(StelReport {
        encoder: enc.name(),
        n: triples.len(),
        accuracy: correct as f64 / triples.len() as f64,
        features: per
            .into_iter()
            .map(|(feature, (n, c))| FeatureScore {
                feature,
                n,
                correct: c,
                accuracy: c as f64 / n as f64,
            })
            .collect(),
    })
}

/// A Markdown table: one row per feature, then the total.
pub fn markdown(r: &StelReport) -> String {
    let mut s = format!(
        "STEL-or-Content accuracy of {} (share of triples with cos(anchor, same style) > cos(anchor, same content))\n\n| feature | triples | accuracy |\n|---|---|---|\n",
        r.encoder
    );
    for f in &r.features {
        s += &format!("| {} | {} | {:.3} |\n", f.feature, f.n, f.accuracy);
    }
    s += &format!("| **all** | {} | **{:.3}** |\n", r.n, r.accuracy);
    s
}
