//! `stylerl rewrite`: rewrite one's own text with a trained run, prompted exactly as in
//! training (the instruction, system message and chat template recorded in the run's
//! run.json), with the adapters folded into the weights. Inputs come from the command line,
//! a data file (the loaders `evaluate` uses) or stdin lines; `--compare` rewrites the same
//! inputs with several runs; `--explain` adds each output sentence's closest reference
//! sentence under the run's reward encoder.
use crate::adapter::attach as adapters;
use crate::adapter::load::{load_policy, ModelSection};
use crate::infer::generate::{eos_ids, pad_id};
use crate::infer::{generate, GenerateConfig, SamplingConfig};
use crate::model::precision::Precision;
use crate::train::example_prompts::run_turns;
use crate::train::run_info::{self, RunInfo};
use crate::train::sft_data::DEFAULT_INSTRUCTION;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct RewriteArgs {
    /// Texts to rewrite (with neither these nor --input: one text per line on stdin).
    pub text: Vec<String>,
    /// A run directory written by `stylerl sft` or `stylerl grpo` (run.json and adapter/).
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// More run directories (`--compare B C` or `--compare B,C`): every input is rewritten
    /// by each, shown side by side. Values after them that are not directories are the texts.
    #[arg(long, num_args = 1.., value_delimiter = ',', value_name = "RUN")]
    pub compare: Vec<PathBuf>,
    /// Without --run: the model directory. With --run: a copy of the run's base model that moved.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Without --run: a PEFT adapter on --model, `PATH[:WEIGHT]`, repeatable.
    #[arg(long = "adapter", value_name = "PATH[:WEIGHT]")]
    pub adapters: Vec<String>,
    /// Without --run: the instruction put before the input [default: the training default].
    #[arg(long)]
    pub instruction: Option<String>,
    /// A file of inputs: JSONL, JSON, CSV, Parquet (field --field) or plain text.
    #[arg(long, conflicts_with = "text")]
    pub input: Option<PathBuf>,
    /// The field/column of --input [default: text]; for plain text: lines, paragraphs, document.
    #[arg(long, requires = "input")]
    pub field: Option<String>,
    /// Write JSON lines (input, output, tokens…) to this file instead of printing the texts.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace --out when it exists.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Print the JSON lines on stdout instead of the texts.
    #[arg(long)]
    pub json: bool,
    /// Add each output sentence's closest reference sentence and similarity (the JSON lines).
    #[arg(long)]
    pub explain: bool,
    /// --explain against these reference text files [default: the run's reward.reference].
    #[arg(long)]
    pub reference: Vec<PathBuf>,
    /// --explain with this encoder [default: the run's reward.encoder, else stylometric].
    #[arg(long)]
    pub encoder: Option<String>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub greedy: bool,
    /// Samples per input.
    #[arg(long, default_value_t = 1)]
    pub n: usize,
    /// Sample N rewrites of each input and keep the most faithful one: no detector flag
    /// (changed facts, lost negations, loops), then no question dropped or added and no
    /// phrase repeated, then not a copy of the input, then the highest meaning kept
    /// (docs/method.md#best-of-n).
    #[arg(long, value_name = "N", conflicts_with = "n")]
    pub best_of: Option<usize>,
    /// --best-of's content encoder for "meaning kept" [default: models/all-minilm-l6-v2
    /// when present]; "none": the detectors and the copy check alone.
    #[arg(long, requires = "best_of")]
    pub meaning_encoder: Option<String>,
    /// With --best-of: leave out every input whose kept rewrite is still flagged, doubtful or
    /// a copy, so --out holds only pairs worth training on (a rejection-sampling round:
    /// docs/method.md#rejection-sampling).
    #[arg(long, requires = "best_of")]
    pub clean_only: bool,
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    #[arg(long)]
    pub top_p: Option<f64>,
    #[arg(long, default_value_t = 128)]
    pub max_new_tokens: usize,
    /// Inputs generated together in one batch.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// f32, bf16 or f16 [default: the run's training dtype, else f32].
    #[arg(long)]
    pub dtype: Option<String>,
    /// Weights the decode steps stream: f32, bf16 (half the bytes; each weight rounded to
    /// bf16, products in f32), int8 (a quarter of the bytes; a scale per 32 inputs of each
    /// column; fastest at batch 1, rounds ~4× as far as bf16) or auto (bf16 where the
    /// AVX-512 decode kernel runs).
    #[arg(long, default_value = "f32")]
    pub sampling_weights: String,
}

