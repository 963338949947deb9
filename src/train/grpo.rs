//! `stylerl grpo`: Dr.GRPO without KL (docs/method.md#drgrpo).
//!
//! A step: P prompts × G completions sampled in one batched call with prefix sharing →
//! rewards for the whole rollout in one encoder call → advantages r − mean(group) →
//! μ optimizer steps, each one full-batch gradient of the clipped surrogate normalised by
//! the constant B·L_max, accumulated over micro-batches (so their size cannot change it).
//! π_old is the policy that generated the batch: its log-probs are the ones `generate`
//! reported while sampling (same temperature path), or with `old_logprobs = "recompute"`
//! one no-grad scoring pass. Scoring runs each prompt once and shares its keys/values
//! with the prompt's G completions, gradients included.
use super::batch::pad_completions;
use super::checkpoint::{self, DataPosition, TrainerState};
use super::example_prompts::run_turns;
use super::grpo_config::{GrpoConfig, OldLogprobs};
use super::guard::NanGuard;
use super::loss::{advantages, grpo_loss, reward_stats, GrpoLossConfig, GrpoStats};
use super::metrics::MetricsWriter;
use super::optim::{clip_grad_norm, AdamW};
use super::schedule::Schedule;
use crate::adapter::attach as adapters;
use crate::adapter::load::load_policy;
use crate::adapter::lora::{trainable_line, LoraAdapter, Quant};
use crate::infer::generate::{eos_ids, pad_id};
use crate::infer::generate::{generate_with_stats, left_pad, GenerateConfig, Sample};
use crate::infer::sampling::SamplingConfig;
use crate::infer::scoring::shared_prompt_logprobs;
use crate::model::chat::ChatMessage;
use crate::model::precision::{choice_line, Precision};
use crate::model::{Llama, Tokenizer};
use crate::report::Report;
use crate::reward::usage::Usage;
use crate::reward::{BatchScores, RewardModel, Rollout};
use crate::rng::{epoch_order, step_seed, SplitMix64};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Instant;
use tch::Tensor;

/// One rollout batch, ready for the loss: rows are prompt-major (prompt p's G samples are
/// rows p·G .. (p+1)·G), and each prompt is stored once.
pub struct RolloutBatch {
    /// [P, Lp] left-padded prompts and their mask (1 = real token).
    pub prompt_ids: Tensor,
    pub prompt_mask: Tensor,
    /// [B, Lc] right-padded completions.
    pub completion_ids: Tensor,
    /// [B, Lc] f32, 1 on completion tokens.
    pub mask: Tensor,
    /// G: completions per prompt.
    pub group: i64,
}

/// Lays prompts and completions out for scoring. `completions[r]` belongs to prompt r / G.
pub fn build_batch(
    prompts: &[Vec<i64>],
    completions: &[Vec<i64>],
    g: usize,
    pad: i64,
    lmax: usize,
    device: tch::Device,
) -> RolloutBatch {
    let rows: Vec<&[i64]> = prompts.iter().map(|p| p.as_slice()).collect();
    let (p_ids, p_mask) = left_pad(&rows, pad);
    let (c_ids, c_mask) = pad_completions(completions, pad, lmax, device);
    RolloutBatch {
        prompt_ids: p_ids.to_device(device),
        prompt_mask: p_mask.to_device(device),
        completion_ids: c_ids,
        mask: c_mask,
        group: g as i64,
    }
}

/// Completion log-probs [len, Lc] of rows `start..start+len` at temperature `t`; each
/// prompt the rows continue runs once (see [`shared_prompt_logprobs`]).
fn score_rows(model: &Llama, b: &RolloutBatch, start: i64, len: i64, t: f64) -> Tensor {
    let first = start / b.group;
    let last = (start + len - 1) / b.group;
    let rows: Vec<i64> = (start..start + len).map(|r| r / b.group - first).collect();
    shared_prompt_logprobs(
        model,
        &b.prompt_ids.narrow(0, first, last - first + 1),
        &b.prompt_mask.narrow(0, first, last - first + 1),
        &Tensor::from_slice(&rows),
        &b.completion_ids.narrow(0, start, len),
        &b.mask.narrow(0, start, len),
        t,
    )
}

