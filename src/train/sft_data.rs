//! SFT examples: (input, rewrite) pairs or chat messages, rendered through the model's chat
//! template, with the loss on the assistant answer only.
//!
//! The answer is what the template adds for the assistant turn: render the conversation with
//! the answer, render it without (with the generation prompt), and the difference is the
//! answer text including the template's end-of-turn marker — so the model learns to stop.
use super::batch::SftExample;
use crate::model::chat::{ChatMessage, ChatTemplate};
use crate::model::Tokenizer;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `[data]` table of an SFT config.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct SftDataConfig {
    /// Training file: JSONL, JSON, CSV or Parquet.
    pub train: PathBuf,
    /// Held-out file for eval loss (same format).
    pub eval: Option<PathBuf>,
    /// "pairs" (input/output columns) or "messages" (a JSONL field holding chat turns).
    #[serde(default = "d_format")]
    pub format: String,
    #[serde(default = "d_input")]
    pub input_field: String,
    #[serde(default = "d_output")]
    pub output_field: String,
    #[serde(default = "d_messages")]
    pub messages_field: String,
    /// Put before the input in the user turn ("{instruction}\n\n{input}"); empty: input alone.
    #[serde(default = "d_instruction")]
    pub instruction: String,
    /// Optional system message (otherwise the template's default, if any).
    pub system: Option<String>,
    /// Longest example in tokens (prompt + answer).
    #[serde(default = "d_max_len")]
    pub max_length: usize,
    /// What to do with longer examples: "truncate" (cut the answer, count) or "refuse".
    #[serde(default)]
    pub overlong: super::batch::Overlong,
}

fn d_format() -> String {
    "pairs".into()
}
fn d_input() -> String {
    "input".into()
}
fn d_output() -> String {
    "output".into()
}
fn d_messages() -> String {
    "messages".into()
}
fn d_instruction() -> String {
    DEFAULT_INSTRUCTION.into()
}
fn d_max_len() -> usize {
    384
}

/// A chat turn as stored in data files.
#[derive(Deserialize)]
struct Turn {
    role: String,
    content: String,
}

/// The rewrite instruction used by SFT, GRPO and evaluation unless a config says otherwise.
pub const DEFAULT_INSTRUCTION: &str = "Rewrite the following text. Keep its meaning and every name, number and date. Reply with the rewritten text only.";

/// The user turn for a rewrite request.
pub fn user_turn(instruction: &str, input: &str) -> String {
    if instruction.trim().is_empty() {
        input.to_string()
    } else {
        format!("{instruction}\n\n{input}")
    }
}

/// Loads conversations: each is the messages up to (excluding) the answer, and the answer.
pub fn load_conversations(
    cfg: &SftDataConfig,
    path: &Path,
) -> Result<Vec<(Vec<ChatMessage>, String)>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("dataset {} cannot be read: check the path", path.display()))?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        bail!(
            "{}: the dataset is empty: add examples or point data.train/data.eval elsewhere",
            path.display()
        );
    }
    let mut out = Vec::new();
    match cfg.format.as_str() {
        "pairs" => {
            // The hint about data.*_field only where the field is the problem: a broken line
            // keeps its own file:line message first.
            let field = |f: &str, key: &str| {
                crate::data::load_texts(path, Some(f)).map_err(|e| {
                    if e.chain().any(|c| c.is::<crate::data::FieldError>()) {
                        e.context(format!("data.{key} = '{f}' (set it to the file's field)"))
                    } else {
                        e
                    }
                })
            };
            let inputs = field(&cfg.input_field, "input_field")?;
            let outputs = field(&cfg.output_field, "output_field")?;
            if inputs.len() != outputs.len() {
                bail!(
                    "{}: {} '{}' values but {} '{}' values: every row needs both",
                    path.display(),
                    inputs.len(),
                    cfg.input_field,
                    outputs.len(),
                    cfg.output_field
                );
            }
            for (i, o) in inputs.into_iter().zip(outputs) {
                let mut msgs = Vec::new();
                if let Some(s) = &cfg.system {
                    msgs.push(ChatMessage::new("system", s));
                }
                msgs.push(ChatMessage::new("user", &user_turn(&cfg.instruction, &i)));
                out.push((msgs, o));
            }
        }
        "messages" => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let v: serde_json::Value = serde_json::from_str(line)
                    .with_context(|| format!("{} line {}: not JSON", path.display(), n + 1))?;
                let msgs: Vec<Turn> = serde_json::from_value(
                    v.get(&cfg.messages_field).cloned().with_context(|| {
                        format!(
                            "{} line {}: no '{}' field (set data.messages_field)",
                            path.display(),
                            n + 1,
                            cfg.messages_field
                        )
                    })?,
                )
                .with_context(|| {
                    format!(
                        "{} line {}: '{}' must be a list of {{role, content}}",
                        path.display(),
                        n + 1,
                        cfg.messages_field
                    )
                })?;
                let msgs: Vec<ChatMessage> = msgs
                    .iter()
                    .map(|t| ChatMessage::new(&t.role, &t.content))
                    .collect();
                let Some((last, rest)) = msgs.split_last() else {
                    bail!("{} line {}: no messages", path.display(), n + 1)
                };
                if last.role != "assistant" {
                    bail!(
                        "{} line {}: the last message must be the assistant's answer",
                        path.display(),
                        n + 1
                    );
                }
                out.push((rest.to_vec(), last.content.clone()));
            }
        }
        f => bail!("data.format = '{f}': use \"pairs\" or \"messages\""),
    }
    if out.is_empty() {
        bail!(
            "{}: the dataset is empty: add examples or point data.train elsewhere",
            path.display()
        );
    }
    Ok(out)
}

/// Renders and tokenizes one conversation into prompt ids and answer ids.
pub fn encode_example(
    tpl: &ChatTemplate,
    tok: &Tokenizer,
    msgs: &[ChatMessage],
    answer: &str,
) -> Result<SftExample> {
    let prompt = tpl.render(msgs, true)?;
    let mut full_msgs = msgs.to_vec();
    full_msgs.push(ChatMessage::new("assistant", answer));
    let full = tpl.render(&full_msgs, false)?;
    let Some(answer_text) = full.strip_prefix(prompt.as_str()) else {
        bail!("the chat template renders the prompt differently with and without the answer; cannot locate the answer tokens");
    };
    Ok(SftExample {
        prompt: tok.encode(&prompt, false)?,
        answer: tok.encode(answer_text, false)?,
    })
}
