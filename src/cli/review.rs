//! `stylerl review make | score | pool | agree`: a blind A/B review of two systems from an evaluation's
//! outputs.jsonl (docs/method.md#blind-review).
use super::review_io::{read, read_key, read_verdicts, refuse_existing};
use crate::eval::review::{self, Pair};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct ReviewArgs {
    #[command(subcommand)]
    pub cmd: ReviewCmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum ReviewCmd {
    /// Write a blind sheet (sheet.html, sheet.md, sheet.json) and its key (kept apart).
    Make(MakeArgs),
    /// Score a reader's verdicts (JSONL exported from the page) against the key.
    Score(ScoreArgs),
    /// Pool several scores (`review score --json`, e.g. one sheet per seed) into one.
    Pool(PoolArgs),
    /// How often each automatic measure picks the output the reader picked (reviewed sheets).
    Agree(super::review_agree::AgreeArgs),
}

#[derive(clap::Args, Debug)]
pub struct PoolArgs {
    /// Score files written by `review score --json`, the two systems in the same roles.
    #[arg(long, num_args = 1.., required = true)]
    pub scores: Vec<PathBuf>,
    /// Also write the pooled score as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Replace an existing --json file.
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Args, Debug)]
pub struct MakeArgs {
    /// An evaluation's outputs.jsonl (results/<name>/outputs.jsonl).
    #[arg(long)]
    pub outputs: PathBuf,
    /// The two systems to compare, "first,second" (scores are from the first one's side).
    #[arg(long)]
    pub systems: String,
    /// Folder for the sheet files (what the reader gets).
    #[arg(long)]
    pub out: PathBuf,
    /// Where the key goes (default: <out>.key.json, beside the folder, not inside it).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// The style reference whose first sentences head every item.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Reference sentences shown (1..=50).
    #[arg(long, default_value_t = 6)]
    pub excerpt: usize,
    /// Seed of the item order and of each item's A/B order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use only the first N inputs.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Replace existing sheet and key files.
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    #[arg(long)]
    pub key: PathBuf,
    /// JSONL verdicts, one per item.
    #[arg(long)]
    pub verdicts: PathBuf,
    /// The sheet.json the key was made with, for the style tally on items both sides rewrote
    /// [default: <key without .key.json>/sheet.json, where `review make` puts it, if present].
    #[arg(long)]
    pub sheet: Option<PathBuf>,
    /// Also write the score as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Replace an existing --json file.
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: &ReviewArgs) -> Result<()> {
    match &a.cmd {
        ReviewCmd::Make(m) => make(m),
        ReviewCmd::Score(s) => score(s),
        ReviewCmd::Pool(p) => pool(p),
        ReviewCmd::Agree(g) => super::review_agree::agree(g),
    }
}