/// π_old's log-probs [B, width] as `generate` reported them while sampling (0 past the end).
pub fn generation_logprobs(samples: &[Sample], width: i64, device: tch::Device) -> Tensor {
    let w = width as usize;
    let mut out = vec![0f32; samples.len() * w];
    for (r, s) in samples.iter().enumerate() {
        for (j, &lp) in s.logprobs.iter().take(w).enumerate() {
            out[r * w + j] = lp;
        }
    }
    Tensor::from_slice(&out)
        .view([samples.len() as i64, width])
        .to_device(device)
}

/// Replaces running reference counts with the ones a checkpoint saved under `key` (left as
/// they are when the run keeps none, or the checkpoint has none).
fn restore_counts(slot: &mut Option<Usage>, extra: &serde_json::Value, key: &str) -> Result<()> {
    if let (Some(counts), Some(saved)) = (slot.as_mut(), extra.get(key)) {
        *counts = serde_json::from_value(saved.clone()).with_context(|| {
            format!("the checkpoint's {key} counts are unreadable: start the run again without --resume")
        })?;
    }
    Ok(())
}

/// What a GRPO result depends on (see [`checkpoint::Fingerprint`]).
pub fn fingerprint(cfg: &GrpoConfig) -> checkpoint::Fingerprint {
    use serde_json::json;
    let g = &cfg.grpo;
    let mut f = checkpoint::Fingerprint::new();
    checkpoint::put(&mut f, "kind", json!("grpo"));
    checkpoint::put(&mut f, "model.path", json!(cfg.model.path));
    checkpoint::put(&mut f, "model.adapters", json!(cfg.model.adapters));
    checkpoint::put(&mut f, "model.dtype", json!(cfg.model.dtype));
    checkpoint::put(&mut f, "lora", json!(cfg.lora));
    checkpoint::put(&mut f, "grpo.bitlora", json!(g.bitlora));
    checkpoint::put(&mut f, "data.train", json!(cfg.data.train));
    checkpoint::put(&mut f, "data.field", json!(cfg.data.field));
    // 0 stands for "every input", as before limit became optional (fingerprints stay equal).
    checkpoint::put(&mut f, "data.limit", json!(cfg.data.limit.unwrap_or(0)));
    checkpoint::put(&mut f, "data.instruction", json!(cfg.data.instruction));
    // Only when set, so runs without examples keep their earlier fingerprints.
    if cfg.data.examples > 0 {
        checkpoint::put(&mut f, "data.examples", json!(cfg.data.examples));
        checkpoint::put(
            &mut f,
            "data.example_template",
            json!(cfg.data.example_template),
        );
        checkpoint::put(&mut f, "data.example_seed", json!(cfg.data.example_seed));
    }
    // Each reward setting under its own key (a changed one is named on --resume), and the
    // whole as debug text, which checkpoints written before the per-key form hold alone.
    checkpoint::put(
        &mut f,
        "reward",
        serde_json::to_value(&cfg.reward).unwrap_or_default(),
    );
    f.insert("reward".into(), json!(format!("{:?}", cfg.reward)));
    checkpoint::put_weights(&mut f, &cfg.model);
    checkpoint::put(&mut f, "grpo.optimizer", json!(g.optimizer));
    for (k, v) in [
        ("schedule", json!(g.schedule)),
        ("warmup_steps", json!(g.warmup_steps)),
        ("max_grad_norm", json!(g.max_grad_norm)),
        ("steps", json!(g.steps)),
        ("prompts_per_step", json!(g.prompts_per_step)),
        ("num_generations", json!(g.num_generations)),
        ("max_completion_length", json!(g.max_completion_length)),
        ("temperature", json!(g.temperature)),
        ("top_p", json!(g.top_p)),
        ("top_k", json!(g.top_k)),
        ("ppo_epochs", json!(g.ppo_epochs)),
        ("eps_low", json!(g.eps_low)),
        ("eps_high", json!(g.eps_high)),
        ("beta", json!(g.beta)),
        ("seed", json!(g.seed)),
    ] {
        checkpoint::put(&mut f, &format!("grpo.{k}"), v);
    }
    f
}

