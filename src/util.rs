//! Small shared helpers: progress bars, atomic file writes, device parsing.
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temp file in the same directory, fsync, rename.
/// A crash mid-write leaves the old file (or none), never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let name = path
        .file_name()
        .context("path has no file name")?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// A progress bar with position, rate and ETA; hidden when stderr is not a terminal
/// unless STYLERL_PROGRESS=1.
pub fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(
        "{msg:>12} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}",
    )
    .unwrap()
    .progress_chars("=> ");
    pb.set_style(style);
    pb.set_message(what.to_string());
    if std::env::var("STYLERL_PROGRESS").as_deref() == Ok("0") {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    pb
}

/// Parses `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when available).
pub fn parse_device(s: &str) -> Result<tch::Device> {
    Ok(match s {
        "cpu" => tch::Device::Cpu,
        "auto" => tch::Device::cuda_if_available(),
        "cuda" => tch::Device::Cuda(0),
        s if s.starts_with("cuda:") => tch::Device::Cuda(
            s[5..]
                .parse()
                .with_context(|| format!("bad device '{s}': expected cuda:N"))?,
        ),
        _ => anyhow::bail!("unknown device '{s}': use cpu, cuda, cuda:N or auto"),
    })
}

/// Parses `f32`, `bf16` or `f16`.
pub fn parse_dtype(s: &str) -> Result<tch::Kind> {
    Ok(match s {
        "f32" | "float32" => tch::Kind::Float,
        "bf16" | "bfloat16" => tch::Kind::BFloat16,
        "f16" | "float16" => tch::Kind::Half,
        _ => anyhow::bail!("unknown dtype '{s}': use f32, bf16 or f16"),
    })
}
