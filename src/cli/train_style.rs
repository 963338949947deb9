//! `stylerl train-style`: your own style in one command — the demo's pipeline for a user's
//! reference: the warm-up (reused when one exists), GRPO with the demo's dropout recipe
//! against the reference, and an evaluation of warm-up vs trained style on held-out inputs.
//! Everything is checked before anything is written.
use crate::eval::config::EvalConfig;
use crate::train::grpo_config::GrpoConfig;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Fewest reference sentences accepted: below this the closest-sentence matches say little
/// (the shipped references hold 18 to 41).
pub const MIN_REFERENCE_SENTENCES: usize = 8;

#[derive(clap::Args, Debug)]
pub struct TrainStyleArgs {
    /// A plain text file of your own writing (a few paragraphs, 8 sentences or more).
    #[arg(long)]
    pub reference: PathBuf,
    /// Texts the policy learns to rewrite (JSONL with a "text" field, or one text a line).
    #[arg(long, default_value = "datasets/rewrite/train.jsonl")]
    pub inputs: PathBuf,
    /// Held-out texts the evaluation rewrites (never trained on).
    #[arg(long, default_value = "datasets/rewrite/heldout.jsonl")]
    pub heldout: PathBuf,
    /// Output folder: grpo/ (the trained style), eval/ (the table), sft/merged when the shipped
    /// warm-up is merged here.
    #[arg(long, default_value = "runs/style")]
    pub out: PathBuf,
    /// A warm-up model directory (merged) to start from; default: the demo's
    /// runs/demo/sft/merged when it exists, else the shipped warm-up (warmup/) merged into <out>/sft.
    #[arg(long)]
    pub warmup: Option<PathBuf>,
    /// Continue an earlier train-style run in --out.
    #[arg(long)]
    pub resume: bool,
    /// Override a value of the GRPO config (configs/demo/grpo-dropout.toml), e.g. --set grpo.steps=16.
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// Evaluate only the first N held-out inputs.
    #[arg(long)]
    pub eval_limit: Option<usize>,
}

/// The shipped warm-up: two adapters whose deltas add (warmup/README.md).
const SHIPPED_WARMUP: [&str; 2] = ["warmup/1-corpus", "warmup/2-rft"];
const BASE_MODEL: &str = "models/smollm2-135m-instruct";
const GRPO_TEMPLATE: &str = "configs/demo/grpo-dropout.toml";
const EVAL_TEMPLATE: &str = "configs/demo/evaluate.toml";
const DEMO_WARMUP: &str = "runs/demo/sft/merged";

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A TOML string literal (the overrides parse values as TOML).
fn lit(p: &Path) -> String {
    toml::Value::String(s(p)).to_string()
}