/// The policy being trained: the model with the trainable adapter attached.
pub struct Policy {
    pub model: Llama,
    pub tok: Tokenizer,
    pub adapter: LoraAdapter,
    pub eos: Vec<i64>,
    pub pad: i64,
}

/// Everything a GRPO run holds between steps.
pub struct GrpoTrainer {
    pub cfg: GrpoConfig,
    pub pol: Policy,
    pub rm: RewardModel,
    pub texts: Vec<String>,
    prompts: Vec<Vec<i64>>,
    input_tokens: Vec<usize>,
    params: Vec<Tensor>,
    pub optim: AdamW,
    sched: Schedule,
    pub state: TrainerState,
    guard: NanGuard,
    order: Vec<usize>,
}

impl GrpoTrainer {
    /// Loads the policy, reward model and data, and attaches a fresh adapter.
    pub fn new(cfg: &GrpoConfig) -> Result<Self> {
        let g = &cfg.grpo;
        if g.prompts_per_step == 0
            || g.num_generations == 0
            || g.micro_batch_size == 0
            || g.ppo_epochs == 0
        {
            bail!("grpo.prompts_per_step, num_generations, micro_batch_size and ppo_epochs must be ≥ 1");
        }
        if g.beta > 0.0 && !cfg.model.adapters.is_empty() {
            bail!("grpo.beta > 0 uses the adapter-disabled model as reference, which would also drop model.adapters: merge them first (stylerl merge)");
        }
        let (mut model, tok, tpl) = load_policy(&cfg.model)?;
        let rm = RewardModel::from_config(&cfg.reward).context("reward")?;
        let mut texts = crate::data::load_texts(&cfg.data.train, Some(&cfg.data.field))?;
        if let Some(l) = cfg.data.limit {
            texts.truncate(l);
        }
        if texts.is_empty() {
            bail!("{}: no inputs to rewrite", cfg.data.train.display());
        }
        // The reference sentences the reward model loaded are the examples' pool.
        let d = &cfg.data;
        let turns = run_turns(
            d.prompt_template(),
            d.examples,
            d.example_seed,
            rm.style.references(),
            &texts,
        );
        let prompts: Vec<Vec<i64>> = turns
            .iter()
            .map(|u| tok.encode(&tpl.render(&[ChatMessage::new("user", u)], true)?, false))
            .collect::<Result<_>>()?;
        // A prompt and its longest completion must fit the context (name the row if not).
        let ctx = model.config.max_position_embeddings as usize;
        if let Some((i, p)) = prompts
            .iter()
            .enumerate()
            .find(|(_, p)| p.len() + g.max_completion_length > ctx)
        {
            bail!(
                "{} row {}: prompt of {} tokens + grpo.max_completion_length {} is more than the model's context of {ctx} (max_position_embeddings): shorten the input or lower max_completion_length",
                cfg.data.train.display(),
                i + 1,
                p.len(),
                g.max_completion_length
            );
        }
        // A rollout samples P × G completions at once (P cycles through the inputs, so it
        // is not capped by their number): its KV cache and logits must fit in memory.
        {
            let c = &model.config;
            let rows = g.prompts_per_step as f64 * g.num_generations as f64;
            let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
            let seq = (longest + g.max_completion_length) as f64;
            let elem = if model.kind == tch::Kind::Float {
                4.0
            } else {
                2.0
            };
            let cache = c.num_hidden_layers as f64
                * 2.0
                * rows
                * seq
                * (c.num_key_value_heads * c.head_dim) as f64
                * elem;
            let logits = rows * 16.0 * c.vocab_size as f64;
            crate::util::check_fits(
                cache + logits,
                &format!(
                    "a rollout of grpo.prompts_per_step {} × grpo.num_generations {} = {rows} completions of up to {seq} tokens",
                    g.prompts_per_step, g.num_generations
                ),
                "lower grpo.prompts_per_step, grpo.num_generations or grpo.max_completion_length",
            )?;
        }
        let input_tokens: Vec<usize> = texts
            .iter()
            .map(|t| tok.encode(t, false).map(|v| v.len()))
            .collect::<Result<_>>()?;

        // Adapter init (A) draws from torch's RNG: seed it so runs are reproducible.
        tch::manual_seed(step_seed(g.seed, u64::MAX));
        let quant = if g.bitlora {
            Quant::Ternary
        } else {
            Quant::None
        };
        let adapter = adapters::new_trainable(&mut model, &cfg.lora, quant)?;
        let (eos, pad) = (
            eos_ids(&model.config, Some(&tok)),
            pad_id(&model.config, Some(&tok)),
        );
        let params = adapter.parameters();
        let optim = AdamW::new(adapter.parameters(), g.optimizer);
        let sched = Schedule {
            kind: g.schedule,
            base_lr: g.optimizer.lr,
            warmup_steps: g.warmup_steps,
            total_steps: g.steps * g.ppo_epochs as u64,
        };
        let state = TrainerState {
            step: 0,
            scheduler_step: 0,
            seed: g.seed,
            rng: SplitMix64::new(g.seed),
            data: DataPosition {
                epoch: 0,
                index: 0,
                order_seed: g.seed,
            },
            extra: serde_json::Value::Null,
        };
        let order = epoch_order(g.seed, 0, texts.len());
        Ok(GrpoTrainer {
            cfg: cfg.clone(),
            pol: Policy {
                model,
                tok,
                adapter,
                eos,
                pad,
            },
            rm,
            texts,
            prompts,
            input_tokens,
            params,
            optim,
            sched,
            state,
            guard: NanGuard::new(g.nan_patience, "grpo.nan_patience"),
            order,
        })
    }

