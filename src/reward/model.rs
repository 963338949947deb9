//! `RewardModel`: every reward component of docs/method.md#r_total for a whole rollout batch.
//!
//! Build it once (encoder loaded, reference embedded, dropout rates fixed), then call
//! [`RewardModel::score_batch`] per rollout batch. R_style per text is
//! Σ_s keep_s · max_k cos(s, r_k) (or that sum / #sentences with `aggregation = "mean"`);
//! a text with no sentences scores R_style = 0. Dropout draws come from
//! `dropout::batch_rng(seed, step)` in batch order (text by text, sentence by sentence);
//! when every sentence of a text is dropped, the text gets its undropped R_style.
use super::anchor::{best_within, neighbour_set};
use super::config::{Aggregation, DropoutMode, DropoutRates, Normalise, RewardConfig, StyleTarget};
use super::dropout::{batch_rng, draw, dropout_rates, expected_surviving_max};
use super::dynamics::{dynamics, Dynamics};
use super::meaning::meaning_kept;
use super::penalties::{entity_f1, r_length, r_meaning, r_ne_overlap, r_punctuation, r_rewrite};
use super::style::StyleScorer;
use super::usage::Usage;
use crate::encoder::SentenceEncoder;
use crate::text::{count_punctuation, entity_pair, Entity};
use anyhow::{Context, Result};
use serde::Serialize;
use std::sync::Arc;

/// One rollout to score. Token counts come from the policy tokenizer (R_length is pure in them).
#[derive(Debug, Clone, Copy)]
pub struct Rollout<'a> {
    pub input: &'a str,
    pub output: &'a str,
    pub output_tokens: usize,
    pub input_tokens: usize,
}

