//! `stylerl analyze`: the encoder characterisation table (within-document and
//! across-corpus similarity) and, with --stel, the encoder's STEL accuracy.
use crate::reward::analyze::{characterise, csv, markdown};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// A sentence-transformers directory, `stylometric` or `charstyle`.
    #[arg(long)]
    pub encoder: String,
    /// Dataset files (text, JSONL, JSON, CSV, Parquet; `PATH:FIELD` picks the field/column,
    /// `PATH:lines|paragraphs` the plain-text mode); one table row each.
    #[arg(long, num_args = 1.., required_unless_present = "stel")]
    pub data: Vec<String>,
    /// STEL-or-Content triples (JSON Lines, e.g. datasets/stel/heldout.jsonl): report the
    /// encoder's accuracy overall and per style feature (stel.md, stel.json).
    #[arg(long)]
    pub stel: Option<PathBuf>,
    /// Output directory for table.md and table.csv [default: results/analyze/<encoder>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Device of a transformer encoder: cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Sentences per encoder forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Replace table.md, table.csv, stel.md and stel.json in an --out that holds them (the
    /// default folder is always rewritten).
    #[arg(long, requires = "out")]
    pub force: bool,
}

/// A file-system-safe name for an encoder spec ("models/all-minilm-l6-v2" → "all-minilm-l6-v2").
fn slug(spec: &str) -> String {
    let last = Path::new(spec.trim_end_matches('/'))
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| spec.to_string());
    last.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn analyze(a: &AnalyzeArgs) -> Result<()> {
    crate::config::check::at_least_one("--batch-size", a.batch_size as u64)?;
    if let Some(out) = &a.out {
        if out.is_file() {
            anyhow::bail!("--out {} is a file: give a folder", out.display());
        }
        let mut names = vec!["table.md", "table.csv"];
        if a.stel.is_some() {
            names = vec!["stel.md", "stel.json"];
            if !a.data.is_empty() {
                names.extend(["table.md", "table.csv"]);
            }
        }
        if let Some(p) = names.iter().map(|n| out.join(n)).find(|p| p.exists()) {
            if !a.force {
                anyhow::bail!(
                    "{} exists: pass --force to replace it, or choose another --out",
                    p.display()
                );
            }
        }
    }
    let opts = crate::encoder::EncoderOptions {
        device: crate::util::parse_device(&a.device)?,
        batch_size: a.batch_size.max(1),
    };
    let enc = crate::encoder::load_with(&a.encoder, &opts)
        .with_context(|| format!("--encoder {}", a.encoder))?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results/analyze").join(slug(&a.encoder)));
    if let Some(p) = &a.stel {
        let triples = crate::reward::stel::load_triples(p)?;
        let r = crate::reward::stel::stel_accuracy(enc.as_ref(), &triples)?;
        let md = crate::reward::stel::markdown(&r);
        crate::util::write_atomic(&out.join("stel.md"), md.as_bytes())?;
        crate::util::write_atomic(
            &out.join("stel.json"),
            serde_json::to_string_pretty(&r)?.as_bytes(),
        )?;
        print!("{md}");
        eprintln!("wrote {}/stel.md and stel.json", out.display());
        if a.data.is_empty() {
            return Ok(());
        }
        println!();
    }
    let mut rows = Vec::new();
    for d in &a.data {
        let spec = crate::data::DataSpec::parse(d);
        let docs = spec.load()?;
        rows.push(
            characterise(enc.as_ref(), &spec.label(), &docs)
                .with_context(|| format!("dataset {d}"))?,
        );
    }
    let name = enc.name();
    let md = markdown(&name, &rows);
    crate::util::write_atomic(&out.join("table.md"), md.as_bytes())?;
    crate::util::write_atomic(&out.join("table.csv"), csv(&name, &rows)?.as_bytes())?;
    print!("{md}");
    eprintln!("wrote {}/table.md and table.csv", out.display());
    Ok(())
}