    /// PEFT's trainable-parameter line for this run.
    pub fn trainable_line(&self) -> String {
        let n = self.pol.adapter.num_parameters();
        trainable_line(n, adapters::base_parameter_count(&self.pol.model) + n)
    }

    /// Restores the newest checkpoint under `root`, if any.
    pub fn resume(&mut self, root: &std::path::Path) -> Result<bool> {
        Ok(self.resume_checked(root, false)?.is_some())
    }

    /// [`Self::resume`], refusing a checkpoint of a different run (`anyway`: more steps are
    /// fine); the checkpoint resumed from and its step, if any.
    pub fn resume_checked(
        &mut self,
        root: &std::path::Path,
        anyway: bool,
    ) -> Result<Option<(std::path::PathBuf, u64)>> {
        let fp = fingerprint(&self.cfg);
        let loaded = checkpoint::load_latest_checked(
            root,
            &self.pol.adapter,
            &mut self.optim,
            &fp,
            "grpo.steps",
            self.cfg.grpo.steps,
            anyway,
        )?;
        match loaded {
            Some((dir, s)) => {
                self.order = epoch_order(s.data.order_seed, s.data.epoch, self.texts.len());
                // The NaN streak continues across a resume, as in SFT.
                if let Some(saved) = NanGuard::saved_in(&s.extra)? {
                    self.guard = self.guard.resumed(&saved);
                } else if let Some(n) = s.extra.get("nan_total").and_then(|v| v.as_u64()) {
                    self.guard.total = n;
                }
                // Usage-keyed dropout and R_balance continue from the saved counts.
                restore_counts(&mut self.rm.usage, &s.extra, "style_usage")?;
                restore_counts(&mut self.rm.balance, &s.extra, "style_balance")?;
                let step = s.step;
                self.state = s;
                Ok(Some((dir, step)))
            }
            None => Ok(None),
        }
    }

    /// What a checkpoint keeps besides tensors and positions: the NaN guard, the config
    /// fingerprint, the usage-keyed dropout counts and the R_balance counts.
    pub fn checkpoint_extra(&self) -> serde_json::Value {
        serde_json::json!({"nan_total": self.guard.total, "nan_guard": self.guard,
            "fingerprint": fingerprint(&self.cfg), "style_usage": self.rm.usage,
            "style_balance": self.rm.balance})
    }

