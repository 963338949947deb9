//! `stylerl review agree`: how often each automatic measure of an evaluation picks the output
//! a blind reader picked (docs/method.md#agreement-with-readers).
use super::review_io::{read, read_key, read_verdicts, refuse_existing};
use crate::eval::review::{Key, Verdict};
use crate::eval::review_agree::{self, agreement, Agreement, OutputId, Reading, NOT_DEFECTIVE};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct AgreeArgs {
    /// Reviewed sheet folders (from `review make --out`), each with verdicts.jsonl inside and
    /// its key at <folder>.key.json beside it; pooled.
    #[arg(long, num_args = 1.., required = true)]
    pub sheets: Vec<PathBuf>,
    /// The evaluation's outputs.jsonl the sheets were made from (default: the one two folders
    /// above each sheet, as in results/<name>/review/<pair>).
    #[arg(long)]
    pub outputs: Option<PathBuf>,
    /// Also write the agreements as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also draw them (SVG): a panel per dimension, a point per measure, chance dashed.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Replace an existing --json or --plot file.
    #[arg(long)]
    pub force: bool,
}

/// The measures read off one outputs.jsonl record, oriented so that higher is better (the
/// last two are plain descriptors: longer, closer to the input).
pub fn measures(v: &serde_json::Value) -> BTreeMap<String, f64> {
    let num = |pointer: &str| v.pointer(pointer)?.as_f64().filter(|f| f.is_finite());
    let mut m = BTreeMap::new();
    let mut put = |name: &str, x: Option<f64>| {
        if let Some(x) = x {
            m.insert(name.to_string(), x);
        }
    };
    put(
        "style similarity (reward encoder)",
        num("/style_similarity"),
    );
    put("meaning kept", num("/meaning_kept"));
    put("entity F1", num("/entity_f1"));
    put(
        "fluency (lower NLL under the base model)",
        num("/reader_checks/fluency_nll").map(|x| -x),
    );
    put(
        NOT_DEFECTIVE,
        v.pointer("/reader_checks/defective")
            .and_then(|d| d.as_bool())
            .map(|d| if d { 0.0 } else { 1.0 }),
    );
    put("longer (words)", num("/words"));
    put(
        "closer to the input (edit similarity)",
        num("/edit_similarity"),
    );
    if let Some(j) = v
        .get("judge_encoder_style_similarity")
        .and_then(|j| j.as_object())
    {
        for (name, x) in j {
            put(
                &format!("style similarity ({name})"),
                x.as_f64().filter(|f| f.is_finite()),
            );
        }
    }
    m
}

struct Loaded {
    key: Key,
    verdicts: Vec<Verdict>,
    values: BTreeMap<OutputId, BTreeMap<String, f64>>,
}

fn load(sheet: &Path, outputs: Option<&Path>) -> Result<Loaded> {
    // "DIR/" and "DIR" name the same sheet: drop a trailing separator before adding ".key.json".
    let sheet: PathBuf = sheet.components().collect();
    let sheet = sheet.as_path();
    let key_path = PathBuf::from(format!("{}.key.json", sheet.display()));
    let key = read_key(&key_path, "the sheet's key")?;
    let verdicts = read_verdicts(
        &sheet.join("verdicts.jsonl"),
        "the sheet's verdicts",
        &key.sheet_id,
    )?;
    let out_path = match outputs {
        Some(p) => p.to_path_buf(),
        None => sheet
            .parent()
            .and_then(Path::parent)
            .map(|p| p.join("outputs.jsonl"))
            .with_context(|| {
                format!(
                    "{}: no folder two levels up; give --outputs",
                    sheet.display()
                )
            })?,
    };
    let text = read(&out_path, "the evaluation's outputs (--outputs)")?;
    let mut values = BTreeMap::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not JSON", out_path.display(), n + 1))?;
        let (Some(sys), Some(idx)) = (
            v.get("system").and_then(|s| s.as_str()),
            v.get("index").and_then(|i| i.as_u64()),
        ) else {
            bail!(
                "{} line {}: no 'system' or 'index' field (is it an evaluation's outputs.jsonl?)",
                out_path.display(),
                n + 1
            );
        };
        values.insert((sys.to_string(), idx as usize), measures(&v));
    }
    Ok(Loaded {
        key,
        verdicts,
        values,
    })
}

