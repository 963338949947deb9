//! Encoder characterisation (the method's Table 1), per dataset:
//! - `inner_doc`: mean cosine between different sentences of the same document;
//! - `sentence_doc`: mean cosine of a sentence to the embedding of its whole document;
//! - `all_sentences`: mean cosine between different sentences across the whole dataset.
//!
//! Our choices: the two per-document numbers are averaged per document first, then over
//! documents, and use only documents with at least two sentences (a one-sentence document
//! is its own sentence, which would report a trivial 1); `all_sentences` pools every
//! sentence of every document. Self-pairs are excluded throughout.
use crate::encoder::SentenceEncoder;
use anyhow::Result;
use serde::Serialize;

use super::style::{dot, unit};

/// Sentences per encoder call (bounds memory for transformer encoders).
pub const ENCODE_CHUNK: usize = 64;

#[derive(Debug, Clone, Serialize)]
pub struct Characterisation {
    pub dataset: String,
    pub documents: usize,
    /// Documents with ≥ 2 sentences (the ones the per-document columns average over).
    pub multi_sentence_documents: usize,
    pub sentences: usize,
    pub inner_doc: f64,
    pub sentence_doc: f64,
    pub all_sentences: f64,
}

/// Mean cosine over ordered pairs i ≠ j of unit vectors, in O(n·d):
/// Σ_{i≠j} u_i·u_j = |Σ u_i|² − Σ |u_i|². NaN-free: 0 pairs gives 0.
pub fn mean_pairwise(units: &[Vec<f32>]) -> f64 {
    let n = units.len();
    if n < 2 {
        return 0.0;
    }
    let d = units[0].len();
    let mut sum = vec![0f64; d];
    let mut self_sq = 0f64;
    for u in units {
        for (s, &x) in sum.iter_mut().zip(u) {
            *s += x as f64;
        }
        self_sq += u.iter().map(|&x| x as f64 * x as f64).sum::<f64>();
    }
    let total: f64 = sum.iter().map(|s| s * s).sum();
    (total - self_sq) / (n * (n - 1)) as f64
}

fn encode_chunked(enc: &dyn SentenceEncoder, texts: &[String]) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(ENCODE_CHUNK) {
        out.extend(enc.encode(chunk)?.iter().map(|v| unit(v)));
    }
    Ok(out)
}

/// The three numbers for one dataset of documents.
pub fn characterise(
    enc: &dyn SentenceEncoder,
    dataset: &str,
    docs: &[String],
) -> Result<Characterisation> {
    let split: Vec<Vec<String>> = docs.iter().map(|d| crate::text::sentences(d)).collect();
    let flat: Vec<String> = split.iter().flatten().cloned().collect();
    let sent = encode_chunked(enc, &flat)?;
    let multi: Vec<usize> = (0..docs.len()).filter(|&i| split[i].len() >= 2).collect();
    let multi_docs: Vec<String> = multi.iter().map(|&i| docs[i].clone()).collect();
    let doc_emb = encode_chunked(enc, &multi_docs)?;

    let mut offsets = Vec::with_capacity(split.len());
    let mut o = 0;
    for s in &split {
        offsets.push(o);
        o += s.len();
    }
    let (mut inner, mut to_doc) = (0f64, 0f64);
    for (m, &i) in multi.iter().enumerate() {
        let own = &sent[offsets[i]..offsets[i] + split[i].len()];
        inner += mean_pairwise(own);
        to_doc += own.iter().map(|s| dot(s, &doc_emb[m]) as f64).sum::<f64>() / own.len() as f64;
    }
    let k = multi.len().max(1) as f64;
    Ok(Characterisation {
        dataset: dataset.to_string(),
        documents: docs.len(),
        multi_sentence_documents: multi.len(),
        sentences: flat.len(),
        inner_doc: inner / k,
        sentence_doc: to_doc / k,
        all_sentences: mean_pairwise(&sent),
    })
}

/// The table as Markdown.
pub fn markdown(encoder: &str, rows: &[Characterisation]) -> String {
    let mut s = format!("Encoder: `{encoder}`\n\n");
    s.push_str("| dataset | documents | multi-sentence docs | sentences | inner-document sentences | sentence to document | all sentences |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.3} | {:.3} | {:.3} |\n",
            r.dataset,
            r.documents,
            r.multi_sentence_documents,
            r.sentences,
            r.inner_doc,
            r.sentence_doc,
            r.all_sentences
        ));
    }
    s
}

/// The table as CSV (full precision).
pub fn csv(encoder: &str, rows: &[Characterisation]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "encoder",
        "dataset",
        "documents",
        "multi_sentence_documents",
        "sentences",
        "inner_doc",
        "sentence_doc",
        "all_sentences",
    ])?;
    for r in rows {
        w.write_record([
            encoder.to_string(),
            r.dataset.clone(),
            r.documents.to_string(),
            r.multi_sentence_documents.to_string(),
            r.sentences.to_string(),
            format!("{:.6}", r.inner_doc),
            format!("{:.6}", r.sentence_doc),
            format!("{:.6}", r.all_sentences),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