    /// The next P prompt indices (a pure function of seed, epoch and index, so resume replays them).
    fn next_prompts(&mut self) -> Vec<usize> {
        let mut idx = Vec::with_capacity(self.cfg.grpo.prompts_per_step);
        while idx.len() < self.cfg.grpo.prompts_per_step {
            let d = &mut self.state.data;
            if d.index as usize >= self.order.len() {
                d.epoch += 1;
                d.index = 0;
                self.order = epoch_order(d.order_seed, d.epoch, self.texts.len());
            }
            idx.push(self.order[self.state.data.index as usize]);
            self.state.data.index += 1;
        }
        idx
    }

    /// The kind of the weights rollouts sample with (None: the model's own, adapters unmerged).
    pub fn sampling_kind(&self) -> Option<tch::Kind> {
        let g = &self.cfg.grpo;
        let m = &self.pol.model;
        Precision::parse(&g.sampling_weights)
            .ok()
            .and_then(|p| p.for_sampling(m.device, m.kind))
            .or(g.merge_for_generation.then_some(m.kind))
    }

    /// One GRPO step: rollout, rewards, μ updates. Returns the metrics record and the samples.
    pub fn step(&mut self) -> Result<(serde_json::Value, Vec<serde_json::Value>)> {
        let g = self.cfg.grpo.clone();
        let step = self.state.step;
        let t_step = Instant::now();
        tch::manual_seed(step_seed(g.seed, step));
        let idx = self.next_prompts();
        let step_prompts: Vec<Vec<i64>> = idx.iter().map(|&i| self.prompts[i].clone()).collect();

        // 1. Generation (no dropout, no grad), prefix shared by each prompt's G samples.
        let t0 = Instant::now();
        self.pol.adapter.set_training(false);
        let gen_cfg = GenerateConfig::for_model(&self.pol.model.config, Some(&self.pol.tok))
            .max_new_tokens(g.max_completion_length)
            .sampling(SamplingConfig {
                greedy: false,
                temperature: g.temperature,
                top_k: g.top_k,
                top_p: g.top_p,
            })
            .seed(step_seed(g.seed, step) as u64);
        let sampling = self.sampling_kind();
        self.pol.model.prepare_sampling(sampling);
        let generated = tch::no_grad(|| {
            generate_with_stats(&self.pol.model, &step_prompts, g.num_generations, &gen_cfg)
        });
        // Training passes need the adapter unmerged (its gradients, and it changes).
        self.pol.model.prepare_sampling(None);
        let (gen, gstats) = generated?;
        let t_gen = t0.elapsed().as_secs_f64();
        let completions: Vec<Vec<i64>> = gen.iter().map(|s| s.tokens.clone()).collect();
        let truncated: Vec<bool> = gen.iter().map(|s| !s.stopped_at_eos).collect();

        // 2. Rewards for the whole rollout in one encoder call.
        let t1 = Instant::now();
        let outputs: Vec<String> = completions
            .iter()
            .map(|c| self.pol.tok.decode(c, true).map(|s| s.trim().to_string()))
            .collect::<Result<_>>()?;
        let rollouts: Vec<Rollout> = gen
            .iter()
            .zip(&outputs)
            .map(|(s, o)| {
                let i = idx[s.prompt_index];
                Rollout {
                    input: &self.texts[i],
                    output: o,
                    output_tokens: s.tokens.len(),
                    input_tokens: self.input_tokens[i],
                }
            })
            .collect();
        let scores = self.rm.score_batch(&rollouts, step)?;
        self.rm.observe_usage(&scores);
        let rewards = scores.totals();
        let for_adv = scores.for_advantages(&self.cfg.reward, g.num_generations);
        let t_reward = t1.elapsed().as_secs_f64();

        // 3. Updates.
        let t2 = Instant::now();
        let adv = advantages(
            &Tensor::from_slice(&for_adv),
            g.num_generations as i64,
            g.std_scale,
        )?
        .to_device(self.pol.model.device);
        let batch = build_batch(
            &step_prompts,
            &completions,
            g.num_generations,
            self.pol.pad,
            g.max_completion_length,
            self.pol.model.device,
        );
        let old = (g.old_logprobs == OldLogprobs::Generation)
            .then(|| generation_logprobs(&gen, batch.mask.size()[1], self.pol.model.device));
        let (upd, skipped) = self.update(&batch, old, &adv, &g, step)?;
        let t_train = t2.elapsed().as_secs_f64();
        self.state.step = step + 1;

        let rec = step_record(
            &self.state,
            &rewards,
            &scores,
            &completions,
            &truncated,
            &upd,
            skipped,
            g.num_generations,
            gstats.new_tokens as f64 / t_step.elapsed().as_secs_f64(),
            (t_gen, t_reward, t_train),
        );
        let dump = gen
            .iter()
            .zip(&outputs)
            .enumerate()
            .map(|(r, (s, o))| {
                let b = &scores.rewards[r];
                serde_json::json!({"step": self.state.step, "prompt": self.texts[idx[s.prompt_index]], "completion": o, "truncated": truncated[r],
                    "reward": b.r_total, "r_style": b.r_style, "r_length": b.r_length, "r_ne_overlap": b.r_ne_overlap, "r_punctuation": b.r_punctuation, "r_rewrite": b.r_rewrite, "r_meaning": b.r_meaning, "r_balance": b.r_balance, "r_facts": b.r_facts, "r_defects": b.r_defects, "r_fluency": b.r_fluency, "fluency_delta": b.fluency_delta,
                    "advantage": adv.double_value(&[r as i64]), "sentences": b.style.sentences})
            })
            .collect();
        Ok((rec, dump))
    }

