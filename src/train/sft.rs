//! `stylerl sft`: LoRA warm-up on (input, rewrite) pairs, loss on the answer tokens only.
//!
//! Exact resume: every step reseeds torch from (seed, step) and the data order is a pure
//! function of (order seed, epoch), so a run resumed from a checkpoint replays the same
//! batches, dropout masks and updates as an uninterrupted one.
use super::batch::{collate_sft, fit_length, SftExample};
use super::checkpoint::{self, DataPosition, TrainerState};
use super::guard::NanGuard;
use super::loss::IGNORE_INDEX;
use super::metrics::MetricsWriter;
use super::optim::{clip_grad_norm, AdamW, AdamWConfig};
use super::schedule::{Schedule, ScheduleKind};
use super::sft_data::{encode_example, load_conversations, SftDataConfig};
use crate::adapter::attach as adapters;
use crate::adapter::load::{load_policy, ModelSection};
use crate::adapter::lora::{trainable_line, LoraAdapter, LoraConfig, Quant};
use crate::io::hf_dir::write_model_dir;
use crate::model::chat::ChatTemplate;
use crate::model::{Llama, Tokenizer};
use crate::report::Report;
use crate::rng::{epoch_order, step_seed, SplitMix64};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Tensor;

/// `[train]` table of an SFT config.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct SftTrainConfig {
    /// Optimizer steps; if absent, `epochs` passes over the data.
    pub max_steps: Option<u64>,
    #[serde(default = "one")]
    pub epochs: u64,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    #[serde(default = "one_usize")]
    pub grad_accum: usize,
    #[serde(default)]
    pub optimizer: AdamWConfig,
    #[serde(default = "d_sched")]
    pub schedule: ScheduleKind,
    #[serde(default)]
    pub warmup_steps: u64,
    #[serde(default = "d_clip")]
    pub max_grad_norm: f64,
    #[serde(default)]
    pub seed: u64,
    /// Eval loss every N steps (0: only at the end).
    #[serde(default)]
    pub eval_every: u64,
    /// Checkpoint every N steps (0: only at the end).
    #[serde(default)]
    pub checkpoint_every: u64,
    #[serde(default = "d_keep")]
    pub keep_checkpoints: usize,
    /// Stop after this many non-finite losses/gradients in a row (each is skipped).
    #[serde(default = "d_nan", alias = "nan_patience")]
    pub nan_max_in_a_row: u32,
    /// Also write the merged model to OUT/merged.
    #[serde(default)]
    pub merge: bool,
}
fn one() -> u64 {
    1
}
fn one_usize() -> usize {
    1
}
fn d_batch() -> usize {
    4
}
fn d_sched() -> ScheduleKind {
    ScheduleKind::Cosine
}
fn d_clip() -> f64 {
    1.0
}
fn d_keep() -> usize {
    2
}
fn d_nan() -> u32 {
    5
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct SftConfig {
    /// Output directory: metrics.jsonl, checkpoints/, adapter/, merged/.
    pub out_dir: PathBuf,
    pub model: ModelSection,
    pub data: SftDataConfig,
    #[serde(default)]
    pub lora: LoraConfig,
    pub train: SftTrainConfig,
}

impl SftConfig {
    /// Every range, before anything is loaded; one line naming the key on failure.
    pub fn validate(&self) -> Result<()> {
        use crate::config::check::*;
        let t = &self.train;
        self.model.validate("model")?;
        self.lora.validate()?;
        at_least_one("data.max_length", self.data.max_length as u64)?;
        if let Some(s) = t.max_steps {
            at_least_one("train.max_steps", s)?;
        }
        at_least_one("train.epochs", t.epochs)?;
        at_least_one("train.batch_size", t.batch_size as u64)?;
        at_least_one("train.grad_accum", t.grad_accum as u64)?;
        at_least_one("train.nan_max_in_a_row", t.nan_max_in_a_row as u64)?;
        t.optimizer.validate("train.optimizer")?;
        positive_finite("train.max_grad_norm", t.max_grad_norm)
    }
}

fn encode_all(
    cfg: &SftConfig,
    path: &Path,
    tok: &Tokenizer,
    tpl: &ChatTemplate,
    model_ctx: i64,
    report: &dyn Report,
) -> Result<Vec<SftExample>> {
    let convs = load_conversations(&cfg.data, path)?;
    let ex = convs
        .iter()
        .map(|(m, a)| encode_example(tpl, tok, m, a))
        .collect::<Result<Vec<_>>>()?;
    // Rows longer than the context survive fitting only when max_length exceeds it.
    let ctx = model_ctx as usize;
    if cfg.data.max_length > ctx {
        if let Some((i, e)) = ex
            .iter()
            .enumerate()
            .find(|(_, e)| e.prompt.len() + e.answer.len() > ctx)
        {
            bail!(
                "{} row {}: {} tokens, more than the model's context of {ctx} (max_position_embeddings): set data.max_length ≤ {ctx}",
                path.display(),
                i + 1,
                e.prompt.len() + e.answer.len()
            );
        }
    }
    let (ex, rep) = fit_length(ex, cfg.data.max_length, cfg.data.overlong)
        .with_context(|| path.display().to_string())?;
    if rep.truncated + rep.dropped > 0 {
        report.note(&format!(
            "{}: {} examples truncated, {} dropped (longer than data.max_length = {})",
            path.display(),
            rep.truncated,
            rep.dropped,
            cfg.data.max_length
        ));
    }
    if ex.is_empty() {
        bail!(
            "{}: no usable examples after length fitting: raise data.max_length",
            path.display()
        );
    }
    Ok(ex)
}

/// Refuses, before any step, a batch whose examples and activations need more memory than the
/// machine has: a step collates train.batch_size × train.grad_accum rows (token ids, mask and
/// labels, i64) up front, and each micro-batch of train.batch_size rows runs forward and
/// backward (f32 logits, their log-softmax and gradient, and each layer's activations; counted
/// on CPU only, since GPU memory is not queried).
fn check_step_memory(cfg: &SftConfig, model: &Llama, ex: &[SftExample]) -> Result<()> {
    let tr = &cfg.train;
    let len = ex
        .iter()
        .map(|e| e.prompt.len() + e.answer.len())
        .max()
        .unwrap_or(0)
        .min(cfg.data.max_length) as f64;
    let rows = tr.batch_size as f64 * tr.grad_accum as f64;
    let c = &model.config;
    let mut need = rows * len * 48.0;
    if model.device == tch::Device::Cpu {
        let per_token = 12.0 * c.vocab_size as f64
            + 64.0 * c.num_hidden_layers as f64 * (c.hidden_size + c.intermediate_size) as f64;
        need += tr.batch_size as f64 * len * per_token;
    }
    crate::util::check_fits(
        need,
        &format!(
            "a training step of train.batch_size {} × train.grad_accum {} rows of up to {len} tokens",
            tr.batch_size, tr.grad_accum
        ),
        "lower train.batch_size or train.grad_accum",
    )
}

/// Mean answer-token loss of `examples` (no grad, dropout off).
pub fn eval_loss(model: &Llama, examples: &[SftExample], batch: usize, pad: i64) -> f64 {
    tch::no_grad(|| {
        let (mut sum, mut n) = (0f64, 0i64);
        for chunk in examples.chunks(batch.max(1)) {
            let b = collate_sft(chunk, pad, model.device);
            let (s, c) = answer_ce_sum(model, &b.input_ids, &b.attention_mask, &b.labels);
            sum += s.double_value(&[]);
            n += c;
        }
        sum / n.max(1) as f64
    })
}

/// Summed cross-entropy of the labelled positions (shifted: position t predicts t+1).
///
/// Only the positions whose next token carries a label go through lm_head and the
/// softmax: the prompt, the padding and the last position would be computed and thrown
/// away otherwise, and with a 49k vocabulary that is a large share of a step.
fn answer_ce_sum(model: &Llama, ids: &Tensor, mask: &Tensor, labels: &Tensor) -> (Tensor, i64) {
    let h = model.forward_hidden(ids, Some(mask), None);
    let (b, t, hid) = h.size3().expect("hidden states are [B, T, H]");
    let next = predicted_labels(labels);
    let flat = next.reshape([-1]);
    let rows = flat.ne(IGNORE_INDEX).nonzero().squeeze_dim(1);
    let hs = h.reshape([b * t, hid]).index_select(0, &rows);
    let logits = model.lm_head.forward(&hs);
    super::loss::token_ce_sum(&logits, &flat.index_select(0, &rows))
}

/// labels [B,T] → the label each position predicts: labels shifted left by one, with
/// the ignore index at the last position (nothing follows it).
pub fn predicted_labels(labels: &Tensor) -> Tensor {
    let (b, t) = labels.size2().expect("labels are [B, T]");
    let tail = Tensor::full([b, 1], IGNORE_INDEX, (tch::Kind::Int64, labels.device()));
    Tensor::cat(&[labels.narrow(1, 1, t - 1), tail], 1)
}

/// Test knob: `STYLERL_FAULT_NAN_AT_STEPS=3,4` poisons the loss of those steps (1-based,
/// as in metrics.jsonl) with NaN, to exercise the NaN guard end to end.
pub(crate) fn fault_nan_steps() -> Result<Vec<u64>> {
    let Ok(v) = std::env::var("STYLERL_FAULT_NAN_AT_STEPS") else {
        return Ok(Vec::new());
    };
    v.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<u64>()
                .with_context(|| format!("STYLERL_FAULT_NAN_AT_STEPS: '{s}' is not a step number"))
        })
        .collect()
}