/// One model that rewrites: a run, or --model with --adapter.
struct System {
    name: String,
    model: ModelSection,
    instruction: String,
    system: Option<String>,
    run: Option<RunInfo>,
}

/// One rewrite of one input by one system.
struct Row {
    system: usize,
    index: usize,
    sample: usize,
    output: String,
    tokens: Vec<i64>,
    /// Each sampled token's log-probability under the policy (as `generate --json` gives).
    logprobs: Vec<f32>,
    stopped_at_eos: bool,
}

fn check_flags(a: &RewriteArgs) -> Result<()> {
    use crate::config::check::*;
    temperature("--temperature", a.temperature, a.greedy)?;
    top_p("--top-p", a.top_p)?;
    at_least_one("--max-new-tokens", a.max_new_tokens as u64)?;
    at_least_one("--n", a.n as u64)?;
    if let Some(n) = a.best_of {
        let max = crate::eval::config::MAX_BEST_OF;
        if !(1..=max).contains(&n) {
            bail!("--best-of {n}: use 1 to {max} (rewrites sampled per input)");
        }
    }
    at_least_one("--batch-size", a.batch_size as u64)?;
    Precision::parse_setting("--sampling-weights", &a.sampling_weights)?;
    device("--device", &a.device)?;
    if let Some(d) = &a.dtype {
        dtype("--dtype", d)?;
    }
    if let Some(out) = &a.out {
        if let Some(input) = a.input.as_ref().filter(|i| super::args::same_file(i, out)) {
            bail!(
                "--out {} is the --input file {}: the rewrites would replace the texts they come from; choose another --out",
                out.display(),
                input.display()
            );
        }
        super::args::check_out_file("--out", out, a.force)?;
    }
    Ok(())
}

/// `--compare B C "text"`: clap gives every value after --compare to it, the texts too.
/// Trailing values that are not directories are the texts to rewrite (when no text came
/// before and no --input is given); returns the compared runs and the texts.
fn split_compare(a: &RewriteArgs) -> (Vec<PathBuf>, Vec<String>) {
    let mut runs = a.compare.clone();
    let mut texts = a.text.clone();
    if texts.is_empty() && a.input.is_none() {
        let keep = runs.iter().rposition(|p| p.is_dir()).map_or(0, |i| i + 1);
        texts = runs
            .split_off(keep)
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
    }
    (runs, texts)
}

/// The systems named on the command line; every run directory is checked before any model loads.
fn systems(a: &RewriteArgs, compare: &[PathBuf]) -> Result<Vec<System>> {
    let mut out = Vec::new();
    let runs: Vec<&PathBuf> = a.run.iter().chain(compare).collect();
    if runs.is_empty() {
        let Some(m) = &a.model else {
            bail!("give --run DIR (a directory written by `stylerl sft` or `stylerl grpo`), or --model DIR with --adapter PATH");
        };
        if !crate::util::is_file_checked(&m.join("config.json"))? {
            bail!(
                "--model {}: no config.json there (expected a Hugging Face model directory)",
                m.display()
            );
        }
        let name = match a.adapters.is_empty() {
            true => m.display().to_string(),
            false => a.adapters.join(" + "),
        };
        out.push(System {
            name,
            model: section(a, m.clone(), a.adapters.clone(), None),
            instruction: a
                .instruction
                .as_deref()
                .unwrap_or(DEFAULT_INSTRUCTION)
                .into(),
            system: None,
            run: None,
        });
        return Ok(out);
    }
    if !a.adapters.is_empty() || a.instruction.is_some() {
        bail!("--adapter and --instruction are for --model without --run or --compare: a run directory records its own");
    }
    for dir in runs {
        let info = run_info::read(dir, a.model.as_deref())?;
        let mut adapters = info.adapters.clone();
        adapters.push(dir.join(run_info::ADAPTER).display().to_string());
        let name = dir
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        out.push(System {
            name,
            model: section(a, info.model.clone(), adapters, Some(&info.dtype)),
            instruction: info.instruction.clone(),
            system: info.system.clone(),
            run: Some(info),
        });
    }
    Ok(out)
}

fn section(
    a: &RewriteArgs,
    path: PathBuf,
    adapters: Vec<String>,
    dt: Option<&str>,
) -> ModelSection {
    ModelSection {
        path,
        device: a.device.clone(),
        dtype: a.dtype.as_deref().or(dt).unwrap_or("f32").to_string(),
        adapters,
        matmul: "f32".into(),
    }
}

