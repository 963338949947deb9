//! A sentence-transformers directory as a `SentenceEncoder`: tokenizer.json → BERT-family
//! encoder → pooling → optional L2 normalisation, in length-sorted batches without gradients.
use super::batching::run_sorted;
use super::bert::BertModel;
use super::pooling::{l2_normalize, pool, PoolMode};
use super::st_dir::StDir;
use super::SentenceEncoder;
use anyhow::{anyhow, Context, Result};
use std::path::Path;
use std::sync::Mutex;
use tch::{Device, Kind, Tensor};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

pub struct TransformerEncoder {
    name: String,
    tokenizer: Tokenizer,
    /// Tensors are Send but not Sync; the lock makes the encoder shareable across threads
    /// (libtorch already spreads one forward over all cores).
    model: Mutex<BertModel>,
    pooling: Vec<PoolMode>,
    normalize: bool,
    max_seq_length: usize,
    do_lower_case: bool,
    batch_size: usize,
    dim: usize,
}

impl TransformerEncoder {
    /// Loads the directory onto `device`; `batch_size` sentences go through the model at once.
    pub fn open(path: &Path, device: Device, batch_size: usize) -> Result<Self> {
        let dir = StDir::open(path)?;
        let mut tokenizer = Tokenizer::from_file(&dir.tokenizer)
            .map_err(|e| anyhow!("cannot load {}: {e}", dir.tokenizer.display()))?;
        // Padding is done per batch here; truncation follows max_seq_length, not tokenizer.json.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: dir.max_seq_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| anyhow!("{}: cannot set truncation: {e}", dir.tokenizer.display()))?;
        let model = BertModel::load(&dir.config, &dir.weights, device)
            .with_context(|| format!("cannot load encoder {}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| path.display().to_string());
        tracing::info!(
            "encoder {name}: {} ({} layers, hidden {}), pooling {:?}, normalize {}, max_seq_length {}",
            dir.config.model_type,
            dir.config.num_hidden_layers,
            dir.config.hidden_size,
            dir.pooling,
            dir.normalize,
            dir.max_seq_length
        );
        Ok(TransformerEncoder {
            name,
            tokenizer,
            dim: dir.config.hidden_size * dir.pooling.len(),
            model: Mutex::new(model),
            pooling: dir.pooling,
            normalize: dir.normalize,
            max_seq_length: dir.max_seq_length,
            do_lower_case: dir.do_lower_case,
            batch_size: batch_size.max(1),
        })
    }

    /// Token ids of each sentence (special tokens added, truncated to max_seq_length).
    pub fn tokenize(&self, sentences: &[String]) -> Result<Vec<Vec<u32>>> {
        let texts: Vec<String> = if self.do_lower_case {
            sentences.iter().map(|s| s.to_lowercase()).collect()
        } else {
            sentences.to_vec()
        };
        let encs = self
            .tokenizer
            .encode_batch(texts.iter().map(|s| s.as_str()).collect::<Vec<_>>(), true)
            .map_err(|e| anyhow!("tokenize: {e}"))?;
        let truncated = encs
            .iter()
            .filter(|e| !e.get_overflowing().is_empty())
            .count();
        if truncated > 0 {
            tracing::warn!(
                "{truncated} of {} inputs were longer than max_seq_length {} tokens and were truncated",
                encs.len(),
                self.max_seq_length
            );
        }
        Ok(encs.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// Pooled (and normalised, if the directory says so) vectors of one padded batch.
    fn encode_ids(&self, rows: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let model = self
            .model
            .lock()
            .map_err(|_| anyhow!("encoder lock poisoned by an earlier panic"))?;
        let b = rows.len();
        let t = rows.iter().map(|r| r.len()).max().unwrap_or(0).max(1);
        let pad = model.cfg.pad_token_id;
        let mut ids = vec![pad; b * t];
        let mut mask = vec![0i64; b * t];
        for (i, r) in rows.iter().enumerate() {
            for (j, &id) in r.iter().enumerate() {
                ids[i * t + j] = id as i64;
                mask[i * t + j] = 1;
            }
        }
        let pooled = tch::no_grad(|| {
            let ids = Tensor::from_slice(&ids)
                .view([b as i64, t as i64])
                .to_device(model.device);
            let mask = Tensor::from_slice(&mask)
                .view([b as i64, t as i64])
                .to_device(model.device);
            let hidden = model.forward(&ids, &mask);
            let v = pool(&hidden, &mask, &self.pooling);
            let v = if self.normalize { l2_normalize(&v) } else { v };
            v.to_kind(Kind::Float).to_device(Device::Cpu).contiguous()
        });
        let flat = Vec::<f32>::try_from(pooled.view([-1])).context("copying embeddings to host")?;
        Ok(flat.chunks(self.dim).map(|c| c.to_vec()).collect())
    }
}

impl SentenceEncoder for TransformerEncoder {
    fn encode(&self, sentences: &[String]) -> Result<Vec<Vec<f32>>> {
        if sentences.is_empty() {
            return Ok(Vec::new());
        }
        let ids = self.tokenize(sentences)?;
        // A row with no tokens would attend to nothing (NaN); BERT-family tokenizers always add
        // [CLS]/<s>, so this only happens with a tokenizer.json lacking its post-processor.
        if let Some(i) = ids.iter().position(|r| r.is_empty()) {
            anyhow::bail!(
                "encoder {}: input {} gave no tokens: its tokenizer.json adds no special tokens ([CLS]/<s>)",
                self.name,
                i + 1
            );
        }
        let lengths: Vec<usize> = ids.iter().map(|r| r.len()).collect();
        run_sorted(&lengths, self.batch_size, |batch| {
            let rows: Vec<&[u32]> = batch.iter().map(|&i| ids[i].as_slice()).collect();
            self.encode_ids(&rows)
        })
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}