fn make(a: &MakeArgs) -> Result<()> {
    let names: Vec<&str> = a.systems.split(',').map(str::trim).collect();
    if names.len() != 2 || names.iter().any(|n| n.is_empty()) || names[0] == names[1] {
        bail!(
            "--systems '{}': give two different system names, e.g. --systems grpo-dropout,sft",
            a.systems
        );
    }
    if !(1..=50).contains(&a.excerpt) {
        bail!("--excerpt {}: use 1 to 50 sentences", a.excerpt);
    }
    let text = read(&a.outputs, "--outputs")?;
    // index → (input, output per system)
    let mut rows: BTreeMap<usize, (String, [Option<String>; 2])> = BTreeMap::new();
    let mut seen_systems = std::collections::BTreeSet::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not JSON", a.outputs.display(), n + 1))?;
        let get = |k: &str| {
            v.get(k).with_context(|| {
                format!(
                    "{} line {}: no '{k}' field (is it an evaluation's outputs.jsonl?)",
                    a.outputs.display(),
                    n + 1
                )
            })
        };
        let sys = get("system")?.as_str().unwrap_or_default().to_string();
        let index = get("index")?.as_u64().context("index must be a number")? as usize;
        let input = get("input")?.as_str().unwrap_or_default().to_string();
        let output = get("output")?.as_str().unwrap_or_default().to_string();
        seen_systems.insert(sys.clone());
        if let Some(k) = names.iter().position(|x| *x == sys) {
            let e = rows.entry(index).or_insert_with(|| (input, [None, None]));
            e.1[k] = Some(output);
        }
    }
    for n in &names {
        if !seen_systems.contains(*n) {
            let all: Vec<&str> = seen_systems.iter().map(|s| s.as_str()).collect();
            bail!(
                "system '{n}' is not in {} (it has: {})",
                a.outputs.display(),
                all.join(", ")
            );
        }
    }
    let mut pairs: Vec<Pair> = rows
        .into_iter()
        .filter_map(|(index, (input, [f, s]))| {
            Some(Pair {
                index,
                input,
                first: f?,
                second: s?,
            })
        })
        .collect();
    if let Some(l) = a.limit {
        pairs.truncate(l);
    }
    let excerpt: Vec<String> = match &a.reference {
        Some(p) => {
            let s: Vec<String> = crate::text::sentences(&read(p, "--reference")?)
                .into_iter()
                .take(a.excerpt)
                .collect();
            if s.is_empty() {
                bail!(
                    "--reference {} holds no sentence: give the style reference text, or leave --reference out",
                    p.display()
                );
            }
            s
        }
        None => Vec::new(),
    };
    let title = format!(
        "Blind review: which rewrite is better? ({} items)",
        pairs.len()
    );
    let (sheet, key) = review::make(&title, (names[0], names[1]), &pairs, excerpt, a.seed)?;
    let key_path = a.key.clone().unwrap_or_else(|| {
        let mut p = a.out.clone().into_os_string();
        p.push(".key.json");
        PathBuf::from(p)
    });
    if key_path.starts_with(&a.out) {
        bail!(
            "--key {} is inside --out: keep the key apart from what the reader gets",
            key_path.display()
        );
    }
    let files = ["sheet.html", "sheet.md", "sheet.json"].map(|f| a.out.join(f));
    let mut all: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    all.push(&key_path);
    let mut inputs = vec![("--outputs", a.outputs.as_path())];
    if let Some(r) = &a.reference {
        inputs.push(("--reference", r.as_path()));
    }
    for p in &all {
        super::args::check_not_input("--out/--key", p, &inputs)?;
    }
    refuse_existing(&all, a.force, "--out/--key")?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let w = |p: &Path, s: &str| crate::util::write_atomic(p, s.as_bytes());
    w(&files[0], &review::page(&sheet)?)?;
    w(&files[1], &review::sheet_markdown(&sheet))?;
    w(&files[2], &serde_json::to_string_pretty(&sheet)?)?;
    w(&key_path, &serde_json::to_string_pretty(&key)?)?;
    println!(
        "{} items, sheet {}: give the reader {} (or sheet.md); the key is {} — do not show it",
        sheet.items.len(),
        sheet.sheet_id,
        files[0].display(),
        key_path.display()
    );
    println!(
        "then: stylerl review score --key {} --verdicts verdicts.jsonl",
        key_path.display()
    );
    Ok(())
}