    /// The μ optimizer updates of one rollout batch; returns their stats and how many the
    /// NaN guard skipped.
    fn update(
        &mut self,
        batch: &RolloutBatch,
        old: Option<Tensor>,
        adv: &Tensor,
        g: &super::grpo_config::GrpoSection,
        step: u64,
    ) -> Result<(UpdateStats, u64)> {
        let b = batch.completion_ids.size()[0];
        let mb = g.micro_batch_size as i64;
        let lcfg = GrpoLossConfig {
            eps_low: g.eps_low,
            eps_high: g.eps_high,
            beta: g.beta,
            num_completions: b,
            max_completion_length: g.max_completion_length as i64,
        };
        let chunks: Vec<(i64, i64)> = (0..b)
            .step_by(mb as usize)
            .map(|s| (s, mb.min(b - s)))
            .collect();
        let old: Vec<Tensor> = match old {
            Some(o) => chunks.iter().map(|&(s, n)| o.narrow(0, s, n)).collect(),
            None => tch::no_grad(|| {
                chunks
                    .iter()
                    .map(|&(s, n)| score_rows(&self.pol.model, batch, s, n, g.temperature))
                    .collect()
            }),
        };
        let reference: Option<Vec<Tensor>> = (g.beta > 0.0).then(|| {
            self.pol.model.set_adapters_enabled(false);
            let r = tch::no_grad(|| {
                chunks
                    .iter()
                    .map(|&(s, n)| score_rows(&self.pol.model, batch, s, n, g.temperature))
                    .collect()
            });
            self.pol.model.set_adapters_enabled(true);
            r
        });
        let mut out = UpdateStats {
            loss: 0.0,
            grad_norm: 0.0,
            lr: 0.0,
            clip: GrpoStats::default(),
        };
        let mut skipped = 0;
        // The SFT test knob (STYLERL_FAULT_NAN_AT_STEPS) poisons this step's loss too.
        let poison = super::sft::fault_nan_steps()?;
        self.pol.adapter.set_training(true);
        for _epoch in 0..g.ppo_epochs {
            let mut loss_sum = 0.0;
            for (c, &(s, n)) in chunks.iter().enumerate() {
                let new = score_rows(&self.pol.model, batch, s, n, g.temperature);
                let (loss, st) = grpo_loss(
                    &new,
                    &old[c],
                    &adv.narrow(0, s, n),
                    &batch.mask.narrow(0, s, n),
                    reference.as_ref().map(|r| &r[c]),
                    &lcfg,
                );
                loss_sum += loss.double_value(&[]);
                loss.backward();
                out.clip.add(&st);
            }
            if poison.contains(&(step + 1)) {
                loss_sum = f64::NAN;
            }
            let gn = clip_grad_norm(&self.params, g.max_grad_norm);
            let lr = self.sched.lr_at(self.state.scheduler_step);
            if self.guard.check(step, &[loss_sum, gn])? {
                self.optim.set_lr(lr);
                self.optim.step();
            } else {
                skipped += 1;
            }
            self.optim.zero_grad();
            self.state.scheduler_step += 1;
            out.loss += loss_sum / g.ppo_epochs as f64;
            out.grad_norm += gn / g.ppo_epochs as f64;
            out.lr = lr;
        }
        self.pol.adapter.set_training(false);
        Ok((out, skipped))
    }
}

