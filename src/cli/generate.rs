//! `stylerl generate`: batched sampling with a KV cache; `--compare` puts the base model
//! beside its adapters.
use super::args::ModelOpts;
use super::prompts::{
    check_context, check_generation, check_ids, encode, encode_full, read_prompts_field,
    tokenizer_if_needed, ChatOpts, GenerationSize, PromptInput,
};
use crate::infer::generate::{generate_with_stats, GenerateConfig};
use crate::infer::sampling::SamplingConfig;
use crate::model::chat::ChatTemplate;
use crate::model::precision::{self, Precision};
use crate::model::tokenizer::Tokenizer;
use crate::model::Llama;
use anyhow::{bail, Result};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub m: ModelOpts,
    /// Render prompts through the chat template (user turn, generation prompt).
    #[arg(long)]
    pub chat: bool,
    /// System message for --chat.
    #[arg(long)]
    pub system: Option<String>,
    #[arg(long, conflicts_with = "input")]
    pub prompt: Option<String>,
    /// A file of prompts: JSON lines (strings, or arrays of token ids), or plain text lines.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// With --input: JSON lines are objects and the prompt is this field (e.g. `question`).
    #[arg(long, requires = "input")]
    pub input_field: Option<String>,
    /// Generate with the adapters off (base) and on, and print both for each prompt.
    #[arg(long)]
    pub compare: bool,
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    #[arg(long)]
    pub top_p: Option<f64>,
    #[arg(long)]
    pub top_k: Option<i64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub greedy: bool,
    /// Samples per prompt (they share the prompt's KV cache).
    #[arg(long, default_value_t = 1)]
    pub num_samples: usize,
    /// Prompts generated together in one batch.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Print JSON lines (prompt, text, token ids, logprobs) instead of plain text.
    #[arg(long)]
    pub json: bool,
    /// Never stop at EOS (always max_new_tokens; for benchmarks).
    #[arg(long)]
    pub ignore_eos: bool,
    /// Only print each prompt as the model would see it ({"text", "ids"} JSON lines); no model is loaded.
    #[arg(long)]
    pub render_only: bool,
    /// With --chat: leave out the assistant turn opener (add_generation_prompt=false).
    #[arg(long)]
    pub no_generation_prompt: bool,
    /// Print one JSON timing line to stderr (load, prefill, decode seconds, tokens/s).
    #[arg(long)]
    pub timing: bool,
    /// Weights the decode steps stream: f32, bf16 (half the bytes; each weight rounded to
    /// bf16, products in f32), int8 (a quarter of the bytes; a scale per 32 inputs of each
    /// column; fastest at batch 1, rounds ~4× as far as bf16) or auto (bf16 where the
    /// AVX-512 decode kernel runs). Adapters are merged into them. Not with --compare.
    #[arg(long, default_value = "f32")]
    pub sampling_weights: String,
}

/// One generated sample with its decoded text.
struct Generated {
    prompt_index: usize,
    sample: crate::infer::generate::Sample,
    text: String,
}

/// Timing totals over the batches of one generation pass.
#[derive(Default)]
struct PassStats {
    prefill_s: f64,
    decode_s: f64,
    new_tokens: usize,
    prompt_tokens: usize,
}

/// Generates every prompt in batches; `emit` sees each batch's samples as they finish.
fn generate_all(
    model: &Llama,
    ids: &[Vec<i64>],
    a: &GenerateArgs,
    cfg: &GenerateConfig,
    tok: &Option<Tokenizer>,
    mut emit: impl FnMut(Vec<Generated>) -> Result<()>,
) -> Result<PassStats> {
    let mut st = PassStats::default();
    for (b, chunk) in ids.chunks(a.batch_size).enumerate() {
        // Samples depend on (seed, prompt number in the file, sample number), not on --batch-size.
        let cfg = cfg.from_prompt(b * a.batch_size);
        let (samples, s) = generate_with_stats(model, chunk, a.num_samples, &cfg)?;
        st.prefill_s += s.prefill_s;
        st.decode_s += s.decode_s;
        st.new_tokens += s.new_tokens;
        st.prompt_tokens += s.prompt_tokens;
        let mut out = Vec::with_capacity(samples.len());
        for sample in samples {
            let text = match tok {
                Some(t) => t.decode(&sample.tokens, true)?,
                None => String::new(),
            };
            out.push(Generated {
                prompt_index: b * a.batch_size + sample.prompt_index,
                sample,
                text,
            });
        }
        emit(out)?;
    }
    Ok(st)
}