/// The texts to rewrite: the arguments, --input's texts, or stdin's lines.
fn inputs(a: &RewriteArgs, text: &[String]) -> Result<Vec<String>> {
    if let Some(p) = &a.input {
        if !text.is_empty() {
            bail!("give the texts either as arguments or with --input, not both");
        }
        return crate::data::load_texts(p, a.field.as_deref()).context("--input");
    }
    if !text.is_empty() {
        return Ok(text.to_vec());
    }
    let mut raw = String::new();
    std::io::stdin()
        .read_to_string(&mut raw)
        .context("cannot read stdin")?;
    let texts = crate::data::split_plain(&raw, crate::data::TextMode::Lines);
    if texts.is_empty() {
        bail!("nothing to rewrite: give the text as an argument, --input FILE, or lines on stdin");
    }
    Ok(texts)
}

/// The prompt each input is rewritten with: the instruction before it, or, for a run trained
/// with reference sentences in its prompt, the same seeded draw of them it was trained with.
fn user_turns(s: &System, texts: &[String]) -> Result<Vec<String>> {
    let (examples, seed, refs) = match s.run.as_ref().filter(|r| r.examples > 0) {
        None => (0, 0, Vec::new()),
        Some(r) => (r.examples, r.example_seed, example_pool(&s.name, r)?),
    };
    Ok(run_turns(&s.instruction, examples, seed, &refs, texts))
}

/// The reference sentences a run trained with examples drew them from.
fn example_pool(name: &str, r: &RunInfo) -> Result<Vec<String>> {
    let cfg = crate::reward::config::RewardConfig {
        reference: r.reference.clone(),
        ..Default::default()
    };
    let refs = crate::reward::model::load_reference_sentences(&cfg).with_context(|| {
        format!(
            "{name}: this run shows sentences of its reference in every prompt: restore the file"
        )
    })?;
    if refs.is_empty() {
        bail!("{name}: the run's reference files hold no sentences: restore them");
    }
    Ok(refs)
}

