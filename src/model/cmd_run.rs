//! `stylerl generate` and the input helpers of the model commands (arguments live in cmd.rs;
//! perplexity and logits in cmd_score.rs).
use super::chat::{ChatMessage, ChatTemplate};
use super::cmd::{GenerateArgs, ModelOpts};
use super::generate::{generate_with_stats, GenerateConfig};
use super::llama::Llama;
use super::sampling::SamplingConfig;
use super::tokenizer::Tokenizer;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// A prompt line: text to tokenize, or token ids given directly.
pub enum PromptInput {
    Text(String),
    Ids(Vec<i64>),
}

/// Reads JSON lines (strings or id arrays); a line that is not JSON is taken as plain text.
pub fn read_prompts(path: &Path) -> Result<Vec<PromptInput>> {
    read_prompts_field(path, None)
}

/// As [`read_prompts`]; with `field`, JSON object lines give that field's string.
pub fn read_prompts_field(path: &Path, field: Option<&str>) -> Result<Vec<PromptInput>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::String(s)) => PromptInput::Text(s),
            Ok(serde_json::Value::Object(o)) if field.is_some() => {
                let f = field.unwrap_or_default();
                match o.get(f) {
                    Some(serde_json::Value::String(s)) => PromptInput::Text(s.clone()),
                    _ => bail!(
                        "{} line {}: no string field '{f}' (set --input-field)",
                        path.display(),
                        n + 1
                    ),
                }
            }
            Ok(serde_json::Value::Array(a)) => PromptInput::Ids(
                a.iter()
                    .map(|x| x.as_i64())
                    .collect::<Option<Vec<_>>>()
                    .with_context(|| {
                        format!(
                            "{} line {}: an array must hold token ids",
                            path.display(),
                            n + 1
                        )
                    })?,
            ),
            _ => PromptInput::Text(line.to_string()),
        });
    }
    if out.is_empty() {
        bail!("{} has no prompts", path.display());
    }
    Ok(out)
}

/// Refuses early when --model is not a model directory (before any tokenizing).
pub(super) fn check_model_dir(m: &ModelOpts) -> Result<()> {
    if !m.model.join("config.json").is_file() {
        bail!(
            "--model {}: no config.json there (expected a Hugging Face model directory)",
            m.model.display()
        );
    }
    Ok(())
}

/// Loads (or randomly initialises) the model named by the options, with its `--adapter`s
/// attached (frozen, composed with their weights).
pub fn load_model(m: &ModelOpts) -> Result<Llama> {
    if let Some(n) = m.threads {
        tch::set_num_threads(n);
    }
    let device = crate::util::parse_device(&m.device)?;
    let kind = crate::util::parse_dtype(&m.dtype)?;
    let mut model = if m.random_init {
        Llama::random_init(&m.model, device, kind, 0)?
    } else {
        Llama::load(&m.model, device, kind)?
    };
    if !m.adapters.is_empty() {
        super::adapters::load_and_attach(&mut model, &m.adapters, device)?;
    }
    Ok(model)
}

pub(super) fn tokenizer_if_needed(
    dir: &Path,
    prompts: &[PromptInput],
) -> Result<Option<Tokenizer>> {
    let needs = prompts.iter().any(|p| matches!(p, PromptInput::Text(_)));
    if needs || dir.join("tokenizer.json").exists() {
        Ok(Some(Tokenizer::from_dir(dir)?))
    } else {
        Ok(None)
    }
}

/// How text prompts become token ids.
#[derive(Clone, Copy)]
pub(super) struct ChatOpts<'a> {
    template: &'a ChatTemplate,
    system: Option<&'a str>,
    add_generation_prompt: bool,
}

/// The prompt as the model sees it: text (rendered through the chat template when given) and ids.
fn encode_full(
    tok: &Option<Tokenizer>,
    p: &PromptInput,
    chat: Option<ChatOpts>,
) -> Result<(Option<String>, Vec<i64>)> {
    let t = match p {
        PromptInput::Ids(ids) => return Ok((None, ids.clone())),
        PromptInput::Text(t) => t,
    };
    let tok = tok
        .as_ref()
        .context("text prompts need the model directory's tokenizer.json")?;
    match chat {
        // Like apply_chat_template(tokenize=True): the rendered text already holds its specials.
        Some(c) => {
            let mut m = Vec::new();
            if let Some(s) = c.system {
                m.push(ChatMessage::new("system", s));
            }
            m.push(ChatMessage::new("user", t));
            let text = c.template.render(&m, c.add_generation_prompt)?;
            let ids = tok.encode(&text, false)?;
            Ok((Some(text), ids))
        }
        None => Ok((Some(t.clone()), tok.encode(t, true)?)),
    }
}

pub(super) fn encode(
    tok: &Option<Tokenizer>,
    p: &PromptInput,
    chat: Option<ChatOpts>,
) -> Result<Vec<i64>> {
    Ok(encode_full(tok, p, chat)?.1)
}

/// One generated sample with its decoded text.
struct Generated {
    prompt_index: usize,
    sample: super::generate::Sample,
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
        let cfg = GenerateConfig {
            rng_prompt_offset: b * a.batch_size,
            ..cfg.clone()
        };
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

/// Refuses a prompt longer than the model's context (max_position_embeddings) before any
/// cache or attention buffer is allocated for it; names the prompt (1-based).
pub fn check_context(ids: &[Vec<i64>], max_positions: i64, what: &str) -> Result<()> {
    for (i, p) in ids.iter().enumerate() {
        if p.len() as i64 > max_positions {
            bail!(
                "{what} {}: {} tokens, more than the model's context of {max_positions} (max_position_embeddings): shorten it",
                i + 1,
                p.len()
            );
        }
    }
    Ok(())
}

pub fn generate(a: &GenerateArgs) -> Result<()> {
    check_generate_flags(a)?;
    check_model_dir(&a.m)?;
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
    let ctx = super::LlamaConfig::from_dir(&a.m.model)?.max_position_embeddings;
    check_context(&ids, ctx, "prompt")?;
    let t_load = Instant::now();
    let mut model = load_model(&a.m)?;
    let load_s = t_load.elapsed().as_secs_f64();
    let eos = super::generate::eos_ids(&model.config, tok.as_ref());
    let pad_id = super::generate::pad_id(&model.config, tok.as_ref());
    let cfg = GenerateConfig {
        max_new_tokens: a.max_new_tokens,
        sampling: SamplingConfig {
            greedy: a.greedy,
            temperature: a.temperature,
            top_k: a.top_k,
            top_p: a.top_p,
        },
        seed: a.seed,
        eos_ids: if a.ignore_eos { vec![] } else { eos },
        pad_id,
        share_prefix: true,
        rng_prompt_offset: 0,
    };
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