/// What an SFT result depends on (see [`checkpoint::Fingerprint`]); `total` is the step count.
pub fn fingerprint(cfg: &SftConfig, total: u64) -> checkpoint::Fingerprint {
    use serde_json::json;
    let (t, d) = (&cfg.train, &cfg.data);
    let mut f = checkpoint::Fingerprint::new();
    checkpoint::put(&mut f, "kind", json!("sft"));
    checkpoint::put(&mut f, "model.path", json!(cfg.model.path));
    checkpoint::put(&mut f, "model.adapters", json!(cfg.model.adapters));
    checkpoint::put(&mut f, "model.dtype", json!(cfg.model.dtype));
    checkpoint::put_weights(&mut f, &cfg.model);
    checkpoint::put(&mut f, "lora", json!(cfg.lora));
    checkpoint::put(&mut f, "data.train", json!(d.train));
    checkpoint::put(&mut f, "data.max_length", json!(d.max_length));
    checkpoint::put(&mut f, "data.instruction", json!(d.instruction));
    checkpoint::put(&mut f, "train.optimizer", json!(t.optimizer));
    checkpoint::put(&mut f, "train.schedule", json!(t.schedule));
    checkpoint::put(&mut f, "train.warmup_steps", json!(t.warmup_steps));
    checkpoint::put(&mut f, "train.max_grad_norm", json!(t.max_grad_norm));
    checkpoint::put(&mut f, "train.batch_size", json!(t.batch_size));
    checkpoint::put(&mut f, "train.grad_accum", json!(t.grad_accum));
    checkpoint::put(&mut f, "train.seed", json!(t.seed));
    checkpoint::put(&mut f, "train.max_steps", json!(total));
    f
}

