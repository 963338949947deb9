//! `stylerl evaluate`: every configured system rewrites the held-out inputs (one seeded
//! completion each, batched; or `best_of` samples of which the most faithful is kept,
//! `select.rs`), the outputs are matched sentence by sentence against the
//! reference with the `[reward]` encoder, and the metrics of docs/method.md#evaluation-metrics
//! go to results/<name>/{table.md, table.csv, metrics.json, outputs.jsonl}.
//!
//! Systems are loaded one at a time (and dropped before the next), so the peak memory is
//! one model plus the encoder; with `generation.jobs = J`, J systems generate at once on
//! one libtorch thread each (J models in memory). Outputs do not depend on J: each
//! input's random stream is seeded by its system's settings alone. Inputs are generated in
//! length-sorted batches to waste little padding; the rows are put back in file order
//! afterwards.
use super::aggregate::{
    add_intervals, aggregate, pair_entity_f1, series, text_mean, word_count, JudgeCell,
    JudgeSeries, SampleSeries, ScoredSample, SystemMetrics,
};
use super::bootstrap::{Resamples, LEVEL};
use super::chart;
use super::config::{check_systems_exist, EvalConfig, SystemConfig};
use super::judge::{Judge, JudgeItem};
use super::metrics::{edit_similarity, is_not_rewritten};
use super::prompts::{shared_examples, user_turns};
use super::quality;
use super::quality_table;
use super::select::{self, Candidate, Sampled};
use super::table::{self, TableOptions};
use crate::adapter::attach as adapters;
use crate::adapter::load::load_policy;
use crate::encoder::{EncoderOptions, SentenceEncoder};
use crate::infer::generate::{eos_ids, pad_id};
use crate::infer::{generate, GenerateConfig, SamplingConfig};
use crate::model::chat::ChatMessage;
use crate::reward::meaning::meaning_kept;
use crate::reward::style::{StyleScorer, TextStyle};
use crate::reward::RewardModel;
use crate::text::defects::ReferenceRuns;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// What an evaluation produced.
pub struct Report {
    pub out_dir: PathBuf,
    pub systems: Vec<SystemMetrics>,
    pub markdown: String,
}

/// One system's generated outputs, in input order.
struct Generated {
    texts: Vec<String>,
    stopped_at_eos: Vec<bool>,
    examples: Vec<usize>,
    seconds: f64,
    /// With `best_of` > 1: every input's samples, in sample order (`texts` holds the kept one
    /// once `keep_best` has run), and the choice (kept index, candidates).
    samples: Vec<Vec<Sampled>>,
    chosen: Vec<(usize, Vec<Candidate>)>,
}

/// The extra scorers of an evaluation: the content encoder of "meaning kept" and the judge
/// encoders (each a style scorer over the same reference sentences).
struct Scorers {
    meaning: Option<(String, Box<dyn SentenceEncoder>)>,
    judges: Vec<(String, StyleScorer)>,
    /// Per judge encoder, the inputs' per-sample style similarity (scored once).
    judge_inputs: Vec<Vec<Option<f64>>>,
}

fn load_scorers(cfg: &EvalConfig, refs: &[String], inputs: &[&str]) -> Result<Scorers> {
    let opts = EncoderOptions {
        device: crate::util::parse_device(&cfg.reward.encoder_device)
            .context("reward.encoder_device")?,
        batch_size: cfg.reward.encoder_batch_size,
    };
    let meaning = match cfg.meaning.resolved() {
        Some(spec) => {
            let e = crate::encoder::load_with(&spec, &opts)
                .with_context(|| format!("meaning.encoder '{spec}' (or set it to \"none\")"))?;
            Some((spec, e))
        }
        None => None,
    };
    let mut judges = Vec::new();
    let mut judge_inputs = Vec::new();
    for spec in &cfg.judge_encoders {
        let e = crate::encoder::load_with(spec, &opts)
            .with_context(|| format!("judge_encoders entry '{spec}'"))?;
        let sc = StyleScorer::new(Arc::from(e), refs.to_vec(), cfg.reward.cache_size)
            .with_context(|| format!("judge_encoders entry '{spec}'"))?;
        let m = sc.match_texts(inputs)?;
        judge_inputs.push(m.iter().map(|t| text_mean(&t.best_sim)).collect());
        judges.push((spec.clone(), sc));
    }
    Ok(Scorers {
        meaning,
        judges,
        judge_inputs,
    })
}

