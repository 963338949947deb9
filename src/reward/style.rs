//! Sentence-level style matching: every generated sentence against every reference sentence.
//!
//! The reference sentences are embedded once. A rollout batch is scored with ONE encoder
//! call: all sentences of all texts are split, the ones not in the embedding cache are
//! de-duplicated and encoded together, and each text gets its similarity rows, the best
//! reference per sentence and that similarity (ties go to the lower reference index).
//! The cache holds unit vectors keyed by sentence text; when a batch would overflow it,
//! it is emptied first (simple, and a GRPO batch repeats mostly within itself).
use crate::encoder::SentenceEncoder;
use anyhow::{bail, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The style match of one text.
#[derive(Debug, Clone, PartialEq)]
pub struct TextStyle {
    pub sentences: Vec<String>,
    /// Index of the best-matching reference sentence, per sentence.
    pub best: Vec<usize>,
    /// cos(sentence, best reference), per sentence.
    pub best_sim: Vec<f32>,
    /// Similarities to every reference sentence, one row per sentence.
    pub rows: Vec<Vec<f32>>,
}

pub struct StyleScorer {
    encoder: Arc<dyn SentenceEncoder>,
    references: Vec<String>,
    ref_unit: Vec<Vec<f32>>,
    ref_sim: Vec<Vec<f32>>,
    cache: Mutex<HashMap<String, Arc<Vec<f32>>>>,
    cache_size: usize,
}

/// `v / |v|` in f64 arithmetic; the zero vector stays zero (its cosine to anything is 0,
/// as in `encoder::cosine`).
pub fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    if n == 0.0 || !n.is_finite() {
        return vec![0.0; v.len()];
    }
    v.iter().map(|&x| (x as f64 / n) as f32).collect()
}

/// Dot product of two unit vectors in f64: their cosine.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| x as f64 * y as f64)
        .sum::<f64>() as f32
}

/// Index and value of the largest entry (first on ties); `(0, 0.0)` for an empty row.
pub fn argmax(row: &[f32]) -> (usize, f32) {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, &v) in row.iter().enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    if best.1 == f32::NEG_INFINITY {
        (0, 0.0)
    } else {
        best
    }
}

impl StyleScorer {
    /// Embeds `references` (already split into sentences) once.
    pub fn new(
        encoder: Arc<dyn SentenceEncoder>,
        references: Vec<String>,
        cache_size: usize,
    ) -> Result<Self> {
        if references.is_empty() {
            bail!(
                "the style reference has no sentences: give reward.reference a non-empty text file"
            );
        }
        let ref_unit: Vec<Vec<f32>> = checked_encode(encoder.as_ref(), &references)?
            .iter()
            .map(|v| unit(v))
            .collect();
        let ref_sim = ref_unit
            .iter()
            .map(|a| ref_unit.iter().map(|b| dot(a, b)).collect())
            .collect();
        Ok(StyleScorer {
            encoder,
            references,
            ref_unit,
            ref_sim,
            cache: Mutex::new(HashMap::new()),
            cache_size,
        })
    }

    pub fn references(&self) -> &[String] {
        &self.references
    }

    /// M_ij = cos(r_i, r_j) between reference sentences.
    pub fn reference_similarity(&self) -> &[Vec<f32>] {
        &self.ref_sim
    }

    pub fn encoder_name(&self) -> String {
        self.encoder.name()
    }

    /// Unit embeddings of `sentences`: cached ones reused, all others encoded in one call.
    pub fn embed(&self, sentences: &[String]) -> Result<Vec<Arc<Vec<f32>>>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let mut missing: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for s in sentences {
            if !cache.contains_key(s) && seen.insert(s.as_str()) {
                missing.push(s.clone());
            }
        }
        let mut fresh: HashMap<String, Arc<Vec<f32>>> = HashMap::new();
        if !missing.is_empty() {
            let vecs = checked_encode(self.encoder.as_ref(), &missing)?;
            for (s, v) in missing.into_iter().zip(vecs) {
                fresh.insert(s, Arc::new(unit(&v)));
            }
        }
        let out = sentences
            .iter()
            .map(|s| {
                fresh
                    .get(s)
                    .or_else(|| cache.get(s))
                    .cloned()
                    .expect("every sentence was cached or encoded")
            })
            .collect();
        if self.cache_size > 0 {
            if cache.len() + fresh.len() > self.cache_size {
                cache.clear();
            }
            if fresh.len() <= self.cache_size {
                cache.extend(fresh);
            }
        }
        Ok(out)
    }

    /// Number of sentence embeddings in the cache.
    pub fn cache_len(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Splits each text into sentences and matches them all against the reference with
    /// one encoder call for the whole batch.
    pub fn match_texts(&self, texts: &[&str]) -> Result<Vec<TextStyle>> {
        let split: Vec<Vec<String>> = texts.iter().map(|t| crate::text::sentences(t)).collect();
        let flat: Vec<String> = split.iter().flatten().cloned().collect();
        let embs = self.embed(&flat)?;
        let mut k = 0;
        Ok(split
            .into_iter()
            .map(|sentences| {
                let rows: Vec<Vec<f32>> = sentences
                    .iter()
                    .map(|_| {
                        let e = &embs[k];
                        k += 1;
                        self.ref_unit.iter().map(|r| dot(e, r)).collect()
                    })
                    .collect();
                let (best, best_sim) = rows.iter().map(|r| argmax(r)).unzip();
                TextStyle {
                    sentences,
                    best,
                    best_sim,
                    rows,
                }
            })
            .collect())
    }
}

/// Encodes and checks the encoder kept its promise: one finite vector per sentence, all of
/// the same length.
fn checked_encode(enc: &dyn SentenceEncoder, sentences: &[String]) -> Result<Vec<Vec<f32>>> {
    let v = enc.encode(sentences)?;
    if v.len() != sentences.len() {
        bail!(
            "encoder {} returned {} vectors for {} sentences",
            enc.name(),
            v.len(),
            sentences.len()
        );
    }
    if let Some(bad) = v
        .iter()
        .position(|x| x.len() != enc.dim() || x.iter().any(|a| !a.is_finite()))
    {
        bail!(
            "encoder {} returned a bad vector for sentence {:?} (wrong size or not finite)",
            enc.name(),
            sentences[bad]
        );
    }
    Ok(v)
}