/// Loads one system, folds its adapters, renders the training prompt of every input and
/// samples `a.n` rewrites each (keyed by seed, input number and sample number, as `generate`).
fn rewrite_with(a: &RewriteArgs, k: usize, s: &System, texts: &[String]) -> Result<Vec<Row>> {
    let (mut model, tok, tpl) = load_policy(&s.model)?;
    if let Some(r) = &s.run {
        let now = run_info::template_hash(&tpl);
        if now != r.chat_template_hash {
            bail!(
                "{}: the chat template of {} changed since training (hash {now}, trained with {}): the prompt would differ from the trained one; restore the model's tokenizer_config.json or retrain",
                s.name,
                s.model.path.display(),
                r.chat_template_hash
            );
        }
    }
    // The adapters are frozen here: folding them into the weights makes sampling cheaper.
    adapters::fold_attached(&mut model);
    let sampling = Precision::parse_setting("--sampling-weights", &a.sampling_weights)?;
    model.prepare_sampling(sampling.for_sampling(model.device, model.kind));
    let turns = user_turns(s, texts)?;
    let prompts: Vec<Vec<i64>> = turns
        .iter()
        .map(|u| tok.encode(&tpl.render_user(s.system.as_deref(), u, true)?, false))
        .collect::<Result<_>>()?;
    super::prompts::check_context(&prompts, model.config.max_position_embeddings, "input")?;
    let size = super::prompts::GenerationSize {
        batch: a.batch_size,
        samples: samples_per_input(a),
        max_new_tokens: a.max_new_tokens,
        flags: [
            "--batch-size",
            if a.best_of.is_some() {
                "--best-of"
            } else {
                "--n"
            },
            "--max-new-tokens",
        ],
    };
    super::prompts::check_generation(&model.config, model.kind, &prompts, "input", &size)?;
    let gc = GenerateConfig {
        max_new_tokens: a.max_new_tokens,
        sampling: SamplingConfig {
            greedy: a.greedy,
            temperature: a.temperature,
            top_k: None,
            top_p: a.top_p,
        },
        seed: a.seed,
        eos_ids: eos_ids(&model.config, Some(&tok)),
        pad_id: pad_id(&model.config, Some(&tok)),
        share_prefix: true,
        common_prefix: false,
        rng_prompt_offset: 0,
    };
    let mut rows = Vec::new();
    // Inputs done, with an ETA (hidden off a terminal or with STYLERL_PROGRESS=0).
    let pb = crate::util::progress_bar(prompts.len() as u64, &s.name);
    for (b, chunk) in prompts.chunks(a.batch_size).enumerate() {
        let gc = GenerateConfig {
            rng_prompt_offset: b * a.batch_size,
            ..gc.clone()
        };
        let samples = generate(&model, chunk, samples_per_input(a), &gc)
            .with_context(|| format!("{}: generation failed", s.name))?;
        for smp in samples {
            rows.push(Row {
                system: k,
                index: b * a.batch_size + smp.prompt_index,
                sample: smp.sample_index,
                output: tok.decode(&smp.tokens, true)?.trim().to_string(),
                tokens: smp.tokens,
                logprobs: smp.logprobs,
                stopped_at_eos: smp.stopped_at_eos,
            });
        }
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    Ok(rows)
}

/// Rewrites sampled per input: --best-of's N, else --n.
fn samples_per_input(a: &RewriteArgs) -> usize {
    a.best_of.unwrap_or(a.n)
}

/// --best-of: keeps, per system and input, the sample `eval::select::pick` prefers; the
/// others are dropped. The copied-reference check uses a run's recorded reference, if any.
fn keep_best(
    a: &RewriteArgs,
    systems: &[System],
    texts: &[String],
    rows: Vec<Row>,
) -> Result<Vec<Row>> {
    use crate::eval::config::DEFAULT_NOT_REWRITTEN;
    use crate::eval::select::{choose, Sampled};
    // Resolved as an evaluation's `[meaning] encoder`: "none" skips, unset takes the default.
    let spec = crate::eval::config::MeaningSection {
        encoder: a.meaning_encoder.clone(),
    }
    .resolved();
    let enc = match &spec {
        Some(e) => Some(crate::encoder::load(e).with_context(|| {
            format!("--meaning-encoder '{e}' (or give --meaning-encoder none)")
        })?),
        None => None,
    };
    let mut keep = vec![false; rows.len()];
    for (k, s) in systems.iter().enumerate() {
        let refs = match s.run.as_ref().filter(|r| !r.reference.is_empty()) {
            Some(r) => example_pool(&s.name, r)?,
            None => Vec::new(),
        };
        let runs = crate::text::defects::ReferenceRuns::from_sentences(&refs);
        // rows are sorted by (input, system, sample): this system's samples of each input.
        let mut at: Vec<Vec<usize>> = vec![Vec::new(); texts.len()];
        for (j, r) in rows.iter().enumerate().filter(|(_, r)| r.system == k) {
            at[r.index].push(j);
        }
        let samples: Vec<Vec<Sampled>> = at
            .iter()
            .map(|js| {
                js.iter()
                    .map(|&j| Sampled {
                        text: rows[j].output.clone(),
                        stopped_at_eos: rows[j].stopped_at_eos,
                    })
                    .collect()
            })
            .collect();
        let chosen = choose(
            texts,
            &samples,
            &runs,
            DEFAULT_NOT_REWRITTEN,
            enc.as_deref(),
        )
        .context("--best-of: scoring the sampled rewrites")?;
        for (js, (kept, cands)) in at.iter().zip(chosen) {
            let clean = cands.get(kept).is_some_and(|c| c.clean());
            if let Some(&j) = js.get(kept).filter(|_| clean || !a.clean_only) {
                keep[j] = true;
            }
        }
    }
    if a.clean_only {
        let kept = keep.iter().filter(|&&k| k).count();
        let asked = texts.len() * systems.len();
        eprintln!(
            "--clean-only: {kept} of {asked} inputs have a clean rewrite (the rest left out)"
        );
    }
    Ok(rows
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(r, _)| r)
        .collect())
}

/// The style scorer of --explain: the flags, else the first run that recorded a reward.
fn explainer(a: &RewriteArgs, systems: &[System]) -> Result<crate::reward::style::StyleScorer> {
    let run = systems
        .iter()
        .filter_map(|s| s.run.as_ref())
        .find(|r| !r.reference.is_empty());
    let reference = match (&a.reference, run) {
        (r, _) if !r.is_empty() => r.clone(),
        (_, Some(r)) => r.reference.clone(),
        _ => bail!("--explain needs reference sentences and none was recorded (an SFT run or --model): give --reference FILE"),
    };
    let default = crate::reward::config::RewardConfig::default();
    let encoder = (a.encoder.clone())
        .or_else(|| run.and_then(|r| r.encoder.clone()))
        .unwrap_or(default.encoder.clone());
    let cfg = crate::reward::config::RewardConfig {
        reference,
        encoder,
        ..default
    };
    let refs = crate::reward::model::load_reference_sentences(&cfg)?;
    let enc = crate::encoder::load(&cfg.encoder)
        .with_context(|| format!("--explain encoder '{}'", cfg.encoder))?;
    crate::reward::style::StyleScorer::new(std::sync::Arc::from(enc), refs, cfg.cache_size)
}

