//! Sentence encoders that score style: transformer sentence-transformers directories
//! (BERT / RoBERTa / XLM-R) and the weight-free `stylometric` encoder.
pub mod cmd;
pub mod stylometric;

use anyhow::Result;

/// Anything that maps sentences to fixed-size vectors whose cosine measures style similarity.
pub trait SentenceEncoder: Send + Sync {
    /// One vector per input sentence, all of length `dim()`, in input order.
    fn encode(&self, sentences: &[String]) -> Result<Vec<Vec<f32>>>;
    /// Embedding size.
    fn dim(&self) -> usize;
    /// A short name for logs and tables.
    fn name(&self) -> String;
}

/// Loads an encoder from a spec: `stylometric`, or a sentence-transformers directory.
pub fn load(spec: &str) -> Result<Box<dyn SentenceEncoder>> {
    if spec == "stylometric" {
        return Ok(Box::new(stylometric::Stylometric::new()));
    }
    anyhow::bail!("encoder '{spec}': transformer encoders are not built yet; use 'stylometric'")
}

/// Cosine similarity of two vectors (0 when either is all zeros).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        dot += (*x as f64) * (*y as f64);
        na += (*x as f64) * (*x as f64);
        nb += (*y as f64) * (*y as f64);
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())) as f32
}