/// Runs SFT quietly; returns the final adapter directory.
pub fn train(cfg: &SftConfig, resume: bool) -> Result<PathBuf> {
    train_with(cfg, resume, false, &crate::report::Silent)
}

/// [`train`]; `anyway` accepts a resume whose step count changed; lines and progress go
/// to `report`.
pub fn train_with(
    cfg: &SftConfig,
    resume: bool,
    anyway: bool,
    report: &dyn Report,
) -> Result<PathBuf> {
    cfg.validate()?;
    let tr = &cfg.train;
    let (mut model, tok, tpl) = load_policy(&cfg.model)?;
    let pad = crate::infer::generate::pad_id(&model.config, Some(&tok));
    let ctx = model.config.max_position_embeddings;
    let train_ex = encode_all(cfg, &cfg.data.train, &tok, &tpl, ctx, report)?;
    // `--set data.eval=` (an empty path) turns the eval loss off.
    let eval_ex = match &cfg.data.eval {
        Some(p) if !p.as_os_str().is_empty() => encode_all(cfg, p, &tok, &tpl, ctx, report)?,
        _ => Vec::new(),
    };
    check_step_memory(cfg, &model, &train_ex)?;
    let per_step = tr.batch_size.saturating_mul(tr.grad_accum);
    let steps_per_epoch = (train_ex.len() / per_step).max(1) as u64;
    let total = tr.max_steps.unwrap_or(steps_per_epoch * tr.epochs);
    if tr.warmup_steps > 0 && tr.warmup_steps >= total {
        bail!(
            "train.warmup_steps = {} ≥ the run's {total} optimizer steps (train.max_steps, or train.epochs over the data): the learning rate would never reach train.optimizer.lr; set warmup_steps below {total}",
            tr.warmup_steps
        );
    }

    // Adapter init (A) draws from torch's RNG: seed it so runs are reproducible.
    tch::manual_seed(step_seed(tr.seed, u64::MAX));
    let adapter = adapters::new_trainable(&mut model, &cfg.lora, Quant::None)?;
    report.result(&trainable_line(
        adapter.num_parameters(),
        adapters::base_parameter_count(&model) + adapter.num_parameters(),
    ));
    if cfg.model.matmul != "f32" {
        report.result(&crate::model::precision::choice_line(
            "training matmul",
            &cfg.model.matmul,
            model.matmul_kind(),
        ));
    }
    let params = adapter.parameters();
    let mut optim = AdamW::new(adapter.parameters(), tr.optimizer);
    let sched = Schedule {
        kind: tr.schedule,
        base_lr: tr.optimizer.lr,
        warmup_steps: tr.warmup_steps,
        total_steps: total,
    };
    let ckpt_root = cfg.out_dir.join("checkpoints");
    // One run writes an out_dir at a time; the lock goes when this function returns.
    let _lock = crate::util::lock_dir(&cfg.out_dir)?;
    let base_name = cfg.model.path.display().to_string();
    let fp = fingerprint(cfg, total);

    let mut state = TrainerState {
        step: 0,
        scheduler_step: 0,
        seed: tr.seed,
        rng: SplitMix64::new(tr.seed),
        data: DataPosition {
            epoch: 0,
            index: 0,
            order_seed: tr.seed,
        },
        extra: serde_json::Value::Null,
    };
    if resume {
        match checkpoint::load_latest_checked(
            &ckpt_root,
            &adapter,
            &mut optim,
            &fp,
            "train.max_steps",
            total,
            anyway,
        )? {
            Some((dir, s)) => {
                report.note(&format!(
                    "resuming from {} (step {})",
                    dir.display(),
                    s.step
                ));
                state = s;
            }
            None => {
                checkpoint::refuse_finished(&cfg.out_dir)?;
                report.note(&checkpoint::fresh_note(&ckpt_root))
            }
        }
    } else {
        checkpoint::refuse_existing(&ckpt_root)?;
    }
    let (d, fp_run) = (&cfg.data, fp.clone());
    super::run_info::write(
        &cfg.out_dir,
        "sft",
        &cfg.model,
        &d.instruction,
        (0, 0),
        d.system.as_deref(),
        None,
        fp_run,
    )?;
    let mut metrics = MetricsWriter::open(
        &cfg.out_dir.join("metrics.jsonl"),
        resume.then_some(state.step),
    )?;
    let mut guard = NanGuard::new(tr.nan_max_in_a_row, "train.nan_max_in_a_row");
    if let Some(saved) = NanGuard::saved_in(&state.extra)? {
        guard = guard.resumed(&saved);
    }
    let start_skipped = guard.total;
    let poison = fault_nan_steps()?;
    // Test knob: STYLERL_FAULT_NAN_ADAPTER_AT_STEP=N fills the adapter with NaN after update N.
    let poison_adapter = std::env::var("STYLERL_FAULT_NAN_ADAPTER_AT_STEP")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    let mut order = epoch_order(state.data.order_seed, state.data.epoch, train_ex.len());
    let pb = report.progress(total, "sft");
    pb.set_position(state.step);
    let start = state.step;
    // The held-out loss before any update, the baseline the run must beat.
    let mut first_eval = None;
    if start == 0 && !eval_ex.is_empty() {
        let el = eval_loss(&model, &eval_ex, tr.batch_size, pad);
        metrics.write(&serde_json::json!({"step": 0, "eval_loss": el}))?;
        pb.println(format!("step 0: eval loss {el:.4}"));
        first_eval = Some(el);
    }
    let mut last_eval = None;

    crate::util::watch_interrupts();
    for step in start..total {
        let t0 = Instant::now();
        tch::manual_seed(step_seed(tr.seed, step));
        adapter.set_training(true);
        // The step's examples, then the loss normaliser over all of them (exact accumulation).
        let mut micro = Vec::with_capacity(tr.grad_accum);
        for _ in 0..tr.grad_accum {
            let mut chunk = Vec::with_capacity(tr.batch_size);
            while chunk.len() < tr.batch_size {
                if state.data.index as usize >= order.len() {
                    state.data.epoch += 1;
                    state.data.index = 0;
                    order = epoch_order(state.data.order_seed, state.data.epoch, train_ex.len());
                }
                chunk.push(train_ex[order[state.data.index as usize]].clone());
                state.data.index += 1;
            }
            micro.push(collate_sft(&chunk, pad, model.device));
        }
        let n_loss: i64 = micro.iter().map(|b| b.loss_tokens).sum::<i64>().max(1);
        let mut loss_sum = 0f64;
        let mut tokens = 0i64;
        for b in &micro {
            let (s, _) = answer_ce_sum(&model, &b.input_ids, &b.attention_mask, &b.labels);
            let mut l = s / n_loss as f64;
            if poison.contains(&(step + 1)) {
                l = l * f64::NAN;
            }
            loss_sum += l.double_value(&[]);
            l.backward();
            tokens += b.tokens;
        }
        let gnorm = clip_grad_norm(&params, tr.max_grad_norm);
        let lr = sched.lr_at(state.scheduler_step);
        let apply = guard.check(step + 1, &[loss_sum, gnorm])?;
        if apply {
            optim.set_lr(lr);
            optim.step();
            if poison_adapter == Some(step + 1) {
                let _ = params[0].detach().fill_(f64::NAN);
            }
        }
        optim.zero_grad();
        state.scheduler_step += 1;
        state.step = step + 1;
        adapter.set_training(false);

        let step_s = t0.elapsed().as_secs_f64();
        let mut rec = serde_json::json!({
            "step": state.step, "loss": loss_sum, "lr": lr, "grad_norm": gnorm,
            "tokens": tokens, "step_s": step_s, "tokens_per_s": tokens as f64 / step_s, "skipped": !apply,
            "nan_total": guard.total,
        });
        let last = state.step == total;
        if !eval_ex.is_empty() && (last || (tr.eval_every > 0 && state.step % tr.eval_every == 0)) {
            let el = eval_loss(&model, &eval_ex, tr.batch_size, pad);
            rec["eval_loss"] = el.into();
            last_eval = Some(el);
            pb.println(format!("step {}: eval loss {el:.4}", state.step));
        }
        metrics.write(&rec)?;
        pb.set_message(format!("loss {loss_sum:.3}"));
        pb.inc(1);
        let stop = crate::util::interrupted();
        if stop.is_some() || checkpoint::is_due(state.step, total, tr.checkpoint_every) {
            state.extra = serde_json::json!({"nan_guard": guard, "fingerprint": fp});
            checkpoint::save(
                &ckpt_root,
                &state,
                &adapter,
                &optim,
                Some(&base_name),
                tr.keep_checkpoints,
            )?;
        }
        if let Some(signal) = stop {
            return Err(crate::util::Interrupted {
                step: state.step,
                signal,
            }
            .into());
        }
    }
    pb.finish();
    if let (Some(a), Some(b)) = (first_eval, last_eval) {
        report.result(&format!(
            "eval loss: {a:.4} at step 0, {b:.4} at step {total}"
        ));
    }
    if guard.total > 0 {
        report.result(&format!(
            "skipped {} update(s) with a non-finite loss or gradient",
            guard.total
        ));
    }
    let ran = total.saturating_sub(start);
    checkpoint::refuse_all_skipped(
        &ckpt_root,
        ran,
        guard.total - start_skipped,
        "train.nan_max_in_a_row",
    )?;
    checkpoint::refuse_non_finite(&ckpt_root, state.step, &adapter)?;
    finish(cfg, &mut model, &adapter, report)
}