/// One generated sentence's match.
#[derive(Debug, Clone, Serialize)]
pub struct SentenceScore {
    pub text: String,
    pub reference: usize,
    pub similarity: f64,
    pub dropout_rate: f64,
    pub dropped: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct StyleDetail {
    pub r_style_undropped: f64,
    pub n_sentences: usize,
    /// Sentences whose contribution was removed (0 when the safeguard fired).
    pub n_dropped: usize,
    /// The safeguard fired: every sentence was dropped, so dropout was cancelled.
    pub dropout_cancelled: bool,
    pub sentences: Vec<SentenceScore>,
    /// cos(sentence, r_k) for every reference k, one row per sentence (not serialised).
    #[serde(skip)]
    pub rows: Vec<Vec<f32>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LimitDetail {
    pub input: usize,
    pub output: usize,
    pub limit: f64,
    pub cache: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntityDetail {
    pub f1: f64,
    pub input: Vec<Entity>,
    pub output: Vec<Entity>,
}

/// Every component of one rollout's reward, unweighted except R_ne_overlap (which carries
/// w_ne by definition) and R_total (the weighted sum).
#[derive(Debug, Clone, Serialize)]
pub struct RewardBreakdown {
    pub r_total: f64,
    pub r_style: f64,
    pub r_length: f64,
    pub r_ne_overlap: f64,
    pub r_punctuation: f64,
    /// R_rewrite (0 when `rewrite.weight` is 0).
    pub r_rewrite: f64,
    /// R_meaning (0 when `meaning.weight` is 0).
    pub r_meaning: f64,
    /// R_balance, unweighted: mean ln-ratio of the sentences' closest references (0 when off).
    pub r_balance: f64,
    /// The guards (each carries its weight; 0 when off): facts, defects, fluency.
    pub r_facts: f64,
    pub r_defects: f64,
    pub r_fluency: f64,
    /// NLL(output) − NLL(input) under the fluency model; None when it is off.
    pub fluency_delta: Option<f64>,
    /// Edit similarity of output to input (white space collapsed).
    pub edit_similarity: f64,
    /// cos(E_c(input), E_c(output)) with the content encoder; None when none is loaded.
    pub meaning_cos: Option<f64>,
    pub style: StyleDetail,
    /// Token counts and L_max.
    pub length: LimitDetail,
    pub entities: EntityDetail,
    /// Punctuation counts and limit.
    pub punctuation: LimitDetail,
}

/// Batch means for logging.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ComponentMeans {
    pub r_total: f64,
    pub r_style: f64,
    pub r_length: f64,
    pub r_ne_overlap: f64,
    pub r_punctuation: f64,
    pub r_rewrite: f64,
    pub r_meaning: f64,
    pub r_balance: f64,
    pub r_facts: f64,
    pub r_defects: f64,
    pub r_fluency: f64,
    pub edit_similarity: f64,
    /// Mean content cosine of input and output (0 when no content encoder is loaded).
    pub meaning_cos: f64,
    /// Dropped sentences / all sentences (after the safeguard).
    pub dropped_fraction: f64,
    /// Texts whose dropout was cancelled by the safeguard / all texts.
    pub cancelled_fraction: f64,
    /// Mean dropout rate of the generated sentences' best references.
    pub mean_rate: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchScores {
    pub rewards: Vec<RewardBreakdown>,
    /// inner/outer std over all generated sentences of the batch × reference sentences.
    pub dynamics: Dynamics,
    /// Best reference of every input sentence, per rollout (filled only for usage rates or
    /// R_balance).
    pub input_best: Vec<Vec<usize>>,
    /// Closest reference over all references of every generated sentence, per rollout
    /// (filled only for R_balance; `style.sentences` hold the anchored best instead).
    pub output_best_all: Vec<Vec<usize>>,
}

impl BatchScores {
    pub fn totals(&self) -> Vec<f64> {
        self.rewards.iter().map(|r| r.r_total).collect()
    }

    /// The numbers GRPO turns into advantages: the totals, or with `normalise = "group"` each
    /// term standardised within its group of `group_size` and summed with its weight.
    pub fn for_advantages(&self, cfg: &RewardConfig, group_size: usize) -> Vec<f64> {
        if cfg.normalise == Normalise::None {
            return self.totals();
        }
        let term = |f: &dyn Fn(&RewardBreakdown) -> f64| self.rewards.iter().map(f).collect();
        // r_ne, r_rewrite, r_meaning and the guards carry their weight inside; standardising
        // removes it, so it is applied again here.
        let terms: Vec<Vec<f64>> = vec![
            term(&|r| r.r_style),
            term(&|r| r.r_length),
            term(&|r| r.r_ne_overlap),
            term(&|r| r.r_punctuation),
            term(&|r| r.r_rewrite),
            term(&|r| r.r_meaning),
            term(&|r| r.r_balance),
            term(&|r| r.r_facts),
            term(&|r| r.r_defects),
            term(&|r| r.r_fluency),
        ];
        let w = &cfg.weights;
        let weights = [
            w.style,
            w.length,
            cfg.entities.weight,
            w.punctuation,
            cfg.rewrite.weight,
            cfg.meaning.weight,
            cfg.balance.weight,
            cfg.facts.weight,
            cfg.defects.weight,
            cfg.fluency.weight,
        ];
        super::normalise::group_normalised_total(&terms, &weights, group_size)
    }

    pub fn means(&self) -> ComponentMeans {
        let n = self.rewards.len().max(1) as f64;
        let sum = |f: &dyn Fn(&RewardBreakdown) -> f64| self.rewards.iter().map(f).sum::<f64>() / n;
        let sentences: usize = self.rewards.iter().map(|r| r.style.n_sentences).sum();
        let dropped: usize = self.rewards.iter().map(|r| r.style.n_dropped).sum();
        ComponentMeans {
            r_total: sum(&|r| r.r_total),
            r_style: sum(&|r| r.r_style),
            r_length: sum(&|r| r.r_length),
            r_ne_overlap: sum(&|r| r.r_ne_overlap),
            r_punctuation: sum(&|r| r.r_punctuation),
            r_rewrite: sum(&|r| r.r_rewrite),
            r_meaning: sum(&|r| r.r_meaning),
            r_balance: sum(&|r| r.r_balance),
            r_facts: sum(&|r| r.r_facts),
            r_defects: sum(&|r| r.r_defects),
            r_fluency: sum(&|r| r.r_fluency),
            edit_similarity: sum(&|r| r.edit_similarity),
            meaning_cos: sum(&|r| r.meaning_cos.unwrap_or(0.0)),
            dropped_fraction: if sentences > 0 {
                dropped as f64 / sentences as f64
            } else {
                0.0
            },
            cancelled_fraction: sum(&|r| r.style.dropout_cancelled as i32 as f64),
            mean_rate: if sentences > 0 {
                let rates = self.rewards.iter().flat_map(|r| &r.style.sentences);
                rates.map(|s| s.dropout_rate).sum::<f64>() / sentences as f64
            } else {
                0.0
            },
        }
    }
}

pub struct RewardModel {
    pub cfg: RewardConfig,
    pub style: StyleScorer,
    /// Static dropout rate of each reference sentence (all 0 when dropout is disabled).
    pub rates: Vec<f64>,
    /// Running best-match counts behind `rates = "usage"` (None otherwise).
    pub usage: Option<Usage>,
    /// Running closest-reference counts behind R_balance (None when it is off).
    pub balance: Option<Usage>,
    /// The content encoder of R_meaning (loaded only when `meaning.weight` > 0).
    pub content: Option<Arc<dyn SentenceEncoder>>,
    /// Word runs of the reference, for R_defects' copied-passage check.
    pub reference_runs: crate::text::defects::ReferenceRuns,
    /// The frozen base model of R_fluency (loaded only when `fluency.weight` > 0).
    pub fluency: Option<super::fluency::FluencyScorer>,
}

/// Reads the reference files of `cfg` and splits them into sentences, in file order.
pub fn load_reference_sentences(cfg: &RewardConfig) -> Result<Vec<String>> {
    if cfg.reference.is_empty() {
        anyhow::bail!("reward.reference is empty: list one or more reference text files, e.g. reference = [\"datasets/reference/whimsical_tale.txt\"]");
    }
    let mut out = Vec::new();
    for p in &cfg.reference {
        let t = std::fs::read_to_string(p).with_context(|| format!("cannot read reward.reference file {}: check the path (relative to the working directory)", p.display()))?;
        out.extend(crate::text::sentences(&t));
    }
    Ok(out)
}

impl RewardModel {
    /// Loads the encoder named by `cfg.encoder` and the reference files.
    pub fn from_config(cfg: &RewardConfig) -> Result<Self> {
        cfg.validate()?;
        let refs = load_reference_sentences(cfg)?;
        let opts = crate::encoder::EncoderOptions {
            device: crate::util::parse_device(&cfg.encoder_device)
                .context("reward.encoder_device")?,
            batch_size: cfg.encoder_batch_size,
        };
        let enc = crate::encoder::load_with(&cfg.encoder, &opts)
            .with_context(|| format!("reward.encoder '{}'", cfg.encoder))?;
        let enc: Arc<dyn SentenceEncoder> = Arc::from(enc);
        let mut m = Self::with_encoder(cfg, enc, refs)?;
        if cfg.meaning.weight > 0.0 {
            let c = crate::encoder::load_with(&cfg.meaning.encoder, &opts)
                .with_context(|| format!("reward.meaning.encoder '{}'", cfg.meaning.encoder))?;
            m.content = Some(Arc::from(c));
        }
        if cfg.fluency.weight > 0.0 {
            m.fluency = Some(super::fluency::FluencyScorer::load(
                &cfg.fluency.model,
                cfg.fluency.batch_size,
            )?);
        }
        Ok(m)
    }

    /// Sets the content encoder of R_meaning (a fake in tests).
    pub fn with_content(mut self, content: Arc<dyn SentenceEncoder>) -> Self {
        self.content = Some(content);
        self
    }

    /// With an encoder already loaded (shared with evaluation, or a fake in tests).
    pub fn with_encoder(
        cfg: &RewardConfig,
        encoder: Arc<dyn SentenceEncoder>,
        references: Vec<String>,
    ) -> Result<Self> {
        cfg.validate()?;
        let style = StyleScorer::new(encoder, references, cfg.cache_size)?;
        let d = &cfg.dropout;
        let k = style.references().len();
        let rates = if d.enabled && d.rates == DropoutRates::Static {
            dropout_rates(style.reference_similarity(), d.gamma, d.eps_min, d.eps_max)
        } else {
            vec![0.0; k]
        };
        let usage = (d.enabled && d.rates == DropoutRates::Usage).then(|| Usage::new(k));
        let balance = (cfg.balance.weight > 0.0).then(|| Usage::new(k));
        let reference_runs =
            crate::text::defects::ReferenceRuns::from_sentences(style.references());
        Ok(RewardModel {
            cfg: cfg.clone(),
            style,
            rates,
            usage,
            balance,
            content: None,
            reference_runs,
            fluency: None,
        })
    }

    /// The dropout rate of each reference for the next batch: the static rates, or the usage
    /// rates from the counts so far.
    pub fn current_rates(&self) -> Vec<f64> {
        let d = &self.cfg.dropout;
        match &self.usage {
            Some(u) => u.rates(d.prior, d.eps_min, d.eps_max),
            None => self.rates.clone(),
        }
    }

    /// Adds a scored batch to the usage counts and the R_balance counts (a no-op when neither
    /// is on). Call it once per rollout batch, after [`Self::score_batch`], so the batch's
    /// own rates and ratios never saw it.
    pub fn observe_usage(&mut self, scores: &BatchScores) {
        let inputs: Vec<usize> = scores.input_best.iter().flatten().copied().collect();
        if let Some(b) = &mut self.balance {
            let outputs: Vec<usize> = scores.output_best_all.iter().flatten().copied().collect();
            b.observe(self.cfg.balance.decay, &outputs, &inputs);
        }
        let decay = self.cfg.dropout.decay;
        if let Some(u) = &mut self.usage {
            let generated: Vec<usize> = scores
                .rewards
                .iter()
                .flat_map(|r| r.style.sentences.iter().map(|s| s.reference))
                .collect();
            u.observe(decay, &generated, &inputs);
        }
    }

    /// Scores a rollout batch; `step` keys the dropout draws (same seed and step, same draws).
    /// Call it once per rollout batch: two calls with the same `step` reuse the same random
    /// stream, so a caller that splits a batch must give each part its own key.
    pub fn score_batch(&self, rollouts: &[Rollout], step: u64) -> Result<BatchScores> {
        let outputs: Vec<&str> = rollouts.iter().map(|r| r.output).collect();
        let mut matches = self.style.match_texts(&outputs)?;
        let neighbours = self.cfg.style_target == StyleTarget::Neighbours;
        let counted = self.usage.is_some() || self.balance.is_some();
        let anchors = if neighbours || counted {
            let inputs: Vec<&str> = rollouts.iter().map(|r| r.input).collect();
            self.style.match_texts(&inputs)?
        } else {
            Vec::new()
        };
        let input_best: Vec<Vec<usize>> = if counted {
            anchors.iter().map(|a| a.best.clone()).collect()
        } else {
            Vec::new()
        };
        // Taken before anchoring narrows `best`: R_balance counts the closest of all
        // references, as style vector consistency does.
        let output_best_all: Vec<Vec<usize>> = match &self.balance {
            Some(_) => matches.iter().map(|m| m.best.clone()).collect(),
            None => Vec::new(),
        };
        let ratios: Option<Vec<f64>> = self
            .balance
            .as_ref()
            .map(|b| b.log_ratios(self.cfg.balance.prior, self.cfg.balance.clip));
        // The references each text may match (empty = all of them).
        let mut allowed_sets: Vec<Vec<usize>> = vec![Vec::new(); matches.len()];
        if neighbours {
            for ((m, a), allowed) in matches.iter_mut().zip(&anchors).zip(&mut allowed_sets) {
                *allowed = neighbour_set(&a.rows, self.cfg.neighbours);
                for (j, row) in m.rows.iter().enumerate() {
                    let (k, sim) = best_within(row, allowed);
                    m.best[j] = k;
                    m.best_sim[j] = sim;
                }
            }
        }
        let meaning: Vec<Option<f64>> = match &self.content {
            Some(c) => {
                let pairs: Vec<(&str, &str)> =
                    rollouts.iter().map(|r| (r.input, r.output)).collect();
                meaning_kept(c.as_ref(), &pairs)?.into_iter().map(Some).collect()
            }
            None if self.cfg.meaning.weight > 0.0 => anyhow::bail!(
                "reward.meaning.weight > 0 but no content encoder is loaded (reward.meaning.encoder)"
            ),
            None => vec![None; rollouts.len()],
        };
        // R_fluency's NLLs (outputs each time, inputs once): only with the guard on.
        let (fl_out, fl_in): (Vec<Option<f64>>, Vec<Option<f64>>) = match &self.fluency {
            Some(f) => {
                let inputs: Vec<&str> = rollouts.iter().map(|r| r.input).collect();
                (f.score(&outputs)?, f.score_inputs(&inputs)?)
            }
            None if self.cfg.fluency.weight > 0.0 => anyhow::bail!(
                "reward.fluency.weight > 0 but no fluency model is loaded (reward.fluency.model)"
            ),
            None => (vec![None; rollouts.len()], vec![None; rollouts.len()]),
        };
        let rates = self.current_rates();
        let mut rng = batch_rng(self.cfg.dropout.seed, step);
        let mut all_rows: Vec<Vec<f32>> = Vec::new();
        let mut rewards = Vec::with_capacity(rollouts.len());
        let mode = self.cfg.dropout.mode;
        for (i, (((ro, m), meaning_cos), allowed)) in rollouts
            .iter()
            .zip(matches)
            .zip(meaning)
            .zip(&allowed_sets)
            .enumerate()
        {
            let mut sentences: Vec<SentenceScore> = m
                .sentences
                .iter()
                .zip(m.best.iter().zip(&m.best_sim))
                .map(|(text, (&k, &sim))| {
                    let rate = rates[k];
                    SentenceScore {
                        text: text.clone(),
                        reference: k,
                        similarity: sim as f64,
                        dropout_rate: rate,
                        dropped: draw(&mut rng, rate),
                    }
                })
                .collect();
            let n = sentences.len();
            let full: f64 = sentences.iter().map(|s| s.similarity).sum();
            let sampled = mode == DropoutMode::Sample;
            let cancelled = sampled && n > 0 && sentences.iter().all(|s| s.dropped);
            if cancelled || !sampled {
                sentences.iter_mut().for_each(|s| s.dropped = false);
            }
            let n_dropped = sentences.iter().filter(|s| s.dropped).count();
            let kept: f64 = match mode {
                DropoutMode::Expected => sentences
                    .iter()
                    .map(|s| s.similarity * (1.0 - s.dropout_rate))
                    .sum(),
                DropoutMode::Fallback => m
                    .rows
                    .iter()
                    .map(|row| {
                        let cand = |k: usize| (row[k] as f64, rates[k]);
                        let c: Vec<(f64, f64)> = if allowed.is_empty() {
                            (0..row.len()).map(cand).collect()
                        } else {
                            allowed.iter().map(|&k| cand(k)).collect()
                        };
                        expected_surviving_max(&c)
                    })
                    .sum(),
                DropoutMode::Sample => sentences
                    .iter()
                    .filter(|s| !s.dropped)
                    .map(|s| s.similarity)
                    .sum(),
            };
            let denom = match self.cfg.aggregation {
                Aggregation::Sum => 1.0,
                Aggregation::Mean => n.max(1) as f64,
            };
            let (r_style, r_style_undropped) = (kept / denom, full / denom);
            let r_bal = match (&ratios, output_best_all.get(i)) {
                (Some(lr), Some(best)) if !best.is_empty() => {
                    best.iter().map(|&k| lr[k]).sum::<f64>() / best.len() as f64
                }
                _ => 0.0,
            };
            all_rows.extend(m.rows.iter().cloned());

            let (r_len, len_limit, len_cache) =
                r_length(&self.cfg.length, ro.input_tokens, ro.output_tokens);
            let (p_in, p_out) = (count_punctuation(ro.input), count_punctuation(ro.output));
            let (r_punct, p_limit, p_cache) = r_punctuation(&self.cfg.punctuation, p_in, p_out);
            let (e_in, e_out) = entity_pair(ro.input, ro.output);
            let norms = |e: &[Entity]| e.iter().map(|x| x.norm.clone()).collect::<Vec<_>>();
            let f1 = entity_f1(&norms(&e_in), &norms(&e_out));
            let r_ne = r_ne_overlap(self.cfg.entities.weight, f1);
            let edit = crate::text::edit_similarity(ro.input, ro.output);
            let r_rw = r_rewrite(&self.cfg.rewrite, edit);
            let r_mn = meaning_cos.map_or(0.0, |c| r_meaning(&self.cfg.meaning, c));
            let facts = crate::text::facts::check_facts(ro.input, ro.output);
            let defects =
                crate::text::defects::find_defects(ro.input, ro.output, &self.reference_runs, None);
            let r_fa = super::guards::r_facts(&self.cfg.facts, &facts);
            let r_de = super::guards::r_defects(&self.cfg.defects, &defects);
            let r_fl = super::guards::r_fluency(&self.cfg.fluency, fl_out[i], fl_in[i]);
            let w = &self.cfg.weights;
            let r_total = w.style * r_style
                + w.length * r_len
                + r_ne
                + w.punctuation * r_punct
                + r_rw
                + r_mn
                + self.cfg.balance.weight * r_bal
                + r_fa
                + r_de
                + r_fl;
            rewards.push(RewardBreakdown {
                r_total,
                r_style,
                r_length: r_len,
                r_ne_overlap: r_ne,
                r_punctuation: r_punct,
                r_rewrite: r_rw,
                r_meaning: r_mn,
                r_balance: r_bal,
                r_facts: r_fa,
                r_defects: r_de,
                r_fluency: r_fl,
                fluency_delta: fl_out[i].zip(fl_in[i]).map(|(o, i)| o - i),
                edit_similarity: edit,
                meaning_cos,
                style: StyleDetail {
                    r_style_undropped,
                    n_sentences: n,
                    n_dropped,
                    dropout_cancelled: cancelled,
                    sentences,
                    rows: m.rows,
                },
                length: LimitDetail {
                    input: ro.input_tokens,
                    output: ro.output_tokens,
                    limit: len_limit,
                    cache: len_cache,
                },
                entities: EntityDetail {
                    f1,
                    input: e_in,
                    output: e_out,
                },
                punctuation: LimitDetail {
                    input: p_in,
                    output: p_out,
                    limit: p_limit,
                    cache: p_cache,
                },
            });
        }
        Ok(BatchScores {
            rewards,
            dynamics: dynamics(&all_rows),
            input_best,
            output_best_all,
        })
    }
}
