//! Small shared helpers: progress bars, atomic file writes, device parsing.
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// Temp files being written now; removed if SIGINT or SIGTERM stops the process.
static IN_FLIGHT: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

/// The signal a watching loop was asked to stop by (0: none).
static STOP: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
/// Whether a training loop checks [`interrupted`] at its step boundaries.
static WATCHING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// On SIGINT/SIGTERM: while a training loop watches ([`watch_interrupts`]), only note the
/// signal, so the loop stops at its next step boundary with nothing half-written; otherwise,
/// or on a second signal, remove the temp files being written and exit 130/143 as the
/// default action would. Installed once, by the first atomic write or watcher.
fn install_cleanup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use signal_hook::consts::{SIGINT, SIGTERM};
        use std::sync::atomic::Ordering;
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
            return;
        };
        std::thread::spawn(move || {
            for sig in signals.forever() {
                if WATCHING.load(Ordering::SeqCst) && STOP.load(Ordering::SeqCst) == 0 {
                    STOP.store(sig, Ordering::SeqCst);
                    continue;
                }
                let files = IN_FLIGHT.lock().map(|v| v.clone()).unwrap_or_default();
                for f in files {
                    let _ = std::fs::remove_file(f);
                }
                std::process::exit(128 + sig);
            }
        });
    });
}

/// A training run stopped by SIGINT/SIGTERM at a step boundary; the exit code is 128 + signal.
#[derive(Debug, thiserror::Error)]
#[error("interrupted at step {step} (checkpoint saved); resume with --resume")]
pub struct Interrupted {
    pub step: u64,
    pub signal: i32,
}

/// From now on SIGINT/SIGTERM ask the caller's loop to stop (see [`interrupted`]) instead of
/// ending the process; a second signal still ends it at once.
pub fn watch_interrupts() {
    install_cleanup();
    WATCHING.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// The signal received since [`watch_interrupts`], if any.
pub fn interrupted() -> Option<i32> {
    match STOP.load(std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Whether a process with this id is running (Linux: /proc/<pid> exists).
fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// An exclusive claim on a run's output directory: `<dir>/.lock` holding the owner's pid,
/// removed when dropped. A lock whose process is gone (a crash, SIGKILL) is stale and taken
/// over, so only a live second run writing the same directory is refused.
#[derive(Debug)]
pub struct DirLock {
    path: std::path::PathBuf,
    /// The directory, when taking the lock created it (removed again if left empty).
    made: Option<std::path::PathBuf>,
}

/// Takes `<dir>/.lock` (creating `dir`); a live other process holding it is one error line.
pub fn lock_dir(dir: &Path) -> Result<DirLock> {
    let made = (!dir.exists()).then(|| dir.to_path_buf());
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(".lock");
    let me = std::process::id();
    for _ in 0..3 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                writeln!(f, "{me}").with_context(|| format!("cannot write {}", path.display()))?;
                return Ok(DirLock { path, made });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let pid = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|t| t.trim().parse::<u32>().ok());
                // A lock just created may not hold its pid yet: young and empty counts as held.
                let young = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|a| a.as_secs() < 5);
                let held = match pid {
                    Some(p) => p != me && pid_alive(p),
                    None => young,
                };
                if held {
                    let who = pid.map_or("another process".into(), |p| format!("pid {p}"));
                    anyhow::bail!(
                        "{} is in use by another stylerl run ({who} holds {}): wait for it to finish, or choose another out_dir",
                        dir.display(),
                        path.display()
                    );
                }
                // Stale: its process is gone.
                let _ = std::fs::remove_file(&path);
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create {}", path.display()));
            }
        }
    }
    anyhow::bail!(
        "cannot take {}: another run keeps replacing it; choose another out_dir",
        path.display()
    )
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let mine = std::fs::read_to_string(&self.path)
            .is_ok_and(|t| t.trim() == std::process::id().to_string());
        if mine {
            let _ = std::fs::remove_file(&self.path);
        }
        if let Some(d) = &self.made {
            // Only succeeds when nothing else was written there.
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Removes `.{name}.tmp<PID>` files in `dir` whose writer is gone (a crash or SIGKILL
/// mid-write), so interrupted runs leave no hidden debris behind the next one.
pub fn remove_stale_temps(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp");
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let f = e.file_name().to_string_lossy().to_string();
        let Some(pid) = f.strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !pid_alive(pid) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory, fsync, rename.
/// A crash mid-write leaves the old file (or none), never a torn one; the temp file is
/// removed on SIGINT/SIGTERM, and a dead writer's temp file on the next write.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |f| {
        f.write_all(bytes)
            .with_context(|| format!("cannot write {}", path.display()))
    })
}

