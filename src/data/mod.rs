//! Dataset loading: a list of texts from JSONL, JSON, CSV, Parquet or plain text.
//!
//! The format comes from the file extension (`.jsonl`/`.ndjson`, `.json`, `.csv`, `.tsv`,
//! `.parquet`/`.pq`, anything else is plain text). Structured formats read one field or
//! column, `text` unless told otherwise; JSON fields may be dotted paths (`meta.body`,
//! `messages.0.content`), and a JSONL line that is a bare JSON string is taken as is.
//!
//! Plain text: [`TextMode::Paragraphs`] takes blank-line separated blocks (lines of a block
//! joined with a newline); [`TextMode::Lines`] takes each non-blank line; [`TextMode::Auto`]
//! (the default) reads paragraphs when the file has a blank line between two non-blank
//! lines, else lines; [`TextMode::Document`] takes the whole file as one text.
//!
//! Texts that are null, empty or only whitespace are skipped; a file left with no texts,
//! a missing file, or a missing field/column is an error naming the file and the fix.
mod structured;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

pub use structured::{load_csv, load_json, load_jsonl, load_parquet};

/// An error about the field or column asked for (missing, not text, no texts in it), as
/// opposed to a broken file: a caller may add a hint about the setting that names the field
/// to these only, so a JSON syntax error is not reported as a wrong field name.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FieldError(pub String);

/// How a plain-text file is cut into texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextMode {
    Auto,
    Lines,
    Paragraphs,
    Document,
}

/// A dataset file plus the field/column (structured formats) or the text mode (plain text).
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    pub path: PathBuf,
    pub field: Option<String>,
}

impl DataSpec {
    /// Parses `PATH` or `PATH:FIELD` (`FIELD` is a column/field name, or `lines` /
    /// `paragraphs` / `document` for plain text). An existing file whose name contains ':' wins.
    pub fn parse(s: &str) -> DataSpec {
        if !Path::new(s).exists() {
            if let Some((p, f)) = s.rsplit_once(':') {
                if !p.is_empty() && !f.is_empty() && !f.contains('/') {
                    return DataSpec {
                        path: p.into(),
                        field: Some(f.to_string()),
                    };
                }
            }
        }
        DataSpec {
            path: s.into(),
            field: None,
        }
    }

    /// A short name for tables: parent folder / file stem, plus the field when one was given.
    pub fn label(&self) -> String {
        let part = |p: Option<&std::ffi::OsStr>| {
            p.map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default()
        };
        let stem = part(self.path.file_stem());
        let parent = part(self.path.parent().and_then(|p| p.file_name()));
        let base = if parent.is_empty() {
            stem
        } else {
            format!("{parent}/{stem}")
        };
        match &self.field {
            Some(f) => format!("{base}:{f}"),
            None => base,
        }
    }

    /// Loads the texts this spec names.
    pub fn load(&self) -> Result<Vec<String>> {
        load_texts(&self.path, self.field.as_deref())
    }
}

/// Loads the texts of `path`; `field` is the JSON field / CSV or Parquet column (default
/// `text`) or, for plain text, `lines` / `paragraphs` / `document`.
pub fn load_texts(path: &Path, field: Option<&str>) -> Result<Vec<String>> {
    if !path.is_file() {
        bail!("dataset {} not found: check the path", path.display());
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let col = field.unwrap_or("text");
    let texts = match ext.as_str() {
        "jsonl" | "ndjson" => load_jsonl(path, col)?,
        "json" => load_json(path, col)?,
        "csv" => load_csv(path, col, b',')?,
        "tsv" => load_csv(path, col, b'\t')?,
        "parquet" | "pq" => load_parquet(path, col)?,
        _ => {
            let mode = match field {
                None | Some("auto") => TextMode::Auto,
                Some("lines") => TextMode::Lines,
                Some("paragraphs") => TextMode::Paragraphs,
                Some("document") => TextMode::Document,
                Some(other) => bail!(
                    "dataset {}: plain text takes ':lines', ':paragraphs' or ':document', not ':{other}'",
                    path.display()
                ),
            };
            let raw = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read dataset {} as UTF-8 text", path.display()))?;
            split_plain(&raw, mode)
        }
    };
    if texts.is_empty() {
        return Err(FieldError(format!(
            "dataset {} has no non-empty texts (field/column '{col}'): check the file and the field name",
            path.display()
        ))
        .into());
    }
    Ok(texts)
}

/// Cuts plain text into texts (see the module docs for the modes).
pub fn split_plain(raw: &str, mode: TextMode) -> Vec<String> {
    let lines: Vec<&str> = raw.lines().map(|l| l.trim_end()).collect();
    // A blank line (or several) with text on both sides separates paragraphs.
    let has_blank_separator = || {
        let (mut seen_text, mut blank_after_text) = (false, false);
        lines.iter().any(|l| {
            if l.trim().is_empty() {
                blank_after_text = seen_text;
                false
            } else {
                seen_text = true;
                blank_after_text
            }
        })
    };
    let mode = match mode {
        TextMode::Auto if has_blank_separator() => TextMode::Paragraphs,
        TextMode::Auto => TextMode::Lines,
        m => m,
    };
    match mode {
        TextMode::Document => {
            let t = raw.trim();
            if t.is_empty() {
                vec![]
            } else {
                vec![t.to_string()]
            }
        }
        TextMode::Lines => lines
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        _ => {
            let mut out = Vec::new();
            let mut cur: Vec<&str> = Vec::new();
            for l in lines.iter().chain(std::iter::once(&"")) {
                if l.trim().is_empty() {
                    if !cur.is_empty() {
                        out.push(cur.join("\n").trim().to_string());
                        cur.clear();
                    }
                } else {
                    cur.push(l);
                }
            }
            out
        }
    }
}