fn finish(
    cfg: &SftConfig,
    model: &mut Llama,
    adapter: &LoraAdapter,
    report: &dyn Report,
) -> Result<PathBuf> {
    let dir = cfg.out_dir.join("adapter");
    crate::adapter::peft::save_adapter(adapter, &dir, Some(&cfg.model.path.display().to_string()))?;
    report.result(&format!("adapter: {}", dir.display()));
    if cfg.train.merge {
        let mut set = crate::adapter::lora::LoraSet::new();
        set.push(crate::adapter::peft::load_adapter(&dir, model.device)?, 1.0);
        adapters::detach_all(model);
        let extra = crate::adapter::peft::load_set(&cfg.model.adapters, model.device)?;
        for (a, w) in extra.adapters {
            set.push(a, w);
        }
        adapters::merge_into_model(model, &set)?;
        let out = cfg.out_dir.join("merged");
        write_model_dir(model.named_tensors(), &cfg.model.path, &out)?;
        report.result(&format!("merged model: {}", out.display()));
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LlamaConfig;

    /// The gathered loss equals the loss over full logits (the plain way), padding and
    /// prompt included, on a tiny random model.
    #[test]
    fn gathered_answer_loss_equals_full_logits_loss() {
        let cfg = LlamaConfig::from_json(&serde_json::json!({
            "model_type": "llama", "hidden_size": 16, "intermediate_size": 24,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "vocab_size": 40, "tie_word_embeddings": true, "rms_norm_eps": 1e-5,
            "max_position_embeddings": 64
        }))
        .unwrap();
        let model = Llama::random_from_config(cfg, tch::Device::Cpu, tch::Kind::Float, 1).unwrap();
        let ex = |p: &[i64], a: &[i64]| SftExample {
            prompt: p.to_vec(),
            answer: a.to_vec(),
        };
        let batch = collate_sft(
            &[
                ex(&[1, 5, 7, 9], &[3, 4, 2]),
                ex(&[6], &[8, 2]),
                ex(&[11, 12, 13, 14, 15], &[16]),
            ],
            0,
            tch::Device::Cpu,
        );
        let (got, n) = answer_ce_sum(
            &model,
            &batch.input_ids,
            &batch.attention_mask,
            &batch.labels,
        );
        let logits = model.forward(&batch.input_ids, Some(&batch.attention_mask), None);
        let t = logits.size()[1];
        let (want, m) = super::super::loss::token_ce_sum(
            &logits.narrow(1, 0, t - 1),
            &batch.labels.narrow(1, 1, t - 1),
        );
        assert_eq!((n, m), (6, batch.loss_tokens));
        let (g, w) = (got.double_value(&[]), want.double_value(&[]));
        assert!((g - w).abs() < 1e-5 * w.abs().max(1.0), "{g} vs {w}");
        assert!(w > 1.0);
    }

    #[test]
    fn predicted_labels_shift_left() {
        let l = Tensor::from_slice(&[-100i64, 3, 4, -100, 6, -100]).reshape([2, 3]);
        let p = Vec::<i64>::try_from(predicted_labels(&l).reshape([-1])).unwrap();
        assert_eq!(p, vec![3, 4, -100, 6, -100, -100]);
    }
}