/// Runs the whole evaluation and writes the result files; per-system timings and judge
/// warnings go to `report`.
pub fn evaluate(cfg: &EvalConfig, report: &dyn crate::report::Report) -> Result<Report> {
    cfg.validate()?;
    check_systems_exist(&cfg.systems)?;
    let mut inputs = crate::data::load_texts(&cfg.data.heldout, Some(&cfg.data.field))
        .context("data.heldout")?;
    if let Some(l) = cfg.data.limit {
        inputs.truncate(l);
    }
    let rm = RewardModel::from_config(&cfg.reward)?;
    let refs: Vec<String> = rm.style.references().to_vec();
    let input_refs: Vec<&str> = inputs.iter().map(|s| s.as_str()).collect();
    let input_match = rm.style.match_texts(&input_refs)?;
    let scorers = load_scorers(cfg, &refs, &input_refs)?;
    let out_dir = cfg.out_dir();
    // One evaluation writes out_dir at a time (the lock creates it).
    let _lock = crate::util::lock_dir(&out_dir)?;

    let mut rows: Vec<SystemMetrics> = Vec::new();
    let mut all_series: Vec<SampleSeries> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    let mut sys_json: Vec<Value> = Vec::new();
    let mut all_outputs: Vec<Vec<String>> = Vec::new();
    let mut generated = generate_all(cfg, &refs, &inputs)?;
    let ref_runs = ReferenceRuns::from_sentences(&refs);
    for g in generated.iter_mut() {
        keep_best(g, &inputs, &ref_runs, cfg, &scorers)?;
    }
    let fluency = score_fluency(cfg, &inputs, &generated)?;
    for (k, (sys, g)) in cfg.systems.iter().zip(generated).enumerate() {
        let out_refs: Vec<&str> = g.texts.iter().map(|s| s.as_str()).collect();
        let out_match = rm.style.match_texts(&out_refs)?;
        let samples: Vec<ScoredSample> = (0..inputs.len())
            .map(|i| ScoredSample {
                input: inputs[i].clone(),
                output: g.texts[i].clone(),
                input_best: input_match[i].best.clone(),
                input_sim: input_match[i].best_sim.clone(),
                output_best: out_match[i].best.clone(),
                output_sim: out_match[i].best_sim.clone(),
                stopped_at_eos: g.stopped_at_eos[i],
            })
            .collect();
        let meaning = match &scorers.meaning {
            Some((spec, enc)) => {
                let pairs: Vec<(&str, &str)> = input_refs
                    .iter()
                    .copied()
                    .zip(out_refs.iter().copied())
                    .collect();
                Some(
                    meaning_kept(enc.as_ref(), &pairs)
                        .with_context(|| format!("meaning.encoder '{spec}'"))?,
                )
            }
            None => None,
        };
        let mut judge = Vec::new();
        for ((spec, sc), inp) in scorers.judges.iter().zip(&scorers.judge_inputs) {
            let m = sc.match_texts(&out_refs)?;
            judge.push(JudgeSeries {
                encoder: spec.clone(),
                output: m.iter().map(|t| text_mean(&t.best_sim)).collect(),
                input: inp.clone(),
            });
        }
        let m = aggregate(&sys.name, &samples, refs.len(), cfg.not_rewritten_threshold);
        let mut ser = series(
            &samples,
            cfg.not_rewritten_threshold,
            meaning.as_deref(),
            judge,
        );
        let checked: Vec<quality::Checked> = (0..inputs.len())
            .map(|i| {
                quality::check(
                    &inputs[i],
                    &g.texts[i],
                    &ref_runs,
                    Some(g.stopped_at_eos[i]),
                )
            })
            .collect();
        let fl = fluency
            .as_ref()
            .map(|f| (f.outputs[k].as_slice(), f.inputs.as_slice()));
        ser.per_sample.extend(quality::series(&checked, fl));
        for (i, s) in samples.iter().enumerate() {
            let mut v = output_line(sys, i, s, &input_match[i], &out_match[i], &refs, cfg);
            if let Some(o) = v.as_object_mut() {
                o.insert("meaning_kept".into(), json!(meaning.as_ref().map(|m| m[i])));
                let js: serde_json::Map<String, Value> = ser
                    .judge
                    .iter()
                    .map(|j| (j.encoder.clone(), json!(j.output[i])))
                    .collect();
                o.insert("judge_encoder_style_similarity".into(), Value::Object(js));
                let f = fluency.as_ref().and_then(|f| f.outputs[k][i]);
                o.insert("reader_checks".into(), quality::record(&checked[i], f));
                if let Some((kept, cands)) = g.chosen.get(i) {
                    o.insert(
                        "best_of".into(),
                        best_of_record(*kept, cands, &g.samples[i]),
                    );
                }
            }
            lines.push(v.to_string());
        }
        sys_json.push(json!({
            "name": sys.name, "kind": sys.kind_name(), "model": sys.model.path,
            "adapters": sys.model.adapters, "examples": g.examples, "seconds": g.seconds,
            "best_of": sys.best_of,
        }));
        report.note(&format!(
            "{}: {} outputs in {:.1}s",
            sys.name,
            inputs.len(),
            g.seconds
        ));
        rows.push(m);
        all_series.push(ser);
        all_outputs.push(g.texts);
    }
    let (judge_failure, pairwise_md) =
        judge_all(cfg, &refs, &inputs, &all_outputs, &mut rows, report);

    // One set of resamples for every system and metric: differences are paired.
    let rs = Resamples::new(inputs.len(), cfg.bootstrap.resamples, cfg.bootstrap.seed);
    let base = cfg
        .baseline
        .as_ref()
        .and_then(|b| cfg.systems.iter().position(|s| &s.name == b));
    for (k, (row, ser)) in rows.iter_mut().zip(&all_series).enumerate() {
        let b = base.filter(|&b| b != k).map(|b| &all_series[b]);
        add_intervals(row, ser, b, &rs, refs.len());
    }

    let meaning_spec = scorers.meaning.as_ref().map(|(s, _)| s.clone());
    let opts = TableOptions {
        judge_baseline: judge_header(cfg).to_string(),
        baseline: cfg.baseline.clone(),
        judge_encoders: cfg.judge_encoders.clone(),
        n_inputs: inputs.len(),
        resamples: rs.resamples(),
        meaning_encoder: meaning_spec.clone(),
        style_encoder: rm.style.encoder_name(),
    };
    let fluency_model = fluency.as_ref().map(|f| f.model.display().to_string());
    let mut markdown = table::markdown(&rows, &opts);
    let reader = quality_table::markdown(&rows, cfg.baseline.as_deref(), fluency_model.as_deref());
    if !reader.is_empty() {
        markdown.push('\n');
        markdown.push_str(&reader);
    }
    if !pairwise_md.is_empty() {
        markdown.push_str("\nLLM judge, pairwise (each pair asked in both orders; a win counts only when both agree): system wins / baseline wins / ties\n\n| pair | style | meaning | fluency |\n|---|---|---|---|\n");
        markdown.push_str(&pairwise_md);
        markdown.push_str("\nverdicts in review format under judge_review/ (`stylerl review score` reads them).\n");
    }
    let metrics = json!({
        "name": cfg.name,
        "heldout": cfg.data.heldout, "n_inputs": inputs.len(),
        "reference": cfg.reward.reference, "n_reference_sentences": refs.len(),
        "encoder": rm.style.encoder_name(),
        "meaning_encoder": meaning_spec,
        "fluency_model": fluency_model,
        "judge_encoders": cfg.judge_encoders,
        "baseline": cfg.baseline,
        "bootstrap": {
            "method": "paired percentile bootstrap over held-out inputs",
            "level": LEVEL, "resamples": rs.resamples(), "seed": cfg.bootstrap.seed,
        },
        "not_rewritten_threshold": cfg.not_rewritten_threshold,
        "generation": serde_json::to_value(&cfg.generation)?,
        "systems": rows.iter().zip(sys_json).map(|(m, mut s)| {
            let v = serde_json::to_value(m).unwrap_or(Value::Null);
            if let (Some(o), Some(extra)) = (s.as_object_mut(), v.as_object()) {
                for (k, x) in extra { o.insert(k.clone(), x.clone()); }
            }
            s
        }).collect::<Vec<_>>(),
    });
    let w = |f: &str, bytes: &[u8]| crate::util::write_atomic(&out_dir.join(f), bytes);
    w("table.md", markdown.as_bytes())?;
    w("table.csv", table::csv(&rows)?.as_bytes())?;
    w("reader_checks.csv", quality_table::csv(&rows)?.as_bytes())?;
    w(
        "metrics.json",
        serde_json::to_string_pretty(&metrics)?.as_bytes(),
    )?;
    let mut jsonl = lines.join("\n");
    jsonl.push('\n');
    w("outputs.jsonl", jsonl.as_bytes())?;
    chart::draw(&rows, &opts, &out_dir.join("chart.svg"))?;
    // The files are kept (generation is the costly part); the exit code reports the judge.
    if let (Some(msg), true) = (judge_failure, cfg.judge.required) {
        bail!(
            "{msg} (results without it are in {}; set judge.required = false to accept that)",
            out_dir.display()
        );
    }
    Ok(Report {
        out_dir,
        systems: rows,
        markdown,
    })
}