/// [`write_atomic`] for content streamed by `write` into the temp file (too large to hold
/// in memory at once); the file is synced and renamed only when `write` succeeds.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<()>,
) -> Result<()> {
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
    remove_stale_temps(dir, &name);
    install_cleanup();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    if let Ok(mut v) = IN_FLIGHT.lock() {
        v.push(tmp.clone());
    }
    let result = write_then_rename(&tmp, path, write);
    if let Ok(mut v) = IN_FLIGHT.lock() {
        v.retain(|p| p != &tmp);
    }
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_then_rename(
    tmp: &Path,
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<()>,
) -> Result<()> {
    {
        let mut f = std::fs::File::create(tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        // `write` names its own failures (a bad value, an I/O error on the temp file).
        write(&mut f)?;
        f.sync_all()?;
    }
    std::fs::rename(tmp, path)
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

/// Several bars drawn together (jobs running at once); hidden like [`progress_bar`].
pub fn multi_progress() -> indicatif::MultiProgress {
    if std::env::var("STYLERL_PROGRESS").as_deref() == Ok("0") {
        indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden())
    } else {
        indicatif::MultiProgress::new()
    }
}

/// Whether `path` is a file. Where access is denied, an error naming the path instead of
/// `false`, which would read as "missing" and send the user after the wrong problem.
pub fn is_file_checked(path: &Path) -> Result<bool> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.is_file()),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(e).with_context(|| format!("cannot read {}", path.display()))
        }
        Err(_) => Ok(false),
    }
}

/// Bytes of memory a new allocation can still get (Linux's MemAvailable), when known.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// A byte count for messages: `12.3 GB`.
pub fn human_bytes(b: f64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u + 1 == units.len() && v >= 1000.0 {
        return format!("{b:.2e} B");
    }
    format!("{v:.1} {}", units[u])
}

/// Refuses work that needs about `need` bytes when the machine has less memory available:
/// `what` says what needs them, `fix` which settings to lower. Unknown memory passes.
pub fn check_fits(need: f64, what: &str, fix: &str) -> Result<()> {
    let Some(avail) = available_memory() else {
        return Ok(());
    };
    if !need.is_finite() || need > avail as f64 {
        anyhow::bail!(
            "{what} needs about {} of memory, more than the {} available: {fix}",
            human_bytes(need),
            human_bytes(avail as f64)
        );
    }
    Ok(())
}

/// CUDA was asked for and libtorch sees none; the CLI exits 2 on it (a setting the
/// machine cannot satisfy, not a failed run).
#[derive(Debug)]
pub struct NoCuda {
    pub requested: String,
    /// CUDA devices visible to libtorch.
    pub visible: i64,
}

impl std::fmt::Display for NoCuda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.visible;
        if n == 0 {
            write!(f, "{} requested but no CUDA device is visible; `stylerl info` shows what libtorch sees; use --device cpu or auto", self.requested)
        } else {
            write!(f, "{} requested but only {n} CUDA device(s) are visible (cuda:0..cuda:{}); `stylerl info` shows what libtorch sees", self.requested, n - 1)
        }
    }
}

