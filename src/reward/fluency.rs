//! The frozen base model behind R_fluency: mean per-token NLL of a text alone (the
//! evaluation's fluency measure), with the inputs' values cached (a group's G rollouts
//! share one input, and inputs come back every epoch).
use crate::adapter::load::{load_policy, ModelSection};
use crate::model::llama::Llama;
use crate::model::tokenizer::Tokenizer;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::sync::Mutex;

pub struct FluencyScorer {
    model: Llama,
    tok: Tokenizer,
    batch_size: usize,
    path: String,
    inputs: Mutex<HashMap<String, Option<f64>>>,
}

impl FluencyScorer {
    pub fn load(path: &str, batch_size: usize) -> Result<Self> {
        let section = ModelSection::cpu_f32(path.into());
        let (model, tok, _) =
            load_policy(&section).with_context(|| format!("reward.fluency.model '{path}'"))?;
        Ok(FluencyScorer {
            model,
            tok,
            batch_size,
            path: path.to_string(),
            inputs: Mutex::new(HashMap::new()),
        })
    }

    /// Mean NLL per text (`None` under 2 tokens); a non-finite value is an error.
    pub fn score(&self, texts: &[&str]) -> Result<Vec<Option<f64>>> {
        let ids: Vec<Vec<i64>> = texts
            .iter()
            .map(|t| self.tok.encode(t, true))
            .collect::<Result<_>>()?;
        let nll = crate::infer::scoring::mean_nll(&self.model, &ids, self.batch_size);
        if nll.iter().any(|x| x.is_some_and(|v| !v.is_finite())) {
            bail!(
                "reward.fluency.model '{}' gives a non-finite log-likelihood (its weights hold NaN or inf)",
                self.path
            );
        }
        Ok(nll)
    }

    /// Like [`Self::score`] for inputs, each scored once.
    pub fn score_inputs(&self, texts: &[&str]) -> Result<Vec<Option<f64>>> {
        let mut cache = self
            .inputs
            .lock()
            .map_err(|_| anyhow::anyhow!("fluency cache poisoned"))?;
        let mut new: Vec<&str> = texts
            .iter()
            .copied()
            .filter(|t| !cache.contains_key(*t))
            .collect();
        new.sort_unstable();
        new.dedup();
        if !new.is_empty() {
            for (t, v) in new.iter().zip(self.score(&new)?) {
                cache.insert(t.to_string(), v);
            }
        }
        Ok(texts.iter().map(|t| cache[*t]).collect())
    }
}