fn prompt_json(p: &PromptInput) -> serde_json::Value {
    match p {
        PromptInput::Text(t) => serde_json::json!(t),
        PromptInput::Ids(i) => serde_json::json!(i),
    }
}

/// The sampling flags, checked before anything is read or loaded.
fn check_generate_flags(a: &GenerateArgs) -> Result<()> {
    use crate::config::check::*;
    temperature("--temperature", a.temperature, a.greedy)?;
    top_p("--top-p", a.top_p)?;
    top_k("--top-k", a.top_k)?;
    at_least_one("--max-new-tokens", a.max_new_tokens as u64)?;
    at_least_one("--num-samples", a.num_samples as u64)?;
    at_least_one("--batch-size", a.batch_size as u64)?;
    device("--device", &a.m.device)?;
    dtype("--dtype", &a.m.dtype)
}

pub fn generate(a: &GenerateArgs) -> Result<()> {
    check_generate_flags(a)?;
    a.m.check_dir()?;
    let prompts = match (&a.prompt, &a.input) {
        (Some(p), None) => vec![PromptInput::Text(p.clone())],
        (None, Some(f)) => read_prompts_field(f, a.input_field.as_deref())?,
        _ => bail!("give --prompt TEXT or --input FILE"),
    };
    if a.compare && a.m.adapters.is_empty() {
        bail!(
            "--compare shows the base model beside its adapters: give at least one --adapter PATH"
        );
    }
    let tok = tokenizer_if_needed(&a.m.model, &prompts)?;
    let tmpl = match a.chat {
        true => Some(ChatTemplate::from_dir(&a.m.model)?),
        false => None,
    };
    let chat = tmpl.as_ref().map(|template| ChatOpts {
        template,
        system: a.system.as_deref(),
        add_generation_prompt: !a.no_generation_prompt,
    });
    if a.render_only {
        let mut out = std::io::stdout().lock();
        for p in &prompts {
            let (text, ids) = encode_full(&tok, p, chat)?;
            writeln!(out, "{}", serde_json::json!({"text": text, "ids": ids}))?;
        }
        return Ok(());
    }
    let ids: Vec<Vec<i64>> = prompts
        .iter()
        .map(|p| encode(&tok, p, chat))
        .collect::<Result<_>>()?;
    let mc = crate::model::LlamaConfig::from_dir(&a.m.model)?;
    check_ids(&ids, mc.vocab_size, "prompt")?;
    check_context(&ids, mc.max_position_embeddings, "prompt")?;
    let size = GenerationSize {
        batch: a.batch_size,
        samples: a.num_samples,
        max_new_tokens: a.max_new_tokens,
        flags: ["--batch-size", "--num-samples", "--max-new-tokens"],
    };
    check_generation(
        &mc,
        crate::util::parse_dtype(&a.m.dtype)?,
        &ids,
        "prompt",
        &size,
    )?;
    let t_load = Instant::now();
    let sampling = Precision::parse_setting("--sampling-weights", &a.sampling_weights)?;
    let mut model = a.m.load()?;
    if !a.compare {
        let kind = sampling.for_sampling(model.device, model.kind);
        model.prepare_sampling(kind);
        if a.sampling_weights != "f32" {
            eprintln!(
                "{}",
                precision::choice_line("sampling", &a.sampling_weights, kind)
            );
        }
    }
    let load_s = t_load.elapsed().as_secs_f64();
    let cfg = GenerateConfig::for_model(&model.config, tok.as_ref())
        .max_new_tokens(a.max_new_tokens)
        .sampling(SamplingConfig {
            greedy: a.greedy,
            temperature: a.temperature,
            top_k: a.top_k,
            top_p: a.top_p,
        })
        .seed(a.seed)
        .ignore_eos(a.ignore_eos);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let st = if a.compare {
        // Same seed for both passes, so sampled outputs differ only through the adapters.
        model.set_adapters_enabled(false);
        let mut base = Vec::new();
        let s1 = generate_all(&model, &ids, a, &cfg, &tok, |g| {
            base.extend(g);
            Ok(())
        })?;
        model.set_adapters_enabled(true);
        let mut tuned = Vec::new();
        let s2 = generate_all(&model, &ids, a, &cfg, &tok, |g| {
            tuned.extend(g);
            Ok(())
        })?;
        print_compare(&mut out, a, &prompts, &base, &tuned)?;
        PassStats {
            prefill_s: s1.prefill_s + s2.prefill_s,
            decode_s: s1.decode_s + s2.decode_s,
            new_tokens: s1.new_tokens + s2.new_tokens,
            prompt_tokens: s1.prompt_tokens + s2.prompt_tokens,
        }
    } else {
        generate_all(&model, &ids, a, &cfg, &tok, |gs| {
            for g in gs {
                let s = &g.sample;
                if a.json {
                    let line = serde_json::json!({"prompt_index": g.prompt_index, "sample_index": s.sample_index,
                        "prompt": prompt_json(&prompts[g.prompt_index]), "text": g.text, "tokens": s.tokens,
                        "logprobs": s.logprobs, "stopped_at_eos": s.stopped_at_eos});
                    writeln!(out, "{line}")?;
                } else {
                    writeln!(out, "{}", g.text)?;
                }
            }
            out.flush()?;
            Ok(())
        })?
    };
    out.flush()?;
    if a.timing {
        let gen_s = st.prefill_s + st.decode_s;
        eprintln!(
            "{}",
            serde_json::json!({"timing": {"load_s": load_s, "prefill_s": st.prefill_s, "decode_s": st.decode_s,
                "prompt_tokens": st.prompt_tokens, "new_tokens": st.new_tokens,
                "tokens_per_s": st.new_tokens as f64 / gen_s.max(1e-9), "threads": tch::get_num_threads()}})
        );
    }
    Ok(())
}