pub fn run(a: &TrainStyleArgs) -> Result<()> {
    // 1. Every input, before anything is written.
    let text = std::fs::read_to_string(&a.reference)
        .with_context(|| format!("--reference {}: cannot read it", a.reference.display()))?;
    let n = crate::text::sentences(&text).len();
    if n == 0 {
        bail!(
            "--reference {} is empty: give a text file of your own writing",
            a.reference.display()
        );
    }
    if n < MIN_REFERENCE_SENTENCES {
        bail!(
            "--reference {} has {n} sentence(s); at least {MIN_REFERENCE_SENTENCES} are needed (a few paragraphs of your writing; the shipped references hold 18 to 41)",
            a.reference.display()
        );
    }
    for (flag, p) in [("--inputs", &a.inputs), ("--heldout", &a.heldout)] {
        let t = crate::data::load_texts(p, Some("text"))
            .with_context(|| format!("{flag} {}", p.display()))?;
        if t.is_empty() {
            bail!("{flag} {} holds no texts", p.display());
        }
    }
    for t in [GRPO_TEMPLATE, EVAL_TEMPLATE] {
        if !Path::new(t).is_file() {
            bail!("{t} not found: run train-style from the repository root");
        }
    }
    if a.out.exists() && !a.resume {
        bail!(
            "--out {} exists: pass --resume to continue it, or choose another --out",
            a.out.display()
        );
    }
    let (warmup, merge_shipped) = match &a.warmup {
        Some(w) if !w.join("config.json").is_file() => bail!(
            "--warmup {} is not a model directory (no config.json): give a merged warm-up such as {DEMO_WARMUP}",
            w.display()
        ),
        Some(w) => (w.clone(), false),
        None if Path::new(DEMO_WARMUP).join("config.json").is_file() => (PathBuf::from(DEMO_WARMUP), false),
        None => (a.out.join("sft/merged"), true),
    };
    let mut grpo_set = vec![
        format!("out_dir={}", lit(&a.out.join("grpo"))),
        format!("model.path={}", lit(&warmup)),
        format!("data.train={}", lit(&a.inputs)),
        format!("reward.reference=[{}]", lit(&a.reference)),
    ];
    grpo_set.extend(a.set.iter().cloned());
    let grpo: GrpoConfig = crate::config::load(Path::new(GRPO_TEMPLATE), &grpo_set)?;
    grpo.validate()?;
    if merge_shipped {
        for p in SHIPPED_WARMUP
            .iter()
            .map(|d| Path::new(d).join("adapter_model.safetensors"))
            .chain([Path::new(BASE_MODEL).join("model.safetensors")])
        {
            if !p.is_file() {
                bail!(
                    "{} is missing: run train-style from the repository root after scripts/setup.sh (or give --warmup)",
                    p.display()
                );
            }
        }
    }
    let eval = eval_config(a, &warmup)?;
    eval.validate()?;

    // 2. The stages; each skipped when its result is already there (a resumed run).
    let report = super::console::Console;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    if merge_shipped {
        if !warmup.join("config.json").is_file() {
            eprintln!(
                "[train-style] warm-up: merging the shipped warm-up ({}) into {} (no warm-up found at {DEMO_WARMUP})",
                SHIPPED_WARMUP.join(" + "),
                s(&warmup)
            );
            super::merge::run(&super::merge::MergeArgs {
                model: BASE_MODEL.into(),
                adapters: SHIPPED_WARMUP.iter().map(|d| d.to_string()).collect(),
                out: warmup.clone(),
                dtype: "f32".into(),
                device: "cpu".into(),
                force: true,
            })?;
        }
    } else {
        eprintln!("[train-style] warm-up: reusing {}", s(&warmup));
    }
    if grpo
        .out_dir
        .join("adapter/adapter_model.safetensors")
        .is_file()
    {
        eprintln!(
            "[train-style] style: {} is trained already",
            s(&grpo.out_dir)
        );
    } else {
        eprintln!(
            "[train-style] style: GRPO with style reward dropout against {} ({} steps)",
            s(&a.reference),
            grpo.grpo.steps
        );
        let resume = grpo.out_dir.join("checkpoints").is_dir();
        crate::train::grpo::train_with(&grpo, resume, false, &report)?;
    }
    eprintln!(
        "[train-style] evaluation: warm-up vs your style on {}",
        s(&a.heldout)
    );
    let r = crate::eval::evaluate::evaluate(&eval, &report)?;

    // 3. What it gives: the table, three rewrites side by side, and how to use it.
    print!("{}", r.markdown);
    let out = std::fs::read_to_string(r.out_dir.join("outputs.jsonl"))?;
    let rows: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let get = |sys: &str, i: u64| {
        rows.iter()
            .find(|v| v["system"] == sys && v["index"] == i)
            .and_then(|v| v["output"].as_str())
            .unwrap_or("")
            .to_string()
    };
    println!("\nThree rewrites (input / warm-up / your style):");
    for i in 0..3u64 {
        let input = rows
            .iter()
            .find(|v| v["index"] == i)
            .and_then(|v| v["input"].as_str());
        if let Some(input) = input {
            println!(
                "\n  input:      {input}\n  warm-up:    {}\n  your style: {}",
                get("warmup", i),
                get("style", i)
            );
        }
    }
    println!(
        "\nRewrite your own text with it:\n  stylerl rewrite --run {} \"We met at the station at noon.\"",
        s(&grpo.out_dir)
    );
    Ok(())
}

/// The demo's evaluation settings with two systems, the warm-up and the trained style, the
/// user's reference and held-out inputs, results in <out>/eval.
fn eval_config(a: &TrainStyleArgs, warmup: &Path) -> Result<EvalConfig> {
    let template = std::fs::read_to_string(EVAL_TEMPLATE)
        .with_context(|| format!("cannot read {EVAL_TEMPLATE}"))?;
    // Everything before the template's systems, then ours.
    let head = template.split("[[systems]]").next().unwrap_or_default();
    let adapter = a.out.join("grpo/adapter");
    let text = format!(
        "{head}\n[[systems]]\nname = \"warmup\"\nkind = \"model\"\n[systems.model]\npath = {w}\n\n[[systems]]\nname = \"style\"\nkind = \"model\"\n[systems.model]\npath = {w}\nadapters = [{ad}]\n",
        w = lit(warmup),
        ad = lit(&adapter),
    );
    let mut set = vec![
        "name=\"style\"".to_string(),
        format!("out_dir={}", lit(&a.out.join("eval"))),
        "baseline=\"warmup\"".into(),
        "judge.baseline=\"warmup\"".into(),
        format!("reward.reference=[{}]", lit(&a.reference)),
        format!("data.heldout={}", lit(&a.heldout)),
        "data.field=\"text\"".into(),
    ];
    if let Some(l) = a.eval_limit {
        set.push(format!("data.limit={l}"));
    }
    crate::config::parse(&text, &set)
        .context("the evaluation config built from configs/demo/evaluate.toml")
}