pub fn agree(a: &AgreeArgs) -> Result<()> {
    let loaded: Vec<Loaded> = a
        .sheets
        .iter()
        .map(|s| load(s, a.outputs.as_deref()).with_context(|| format!("--sheets {}", s.display())))
        .collect::<Result<_>>()?;
    let mut inputs: Vec<(&str, &Path)> =
        a.sheets.iter().map(|s| ("--sheets", s.as_path())).collect();
    if let Some(o) = &a.outputs {
        inputs.push(("--outputs", o.as_path()));
    }
    for (flag, p) in [("--json", &a.json), ("--plot", &a.plot)] {
        let Some(p) = p else { continue };
        super::args::check_not_input(flag, p, &inputs)?;
        refuse_existing(&[p], a.force, flag)?;
    }
    let readings: Vec<Reading> = loaded
        .iter()
        .map(|l| Reading {
            key: &l.key,
            verdicts: &l.verdicts,
            values: &l.values,
        })
        .collect();
    let (rows, defects) = agreement(&readings)?;
    let items: usize = loaded.iter().map(|l| l.verdicts.len()).sum();
    println!(
        "{} sheet(s), {items} items read: share of decided items where the reader's pick is the one the measure calls better (chance 0.5)",
        loaded.len()
    );
    print_table(&rows);
    let pct = |x: Option<f64>| x.map_or("n/a".into(), |v| format!("{:.0} %", 100.0 * v));
    println!(
        "detectors vs reader's defect marks: both {}, reader only {}, detectors only {}, neither {} (detectors catch {} of the reader's marks; {} of their flags are the reader's)",
        defects.both,
        defects.reader_only,
        defects.detectors_only,
        defects.neither,
        pct(defects.recall()),
        pct(defects.precision())
    );
    if let Some(p) = &a.json {
        let j = serde_json::json!({ "items": items, "agreement": rows, "defects": defects });
        crate::util::write_atomic(p, serde_json::to_string_pretty(&j)?.as_bytes())?;
    }
    if let Some(p) = &a.plot {
        let mut names: Vec<String> = rows.iter().map(|r| r.measure.clone()).collect();
        names.dedup();
        let labels: Vec<String> = names.iter().map(|n| short_label(n)).collect();
        crate::eval::chart::draw_panels(&review_agree::panels(&rows, &names), &labels, 1, p)?;
        println!("plot: {}", p.display());
    }
    Ok(())
}

/// A label short enough for the chart's x axis (eight measures across 1100 px).
fn short_label(measure: &str) -> String {
    match measure {
        "style similarity (reward encoder)" => "style: reward enc.".into(),
        "fluency (lower NLL under the base model)" => "fluency: -NLL".into(),
        NOT_DEFECTIVE => "not defective".into(),
        "longer (words)" => "longer".into(),
        "closer to the input (edit similarity)" => "closer to input".into(),
        m => match m.strip_prefix("style similarity (") {
            Some(rest) => format!("style: {}", rest.trim_end_matches(')')),
            None => m.to_string(),
        },
    }
}

fn print_table(rows: &[Agreement]) {
    let dims = crate::eval::review::DIMENSIONS;
    println!("| measure | {} |", dims.join(" | "));
    println!("|---|{}", "---|".repeat(dims.len()));
    let mut by: BTreeMap<&str, Vec<&Agreement>> = BTreeMap::new();
    for r in rows {
        by.entry(r.measure.as_str()).or_default().push(r);
    }
    for (m, rs) in by {
        let cells: Vec<String> = dims
            .iter()
            .map(|d| match rs.iter().find(|r| r.dimension == *d) {
                Some(r) => match (r.share, r.share_lo, r.share_hi) {
                    (Some(s), Some(lo), Some(hi)) => {
                        format!("{s:.2} [{lo:.2}, {hi:.2}] of {}", r.agree + r.disagree)
                    }
                    _ => "n/a".into(),
                },
                None => "n/a".into(),
            })
            .collect();
        println!("| {m} | {} |", cells.join(" | "));
    }
}
