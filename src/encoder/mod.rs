//! Sentence encoders that score style: transformer sentence-transformers directories
//! (BERT / RoBERTa / XLM-R) and the weight-free `stylometric` and `charstyle` encoders.
pub mod batching;
pub mod bert;
pub mod charstyle;
pub mod pooling;
pub mod st_dir;
pub mod stylometric;
pub mod transformer;

use anyhow::Result;
use std::path::Path;

/// Anything that maps sentences to fixed-size vectors whose cosine measures style similarity.
pub trait SentenceEncoder: Send + Sync {
    /// One vector per input sentence, all of length `dim()`, in input order.
    fn encode(&self, sentences: &[String]) -> Result<Vec<Vec<f32>>>;
    /// Embedding size.
    fn dim(&self) -> usize;
    /// A short name for logs and tables.
    fn name(&self) -> String;

    /// The vector of one sentence.
    fn encode_one(&self, sentence: &str) -> Result<Vec<f32>> {
        let mut v = self.encode(&[sentence.to_string()])?;
        v.pop()
            .ok_or_else(|| anyhow::anyhow!("encoder {} returned no vector", self.name()))
    }
}

/// Where and how a transformer encoder runs. `stylometric` ignores both.
#[derive(Clone, Copy, Debug)]
pub struct EncoderOptions {
    pub device: tch::Device,
    /// Sentences per forward pass.
    pub batch_size: usize,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions {
            device: tch::Device::Cpu,
            batch_size: 32,
        }
    }
}

/// Loads an encoder from a spec: `stylometric`, or a sentence-transformers directory (on CPU,
/// batch 32).
pub fn load(spec: &str) -> Result<Box<dyn SentenceEncoder>> {
    load_with(spec, &EncoderOptions::default())
}

/// Like `load`, on the given device and batch size.
pub fn load_on(spec: &str, device: tch::Device) -> Result<Box<dyn SentenceEncoder>> {
    load_with(
        spec,
        &EncoderOptions {
            device,
            ..EncoderOptions::default()
        },
    )
}

/// Like `load`, with explicit options.
pub fn load_with(spec: &str, opts: &EncoderOptions) -> Result<Box<dyn SentenceEncoder>> {
    match spec {
        "stylometric" => return Ok(Box::new(stylometric::Stylometric::new())),
        "charstyle" => return Ok(Box::new(charstyle::CharStyle)),
        _ => {}
    }
    Ok(Box::new(transformer::TransformerEncoder::open(
        Path::new(spec),
        opts.device,
        opts.batch_size,
    )?))
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