/// Runs GRPO quietly; returns the final adapter directory.
pub fn train(cfg: &GrpoConfig, resume: bool) -> Result<PathBuf> {
    train_with(cfg, resume, false, &crate::report::Silent)
}

/// [`train`]; `anyway` accepts a resume whose step count changed; lines and progress go
/// to `report`.
pub fn train_with(
    cfg: &GrpoConfig,
    resume: bool,
    anyway: bool,
    report: &dyn Report,
) -> Result<PathBuf> {
    cfg.validate()?;
    let g = &cfg.grpo;
    let mut tr = GrpoTrainer::new(cfg)?;
    report.result(&format!(
        "{}{}",
        tr.trainable_line(),
        if g.bitlora {
            " (Bit-LoRA: ternary A, B)"
        } else {
            ""
        }
    ));
    if cfg.model.matmul != "f32" || g.sampling_weights != "f32" {
        let m = &tr.pol.model;
        report.result(&format!(
            "{}; {}",
            choice_line("training matmul", &cfg.model.matmul, m.matmul_kind()),
            choice_line(
                "sampling",
                &g.sampling_weights,
                tr.sampling_kind().filter(|&k| k != m.kind)
            )
        ));
    }
    let ckpt_root = cfg.out_dir.join("checkpoints");
    // One run writes an out_dir at a time; the lock goes when this function returns.
    let _lock = crate::util::lock_dir(&cfg.out_dir)?;
    let base_name = cfg.model.path.display().to_string();
    if resume {
        match tr.resume_checked(&ckpt_root, anyway)? {
            Some((dir, step)) => {
                report.note(&format!("resuming from {} (step {step})", dir.display()))
            }
            None => {
                checkpoint::refuse_finished(&cfg.out_dir)?;
                report.note(&checkpoint::fresh_note(&ckpt_root));
            }
        }
    } else {
        checkpoint::refuse_existing(&ckpt_root)?;
    }
    let (d, fp_run) = (&cfg.data, fingerprint(cfg));
    super::run_info::write(
        &cfg.out_dir,
        "grpo",
        &cfg.model,
        d.prompt_template(),
        (d.examples, d.example_seed),
        None,
        Some(&cfg.reward),
        fp_run,
    )?;
    let from = resume.then_some(tr.state.step);
    let mut metrics = MetricsWriter::open(&cfg.out_dir.join("metrics.jsonl"), from)?;
    let mut samples = MetricsWriter::open(&cfg.out_dir.join("samples.jsonl"), from)?;
    let start_skipped = tr.guard.total;
    let pb = report.progress(g.steps, "grpo");
    pb.set_position(tr.state.step);
    crate::util::watch_interrupts();
    while tr.state.step < g.steps {
        let (rec, dump) = tr.step()?;
        metrics.write(&rec)?;
        let s = tr.state.step;
        if g.sample_every > 0 && ((s - 1) % g.sample_every == 0 || s == g.steps) {
            for d in &dump {
                samples.write(d)?;
            }
        }
        pb.set_message(format!(
            "reward {:.3}",
            rec["reward"].as_f64().unwrap_or(f64::NAN)
        ));
        pb.inc(1);
        let stop = crate::util::interrupted();
        if stop.is_some() || checkpoint::is_due(s, g.steps, g.checkpoint_every) {
            tr.state.extra = tr.checkpoint_extra();
            checkpoint::save(
                &ckpt_root,
                &tr.state,
                &tr.pol.adapter,
                &tr.optim,
                Some(&base_name),
                g.keep_checkpoints,
            )?;
        }
        if let Some(signal) = stop {
            return Err(crate::util::Interrupted { step: s, signal }.into());
        }
    }
    pb.finish();
    let updates = (g.steps - from.unwrap_or(0)) * g.ppo_epochs as u64;
    checkpoint::refuse_all_skipped(
        &ckpt_root,
        updates,
        tr.guard.total - start_skipped,
        "grpo.nan_patience",
    )?;
    checkpoint::refuse_non_finite(&ckpt_root, tr.state.step, &tr.pol.adapter)?;
    let dir = cfg.out_dir.join("adapter");
    let sizes = crate::adapter::peft::save_adapter(&tr.pol.adapter, &dir, Some(&base_name))?;
    report.result(&format!(
        "adapter: {} ({} bytes fp32)",
        dir.display(),
        sizes.fp32_file
    ));
    if let Some(p) = sizes.packed_file {
        report.result(&format!(
            "packed ternary adapter: {} bytes ({:.1}x smaller)",
            p,
            sizes.fp32_file as f64 / p.max(1) as f64
        ));
    }
    Ok(dir)
}

