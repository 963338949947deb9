//! `stylerl export-gguf`: a model (adapters folded in) or an adapter alone → GGUF for
//! llama.cpp, with an Ollama Modelfile beside it (the work is in `gguf::export`).
use crate::gguf::export::{export_adapter, export_model, AdapterExport, ModelExport, OutType};
use crate::train::run_info;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Hugging Face Llama, Qwen2, Qwen3 or GPT-2 directory to export (or, with --adapter-only,
    /// the adapter's base).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// PEFT adapter folded into the exported weights, optionally weighted:
    /// W += weight · scaling · B A. Repeatable (the deltas add up).
    #[arg(long = "adapter", value_name = "PATH[:WEIGHT]")]
    pub adapters: Vec<String>,
    /// A training run directory (run.json): exports its base model with its frozen adapters
    /// and its trained adapter folded in.
    #[arg(long, value_name = "RUN")]
    pub run: Option<PathBuf>,
    /// Export only this adapter (LoRA or Bit-LoRA; a run directory means its trained adapter)
    /// as a llama.cpp LoRA adapter GGUF.
    #[arg(long, value_name = "RUN_OR_ADAPTER_DIR")]
    pub adapter_only: Option<PathBuf>,
    /// The .gguf file to write; the Modelfile goes beside it.
    #[arg(long)]
    pub out: PathBuf,
    /// Weight type: f32, f16, bf16 or q8_0 (norms stay f32).
    #[arg(long = "type", default_value = "f32")]
    pub ty: String,
    /// With --adapter-only: the base model's GGUF named in the Modelfile's FROM line.
    #[arg(long, value_name = "FILE", default_value = "./base.gguf")]
    pub base_gguf: String,
    /// Replace --out when it exists.
    #[arg(long)]
    pub force: bool,
}

/// `base_model_name_or_path` of a PEFT adapter directory, when it names a local model.
fn peft_base(dir: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(dir.join("adapter_config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let p = PathBuf::from(v.get("base_model_name_or_path")?.as_str()?);
    p.join("config.json").is_file().then_some(p)
}

fn base_command(model: &Path, adapters: &[String], out: &str) -> String {
    let mut c = format!("stylerl export-gguf --model {}", model.display());
    for a in adapters {
        c.push_str(&format!(" --adapter {a}"));
    }
    format!("{c} --out {out}")
}

pub fn run(a: &ExportArgs) -> Result<()> {
    let ty = OutType::parse(&a.ty)?;
    // Even --force never writes the GGUF or its Modelfile over a file of an input directory.
    let adapter_dirs: Vec<PathBuf> = a
        .adapters
        .iter()
        .map(|s| PathBuf::from(s.rsplit_once(':').map_or(s.as_str(), |(p, _)| p)))
        .collect();
    let mut inputs: Vec<(&str, &Path)> = adapter_dirs
        .iter()
        .map(|p| ("--adapter", p.as_path()))
        .collect();
    for (flag, p) in [
        ("--model", &a.model),
        ("--run", &a.run),
        ("--adapter-only", &a.adapter_only),
    ] {
        if let Some(p) = p {
            inputs.push((flag, p.as_path()));
        }
    }
    super::args::check_not_input("--out", &a.out, &inputs)?;
    super::args::check_not_input("--out", &a.out.with_file_name("Modelfile"), &inputs)?;
    if a.out.is_file() && !a.force {
        bail!(
            "--out {} exists: pass --force to replace it, or choose another file",
            a.out.display()
        );
    }
    // Names that go into the Modelfile's one-line fields; checked before any export work.
    use crate::gguf::modelfile::check_line;
    check_line("--base-gguf", &a.base_gguf)?;
    check_line("--out", &a.out.to_string_lossy())?;
    for (flag, p) in [
        ("--model", &a.model),
        ("--run", &a.run),
        ("--adapter-only", &a.adapter_only),
    ] {
        if let Some(p) = p {
            check_line(flag, &p.to_string_lossy())?;
        }
    }
    for spec in &a.adapters {
        check_line("--adapter", spec)?;
    }
    // A Modelfile this command did not write (a hand-edited one) is kept unless --force.
    let mf = a.out.with_file_name("Modelfile");
    if !a.force && mf.exists() {
        let text = std::fs::read(&mf).unwrap_or_default();
        if !text.starts_with(crate::gguf::modelfile::HEADER.as_bytes()) {
            bail!(
                    "{} exists and was not written by `stylerl export-gguf`: pass --force to replace it, or export into another directory",
                mf.display()
            );
        }
    }
    let console = super::console::Console;
    let modelfile = if let Some(dir) = &a.adapter_only {
        if a.run.is_some() || !a.adapters.is_empty() {
            bail!("--adapter-only takes the run or adapter directory itself: drop --run and --adapter");
        }
        let (adapter, base, frozen, system) = if dir.join(run_info::FILE).is_file() {
            let info = run_info::read(dir, a.model.as_deref())?;
            (
                dir.join(run_info::ADAPTER),
                info.model,
                info.adapters,
                info.system,
            )
        } else {
            let base = match (&a.model, peft_base(dir)) {
                (Some(m), _) => m.clone(),
                (None, Some(b)) => b,
                (None, None) => bail!(
                    "--adapter-only {}: its base model is not a local directory: pass --model BASE_DIR",
                    dir.display()
                ),
            };
            (dir.clone(), base, vec![], None)
        };
        export_adapter(
            &AdapterExport {
                adapter,
                base_command: base_command(&base, &frozen, &a.base_gguf),
                base,
                out: a.out.clone(),
                ty,
                base_gguf: a.base_gguf.clone(),
                system,
            },
            &console,
        )?
    } else {
        let (model, adapters, system) = match (&a.run, &a.model) {
            (Some(run), model) => {
                let info = run_info::read(run, model.as_deref())?;
                let mut adapters = info.adapters.clone();
                adapters.push(run.join(run_info::ADAPTER).display().to_string());
                adapters.extend(a.adapters.iter().cloned());
                (info.model, adapters, info.system)
            }
            (None, Some(m)) => (m.clone(), a.adapters.clone(), None),
            (None, None) => bail!(
                "nothing to export: pass --model DIR, --run RUN or --adapter-only ADAPTER_DIR"
            ),
        };
        export_model(
            &ModelExport {
                model,
                adapters,
                out: a.out.clone(),
                ty,
                system,
            },
            &console,
        )?
    };
    println!("wrote {} and {}", a.out.display(), modelfile.display());
    Ok(())
}