fn score(a: &ScoreArgs) -> Result<()> {
    let key = read_key(&a.key, "--key")?;
    let verdicts = read_verdicts(&a.verdicts, "--verdicts", &key.sheet_id)?;
    let mut s = review::score(&key, &verdicts)
        .with_context(|| format!("--verdicts {}", a.verdicts.display()))?;
    if let Some(p) = sheet_path(a) {
        let sheet: review::Sheet =
            serde_json::from_str(&read(&p, "--sheet")?).with_context(|| {
                format!(
                    "--sheet {}: not a sheet.json (written by `stylerl review make`)",
                    p.display()
                )
            })?;
        let threshold = crate::eval::config::DEFAULT_NOT_REWRITTEN;
        s.style_both_rewrote = Some(
            review::style_both_rewrote(&key, &sheet, &verdicts, threshold)
                .with_context(|| format!("--sheet {}", p.display()))?,
        );
    }
    if let Some(p) = &a.json {
        super::args::check_not_input(
            "--json",
            p,
            &[
                ("--key", a.key.as_path()),
                ("--verdicts", a.verdicts.as_path()),
            ],
        )?;
        refuse_existing(&[p], a.force, "--json")?;
    }
    println!(
        "{} vs {}: {} of {} items judged (sheet {})",
        s.systems[0],
        s.systems[1],
        s.items,
        key.items.len(),
        s.sheet_id
    );
    print_score(&s);
    if let Some(p) = &a.json {
        crate::util::write_atomic(p, serde_json::to_string_pretty(&s)?.as_bytes())?;
    }
    Ok(())
}

/// --sheet, else the sheet.json beside the key as `review make` writes them, if present.
fn sheet_path(a: &ScoreArgs) -> Option<PathBuf> {
    if let Some(p) = &a.sheet {
        return Some(p.clone());
    }
    let key = a.key.to_str()?.strip_suffix(".key.json")?;
    Some(PathBuf::from(key).join("sheet.json")).filter(|p| p.exists())
}

fn print_score(s: &review::Score) {
    println!("| dimension | {} wins | {} wins | ties | {} win share among decided [95 % Wilson] | sign test p |", s.systems[0], s.systems[1], s.systems[0]);
    println!("|---|---|---|---|---|---|");
    for d in &s.dimensions {
        let share = match (d.win_share, d.win_share_lo, d.win_share_hi) {
            (Some(w), Some(lo), Some(hi)) => format!("{w:.2} [{lo:.2}, {hi:.2}]"),
            _ => "n/a (all ties)".into(),
        };
        println!(
            "| {} | {} | {} | {} | {} | {:.3} |",
            d.dimension, d.wins, d.losses, d.ties, share, d.sign_test_p
        );
    }
    for (sys, p) in &s.defective_percent {
        println!("reader marked {sys} seriously defective in {p:.1} % of items");
    }
    if let Some(d) = &s.style_both_rewrote {
        let share = match (d.win_share, d.win_share_lo, d.win_share_hi) {
            (Some(w), Some(lo), Some(hi)) => format!("share {w:.2} [{lo:.2}, {hi:.2}]"),
            _ => "no decided item".into(),
        };
        println!(
            "style where both sides rewrote (neither output a copy of the input): {} wins {}, {} wins {}, ties {} ({share}, sign test p {:.3})",
            s.systems[0], d.wins, s.systems[1], d.losses, d.ties, d.sign_test_p
        );
    }
}

fn pool(a: &PoolArgs) -> Result<()> {
    let scores: Vec<review::Score> = a
        .scores
        .iter()
        .map(|p| {
            serde_json::from_str(&read(p, "--scores")?).with_context(|| {
                format!(
                    "--scores {}: not a score (written by `stylerl review score --json`)",
                    p.display()
                )
            })
        })
        .collect::<Result<_>>()?;
    if let Some(p) = &a.json {
        let inputs: Vec<(&str, &Path)> =
            a.scores.iter().map(|s| ("--scores", s.as_path())).collect();
        super::args::check_not_input("--json", p, &inputs)?;
        refuse_existing(&[p], a.force, "--json")?;
    }
    let s = review::pool(&scores)?;
    println!(
        "{} vs {}: {} readings, {} items pooled (sheets {})",
        s.systems[0],
        s.systems[1],
        scores.len(),
        s.items,
        s.sheet_id
    );
    print_score(&s);
    if let Some(p) = &a.json {
        crate::util::write_atomic(p, serde_json::to_string_pretty(&s)?.as_bytes())?;
    }
    Ok(())
}
