//! Metrics as JSON lines (one object a step, flushed at once) and simple phase timers.
//!
//! Resuming: [`MetricsWriter::open`] with the checkpoint's step first drops every line
//! whose `step` is greater (written after that checkpoint by the run that died), so the
//! file of a resumed run reads like the file of an uninterrupted one.
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct MetricsWriter {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsWriter {
    /// Opens `path` for appending. With `resume_step = Some(s)`, lines with step > s (and
    /// a torn last line) are removed first; with None the file starts empty.
    pub fn open(path: &Path, resume_step: Option<u64>) -> Result<MetricsWriter> {
        let kept = match (resume_step, std::fs::read_to_string(path)) {
            (Some(s), Ok(text)) => text
                .lines()
                .filter(|l| match serde_json::from_str::<serde_json::Value>(l) {
                    Ok(v) => v
                        .get("step")
                        .and_then(|x| x.as_u64())
                        .is_none_or(|st| st <= s),
                    Err(_) => false,
                })
                .map(|l| format!("{l}\n"))
                .collect::<String>(),
            _ => String::new(),
        };
        crate::util::write_atomic(path, kept.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open metrics file {}", path.display()))?;
        Ok(MetricsWriter {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one JSON object as a line and flushes it.
    pub fn write<T: serde::Serialize>(&mut self, record: &T) -> Result<()> {
        let mut line = serde_json::to_string(record)?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.file.flush()?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Accumulated seconds per named phase (generation, reward, training, …).
#[derive(Debug, Default, Clone)]
pub struct Timers {
    pub secs: BTreeMap<String, f64>,
}

impl Timers {
    /// Runs `f`, adding its wall time to `name`.
    pub fn time<T>(&mut self, name: &str, f: impl FnOnce() -> T) -> T {
        let t0 = Instant::now();
        let out = f();
        self.add(name, t0.elapsed().as_secs_f64());
        out
    }

    pub fn add(&mut self, name: &str, secs: f64) {
        *self.secs.entry(name.to_string()).or_insert(0.0) += secs;
    }

    pub fn get(&self, name: &str) -> f64 {
        self.secs.get(name).copied().unwrap_or(0.0)
    }

    /// Returns the totals and resets them (per-step reporting).
    pub fn take(&mut self) -> BTreeMap<String, f64> {
        std::mem::take(&mut self.secs)
    }
}

/// The method's training-dynamics metrics over S [generated sentences × reference
/// sentences] of cosine similarities: inner = mean over generated sentences of the std
/// over references; outer = mean over references of the std over generated sentences.
/// Population std (divide by n); a dimension of size 1 gives 0.
pub fn inner_outer(s: &tch::Tensor) -> (f64, f64) {
    let s = s.to_kind(tch::Kind::Double);
    let inner = s
        .std_dim(1, false, false)
        .mean(tch::Kind::Double)
        .double_value(&[]);
    let outer = s
        .std_dim(0, false, false)
        .mean(tch::Kind::Double)
        .double_value(&[]);
    (inner, outer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_drops_lines_after_the_checkpoint() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.jsonl");
        let mut w = MetricsWriter::open(&p, None).unwrap();
        for s in 1..=5u64 {
            w.write(&serde_json::json!({"step": s, "loss": s as f64 / 2.0}))
                .unwrap();
        }
        drop(w);
        // a torn line from a crash
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"step\": 6, \"lo")
            .unwrap();
        let mut w = MetricsWriter::open(&p, Some(3)).unwrap();
        w.write(&serde_json::json!({"step": 4, "loss": 9.0}))
            .unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let steps: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(steps, vec![1, 2, 3, 4]);
        assert!(text.contains("9.0"));
        // a fresh run truncates
        MetricsWriter::open(&p, None).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "");
    }

    #[test]
    fn inner_outer_by_hand() {
        // rows (generated): [0, 2] std 1, [1, 1] std 0 → inner 0.5
        // cols (references): [0, 1] std 0.5, [2, 1] std 0.5 → outer 0.5
        let s = tch::Tensor::from_slice(&[0.0f64, 2.0, 1.0, 1.0]).reshape([2, 2]);
        let (i, o) = inner_outer(&s);
        assert!((i - 0.5).abs() < 1e-12 && (o - 0.5).abs() < 1e-12);
        let s = tch::Tensor::from_slice(&[0.0f64, 2.0, 4.0, 1.0, 1.0, 1.0]).reshape([2, 3]);
        let (i, o) = inner_outer(&s);
        let sd = (8.0f64 / 3.0).sqrt();
        assert!((i - sd / 2.0).abs() < 1e-12, "{i}");
        assert!((o - (0.5 + 0.5 + 1.5) / 3.0).abs() < 1e-12, "{o}");
    }

    #[test]
    fn timers_accumulate_and_reset() {
        let mut t = Timers::default();
        let x = t.time("gen", || 5);
        t.add("gen", 1.0);
        assert_eq!(x, 5);
        assert!(t.get("gen") >= 1.0 && t.get("gen") < 2.0);
        let m = t.take();
        assert!(m.contains_key("gen") && t.get("gen") == 0.0);
    }
}