/// Loss and clip statistics of the μ updates of one step.
struct UpdateStats {
    loss: f64,
    grad_norm: f64,
    lr: f64,
    clip: GrpoStats,
}

#[allow(clippy::too_many_arguments)]
fn step_record(
    state: &TrainerState,
    rewards: &[f64],
    scores: &BatchScores,
    completions: &[Vec<i64>],
    truncated: &[bool],
    u: &UpdateStats,
    skipped: u64,
    group: usize,
    tokens_per_s: f64,
    (t_gen, t_reward, t_train): (f64, f64, f64),
) -> serde_json::Value {
    let rs = reward_stats(rewards, group);
    let m = scores.means();
    let lens: Vec<f64> = completions.iter().map(|c| c.len() as f64).collect();
    let n = lens.len().max(1) as f64;
    serde_json::json!({
        "step": state.step,
        "reward": rs.mean, "reward_std": rs.std, "frac_reward_zero_std": rs.frac_reward_zero_std,
        "rewards/style": m.r_style, "rewards/length": m.r_length, "rewards/ne_overlap": m.r_ne_overlap, "rewards/punctuation": m.r_punctuation,
        "rewards/rewrite": m.r_rewrite, "rewards/meaning": m.r_meaning, "rewards/balance": m.r_balance, "rewards/facts": m.r_facts, "rewards/defects": m.r_defects, "rewards/fluency": m.r_fluency, "edit_similarity": m.edit_similarity, "meaning_cos": m.meaning_cos,
        "style_dropout/dropped_fraction": m.dropped_fraction, "style_dropout/cancelled_fraction": m.cancelled_fraction, "style_dropout/mean_rate": m.mean_rate,
        "completion_length/mean": lens.iter().sum::<f64>() / n,
        "completion_length/min": lens.iter().cloned().fold(f64::INFINITY, f64::min),
        "completion_length/max": lens.iter().cloned().fold(0.0, f64::max),
        "completion_length/clipped_ratio": truncated.iter().filter(|&&t| t).count() as f64 / n,
        "clip_ratio/low": u.clip.clip_ratio_low(), "clip_ratio/high": u.clip.clip_ratio_high(), "clip_ratio/region": u.clip.clip_ratio_region(),
        "ratio/mean": u.clip.mean_ratio(), "kl": u.clip.mean_kl(),
        "loss": u.loss, "grad_norm": u.grad_norm, "lr": u.lr, "skipped_updates": skipped,
        "dynamics/inner": scores.dynamics.inner, "dynamics/outer": scores.dynamics.outer,
        "tokens_per_s": tokens_per_s, "time/generation": t_gen, "time/reward": t_reward, "time/training": t_train,
    })
}