/// Per-text mean NLL under the frozen base model: the inputs once, then each system's outputs.
struct Fluency {
    model: PathBuf,
    inputs: Vec<Option<f64>>,
    outputs: Vec<Vec<Option<f64>>>,
}

/// Scores every text with `[fluency] model` (no adapters; the text alone, tokenized as
/// transformers' `tokenizer(text)` does); `None` when no fluency model is configured. A
/// non-finite score means broken weights: one error naming the model.
fn score_fluency(
    cfg: &EvalConfig,
    inputs: &[String],
    generated: &[Generated],
) -> Result<Option<Fluency>> {
    let Some(path) = cfg.fluency.resolved() else {
        return Ok(None);
    };
    let section = crate::adapter::load::ModelSection::cpu_f32(path.clone());
    let (model, tok, _) = load_policy(&section)
        .with_context(|| format!("fluency.model '{}' (or set it to \"none\")", path.display()))?;
    let score = |texts: &[String]| -> Result<Vec<Option<f64>>> {
        let ids: Vec<Vec<i64>> = texts
            .iter()
            .map(|t| tok.encode(t, true))
            .collect::<Result<_>>()?;
        let nll = crate::infer::scoring::mean_nll(&model, &ids, cfg.fluency.batch_size);
        if nll.iter().any(|x| x.is_some_and(|v| !v.is_finite())) {
            bail!(
                "fluency.model '{}' gives a non-finite log-likelihood (its weights hold NaN or inf): check or re-import it",
                path.display()
            );
        }
        Ok(nll)
    };
    let pb = crate::util::progress_bar(generated.len() as u64 + 1, "fluency");
    let inputs = score(inputs)?;
    pb.inc(1);
    let mut outputs = Vec::with_capacity(generated.len());
    for g in generated {
        outputs.push(score(&g.texts)?);
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(Some(Fluency {
        model: path,
        inputs,
        outputs,
    }))
}

fn judge_header(cfg: &EvalConfig) -> &str {
    if cfg.judge.url.is_some() {
        &cfg.judge.baseline
    } else {
        ""
    }
}

/// Fills each row's judge cell: preference vs the baseline system's outputs, or why not.
/// Also returns the Markdown rows of the pairwise judge (empty without `judge.pairwise`).
fn judge_all(
    cfg: &EvalConfig,
    refs: &[String],
    inputs: &[String],
    outputs: &[Vec<String>],
    rows: &mut [SystemMetrics],
    report: &dyn crate::report::Report,
) -> (Option<String>, String) {
    let Some(judge) = Judge::new(&cfg.judge) else {
        return (None, String::new());
    };
    let mut failure = None;
    let mut pairwise_md = String::new();
    let Some(b) = cfg
        .systems
        .iter()
        .position(|s| s.name == cfg.judge.baseline)
    else {
        // The baseline was filtered out by --systems: nothing to compare with.
        for r in rows.iter_mut() {
            r.judge = JudgeCell::Error(format!("baseline '{}' not evaluated", cfg.judge.baseline));
        }
        return (None, String::new());
    };
    let hint: Vec<String> = refs.iter().take(5).map(|r| format!("\"{r}\"")).collect();
    let hint = format!("written like these sentences: {}", hint.join(" "));
    for (s, row) in rows.iter_mut().enumerate() {
        if s == b {
            row.judge = JudgeCell::Baseline;
            continue;
        }
        let items: Vec<JudgeItem> = (0..inputs.len())
            .map(|i| JudgeItem {
                input: &inputs[i],
                system: &outputs[s][i],
                baseline: &outputs[b][i],
            })
            .collect();
        row.judge = match judge.preference(&items, &hint) {
            Ok(p) => JudgeCell::Percent(p),
            Err(e) => {
                let msg = format!("{e:#}");
                report.note(&format!(
                    "warning: judge failed for system '{}': {msg}",
                    row.name
                ));
                failure.get_or_insert(format!("judge failed for system '{}': {msg}", row.name));
                JudgeCell::Error(msg)
            }
        };
        if cfg.judge.pairwise && !matches!(row.judge, JudgeCell::Error(_)) {
            let pw = judge
                .pairwise(&items, &hint)
                .and_then(|o| pairwise_review(cfg, refs, inputs, outputs, (s, b), &o));
            match pw {
                Ok(md) => pairwise_md.push_str(&md),
                Err(e) => {
                    let msg = format!("{e:#}");
                    report.note(&format!(
                        "warning: pairwise judge failed for system '{}': {msg}",
                        row.name
                    ));
                    failure.get_or_insert(format!(
                        "pairwise judge failed for system '{}': {msg}",
                        row.name
                    ));
                }
            }
        }
    }
    (failure, pairwise_md)
}

/// Writes one system's pairwise judge verdicts as a blind review against the baseline
/// (results/<name>/judge_review/<system>-vs-<baseline>/: sheet, verdicts, score; the key
/// beside the folder) and returns its Markdown row.
fn pairwise_review(
    cfg: &EvalConfig,
    refs: &[String],
    inputs: &[String],
    outputs: &[Vec<String>],
    (s, b): (usize, usize),
    outcomes: &[[super::judge::Outcome; 3]],
) -> Result<String> {
    use super::judge::Outcome;
    use super::review;
    let (sys, base) = (&cfg.systems[s].name, &cfg.systems[b].name);
    let pairs: Vec<review::Pair> = (0..inputs.len())
        .map(|i| review::Pair {
            index: i,
            input: inputs[i].clone(),
            first: outputs[s][i].clone(),
            second: outputs[b][i].clone(),
        })
        .collect();
    let excerpt = refs.iter().take(6).cloned().collect();
    let title = format!(
        "LLM judge: which rewrite is better? ({} items)",
        pairs.len()
    );
    let (sheet, key) = review::make(&title, (sys, base), &pairs, excerpt, cfg.judge.seed)?;
    let verdicts: Vec<review::Verdict> = key
        .items
        .iter()
        .map(|k| {
            let o = &outcomes[k.index];
            let won = std::array::from_fn(|d| match o[d] {
                Outcome::Win => Some(true),
                Outcome::Loss => Some(false),
                Outcome::Tie => None,
            });
            review::verdict_for(k, sys, won)
        })
        .collect();
    let score = review::score(&key, &verdicts)?;
    let dir = cfg
        .out_dir()
        .join("judge_review")
        .join(format!("{sys}-vs-{base}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let w = |f: &str, t: &str| crate::util::write_atomic(&dir.join(f), t.as_bytes());
    w("sheet.html", &review::page(&sheet)?)?;
    w("sheet.json", &serde_json::to_string_pretty(&sheet)?)?;
    let lines: Vec<String> = verdicts
        .iter()
        .map(|v| review::verdict_line(&sheet.sheet_id, v))
        .collect();
    w("verdicts.jsonl", &(lines.join("\n") + "\n"))?;
    w("score.json", &serde_json::to_string_pretty(&score)?)?;
    let key_path = dir.with_extension("key.json");
    crate::util::write_atomic(&key_path, serde_json::to_string_pretty(&key)?.as_bytes())?;
    let cells: Vec<String> = score
        .dimensions
        .iter()
        .map(|d| {
            let share = d
                .win_share
                .map(|w| format!("{w:.2}"))
                .unwrap_or_else(|| "n/a".into());
            format!(
                "{} / {} / {} (share {share}, p {:.3})",
                d.wins, d.losses, d.ties, d.sign_test_p
            )
        })
        .collect();
    Ok(format!("| {sys} vs {base} | {} |\n", cells.join(" | ")))
}

/// With `best_of` > 1, replaces each output by the sample `select::pick` keeps.
fn keep_best(
    g: &mut Generated,
    inputs: &[String],
    refs: &ReferenceRuns,
    cfg: &EvalConfig,
    scorers: &Scorers,
) -> Result<()> {
    if g.samples.is_empty() {
        return Ok(());
    }
    let enc = scorers.meaning.as_ref().map(|(_, e)| e.as_ref());
    g.chosen = select::choose(inputs, &g.samples, refs, cfg.not_rewritten_threshold, enc)
        .context("best_of: scoring the sampled rewrites")?;
    for (i, (kept, _)) in g.chosen.iter().enumerate() {
        let s = &g.samples[i][*kept];
        g.texts[i] = s.text.clone();
        g.stopped_at_eos[i] = s.stopped_at_eos;
    }
    Ok(())
}

/// outputs.jsonl's account of a best-of-N choice: which sample was kept and why.
fn best_of_record(kept: usize, cands: &[Candidate], samples: &[Sampled]) -> Value {
    let c: Vec<Value> = cands
        .iter()
        .zip(samples)
        .map(|(c, s)| {
            let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert("text".into(), json!(s.text));
            }
            v
        })
        .collect();
    json!({"kept": kept, "candidates": c})
}

/// Every system's outputs, in `cfg.systems` order: one after another, or `generation.jobs`
/// at a time, each job on one libtorch thread. The first failing system (in config order)
/// is the error.
fn generate_all(cfg: &EvalConfig, refs: &[String], inputs: &[String]) -> Result<Vec<Generated>> {
    let jobs = cfg.generation.jobs.min(cfg.systems.len());
    let bars = crate::util::multi_progress();
    let bar =
        |sys: &SystemConfig| bars.add(crate::util::progress_bar(inputs.len() as u64, &sys.name));
    if jobs <= 1 {
        return cfg
            .systems
            .iter()
            .map(|sys| generate_system(cfg, sys, refs, inputs, bar(sys)))
            .collect();
    }
    // Threads started from here read libtorch's thread count when they first run an op.
    let threads = tch::get_num_threads();
    tch::set_num_threads(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done: std::sync::Mutex<Vec<Option<Result<Generated>>>> =
        std::sync::Mutex::new((0..cfg.systems.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(sys) = cfg.systems.get(i) else { break };
                let r = generate_system(cfg, sys, refs, inputs, bar(sys));
                let failed = r.is_err();
                if let Ok(mut d) = done.lock() {
                    d[i] = Some(r);
                }
                if failed {
                    // No new systems after a failure; running ones finish.
                    next.store(cfg.systems.len(), std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    tch::set_num_threads(threads);
    let done = done
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a generation job panicked"))?;
    let mut out = Vec::with_capacity(done.len());
    for (sys, r) in cfg.systems.iter().zip(done) {
        match r {
            Some(r) => out.push(r?),
            None => bail!(
                "system '{}': not generated (an earlier job failed)",
                sys.name
            ),
        }
    }
    Ok(out)
}

/// Loads a system, renders its prompts through the chat template and generates one
/// completion per input.
fn generate_system(
    cfg: &EvalConfig,
    sys: &SystemConfig,
    refs: &[String],
    inputs: &[String],
    pb: indicatif::ProgressBar,
) -> Result<Generated> {
    let t0 = Instant::now();
    let (mut model, tok, tpl) =
        load_policy(&sys.model).with_context(|| format!("system '{}'", sys.name))?;
    // The adapters are frozen here: folding them into the weights makes sampling cheaper.
    adapters::fold_attached(&mut model);
    let examples = shared_examples(sys, refs.len());
    let prompts: Vec<Vec<i64>> = user_turns(sys, refs, inputs)
        .iter()
        .map(|u| {
            let text = tpl.render(&[ChatMessage::new("user", u)], true)?;
            tok.encode(&text, false)
        })
        .collect::<Result<_>>()
        .with_context(|| format!("system '{}': cannot build prompts", sys.name))?;
    let g = &cfg.generation;
    // Past the context or past memory: refused before any cache is allocated.
    crate::infer::limits::check_generation(
        &model.config,
        model.kind,
        &prompts,
        &format!(
            "system '{}': {} input",
            sys.name,
            cfg.data.heldout.display()
        ),
        &crate::infer::limits::GenerationSize {
            batch: g.batch_size,
            samples: sys.best_of,
            max_new_tokens: g.max_new_tokens,
            flags: [
                "generation.batch_size",
                "samples",
                "generation.max_new_tokens",
            ],
        },
    )?;
    let gc = GenerateConfig {
        max_new_tokens: g.max_new_tokens,
        sampling: SamplingConfig {
            greedy: g.greedy,
            temperature: if g.greedy { 1.0 } else { g.temperature },
            top_k: None,
            top_p: if g.greedy { None } else { g.top_p },
        },
        seed: g.seed,
        eos_ids: eos_ids(&model.config, Some(&tok)),
        pad_id: pad_id(&model.config, Some(&tok)),
        share_prefix: false,
        // A prompted system's style examples head every prompt: run them once per batch.
        common_prefix: true,
        rng_prompt_offset: 0,
    };
    // Length-sorted order (stable), so a batch holds prompts of similar length.
    let mut order: Vec<usize> = (0..prompts.len()).collect();
    order.sort_by_key(|&i| prompts[i].len());
    let n = sys.best_of;
    let mut all: Vec<Vec<Sampled>> = vec![Vec::with_capacity(n); inputs.len()];
    for (c, chunk) in order.chunks(g.batch_size).enumerate() {
        let batch: Vec<Vec<i64>> = chunk.iter().map(|&i| prompts[i].clone()).collect();
        // Random streams keyed by the place in the sorted order, so batch_size does not change outputs.
        let gc = GenerateConfig {
            rng_prompt_offset: c * g.batch_size,
            ..gc.clone()
        };
        let mut samples = generate(&model, &batch, n, &gc)
            .with_context(|| format!("system '{}': generation failed", sys.name))?;
        samples.sort_by_key(|s| (s.prompt_index, s.sample_index));
        for s in samples {
            all[chunk[s.prompt_index]].push(Sampled {
                text: tok.decode(&s.tokens, true)?.trim().to_string(),
                stopped_at_eos: s.stopped_at_eos,
            });
        }
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    if let Some(i) = all.iter().position(|s| s.len() != n) {
        bail!(
            "system '{}': input {i} got {} samples, not {n}",
            sys.name,
            all[i].len()
        );
    }
    Ok(Generated {
        texts: all.iter().map(|s| s[0].text.clone()).collect(),
        stopped_at_eos: all.iter().map(|s| s[0].stopped_at_eos).collect(),
        examples,
        seconds: t0.elapsed().as_secs_f64(),
        samples: if n > 1 { all } else { Vec::new() },
        chosen: Vec::new(),
    })
}

/// Per-sentence matches of one text: sentence, closest reference index and text, similarity.
pub(crate) fn sentence_matches(m: &TextStyle, refs: &[String]) -> Value {
    Value::Array(
        m.sentences
            .iter()
            .zip(m.best.iter().zip(&m.best_sim))
            .map(|(s, (&k, &sim))| {
                json!({"sentence": s, "reference": k, "reference_text": refs[k], "similarity": sim})
            })
            .collect(),
    )
}

/// One outputs.jsonl record.
fn output_line(
    sys: &SystemConfig,
    index: usize,
    s: &ScoredSample,
    input_match: &TextStyle,
    output_match: &TextStyle,
    refs: &[String],
    cfg: &EvalConfig,
) -> Value {
    json!({
        "system": sys.name, "index": index, "input": s.input, "output": s.output,
        "stopped_at_eos": s.stopped_at_eos,
        "not_rewritten": is_not_rewritten(&s.input, &s.output, cfg.not_rewritten_threshold),
        "edit_similarity": edit_similarity(&s.input, &s.output),
        "entity_f1": pair_entity_f1(&s.input, &s.output),
        "words": word_count(&s.output),
        "style_similarity": text_mean(&s.output_sim),
        "input_style_similarity": text_mean(&s.input_sim),
        "output_sentences": sentence_matches(output_match, refs),
        "input_sentences": sentence_matches(input_match, refs),
    })
}