pub fn run(a: &RewriteArgs) -> Result<()> {
    check_flags(a)?;
    let (compare, text) = split_compare(a);
    let systems = systems(a, &compare)?;
    let texts = inputs(a, &text)?;
    let scorer = match a.explain {
        true => Some(explainer(a, &systems)?),
        false => None,
    };
    let mut rows = Vec::new();
    for (k, s) in systems.iter().enumerate() {
        // One model at a time: the previous one is dropped before the next loads.
        rows.extend(rewrite_with(a, k, s, &texts)?);
    }
    // Input order, then system, then sample: the same input's rewrites stand together.
    rows.sort_by_key(|r| (r.index, r.system, r.sample));
    if a.best_of.is_some() {
        rows = keep_best(a, &systems, &texts, rows)?;
    }
    let outputs: Vec<&str> = rows.iter().map(|r| r.output.as_str()).collect();
    let explained = match &scorer {
        Some(sc) => Some((sc.match_texts(&outputs)?, sc.references())),
        None => None,
    };
    if !(a.json || a.out.is_some()) {
        return print_texts(a, &systems, &texts, &rows, explained.as_ref());
    }
    let mut lines = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let mut v = json!({"run": systems[r.system].name, "index": r.index, "sample": r.sample,
            "input": texts[r.index], "output": r.output, "tokens": r.tokens, "logprobs": r.logprobs, "stopped_at_eos": r.stopped_at_eos});
        if let (Some(n), Some(o)) = (a.best_of, v.as_object_mut()) {
            // `sample` is the kept one's number among the n drawn.
            o.insert("best_of".into(), json!(n));
        }
        if let (Some((m, refs)), Some(o)) = (&explained, v.as_object_mut()) {
            let sim = crate::eval::aggregate::text_mean(&m[i].best_sim);
            o.insert("style_similarity".into(), json!(sim));
            let per_sentence = crate::eval::evaluate::sentence_matches(&m[i], refs);
            o.insert("sentences".into(), per_sentence);
        }
        lines.push(v);
    }
    write_json(a, &lines)
}

/// --explain's matches of every row, in row order, with the reference sentences.
type Explained<'a> = (Vec<crate::reward::style::TextStyle>, &'a [String]);

fn write_json(a: &RewriteArgs, lines: &[Value]) -> Result<()> {
    let mut text = String::new();
    for l in lines {
        text.push_str(&l.to_string());
        text.push('\n');
    }
    match &a.out {
        Some(p) => {
            crate::util::write_atomic(p, text.as_bytes())
                .with_context(|| format!("--out {}", p.display()))?;
            eprintln!("{} rewrites: {}", lines.len(), p.display());
        }
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}

/// One input, one system, one sample: the rewrite alone. Otherwise a block per input with
/// each system's (and sample's) rewrite under its name.
fn print_texts(
    a: &RewriteArgs,
    systems: &[System],
    texts: &[String],
    rows: &[Row],
    explained: Option<&Explained>,
) -> Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if rows.len() == 1 && explained.is_none() {
        writeln!(out, "{}", rows[0].output)?;
        return Ok(out.flush()?);
    }
    for (i, r) in rows.iter().enumerate() {
        // The first row of each input (with --best-of the kept sample need not be sample 0).
        if i == 0 || rows[i - 1].index != r.index {
            writeln!(
                out,
                "### input {}\n{}",
                r.index + 1,
                texts[r.index].trim_end()
            )?;
        }
        let n = match a.n {
            1 => String::new(),
            _ => format!(" (sample {})", r.sample + 1),
        };
        writeln!(out, "--- {}{n}\n{}", systems[r.system].name, r.output)?;
        // Each output sentence, its similarity and the closest reference sentence.
        if let Some((m, refs)) = explained {
            let m = &m[i];
            for ((sent, &k), sim) in m.sentences.iter().zip(&m.best).zip(&m.best_sim) {
                writeln!(out, "    {sim:.3}  {sent}  ≈  {}", refs[k])?;
            }
        }
    }
    Ok(out.flush()?)
}