impl std::error::Error for NoCuda {}

/// Parses `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when available). CUDA is checked here,
/// before anything is allocated: tch panics on a tensor moved to a device that is not there.
pub fn parse_device(s: &str) -> Result<tch::Device> {
    let index = match s {
        "cpu" => return Ok(tch::Device::Cpu),
        "auto" => return Ok(tch::Device::cuda_if_available()),
        "cuda" => 0,
        s if s.starts_with("cuda:") => s[5..]
            .parse::<usize>()
            .with_context(|| format!("bad device '{s}': expected cuda:N"))?,
        _ => anyhow::bail!("unknown device '{s}': use cpu, cuda, cuda:N or auto"),
    };
    // STYLERL_HIDE_CUDA=1 lets the tests exercise this path on a GPU machine too.
    let hidden = std::env::var("STYLERL_HIDE_CUDA").as_deref() == Ok("1");
    let visible = if hidden { 0 } else { tch::Cuda::device_count() };
    if index as i64 >= visible {
        return Err(NoCuda {
            requested: s.to_string(),
            visible,
        }
        .into());
    }
    Ok(tch::Device::Cuda(index))
}

/// The values of a contiguous f32 CPU tensor that needs no gradient (what the hand-written
/// loops over small tensors read), else None. The slice borrows `t`; nothing writes the
/// storage through another handle while it lives (the loops only read their inputs).
pub fn plain_f32(t: &tch::Tensor) -> Option<&[f32]> {
    if t.device() != tch::Device::Cpu
        || t.kind() != tch::Kind::Float
        || t.requires_grad()
        || !t.is_contiguous()
    {
        return None;
    }
    let n = t.numel();
    if n == 0 {
        return Some(&[]);
    }
    // SAFETY: checked above: contiguous f32 CPU storage of n elements, alive while t is.
    Some(unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, n) })
}

/// A new f32 CPU tensor of `shape` whose values `fill` writes (it sees them uninitialised).
pub fn new_f32(shape: &[i64], fill: impl FnOnce(&mut [f32])) -> tch::Tensor {
    new_filled(shape, tch::Kind::Float, fill)
}

/// A new CPU bf16 tensor of `shape`, its elements written as raw bf16 bits by `fill`.
pub fn new_bf16_bits(shape: &[i64], fill: impl FnOnce(&mut [u16])) -> tch::Tensor {
    new_filled(shape, tch::Kind::BFloat16, fill)
}

/// A new CPU tensor of `kind` whose elements `fill` writes as `T`s of the same size.
fn new_filled<T>(shape: &[i64], kind: tch::Kind, fill: impl FnOnce(&mut [T])) -> tch::Tensor {
    // A programming error, not user input: the two public callers pass matching pairs.
    assert_eq!(kind.elt_size_in_bytes(), std::mem::size_of::<T>());
    let t = tch::Tensor::empty(shape, (kind, tch::Device::Cpu));
    let n = t.numel();
    if n > 0 {
        // SAFETY: t is fresh, contiguous storage of n elements of T's size (checked above)
        // that nothing else sees until this function returns it.
        fill(unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut T, n) });
    } else {
        fill(&mut []);
    }
    t
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_removes_a_dead_writers_temp_file_only() {
        let d = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = d.path().join(format!(".out.json.tmp{dead}"));
        let live = d
            .path()
            .join(format!(".out.json.tmp{}", std::process::id()));
        let other = d.path().join(format!(".other.json.tmp{dead}"));
        for f in [&stale, &other] {
            std::fs::write(f, b"x").unwrap();
        }
        write_atomic(&d.path().join("out.json"), b"{}").unwrap();
        assert!(!stale.exists(), "dead writer's temp kept");
        assert!(other.exists(), "another file's temp removed");
        assert!(!live.exists(), "own temp left after the rename");
        assert_eq!(std::fs::read(d.path().join("out.json")).unwrap(), b"{}");
    }
}