/// `--compare` output: per prompt a `### prompt N` block with `--- base` and `--- adapter`
/// sections, or with --json one object per prompt and sample holding both texts.
fn print_compare(
    out: &mut impl Write,
    a: &GenerateArgs,
    prompts: &[PromptInput],
    base: &[Generated],
    tuned: &[Generated],
) -> Result<()> {
    let label = a.m.adapters.join(" + ");
    for (b, t) in base.iter().zip(tuned) {
        let p = &prompts[b.prompt_index];
        if a.json {
            let line = serde_json::json!({"prompt_index": b.prompt_index, "sample_index": b.sample.sample_index,
                "prompt": prompt_json(p), "adapters": a.m.adapters, "base": b.text, "adapter": t.text,
                "base_tokens": b.sample.tokens, "adapter_tokens": t.sample.tokens});
            writeln!(out, "{line}")?;
            continue;
        }
        if b.sample.sample_index == 0 {
            let shown = match p {
                PromptInput::Text(s) => s.clone(),
                PromptInput::Ids(i) => format!("{i:?}"),
            };
            writeln!(
                out,
                "### prompt {}\n{}",
                b.prompt_index + 1,
                shown.trim_end()
            )?;
        }
        let n = match a.num_samples {
            1 => String::new(),
            _ => format!(" (sample {})", b.sample.sample_index + 1),
        };
        writeln!(out, "--- base{n}\n{}", b.text.trim_end())?;
        writeln!(out, "--- adapter {label}{n}\n{}\n", t.text.trim_end())?;
    }
    Ok(())
}
