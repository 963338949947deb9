//! The re-probe of issue 26 (reliability round 2): a table of hostile cases run through the
//! release binary (RELIABILITY_BIN names another build), in five classes:
//!
//! - `sizes`: every numeric flag of every subcommand and every numeric config key (`--set`)
//!   at 0, −1, 10¹², 1e308, NaN, inf and a word;
//! - `data-loss`: every `--out` / `out_dir` onto an existing file or folder, and the input
//!   as its own output;
//! - `hangs`: pathological templates and inputs;
//! - `exit-0`: non-finite or impossible settings that must be refused;
//! - `corrupt`: model files, GGUF, adapters, datasets, references and run files that are
//!   empty, truncated, binary, invalid UTF-8 or missing.
//!
//! Every case, whatever it expects, must end within its time limit, never panic or die of a
//! signal (exit 101, 134, 139 or none), and leave every file that existed before it byte for
//! byte as it was. A case that must be refused must exit non-zero with exactly one line
//! starting `error:` on stderr (clap's own usage errors add their `Usage:`/`For more
//! information` lines, exit 2). A case that may run (a value in range) passes when it
//! succeeds or is refused that way. The test prints the table class × cases × outcome and
//! fails when any case fails.
//!
//! Run: `cargo test --release --test reliability_probe -- --nocapture` (PROBE_JOBS=N runs N
//! cases at once, default 2; PROBE_FILTER=text runs only the cases whose name holds it).
mod common;
mod reliability_support;
mod sft_support;
use reliability_support::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a case must do.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Want {
    /// Non-zero exit with one `error:` line.
    Refuse,
    /// A value in range: exit 0, or a clean refusal.
    Either,
    /// A run of 10¹² steps: a clean refusal, exit 0, or still training at the case's limit
    /// (a long run by design, stopped by the probe; Ctrl-C stops it at a step boundary).
    Long,
}

struct Case {
    class: &'static str,
    name: String,
    /// Arguments; `@W` is the workspace, `@S` this case's own fresh scratch folder.
    args: Vec<String>,
    env: Vec<(String, String)>,
    want: Want,
    secs: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Outcome {
    Refused,
    Ran,
    LongRun,
    Panic,
    Hang,
    DataLoss,
    WrongExit0,
    Unclear,
}

impl Outcome {
    fn ok(self) -> bool {
        matches!(self, Outcome::Refused | Outcome::Ran | Outcome::LongRun)
    }
    fn label(self) -> &'static str {
        match self {
            Outcome::Refused => "refused cleanly",
            Outcome::Ran => "ran (value in range)",
            Outcome::LongRun => "long run, stopped at its limit",
            Outcome::Panic => "panic / signal",
            Outcome::Hang => "hang",
            Outcome::DataLoss => "data loss",
            Outcome::WrongExit0 => "wrong exit 0",
            Outcome::Unclear => "unclear message",
        }
    }
}

fn case(class: &'static str, name: impl Into<String>, args: &[&str], want: Want) -> Case {
    Case {
        class,
        name: name.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec![],
        want,
        secs: 60,
    }
}

/// Files that may change by design: `plot`'s default output and the `.lock` files of runs.
fn volatile(p: &Path) -> bool {
    let s = p.to_string_lossy();
    s.starts_with("scratch") || s.ends_with(".lock") || s.ends_with("plots/metrics.svg")
}

/// Every file under `dir` (outside the scratch folders): length, mtime and, for small files,
/// the bytes. Large files (models) are compared by length and mtime.
type Snap = BTreeMap<PathBuf, (u64, Option<std::time::SystemTime>, Vec<u8>)>;
fn snap(dir: &Path) -> Snap {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if volatile(&rel) {
                continue;
            }
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if md.is_dir() {
                stack.push(p);
            } else {
                let bytes = if md.len() < 1 << 20 {
                    std::fs::read(&p).unwrap_or_default()
                } else {
                    vec![]
                };
                out.insert(rel, (md.len(), md.modified().ok(), bytes));
            }
        }
    }
    out
}

fn lost(before: &Snap, after: &Snap) -> Vec<String> {
    before
        .iter()
        .filter(|(p, v)| after.get(*p) != Some(v))
        .map(|(p, _)| p.display().to_string())
        .collect()
}

/// Whether stderr is a clean refusal: exactly one line starting `error:`, no other lines
/// except warnings (`warning:` or a logged WARN) and clap's usage lines (exit 2).
fn clean_refusal(code: Option<i32>, err: &str) -> bool {
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors = lines.iter().filter(|l| l.starts_with("error:")).count();
    if errors != 1 {
        return false;
    }
    if code == Some(2) {
        return lines[0].starts_with("error:");
    }
    lines
        .iter()
        .all(|l| l.starts_with("error:") || l.starts_with("warning:") || l.contains("WARN"))
}

struct Result1 {
    class: &'static str,
    name: String,
    outcome: Outcome,
    secs: f64,
    detail: String,
}

/// Copies `src` into `dst` (real copies, not links).
fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let (p, q) = (e.path(), dst.join(e.file_name()));
        let md = std::fs::symlink_metadata(&p).unwrap();
        if md.is_dir() {
            copy_tree(&p, &q);
        } else if md.is_file() {
            std::fs::copy(&p, &q).unwrap();
        }
    }
}

/// Puts back the files a failed case changed, from the pristine copy and with their old
/// modification time, so one case's data loss neither turns later cases into refusals for
/// the wrong reason nor shows as a change to a case running beside it.
fn restore(w: &Path, pristine: &Path, changed: &[String], before: &Snap) {
    for rel in changed {
        let (src, dst) = (pristine.join(rel), w.join(rel));
        if src.is_file() {
            let _ = std::fs::remove_file(&dst);
            let _ = std::fs::create_dir_all(dst.parent().unwrap());
            let _ = std::fs::copy(&src, &dst);
            if let Some((_, Some(t), _)) = before.get(Path::new(rel)) {
                if let Ok(f) = std::fs::File::options().write(true).open(&dst) {
                    let _ = f.set_modified(*t);
                }
            }
        }
    }
}

fn run_case(w: &Path, idx: usize, c: &Case, lock: &Mutex<()>) -> Result1 {
    let scratch = w.join("scratch").join(idx.to_string());
    let sub = |a: &str| {
        a.replace("@S", &scratch.to_string_lossy())
            .replace("@W", &w.to_string_lossy())
    };
    let before = {
        let _g = lock.lock().unwrap();
        snap(w)
    };
    let mut cmd: Command = stylerl();
    cmd.args(c.args.iter().map(|a| sub(a)));
    for (k, v) in &c.env {
        cmd.env(k, sub(v));
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("the binary starts");
    // Drain the pipes on threads so a chatty command cannot block on a full pipe.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let to = std::thread::spawn(move || {
        let mut v = vec![];
        let _ = std::io::Read::read_to_end(&mut so, &mut v);
        v
    });
    let te = std::thread::spawn(move || {
        let mut v = vec![];
        let _ = std::io::Read::read_to_end(&mut se, &mut v);
        v
    });
    let mut hung = false;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > Duration::from_secs(c.secs) {
            hung = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let secs = start.elapsed().as_secs_f64();
    let _ = to.join();
    let err = String::from_utf8_lossy(&te.join().unwrap_or_default()).to_string();
    let after = {
        let _g = lock.lock().unwrap();
        snap(w)
    };
    let changed = lost(&before, &after);
    if !changed.is_empty() {
        let _g = lock.lock().unwrap();
        restore(w, &w.with_extension("pristine"), &changed, &before);
    }
    let code = status.code();
    let tail = err.lines().take(4).collect::<Vec<_>>().join(" | ");
    let (outcome, detail) = if hung && c.want == Want::Long {
        (
            Outcome::LongRun,
            format!("still running after {} s", c.secs),
        )
    } else if hung {
        (Outcome::Hang, format!("killed after {} s; {tail}", c.secs))
    } else if err.contains("panicked")
        || code.is_none()
        || matches!(code, Some(101) | Some(134) | Some(139))
    {
        (Outcome::Panic, format!("exit {code:?}; {tail}"))
    } else if !changed.is_empty() {
        (
            Outcome::DataLoss,
            format!("changed: {}", changed.join(", ")),
        )
    } else if status.success() {
        if c.want == Want::Refuse {
            (Outcome::WrongExit0, format!("exit 0; {tail}"))
        } else {
            (Outcome::Ran, String::new())
        }
    } else if clean_refusal(code, &err) {
        (Outcome::Refused, tail)
    } else {
        (Outcome::Unclear, format!("exit {code:?}; {tail}"))
    };
    let _ = std::fs::remove_dir_all(&scratch);
    Result1 {
        class: c.class,
        name: c.name.clone(),
        outcome,
        secs,
        detail,
    }
}

// ---------------------------------------------------------------------------------------
// The workspace: a tiny model, an adapter, a run, a GGUF, configs and datasets.

fn write(p: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// A copy of the model directory `src` (hard links) with `file` replaced by `bytes`, or
/// removed when `bytes` is None.
fn model_variant(src: &Path, dst: &Path, file: &str, bytes: Option<Vec<u8>>) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        if e.path().is_file() {
            let _ = std::fs::hard_link(e.path(), dst.join(e.file_name()));
        }
    }
    let _ = std::fs::remove_file(dst.join(file));
    if let Some(b) = bytes {
        std::fs::write(dst.join(file), b).unwrap();
    }
}

fn setup(w: &Path) {
    let root = common::root();
    let tiny = w.join("tiny");
    common::tiny_llama(&tiny, 7);
    common::tiny_family(&w.join("gpt2"), "gpt2", 7);
    tiny_adapter(&tiny, &w.join("adapter"));
    sft_support::pairs(&w.join("train.jsonl"), 6);
    let eval = std::fs::read_to_string(root.join("datasets/sft/eval.jsonl")).unwrap();
    write(
        &w.join("eval.jsonl"),
        eval.lines().take(2).collect::<Vec<_>>().join("\n") + "\n",
    );
    sft_support::config(w, "sft", "max_steps = 1");
    sft_support::grpo_config(w, "grpo");
    write(&w.join("held.jsonl"), "{\"text\": \"A short note.\"}\n");
    let reference = root.join("datasets/reference/whimsical_tale.txt");
    let eval_cfg = format!(
        "name = \"t\"\nout_dir = \"{o}\"\n[data]\nheldout = \"{h}\"\n[reward]\nreference = [\"{r}\"]\nencoder = \"stylometric\"\n[generation]\nmax_new_tokens = 2\nbatch_size = 2\n[bootstrap]\nresamples = 100\n[meaning]\nencoder = \"none\"\n[fluency]\nmodel = \"none\"\n[[systems]]\nname = \"a\"\nkind = \"model\"\n[systems.model]\npath = \"{m}\"\n[[systems]]\nname = \"b\"\nkind = \"model\"\n[systems.model]\npath = \"{m}\"\nadapters = [\"{ad}\"]\n",
        o = w.join("results").display(),
        h = w.join("held.jsonl").display(),
        r = reference.display(),
        m = tiny.display(),
        ad = w.join("adapter").display(),
    );
    write(&w.join("eval.toml"), &eval_cfg);
    write(
        &w.join("reward.toml"),
        format!(
            "[reward]\nreference = [\"{}\"]\nencoder = \"stylometric\"\n",
            reference.display()
        ),
    );
    write(
        &w.join("prompts.jsonl"),
        "\"Hello there\"\n\"A second prompt\"\n",
    );
    write(
        &w.join("texts.txt"),
        "We met at noon.\nThe river was cold.\n",
    );
    write(&w.join("ref.txt"), std::fs::read(&reference).unwrap());
    // An SFT run (one step) for rewrite --run, export-gguf --run and plot.
    let o = stylerl()
        .args(["sft", "--config"])
        .arg(w.join("sft.toml"))
        .args(["--set", &format!("out_dir={}", w.join("run").display())])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A GGUF of the tiny model.
    let o = stylerl()
        .args(["export-gguf", "--model"])
        .arg(&tiny)
        .arg("--out")
        .arg(w.join("gguf/m.gguf"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // An evaluation (outputs.jsonl) and a review key, for `review`.
    let o = stylerl()
        .args(["evaluate", "--config"])
        .arg(w.join("eval.toml"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = stylerl()
        .args(["review", "make", "--outputs"])
        .arg(w.join("results/outputs.jsonl"))
        .args(["--systems", "a,b", "--out"])
        .arg(w.join("sheet"))
        .arg("--key")
        .arg(w.join("key.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    write(
        &w.join("verdicts.jsonl"),
        "{\"item\": 0, \"style\": \"A\", \"meaning\": \"tie\", \"fluency\": \"B\"}\n",
    );

    // Precious user files the data-loss cases aim at.
    let u = w.join("user");
    write(&u.join("notes.txt"), "my own notes\n");
    write(&u.join("mine.safetensors"), "precious");
    write(&u.join("mine.svg"), "precious");
    write(&u.join("mine.gguf"), "precious");
    write(&u.join("mine.json"), "precious");
    write(&u.join("Modelfile"), "FROM my-own-model\n");
    write(&u.join("dir/keep.txt"), "precious");
    write(&u.join("modeldir/config.json"), "{\"precious\": true}");
    write(&u.join("modeldir/model.safetensors"), "precious");
    write(
        &u.join("metrics.jsonl"),
        "{\"step\":1,\"loss\":0.5}\n{\"step\":2,\"loss\":0.4}\n",
    );
    write(&u.join("metrics-huge.jsonl"), "{\"step\":1,\"loss\":1e308}\n{\"step\":2,\"loss\":-1e308}\n{\"step\":1e300,\"loss\":0.4}\n");
    write(
        &u.join("metrics-nan.jsonl"),
        "{\"step\":1,\"loss\":NaN}\n{\"step\":2,\"loss\":\"inf\"}\n",
    );

    // Corrupt model directories.
    let safet = std::fs::read(tiny.join("model.safetensors")).unwrap();
    let tok = std::fs::read(tiny.join("tokenizer.json")).unwrap();
    let cfg = std::fs::read(tiny.join("config.json")).unwrap();
    let binary: Vec<u8> = (0..4096u32)
        .map(|i| (i * 2654435761u32 >> 13) as u8)
        .collect();
    let huge_header = {
        let mut b = (u64::MAX / 2).to_le_bytes().to_vec();
        b.extend_from_slice(b"{\"a\":1}");
        b
    };
    let bad = w.join("bad");
    let variants: Vec<(&str, &str, Option<Vec<u8>>)> = vec![
        ("cfg-empty", "config.json", Some(vec![])),
        (
            "cfg-trunc",
            "config.json",
            Some(cfg[..cfg.len() / 2].to_vec()),
        ),
        ("cfg-array", "config.json", Some(b"[1, 2, 3]".to_vec())),
        ("cfg-binary", "config.json", Some(binary.clone())),
        ("cfg-missing", "config.json", None),
        ("cfg-dir", "config.json", None),
        ("st-empty", "model.safetensors", Some(vec![])),
        (
            "st-trunc",
            "model.safetensors",
            Some(safet[..safet.len() / 2].to_vec()),
        ),
        (
            "st-header-only",
            "model.safetensors",
            Some(safet[..64].to_vec()),
        ),
        ("st-huge-header", "model.safetensors", Some(huge_header)),
        ("st-binary", "model.safetensors", Some(binary.clone())),
        ("st-missing", "model.safetensors", None),
        ("tok-empty", "tokenizer.json", Some(vec![])),
        (
            "tok-trunc",
            "tokenizer.json",
            Some(tok[..tok.len() / 2].to_vec()),
        ),
        ("tok-binary", "tokenizer.json", Some(binary.clone())),
        ("tok-missing", "tokenizer.json", None),
        (
            "tokcfg-binary",
            "tokenizer_config.json",
            Some(binary.clone()),
        ),
    ];
    for (name, file, bytes) in &variants {
        model_variant(&tiny, &bad.join(name), file, bytes.clone());
    }
    std::fs::create_dir_all(bad.join("cfg-dir/config.json")).unwrap();
    // Corrupt adapters.
    let ad = w.join("adapter");
    let ast = std::fs::read(ad.join("adapter_model.safetensors")).unwrap();
    for (name, file, bytes) in [
        ("ad-cfg-empty", "adapter_config.json", Some(vec![])),
        ("ad-cfg-binary", "adapter_config.json", Some(binary.clone())),
        (
            "ad-st-trunc",
            "adapter_model.safetensors",
            Some(ast[..ast.len() / 2].to_vec()),
        ),
        ("ad-st-empty", "adapter_model.safetensors", Some(vec![])),
        ("ad-st-missing", "adapter_model.safetensors", None),
    ] {
        model_variant(&ad, &bad.join(name), file, bytes);
    }
    // Corrupt GGUF files.
    let g = std::fs::read(w.join("gguf/m.gguf")).unwrap();
    for (name, bytes) in [
        ("empty", vec![]),
        ("magic-only", g[..4].to_vec()),
        ("head", g[..64].to_vec()),
        ("half", g[..g.len() / 2].to_vec()),
        ("last-byte-gone", g[..g.len() - 1].to_vec()),
        ("binary", binary.clone()),
        ("wrong-type", safet[..4096].to_vec()),
    ] {
        write(&w.join(format!("badgguf/{name}.gguf")), bytes);
    }
    // Corrupt runs.
    for (name, file, bytes) in [
        ("run-json-empty", "run.json", Some(vec![])),
        ("run-json-binary", "run.json", Some(binary.clone())),
        ("run-json-missing", "run.json", None),
    ] {
        let dst = bad.join(name);
        model_variant(&w.join("run"), &dst, file, bytes);
        let _ = std::fs::create_dir_all(dst.join("adapter"));
        for e in std::fs::read_dir(w.join("run/adapter")).unwrap().flatten() {
            let _ = std::fs::hard_link(e.path(), dst.join("adapter").join(e.file_name()));
        }
    }
    // Corrupt datasets and references.
    let data = w.join("data");
    write(&data.join("empty.jsonl"), "");
    write(&data.join("blank.jsonl"), "\n\n\n");
    write(&data.join("binary.jsonl"), &binary);
    write(
        &data.join("invalid-utf8.jsonl"),
        b"{\"text\": \"caf\xe9 \xff\xfe\"}\n",
    );
    write(&data.join("bad-json.jsonl"), "{\"text\": \"open\n");
    write(&data.join("no-field.jsonl"), "{\"other\": \"x\"}\n");
    write(&data.join("numbers.jsonl"), "1\n2\n");
    write(
        &data.join("deep.jsonl"),
        "[".repeat(100_000) + &"]".repeat(100_000) + "\n",
    );
    std::fs::create_dir_all(data.join("a-dir.jsonl")).unwrap();
    write(&data.join("empty.txt"), "");
    write(&data.join("binary.txt"), &binary);
    write(
        &data.join("invalid-utf8.txt"),
        b"caf\xe9 \xff\xfe. More text here.\n",
    );
    write(&data.join("one-char.txt"), ".");
    write(&data.join("huge-line.txt"), "word ".repeat(400_000));
    write(&data.join("no-boundary.txt"), "a".repeat(2_000_000));
    write(&data.join("sft-no-output.jsonl"), "{\"input\": \"x\"}\n");
    write(
        &data.join("sft-empty-strings.jsonl"),
        "{\"input\": \"\", \"output\": \"\"}\n",
    );
    write(
        &data.join("ids-out-of-vocab.jsonl"),
        "[1, 2, 99999999]\n[-5]\n",
    );
    write(&data.join("ids-empty.jsonl"), "[]\n");
    // Templates.
    let tpl = |name: &str, t: &str| {
        model_variant(
            &tiny,
            &w.join("tpl").join(name),
            "tokenizer_config.json",
            Some(
                serde_json::json!({"chat_template": t, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>"})
                    .to_string()
                    .into_bytes(),
            ),
        );
    };
    tpl("nested", "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}x{% endfor %}{% endfor %}{% endfor %}");
    tpl(
        "recursion",
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    );
    tpl("huge-string", "{{ 'a' * 1000000000000 }}");
    tpl(
        "huge-range",
        "{% for i in range(1000000000000) %}{% endfor %}",
    );
    // Not probed: a template that doubles a string 64 times ('s ~ s' in a loop) takes few
    // fuel steps but exhausts memory (an abort, or swapping); the fuel limit bounds steps,
    // not bytes (results/reliability/README.md, Re-probe, not done).
    tpl("bad-syntax", "{% for %}");
    tpl("raise", "{{ raise_exception('no') }}");
    tpl("undefined", "{{ messages[5].content.nope }}");
    tpl("empty", "");
}

// ---------------------------------------------------------------------------------------
// The cases.

const VALUES: [&str; 7] = ["0", "-1", "1000000000000", "1e308", "NaN", "inf", "abc"];

/// Whether value `v` must be refused for a flag: −1, NaN, inf and words always; 10¹² and
/// 1e308 unless `huge_ok`; 0 when `zero_bad`.
fn flag_want(v: &str, zero_bad: bool, huge_ok: bool) -> Want {
    match v {
        "0" if !zero_bad => Want::Either,
        "1000000000000" | "1e308" if huge_ok => Want::Either,
        _ => Want::Refuse,
    }
}

fn sizes(cases: &mut Vec<Case>) {
    let gen = [
        "generate",
        "--model",
        "@W/tiny",
        "--prompt",
        "Hi",
        "--max-new-tokens",
        "2",
    ];
    let rw = [
        "rewrite",
        "--model",
        "@W/tiny",
        "--max-new-tokens",
        "2",
        "--out",
        "@S/o.jsonl",
    ];
    // (command prefix, flag, zero_bad, huge_ok, float)
    let flags: Vec<(&[&str], &str, bool, bool, bool)> = vec![
        (&gen, "--max-new-tokens", false, false, false),
        (&gen, "--temperature", true, true, true),
        (&gen, "--top-p", true, false, true),
        (&gen, "--top-k", true, true, false),
        (&gen, "--seed", false, true, false),
        (&gen, "--num-samples", true, false, false),
        (&gen, "--batch-size", true, true, false),
        (&gen, "--threads", true, false, false),
        (&rw, "--n", true, false, false),
        (&rw, "--temperature", true, true, true),
        (&rw, "--top-p", true, false, true),
        (&rw, "--max-new-tokens", false, false, false),
        (&rw, "--batch-size", true, true, false),
        (&rw, "--seed", false, true, false),
        (
            &[
                "perplexity",
                "--model",
                "@W/tiny",
                "--input",
                "@W/texts.txt",
            ],
            "--batch-size",
            true,
            true,
            false,
        ),
        (
            &[
                "perplexity",
                "--model",
                "@W/tiny",
                "--input",
                "@W/texts.txt",
            ],
            "--threads",
            true,
            false,
            false,
        ),
        (
            &[
                "logits",
                "--model",
                "@W/tiny",
                "--input",
                "@W/prompts.jsonl",
                "--out",
                "@S/l.safetensors",
            ],
            "--threads",
            true,
            false,
            false,
        ),
        (
            &[
                "embed",
                "--encoder",
                "stylometric",
                "--input",
                "@W/texts.txt",
            ],
            "--batch-size",
            true,
            true,
            false,
        ),
        (
            &[
                "analyze",
                "--encoder",
                "stylometric",
                "--data",
                "@W/texts.txt",
                "--out",
                "@S/an",
            ],
            "--batch-size",
            true,
            true,
            false,
        ),
        (
            &[
                "review",
                "make",
                "--outputs",
                "@W/results/outputs.jsonl",
                "--systems",
                "a,b",
                "--out",
                "@S/sheet",
            ],
            "--excerpt",
            true,
            false,
            false,
        ),
        (
            &[
                "review",
                "make",
                "--outputs",
                "@W/results/outputs.jsonl",
                "--systems",
                "a,b",
                "--out",
                "@S/sheet",
            ],
            "--seed",
            false,
            true,
            false,
        ),
        (
            &[
                "review",
                "make",
                "--outputs",
                "@W/results/outputs.jsonl",
                "--systems",
                "a,b",
                "--out",
                "@S/sheet",
            ],
            "--limit",
            true,
            true,
            false,
        ),
        (
            &[
                "reward",
                "--config",
                "@W/reward.toml",
                "--input",
                "We met at noon.",
                "--output",
                "We met at noon, dear.",
            ],
            "--step",
            false,
            true,
            false,
        ),
        (
            &[
                "train-style",
                "--reference",
                "@W/ref.txt",
                "--warmup",
                "@W/tiny",
                "--out",
                "@S/ts",
                "--inputs",
                "@W/held.jsonl",
                "--heldout",
                "@W/held.jsonl",
                "--set",
                "grpo.steps=1",
                "--set",
                "grpo.prompts_per_step=1",
                "--set",
                "grpo.num_generations=2",
                "--set",
                "grpo.max_completion_length=4",
                "--set",
                "grpo.ppo_epochs=1",
                "--set",
                "reward.meaning.weight=0",
                "--set",
                "data.limit=1",
            ],
            "--eval-limit",
            true,
            true,
            false,
        ),
    ];
    for (prefix, flag, zero_bad, huge_ok, float) in flags {
        for v in VALUES {
            let mut want = flag_want(v, zero_bad, huge_ok);
            // An integer flag cannot hold 1e308 (a parse error): refused either way.
            if v == "1e308" && !float {
                want = Want::Refuse;
            }
            let mut args: Vec<&str> = prefix.to_vec();
            let vv = format!("{flag}={v}");
            args.push(&vv);
            if prefix[0] == "rewrite" {
                args.push("A short text.");
            }
            let mut c = case("sizes", format!("{} {flag} {v}", prefix[0]), &args, want);
            if prefix[0] == "train-style" {
                c.secs = 240;
            }
            cases.push(c);
        }
    }
    for v in VALUES {
        let mut c = case(
            "sizes",
            format!("STYLERL_THREADS={v} generate"),
            &gen,
            Want::Refuse,
        );
        c.env.push(("STYLERL_THREADS".into(), v.into()));
        cases.push(c);
    }
    // Token ids and positions.
    cases.push(case(
        "sizes",
        "generate ids outside the vocabulary",
        &[
            "generate",
            "--model",
            "@W/tiny",
            "--input",
            "@W/data/ids-out-of-vocab.jsonl",
            "--max-new-tokens",
            "2",
        ],
        Want::Refuse,
    ));
    cases.push(case(
        "sizes",
        "logits ids outside the vocabulary",
        &[
            "logits",
            "--model",
            "@W/tiny",
            "--input",
            "@W/data/ids-out-of-vocab.jsonl",
            "--out",
            "@S/l.safetensors",
        ],
        Want::Refuse,
    ));
    cases.push(case(
        "sizes",
        "generate empty id list",
        &[
            "generate",
            "--model",
            "@W/tiny",
            "--input",
            "@W/data/ids-empty.jsonl",
            "--max-new-tokens",
            "2",
        ],
        Want::Either,
    ));
    cases.push(case(
        "sizes",
        "logits empty id list",
        &[
            "logits",
            "--model",
            "@W/tiny",
            "--input",
            "@W/data/ids-empty.jsonl",
            "--out",
            "@S/l.safetensors",
        ],
        Want::Either,
    ));
    cases.push(case(
        "sizes",
        "gpt2 perplexity past n_positions",
        &[
            "perplexity",
            "--model",
            "@W/gpt2",
            "--input",
            "@W/data/huge-line.txt",
        ],
        Want::Refuse,
    ));
    cases.push(case(
        "sizes",
        "gpt2 generate past n_positions",
        &[
            "generate",
            "--model",
            "@W/gpt2",
            "--prompt",
            "Hi",
            "--max-new-tokens",
            "600",
        ],
        Want::Refuse,
    ));

    // Config keys through --set.
    let sft_keys: [(&str, bool, bool, bool); 20] = [
        // key, zero_bad, huge_ok, float
        // Longer than the context is allowed while every row fits it (checked per row).
        ("data.max_length", true, true, false),
        ("train.max_steps", true, false, false),
        ("train.epochs", true, false, false),
        ("train.batch_size", true, false, false),
        ("train.grad_accum", true, false, false),
        ("train.warmup_steps", false, false, false),
        ("train.max_grad_norm", true, true, true),
        ("train.seed", false, true, false),
        ("train.eval_every", false, true, false),
        ("train.checkpoint_every", false, true, false),
        ("train.keep_checkpoints", false, true, false),
        ("train.nan_max_in_a_row", true, true, false),
        // Large but finite rates, ε, decay and α are settings, not impossibilities.
        ("train.optimizer.lr", true, true, true),
        ("train.optimizer.beta1", false, false, true),
        ("train.optimizer.beta2", false, false, true),
        ("train.optimizer.eps", true, true, true),
        ("train.optimizer.weight_decay", false, true, true),
        ("lora.r", true, false, false),
        ("lora.alpha", true, true, true),
        ("lora.dropout", false, false, true),
    ];
    for (k, zero_bad, huge_ok, float) in sft_keys {
        for v in VALUES {
            let mut want = flag_want(v, zero_bad, huge_ok);
            if v == "1e308" && !float {
                want = Want::Refuse;
            }
            if v == "1000000000000" && matches!(k, "train.max_steps") {
                want = Want::Long;
            }
            let kv = format!("{k}={}", toml_value(v));
            let mut c = case(
                "sizes",
                format!("sft --set {kv}"),
                &[
                    "sft",
                    "--config",
                    "@W/sft.toml",
                    "--set",
                    "out_dir=@S/out",
                    "--set",
                    &kv,
                ],
                want,
            );
            if want == Want::Long {
                c.secs = 20;
            }
            cases.push(c);
        }
    }
    let grpo_keys: [(&str, bool, bool, bool); 26] = [
        ("data.limit", true, true, false),
        ("grpo.steps", true, false, false),
        ("grpo.prompts_per_step", true, false, false),
        ("grpo.num_generations", true, false, false),
        ("grpo.max_completion_length", true, false, false),
        ("grpo.temperature", true, true, true),
        ("grpo.top_p", true, false, true),
        ("grpo.top_k", true, true, false),
        ("grpo.ppo_epochs", true, false, false),
        ("grpo.micro_batch_size", true, true, false),
        ("grpo.eps_low", false, false, true),
        ("grpo.eps_high", false, true, true),
        ("grpo.beta", false, true, true),
        ("grpo.warmup_steps", false, false, false),
        ("grpo.max_grad_norm", true, true, true),
        ("grpo.checkpoint_every", false, true, false),
        ("grpo.keep_checkpoints", false, true, false),
        ("grpo.sample_every", false, true, false),
        ("grpo.nan_patience", true, true, false),
        ("grpo.optimizer.lr", true, true, true),
        ("reward.neighbours", true, true, false),
        ("reward.encoder_batch_size", true, true, false),
        // A cap on a cache that fills as sentences come (nothing is reserved up front).
        ("reward.cache_size", false, true, false),
        ("reward.weights.style", false, true, true),
        ("reward.dropout.gamma", false, true, true),
        // A cap on L_max: a large one leaves grpo.max_completion_length the limit.
        ("reward.length.max_completion_length", true, true, false),
    ];
    for (k, zero_bad, huge_ok, float) in grpo_keys {
        for v in VALUES {
            let mut want = flag_want(v, zero_bad, huge_ok);
            if v == "1e308" && !float {
                want = Want::Refuse;
            }
            if v == "1000000000000" && matches!(k, "grpo.steps" | "grpo.ppo_epochs") {
                want = Want::Long;
            }
            // Reward weights may be negative (any finite value).
            if v == "-1" && k.starts_with("reward.weights.") {
                want = Want::Either;
            }
            let kv = format!("{k}={}", toml_value(v));
            let mut c = case(
                "sizes",
                format!("grpo --set {kv}"),
                &[
                    "grpo",
                    "--config",
                    "@W/grpo-grpo.toml",
                    "--set",
                    "out_dir=@S/out",
                    "--set",
                    &kv,
                ],
                want,
            );
            if want == Want::Long {
                c.secs = 20;
            }
            cases.push(c);
        }
    }
    let eval_keys: [(&str, bool, bool, bool); 9] = [
        ("data.limit", true, true, false),
        ("generation.max_new_tokens", true, false, false),
        ("generation.temperature", true, true, true),
        ("generation.top_p", true, false, true),
        ("generation.batch_size", true, true, false),
        ("generation.jobs", true, false, false),
        ("bootstrap.resamples", true, false, false),
        ("not_rewritten_threshold", false, false, true),
        // Unused without judge.url (checked with it: tests in src/eval/judge.rs).
        ("judge.timeout_s", false, true, false),
    ];
    for (k, zero_bad, huge_ok, float) in eval_keys {
        for v in VALUES {
            let mut want = flag_want(v, zero_bad, huge_ok);
            if v == "1e308" && !float {
                want = Want::Refuse;
            }
            let kv = format!("{k}={}", toml_value(v));
            let c = case(
                "sizes",
                format!("evaluate --set {kv}"),
                &[
                    "evaluate",
                    "--config",
                    "@W/eval.toml",
                    "--set",
                    "out_dir=@S/res",
                    "--set",
                    &kv,
                ],
                want,
            );
            cases.push(c);
        }
    }
    // config.json sizes with --random-init.
    for (k, v) in [
        ("num_hidden_layers", "0"),
        ("num_attention_heads", "0"),
        ("num_key_value_heads", "0"),
        ("num_key_value_heads", "3"),
        ("head_dim", "0"),
        ("hidden_size", "-64"),
        ("intermediate_size", "0"),
        ("max_position_embeddings", "0"),
        ("max_position_embeddings", "-1"),
        ("rms_norm_eps", "-1"),
        ("rope_theta", "0"),
        ("rope_theta", "-10000.0"),
        ("vocab_size", "0"),
        ("bos_token_id", "99999999"),
        ("eos_token_id", "-7"),
    ] {
        cases.push(case(
            "sizes",
            format!("config.json {k} = {v} (--random-init)"),
            &[
                "generate",
                "--model",
                &format!("@W/cfgsize/{k}{v}"),
                "--random-init",
                "--prompt",
                "Hi",
                "--max-new-tokens",
                "2",
            ],
            Want::Refuse,
        ));
    }
}

/// The TOML literal for a probe value (a word is a quoted string).
fn toml_value(v: &str) -> String {
    match v {
        "NaN" => "nan".into(),
        "abc" => "\"abc\"".into(),
        _ => v.into(),
    }
}

fn cfgsize_setup(w: &Path) {
    for (k, v) in [
        ("num_hidden_layers", "0"),
        ("num_attention_heads", "0"),
        ("num_key_value_heads", "0"),
        ("num_key_value_heads", "3"),
        ("head_dim", "0"),
        ("hidden_size", "-64"),
        ("intermediate_size", "0"),
        ("max_position_embeddings", "0"),
        ("max_position_embeddings", "-1"),
        ("rms_norm_eps", "-1"),
        ("rope_theta", "0"),
        ("rope_theta", "-10000.0"),
        ("vocab_size", "0"),
        ("bos_token_id", "99999999"),
        ("eos_token_id", "-7"),
    ] {
        let val: serde_json::Value = serde_json::from_str(v).unwrap();
        config_only(&w.join(format!("cfgsize/{k}{v}")), "llama", |c| c[k] = val);
    }
}

fn data_loss(cases: &mut Vec<Case>) {
    use Want::Refuse;
    let u = "@W/user";
    let rw_in = format!("{u}/notes.txt");
    for force in [false, true] {
        let f: &[&str] = if force { &["--force"] } else { &[] };
        let tag = if force { " --force" } else { "" };
        let cat = |a: &[&str]| -> Vec<String> {
            a.iter().chain(f.iter()).map(|s| s.to_string()).collect()
        };
        let mk = |name: String, a: Vec<String>| {
            let refs: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
            case("data-loss", name, &refs, Refuse)
        };
        let mut v = vec![
            mk(
                format!("rewrite --input F --out F{tag}"),
                cat(&[
                    "rewrite",
                    "--model",
                    "@W/tiny",
                    "--max-new-tokens",
                    "2",
                    "--input",
                    &rw_in,
                    "--out",
                    &rw_in,
                ]),
            ),
            mk(
                format!("rewrite --input F --out ./..F{tag}"),
                cat(&[
                    "rewrite",
                    "--model",
                    "@W/tiny",
                    "--max-new-tokens",
                    "2",
                    "--input",
                    &rw_in,
                    "--out",
                    &format!("{u}/dir/../notes.txt"),
                ]),
            ),
            mk(
                format!("logits --input F --out F{tag}"),
                cat(&[
                    "logits",
                    "--model",
                    "@W/tiny",
                    "--input",
                    &format!("{u}/mine.json"),
                    "--out",
                    &format!("{u}/mine.json"),
                ]),
            ),
            mk(
                format!("plot metrics.jsonl --out itself{tag}"),
                cat(&[
                    "plot",
                    &format!("{u}/metrics.jsonl"),
                    "--out",
                    &format!("{u}/metrics.jsonl"),
                ]),
            ),
            mk(
                format!("merge --out = --model{tag}"),
                cat(&[
                    "merge",
                    "--model",
                    "@W/tiny",
                    "--adapter",
                    "@W/adapter",
                    "--out",
                    "@W/tiny",
                ]),
            ),
            mk(
                format!("merge --out = --adapter{tag}"),
                cat(&[
                    "merge",
                    "--model",
                    "@W/tiny",
                    "--adapter",
                    "@W/adapter",
                    "--out",
                    "@W/adapter",
                ]),
            ),
            mk(
                format!("export-gguf --out = the model's weights{tag}"),
                cat(&[
                    "export-gguf",
                    "--model",
                    "@W/tiny",
                    "--out",
                    "@W/tiny/model.safetensors",
                ]),
            ),
            mk(
                format!("export-gguf --out = the model's config.json{tag}"),
                cat(&[
                    "export-gguf",
                    "--model",
                    "@W/tiny",
                    "--out",
                    "@W/tiny/config.json",
                ]),
            ),
            mk(
                format!("import-gguf --out = the folder of FILE{tag}"),
                cat(&["import-gguf", "@W/gguf/m.gguf", "--out", "@W/gguf"]),
            ),
            mk(
                format!("review make --out = a folder with files{tag}"),
                cat(&[
                    "review",
                    "make",
                    "--outputs",
                    "@W/results/outputs.jsonl",
                    "--systems",
                    "a,b",
                    "--out",
                    "@W/results",
                ]),
            ),
            mk(
                format!("review make --key = --outputs{tag}"),
                cat(&[
                    "review",
                    "make",
                    "--outputs",
                    "@W/results/outputs.jsonl",
                    "--systems",
                    "a,b",
                    "--out",
                    "@S/sheet",
                    "--key",
                    "@W/results/outputs.jsonl",
                ]),
            ),
            mk(
                format!("review score --json = --verdicts{tag}"),
                cat(&[
                    "review",
                    "score",
                    "--key",
                    "@W/key.json",
                    "--verdicts",
                    "@W/verdicts.jsonl",
                    "--json",
                    "@W/verdicts.jsonl",
                ]),
            ),
            mk(
                format!("review score --json = --key{tag}"),
                cat(&[
                    "review",
                    "score",
                    "--key",
                    "@W/key.json",
                    "--verdicts",
                    "@W/verdicts.jsonl",
                    "--json",
                    "@W/key.json",
                ]),
            ),
        ];
        cases.append(&mut v);
    }
    let mut add = |name: &str, args: &[&str]| cases.push(case("data-loss", name, args, Refuse));
    add(
        "rewrite --out existing file",
        &[
            "rewrite",
            "--model",
            "@W/tiny",
            "--max-new-tokens",
            "2",
            "--out",
            &format!("{u}/mine.json"),
            "Some text.",
        ],
    );
    add(
        "rewrite --out an existing folder",
        &[
            "rewrite",
            "--model",
            "@W/tiny",
            "--max-new-tokens",
            "2",
            "--out",
            &format!("{u}/dir"),
            "Some text.",
        ],
    );
    add(
        "logits --out existing file",
        &[
            "logits",
            "--model",
            "@W/tiny",
            "--input",
            "@W/prompts.jsonl",
            "--out",
            &format!("{u}/mine.safetensors"),
        ],
    );
    add(
        "logits --out an existing folder",
        &[
            "logits",
            "--model",
            "@W/tiny",
            "--input",
            "@W/prompts.jsonl",
            "--out",
            &format!("{u}/dir"),
        ],
    );
    add(
        "plot --out existing file",
        &[
            "plot",
            &format!("{u}/metrics.jsonl"),
            "--out",
            &format!("{u}/mine.svg"),
        ],
    );
    add(
        "plot --out an existing folder",
        &[
            "plot",
            &format!("{u}/metrics.jsonl"),
            "--out",
            &format!("{u}/dir"),
        ],
    );
    add(
        "merge --out existing model dir",
        &[
            "merge",
            "--model",
            "@W/tiny",
            "--adapter",
            "@W/adapter",
            "--out",
            &format!("{u}/modeldir"),
        ],
    );
    add(
        "merge --out a folder with files",
        &[
            "merge",
            "--model",
            "@W/tiny",
            "--adapter",
            "@W/adapter",
            "--out",
            &format!("{u}/dir"),
        ],
    );
    add(
        "merge --out an existing file",
        &[
            "merge",
            "--model",
            "@W/tiny",
            "--adapter",
            "@W/adapter",
            "--out",
            &format!("{u}/notes.txt"),
        ],
    );
    add(
        "export-gguf --out existing file",
        &[
            "export-gguf",
            "--model",
            "@W/tiny",
            "--out",
            &format!("{u}/mine.gguf"),
        ],
    );
    add(
        "export-gguf beside a hand-written Modelfile",
        &[
            "export-gguf",
            "--model",
            "@W/tiny",
            "--out",
            &format!("{u}/new.gguf"),
        ],
    );
    add(
        "export-gguf --adapter-only beside a Modelfile",
        &[
            "export-gguf",
            "--adapter-only",
            "@W/adapter",
            "--model",
            "@W/tiny",
            "--out",
            &format!("{u}/ad.gguf"),
        ],
    );
    add(
        "export-gguf --out an existing folder",
        &[
            "export-gguf",
            "--model",
            "@W/tiny",
            "--out",
            &format!("{u}/dir"),
        ],
    );
    add(
        "import-gguf --out a folder with files",
        &[
            "import-gguf",
            "@W/gguf/m.gguf",
            "--out",
            &format!("{u}/modeldir"),
        ],
    );
    add(
        "import-gguf --out an existing file",
        &[
            "import-gguf",
            "@W/gguf/m.gguf",
            "--out",
            &format!("{u}/notes.txt"),
        ],
    );
    add(
        "analyze --out a folder with files",
        &[
            "analyze",
            "--encoder",
            "stylometric",
            "--data",
            "@W/texts.txt",
            "--out",
            "@W/results",
        ],
    );
    add(
        "analyze --out an existing file",
        &[
            "analyze",
            "--encoder",
            "stylometric",
            "--data",
            "@W/texts.txt",
            "--out",
            &format!("{u}/notes.txt"),
        ],
    );
    add(
        "review make --out existing sheet",
        &[
            "review",
            "make",
            "--outputs",
            "@W/results/outputs.jsonl",
            "--systems",
            "a,b",
            "--out",
            "@W/sheet",
            "--key",
            "@S/k.json",
        ],
    );
    add(
        "review make --key existing file",
        &[
            "review",
            "make",
            "--outputs",
            "@W/results/outputs.jsonl",
            "--systems",
            "a,b",
            "--out",
            "@S/sheet",
            "--key",
            &format!("{u}/mine.json"),
        ],
    );
    add(
        "review score --json existing file",
        &[
            "review",
            "score",
            "--key",
            "@W/key.json",
            "--verdicts",
            "@W/verdicts.jsonl",
            "--json",
            &format!("{u}/mine.json"),
        ],
    );
    add(
        "sft out_dir = an existing run",
        &["sft", "--config", "@W/sft.toml", "--set", "out_dir=@W/run"],
    );
    add(
        "sft out_dir = a folder with files",
        &[
            "sft",
            "--config",
            "@W/sft.toml",
            "--set",
            &format!("out_dir={u}/dir"),
        ],
    );
    add(
        "sft out_dir = an existing file",
        &[
            "sft",
            "--config",
            "@W/sft.toml",
            "--set",
            &format!("out_dir={u}/notes.txt"),
        ],
    );
    add(
        "sft out_dir = the model dir",
        &["sft", "--config", "@W/sft.toml", "--set", "out_dir=@W/tiny"],
    );
    add(
        "grpo out_dir = an existing run",
        &[
            "grpo",
            "--config",
            "@W/grpo-grpo.toml",
            "--set",
            "out_dir=@W/run",
        ],
    );
    add(
        "grpo out_dir = a folder with files",
        &[
            "grpo",
            "--config",
            "@W/grpo-grpo.toml",
            "--set",
            &format!("out_dir={u}/dir"),
        ],
    );
    add(
        "grpo out_dir = an existing file",
        &[
            "grpo",
            "--config",
            "@W/grpo-grpo.toml",
            "--set",
            &format!("out_dir={u}/notes.txt"),
        ],
    );
    add(
        "grpo out_dir = the model dir",
        &[
            "grpo",
            "--config",
            "@W/grpo-grpo.toml",
            "--set",
            "out_dir=@W/tiny",
        ],
    );
    add(
        "evaluate --systems a on results of a, b",
        &["evaluate", "--config", "@W/eval.toml", "--systems", "a"],
    );
    add(
        "evaluate out_dir = an existing file",
        &[
            "evaluate",
            "--config",
            "@W/eval.toml",
            "--set",
            &format!("out_dir={u}/notes.txt"),
        ],
    );
    add(
        "evaluate out_dir = the model dir",
        &[
            "evaluate",
            "--config",
            "@W/eval.toml",
            "--set",
            "out_dir=@W/tiny",
        ],
    );
    add(
        "train-style --out an existing run",
        &[
            "train-style",
            "--reference",
            "@W/ref.txt",
            "--warmup",
            "@W/tiny",
            "--out",
            "@W/run",
        ],
    );
    add(
        "train-style --out a folder with files",
        &[
            "train-style",
            "--reference",
            "@W/ref.txt",
            "--warmup",
            "@W/tiny",
            "--out",
            &format!("{u}/dir"),
        ],
    );
    add(
        "train-style --out an existing file",
        &[
            "train-style",
            "--reference",
            "@W/ref.txt",
            "--warmup",
            "@W/tiny",
            "--out",
            &format!("{u}/notes.txt"),
        ],
    );
    add(
        "sft --resume on an existing file",
        &[
            "sft",
            "--config",
            "@W/sft.toml",
            "--resume",
            "--set",
            &format!("out_dir={u}/notes.txt"),
        ],
    );
}

fn hangs(cases: &mut Vec<Case>) {
    use Want::{Either, Refuse};
    for (t, want) in [
        ("nested", Refuse),
        ("recursion", Refuse),
        ("huge-string", Refuse),
        ("huge-range", Refuse),
        ("bad-syntax", Refuse),
        ("raise", Refuse),
        ("undefined", Either),
        ("empty", Either),
    ] {
        cases.push(case(
            "hangs",
            format!("chat template {t} (--render-only)"),
            &[
                "generate",
                "--model",
                &format!("@W/tpl/{t}"),
                "--chat",
                "--render-only",
                "--prompt",
                "Hi",
            ],
            want,
        ));
        cases.push(case(
            "hangs",
            format!("chat template {t} (generate)"),
            &[
                "generate",
                "--model",
                &format!("@W/tpl/{t}"),
                "--chat",
                "--prompt",
                "Hi",
                "--max-new-tokens",
                "2",
            ],
            want,
        ));
        cases.push(case(
            "hangs",
            format!("chat template {t} (rewrite)"),
            &[
                "rewrite",
                "--model",
                &format!("@W/tpl/{t}"),
                "--max-new-tokens",
                "2",
                "Some text.",
            ],
            want,
        ));
    }
    let u = "@W/user";
    cases.push(case(
        "hangs",
        "plot values ±1e308, step 1e300",
        &[
            "plot",
            &format!("{u}/metrics-huge.jsonl"),
            "--out",
            "@S/p.svg",
        ],
        Either,
    ));
    cases.push(case(
        "hangs",
        "plot NaN and \"inf\" values",
        &[
            "plot",
            &format!("{u}/metrics-nan.jsonl"),
            "--out",
            "@S/p.svg",
        ],
        Either,
    ));
    cases.push(case(
        "hangs",
        "plot a binary file",
        &["plot", "@W/data/binary.jsonl", "--out", "@S/p.svg"],
        Refuse,
    ));
    cases.push(case(
        "hangs",
        "plot an empty file",
        &["plot", "@W/data/empty.jsonl", "--out", "@S/p.svg"],
        Refuse,
    ));
    cases.push(case(
        "hangs",
        "tokenize 100k-deep JSON nesting",
        &[
            "tokenize",
            "--model",
            "@W/tiny",
            "--input",
            "@W/data/deep.jsonl",
        ],
        Refuse,
    ));
    cases.push(case(
        "hangs",
        "generate --input 100k-deep JSON nesting",
        &[
            "generate",
            "--model",
            "@W/tiny",
            "--input",
            "@W/data/deep.jsonl",
            "--max-new-tokens",
            "2",
        ],
        Either,
    ));
    cases.push(case(
        "hangs",
        "logits --input 100k-deep JSON nesting",
        &[
            "logits",
            "--model",
            "@W/tiny",
            "--input",
            "@W/data/deep.jsonl",
            "--out",
            "@S/l.safetensors",
        ],
        Refuse,
    ));
    cases.push(case(
        "hangs",
        "embed a 2 MB text without a boundary",
        &[
            "embed",
            "--encoder",
            "stylometric",
            "--input",
            "@W/data/no-boundary.txt",
        ],
        Either,
    ));
    cases.push(case(
        "hangs",
        "embed charstyle a 2 MB text",
        &[
            "embed",
            "--encoder",
            "charstyle",
            "--input",
            "@W/data/no-boundary.txt",
        ],
        Either,
    ));
    cases.push(case(
        "hangs",
        "reward with a 2 MB output",
        &[
            "reward",
            "--config",
            "@W/reward.toml",
            "--input",
            "x",
            "--output",
            "@@W/data/no-boundary.txt",
        ],
        Either,
    ));
    cases.push(case(
        "hangs",
        "reward with a 2 MB reference",
        &[
            "reward",
            "--config",
            "@W/reward.toml",
            "--set",
            "reward.reference=[\"@W/data/huge-line.txt\"]",
            "--input",
            "x",
            "--output",
            "y",
        ],
        Either,
    ));
    cases.push(case(
        "hangs",
        "analyze a 2 MB text",
        &[
            "analyze",
            "--encoder",
            "stylometric",
            "--data",
            "@W/data/huge-line.txt",
            "--out",
            "@S/an",
        ],
        Either,
    ));
    cases.push(case(
        "hangs",
        "perplexity a 400k-word line",
        &[
            "perplexity",
            "--model",
            "@W/tiny",
            "--input",
            "@W/data/huge-line.txt",
        ],
        Refuse,
    ));
    cases.push(case(
        "hangs",
        "generate a 400k-word prompt",
        &[
            "generate",
            "--model",
            "@W/tiny",
            "--input",
            "@W/data/huge-line.txt",
            "--max-new-tokens",
            "2",
        ],
        Refuse,
    ));
    cases.push(case(
        "hangs",
        "rewrite a 400k-word input",
        &[
            "rewrite",
            "--model",
            "@W/tiny",
            "--input",
            "@W/data/huge-line.txt",
            "--max-new-tokens",
            "2",
            "--out",
            "@S/o.jsonl",
        ],
        Refuse,
    ));
    cases.push(case(
        "hangs",
        "tokenize a 2 MB string",
        &[
            "tokenize",
            "--model",
            "@W/tiny",
            "--input",
            "@W/data/no-boundary.txt",
        ],
        Refuse,
    ));
    cases.push(case(
        "hangs",
        "evaluate a 400k-word held-out input",
        &[
            "evaluate",
            "--config",
            "@W/eval.toml",
            "--set",
            "out_dir=@S/res",
            "--set",
            "data.heldout=@W/data/huge-line.txt",
            "--set",
            "data.field=document",
        ],
        Refuse,
    ));
    cases.push(case(
        "hangs",
        "grpo on a 400k-word input",
        &[
            "grpo",
            "--config",
            "@W/grpo-grpo.toml",
            "--set",
            "out_dir=@S/out",
            "--set",
            "data.train=@W/data/huge-line.txt",
            "--set",
            "data.field=document",
        ],
        Refuse,
    ));
    cases.push(case(
        "hangs",
        "sft with one 2 MB pair",
        &[
            "sft",
            "--config",
            "@W/sft.toml",
            "--set",
            "out_dir=@S/out",
            "--set",
            "data.train=@W/data/no-boundary.txt",
        ],
        Refuse,
    ));
    cases.push(case(
        "hangs",
        "generate --ignore-eos to the context",
        &[
            "generate",
            "--model",
            "@W/tiny",
            "--prompt",
            "Hi",
            "--max-new-tokens",
            "500",
            "--ignore-eos",
            "--greedy",
        ],
        Either,
    ));
    cases.push(case(
        "hangs",
        "stdin closed for rewrite",
        &["rewrite", "--model", "@W/tiny", "--max-new-tokens", "2"],
        Either,
    ));
    cases.push(case(
        "hangs",
        "review score empty verdicts",
        &[
            "review",
            "score",
            "--key",
            "@W/key.json",
            "--verdicts",
            "@W/data/empty.jsonl",
        ],
        Refuse,
    ));
    cases.push(case(
        "hangs",
        "embed with a missing encoder dir",
        &["embed", "--encoder", "@W/nope", "--input", "@W/texts.txt"],
        Refuse,
    ));
}

fn exit0(cases: &mut Vec<Case>) {
    use Want::Refuse;
    let mut add = |name: String, args: &[&str]| cases.push(case("exit-0", name, args, Refuse));
    for wgt in ["nan", "inf", "-inf", "1e300", "abc", ""] {
        add(
            format!("merge --adapter A:{wgt}"),
            &[
                "merge",
                "--model",
                "@W/tiny",
                "--adapter",
                &format!("@W/adapter:{wgt}"),
                "--out",
                "@S/m",
            ],
        );
        add(
            format!("generate --adapter A:{wgt}"),
            &[
                "generate",
                "--model",
                "@W/tiny",
                "--adapter",
                &format!("@W/adapter:{wgt}"),
                "--prompt",
                "Hi",
                "--max-new-tokens",
                "2",
            ],
        );
        add(
            format!("export-gguf --adapter A:{wgt}"),
            &[
                "export-gguf",
                "--model",
                "@W/tiny",
                "--adapter",
                &format!("@W/adapter:{wgt}"),
                "--out",
                "@S/x.gguf",
            ],
        );
        add(
            format!("rewrite --adapter A:{wgt}"),
            &[
                "rewrite",
                "--model",
                "@W/tiny",
                "--adapter",
                &format!("@W/adapter:{wgt}"),
                "--max-new-tokens",
                "2",
                "x",
            ],
        );
    }
    for (k, v) in [
        ("lora.dropout", "1.0"),
        ("lora.dropout", "1.5"),
        ("lora.alpha", "-1.0"),
        ("train.optimizer.beta1", "1.0"),
        ("train.optimizer.beta2", "1.0"),
        ("train.optimizer.lr", "-1e-3"),
        ("train.max_grad_norm", "-1.0"),
        ("train.warmup_steps", "1"),
        ("data.overlong", "\"sometimes\""),
        ("train.schedule", "\"wavy\""),
        ("lora.target_modules", "[]"),
        ("lora.target_modules", "\"(\""),
        ("lora.target_modules", "\"nothing_matches\""),
        ("model.dtype", "\"f8\""),
        ("model.device", "\"cuda:99\""),
        ("data.format", "\"messages\""),
    ] {
        add(
            format!("sft --set {k}={v}"),
            &[
                "sft",
                "--config",
                "@W/sft.toml",
                "--set",
                "out_dir=@S/out",
                "--set",
                &format!("{k}={v}"),
            ],
        );
    }
    for (k, v) in [
        ("grpo.num_generations", "1"),
        ("data.limit", "0"),
        ("grpo.eps_low", "1.0"),
        ("grpo.eps_high", "-0.1"),
        ("grpo.beta", "-1.0"),
        ("grpo.temperature", "-0.5"),
        ("grpo.top_p", "1.5"),
        ("grpo.warmup_steps", "1"),
        ("reward.reference", "[]"),
        ("reward.dropout.eps_min", "0.95"),
        ("reward.dropout.eps_max", "1.5"),
        ("reward.dropout.decay", "1.0"),
        ("reward.dropout.prior", "-1.0"),
        ("reward.length.ratio", "-1.0"),
        ("reward.length.cache", "-1.0"),
        ("reward.length.min_ratio", "2.0"),
        ("reward.rewrite.threshold", "1.0"),
        ("reward.meaning.threshold", "2.0"),
        ("reward.balance.clip", "0.0"),
        ("reward.balance.decay", "1.0"),
        ("reward.fluency.batch_size", "0"),
        ("reward.fluency.batch_size", "100000"),
        ("reward.weights.length", "nan"),
        ("reward.weights.punctuation", "inf"),
        ("reward.entities.weight", "nan"),
        ("reward.encoder", "\"nope\""),
        ("reward.aggregation", "\"max\""),
        ("reward.style_target", "\"some\""),
        ("reward.normalise", "\"batch\""),
        ("reward.dropout.mode", "\"never\""),
        ("grpo.std_scale", "\"global\""),
        ("grpo.old_logprobs", "\"later\""),
        ("reward.length.mode", "\"fuzzy\""),
        ("reward.length.max_tokens", "-5"),
    ] {
        add(
            format!("grpo --set {k}={v}"),
            &[
                "grpo",
                "--config",
                "@W/grpo-grpo.toml",
                "--set",
                "out_dir=@S/out",
                "--set",
                &format!("{k}={v}"),
            ],
        );
    }
    for (k, v) in [
        ("generation.temperature", "-1.0"),
        ("generation.top_p", "1.5"),
        ("not_rewritten_threshold", "1.5"),
        ("baseline", "\"nobody\""),
        ("judge.url", "\"file:///etc/passwd\""),
        ("judge.url", "\"ftp://x\""),
        ("name", "\"../escape\""),
        ("name", "\"\""),
        ("systems", "[]"),
        ("fluency.batch_size", "0"),
        ("fluency.batch_size", "100000"),
        ("data.field", "\"nope\""),
    ] {
        add(
            format!("evaluate --set {k}={v}"),
            &[
                "evaluate",
                "--config",
                "@W/eval.toml",
                "--set",
                "out_dir=@S/res",
                "--set",
                &format!("{k}={v}"),
            ],
        );
    }
    add(
        "generate --temperature 0 (not --greedy)".into(),
        &[
            "generate",
            "--model",
            "@W/tiny",
            "--prompt",
            "Hi",
            "--max-new-tokens",
            "2",
            "--temperature",
            "0",
        ],
    );
    add(
        "generate --device cuda:99".into(),
        &[
            "generate",
            "--model",
            "@W/tiny",
            "--prompt",
            "Hi",
            "--max-new-tokens",
            "2",
            "--device",
            "cuda:99",
        ],
    );
    add(
        "generate --dtype f8".into(),
        &[
            "generate",
            "--model",
            "@W/tiny",
            "--prompt",
            "Hi",
            "--max-new-tokens",
            "2",
            "--dtype",
            "f8",
        ],
    );
    add(
        "generate without a prompt".into(),
        &["generate", "--model", "@W/tiny", "--max-new-tokens", "2"],
    );
    add(
        "export-gguf --type q4".into(),
        &[
            "export-gguf",
            "--model",
            "@W/tiny",
            "--out",
            "@S/x.gguf",
            "--type",
            "q4",
        ],
    );
    add(
        "export-gguf without --model or --run".into(),
        &["export-gguf", "--out", "@S/x.gguf"],
    );
    add(
        "export-gguf --base-gguf with a newline".into(),
        &[
            "export-gguf",
            "--adapter-only",
            "@W/adapter",
            "--model",
            "@W/tiny",
            "--out",
            "@S/x.gguf",
            "--base-gguf",
            "./b.gguf\nSYSTEM evil",
        ],
    );
    add(
        "import-gguf --dtype f8".into(),
        &[
            "import-gguf",
            "@W/gguf/m.gguf",
            "--out",
            "@S/m",
            "--dtype",
            "f8",
        ],
    );
    add(
        "import-gguf --pretok other".into(),
        &[
            "import-gguf",
            "@W/gguf/m.gguf",
            "--out",
            "@S/m",
            "--pretok",
            "other",
        ],
    );
    add(
        "review make --systems a,a".into(),
        &[
            "review",
            "make",
            "--outputs",
            "@W/results/outputs.jsonl",
            "--systems",
            "a,a",
            "--out",
            "@S/sheet",
        ],
    );
    add(
        "review make --systems a,nobody".into(),
        &[
            "review",
            "make",
            "--outputs",
            "@W/results/outputs.jsonl",
            "--systems",
            "a,nobody",
            "--out",
            "@S/sheet",
        ],
    );
    add(
        "review make --systems a".into(),
        &[
            "review",
            "make",
            "--outputs",
            "@W/results/outputs.jsonl",
            "--systems",
            "a",
            "--out",
            "@S/sheet",
        ],
    );
    add(
        "evaluate --systems nobody".into(),
        &[
            "evaluate",
            "--config",
            "@W/eval.toml",
            "--set",
            "out_dir=@S/res",
            "--systems",
            "nobody",
        ],
    );
    add(
        "reward --set reward.weights.style=nan".into(),
        &[
            "reward",
            "--config",
            "@W/reward.toml",
            "--set",
            "reward.weights.style=nan",
            "--input",
            "x",
            "--output",
            "y",
        ],
    );
    add(
        "reward --set reward.dropout.gamma=inf".into(),
        &[
            "reward",
            "--config",
            "@W/reward.toml",
            "--set",
            "reward.dropout.gamma=inf",
            "--input",
            "x",
            "--output",
            "y",
        ],
    );
    add(
        "rewrite --run with --instruction".into(),
        &[
            "rewrite",
            "--run",
            "@W/run",
            "--instruction",
            "Do it",
            "--max-new-tokens",
            "2",
            "x",
        ],
    );
    add(
        "sft --resume with no checkpoint".into(),
        &[
            "sft",
            "--config",
            "@W/sft.toml",
            "--set",
            "out_dir=@S/out",
            "--resume",
        ],
    );
    add(
        "grpo --resume with no checkpoint".into(),
        &[
            "grpo",
            "--config",
            "@W/grpo-grpo.toml",
            "--set",
            "out_dir=@S/out",
            "--resume",
        ],
    );
    add(
        "sft --set with a newline".into(),
        &[
            "sft",
            "--config",
            "@W/sft.toml",
            "--set",
            "out_dir=@S/out\ntrain.max_steps=2",
        ],
    );
    add(
        "sft --set unknown key".into(),
        &[
            "sft",
            "--config",
            "@W/sft.toml",
            "--set",
            "train.max_stepz=2",
        ],
    );
    add(
        "sft --set without =".into(),
        &["sft", "--config", "@W/sft.toml", "--set", "train.max_steps"],
    );
}

fn corrupt(cases: &mut Vec<Case>) {
    use Want::{Either, Refuse};
    let models = [
        "cfg-empty",
        "cfg-trunc",
        "cfg-array",
        "cfg-binary",
        "cfg-missing",
        "cfg-dir",
        "st-empty",
        "st-trunc",
        "st-header-only",
        "st-huge-header",
        "st-binary",
        "st-missing",
        "tok-empty",
        "tok-trunc",
        "tok-binary",
        "tok-missing",
        "tokcfg-binary",
    ];
    for m in models {
        let p = format!("@W/bad/{m}");
        cases.push(case(
            "corrupt",
            format!("generate --model {m}"),
            &[
                "generate",
                "--model",
                &p,
                "--prompt",
                "Hi",
                "--max-new-tokens",
                "2",
            ],
            Refuse,
        ));
        cases.push(case(
            "corrupt",
            format!("perplexity --model {m}"),
            &["perplexity", "--model", &p, "--input", "@W/texts.txt"],
            Refuse,
        ));
        cases.push(case(
            "corrupt",
            format!("merge --model {m}"),
            &[
                "merge",
                "--model",
                &p,
                "--adapter",
                "@W/adapter",
                "--out",
                "@S/m",
            ],
            Refuse,
        ));
        cases.push(case(
            "corrupt",
            format!("export-gguf --model {m}"),
            &["export-gguf", "--model", &p, "--out", "@S/x.gguf"],
            Refuse,
        ));
        if m.starts_with("tok") || m.starts_with("cfg") {
            cases.push(case(
                "corrupt",
                format!("tokenize --model {m}"),
                &["tokenize", "--model", &p, "--input", "@W/prompts.jsonl"],
                if m.starts_with("tok-") {
                    Refuse
                } else {
                    Either
                },
            ));
        }
        if m.starts_with("cfg") || m.starts_with("st") {
            cases.push(case(
                "corrupt",
                format!("sft model {m}"),
                &[
                    "sft",
                    "--config",
                    "@W/sft.toml",
                    "--set",
                    "out_dir=@S/out",
                    "--set",
                    &format!("model.path={p}"),
                ],
                Refuse,
            ));
        }
    }
    for a in [
        "ad-cfg-empty",
        "ad-cfg-binary",
        "ad-st-trunc",
        "ad-st-empty",
        "ad-st-missing",
    ] {
        let p = format!("@W/bad/{a}");
        cases.push(case(
            "corrupt",
            format!("generate --adapter {a}"),
            &[
                "generate",
                "--model",
                "@W/tiny",
                "--adapter",
                &p,
                "--prompt",
                "Hi",
                "--max-new-tokens",
                "2",
            ],
            Refuse,
        ));
        cases.push(case(
            "corrupt",
            format!("merge --adapter {a}"),
            &[
                "merge",
                "--model",
                "@W/tiny",
                "--adapter",
                &p,
                "--out",
                "@S/m",
            ],
            Refuse,
        ));
        cases.push(case(
            "corrupt",
            format!("export-gguf --adapter-only {a}"),
            &[
                "export-gguf",
                "--adapter-only",
                &p,
                "--model",
                "@W/tiny",
                "--out",
                "@S/x.gguf",
            ],
            Refuse,
        ));
    }
    for g in [
        "empty",
        "magic-only",
        "head",
        "half",
        "last-byte-gone",
        "binary",
        "wrong-type",
    ] {
        cases.push(case(
            "corrupt",
            format!("import-gguf {g}"),
            &[
                "import-gguf",
                &format!("@W/badgguf/{g}.gguf"),
                "--out",
                "@S/m",
            ],
            Refuse,
        ));
    }
    cases.push(case(
        "corrupt",
        "import-gguf a missing file",
        &["import-gguf", "@W/badgguf/none.gguf", "--out", "@S/m"],
        Refuse,
    ));
    cases.push(case(
        "corrupt",
        "import-gguf a folder",
        &["import-gguf", "@W/badgguf", "--out", "@S/m"],
        Refuse,
    ));
    for r in ["run-json-empty", "run-json-binary", "run-json-missing"] {
        let p = format!("@W/bad/{r}");
        cases.push(case(
            "corrupt",
            format!("rewrite --run {r}"),
            &["rewrite", "--run", &p, "--max-new-tokens", "2", "x"],
            Refuse,
        ));
        cases.push(case(
            "corrupt",
            format!("export-gguf --run {r}"),
            &["export-gguf", "--run", &p, "--out", "@S/x.gguf"],
            Refuse,
        ));
        cases.push(case(
            "corrupt",
            format!("sft --resume into {r}"),
            &[
                "sft",
                "--config",
                "@W/sft.toml",
                "--resume",
                "--set",
                &format!("out_dir={p}"),
            ],
            Refuse,
        ));
    }
    let data = [
        ("empty.jsonl", Refuse),
        ("blank.jsonl", Refuse),
        ("binary.jsonl", Refuse),
        ("invalid-utf8.jsonl", Refuse),
        ("bad-json.jsonl", Refuse),
        ("no-field.jsonl", Refuse),
        ("numbers.jsonl", Refuse),
        ("a-dir.jsonl", Refuse),
        ("missing.jsonl", Refuse),
    ];
    for (f, want) in data {
        let p = format!("@W/data/{f}");
        cases.push(case(
            "corrupt",
            format!("sft data.train = {f}"),
            &[
                "sft",
                "--config",
                "@W/sft.toml",
                "--set",
                "out_dir=@S/out",
                "--set",
                &format!("data.train={p}"),
            ],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("sft data.eval = {f}"),
            &[
                "sft",
                "--config",
                "@W/sft.toml",
                "--set",
                "out_dir=@S/out",
                "--set",
                &format!("data.eval={p}"),
            ],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("grpo data.train = {f}"),
            &[
                "grpo",
                "--config",
                "@W/grpo-grpo.toml",
                "--set",
                "out_dir=@S/out",
                "--set",
                &format!("data.train={p}"),
            ],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("evaluate data.heldout = {f}"),
            &[
                "evaluate",
                "--config",
                "@W/eval.toml",
                "--set",
                "out_dir=@S/res",
                "--set",
                &format!("data.heldout={p}"),
            ],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("generate --input {f}"),
            &[
                "generate",
                "--model",
                "@W/tiny",
                "--input",
                &p,
                "--max-new-tokens",
                "2",
            ],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("perplexity --input {f}"),
            &["perplexity", "--model", "@W/tiny", "--input", &p],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("logits --input {f}"),
            &[
                "logits",
                "--model",
                "@W/tiny",
                "--input",
                &p,
                "--out",
                "@S/l.safetensors",
            ],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("rewrite --input {f}"),
            &[
                "rewrite",
                "--model",
                "@W/tiny",
                "--input",
                &p,
                "--max-new-tokens",
                "2",
                "--out",
                "@S/o.jsonl",
            ],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("tokenize --input {f}"),
            &["tokenize", "--model", "@W/tiny", "--input", &p],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("embed --input {f}"),
            &["embed", "--encoder", "stylometric", "--input", &p],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("plot {f}"),
            &["plot", &p, "--out", "@S/p.svg"],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("review score --verdicts {f}"),
            &["review", "score", "--key", "@W/key.json", "--verdicts", &p],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("review score --key {f}"),
            &[
                "review",
                "score",
                "--key",
                &p,
                "--verdicts",
                "@W/verdicts.jsonl",
            ],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("review make --outputs {f}"),
            &[
                "review",
                "make",
                "--outputs",
                &p,
                "--systems",
                "a,b",
                "--out",
                "@S/sheet",
            ],
            want,
        ));
    }
    for f in ["sft-no-output.jsonl", "sft-empty-strings.jsonl"] {
        cases.push(case(
            "corrupt",
            format!("sft data.train = {f}"),
            &[
                "sft",
                "--config",
                "@W/sft.toml",
                "--set",
                "out_dir=@S/out",
                "--set",
                &format!("data.train=@W/data/{f}"),
            ],
            Refuse,
        ));
    }
    for (f, want) in [
        ("empty.txt", Refuse),
        ("binary.txt", Refuse),
        ("invalid-utf8.txt", Refuse),
        ("one-char.txt", Refuse),
        ("missing.txt", Refuse),
    ] {
        let p = format!("@W/data/{f}");
        let refset = format!("reward.reference=[\"{p}\"]");
        cases.push(case(
            "corrupt",
            format!("grpo reference {f}"),
            &[
                "grpo",
                "--config",
                "@W/grpo-grpo.toml",
                "--set",
                "out_dir=@S/out",
                "--set",
                &refset,
            ],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("evaluate reference {f}"),
            &[
                "evaluate",
                "--config",
                "@W/eval.toml",
                "--set",
                "out_dir=@S/res",
                "--set",
                &refset,
            ],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("reward reference {f}"),
            &[
                "reward",
                "--config",
                "@W/reward.toml",
                "--set",
                &refset,
                "--input",
                "x",
                "--output",
                "y",
            ],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("review make --reference {f}"),
            &[
                "review",
                "make",
                "--outputs",
                "@W/results/outputs.jsonl",
                "--systems",
                "a,b",
                "--out",
                "@S/sheet",
                "--reference",
                &p,
            ],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("train-style --reference {f}"),
            &[
                "train-style",
                "--reference",
                &p,
                "--warmup",
                "@W/tiny",
                "--out",
                "@S/ts",
            ],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("rewrite --explain --reference {f}"),
            &[
                "rewrite",
                "--run",
                "@W/run",
                "--explain",
                "--reference",
                &p,
                "--max-new-tokens",
                "2",
                "--out",
                "@S/o.jsonl",
                "x",
            ],
            want,
        ));
        cases.push(case(
            "corrupt",
            format!("analyze --data {f}"),
            &[
                "analyze",
                "--encoder",
                "stylometric",
                "--data",
                &p,
                "--out",
                "@S/an",
            ],
            want,
        ));
    }
    for (name, cfg) in [
        ("missing config", "@W/none.toml"),
        ("binary config", "@W/data/binary.txt"),
        ("invalid-utf8 config", "@W/data/invalid-utf8.txt"),
        ("empty config", "@W/data/empty.txt"),
        ("a folder as config", "@W/data"),
    ] {
        for cmd in ["sft", "grpo", "evaluate"] {
            cases.push(case(
                "corrupt",
                format!("{cmd} {name}"),
                &[cmd, "--config", cfg],
                Refuse,
            ));
        }
        cases.push(case(
            "corrupt",
            format!("reward {name}"),
            &["reward", "--config", cfg, "--input", "x", "--output", "y"],
            Refuse,
        ));
    }
}

/// Cases whose first guess was "refuse" but where the binary's behaviour is the documented
/// one: each may run (exit 0) as long as it neither panics, hangs nor replaces a file.
fn by_design(cases: &mut Vec<Case>) {
    // Writing new files beside others in a folder replaces nothing.
    cases.retain(|c| c.name != "review make --out = a folder with files --force");
    for c in cases.iter_mut() {
        let n = c.name.as_str();
        let either = [
            // Sheet files beside the evaluation's (none of them named alike).
            "review make --out = a folder with files",
            // The merged model's files beside the adapter's two files; --force asked for it.
            "merge --out = --adapter --force",
            // The model's files beside the GGUF; --force asked for it.
            "import-gguf --out = the folder of FILE --force",
            // merge copies tokenizer files as they are; it reads neither.
            "merge --model tok-empty",
            "merge --model tok-trunc",
            "merge --model tok-binary",
            "merge --model tok-missing",
            "merge --model tokcfg-binary",
            // Nothing in, nothing out.
            "tokenize --input empty.jsonl",
            "tokenize --input blank.jsonl",
            "embed --input empty.jsonl",
            "embed --input blank.jsonl",
            // embed reads lines that are not JSON strings as plain text (documented).
            "embed --input bad-json.jsonl",
            "embed --input no-field.jsonl",
            "embed --input numbers.jsonl",
            // "." is one sentence.
            "reward reference one-char.txt",
            "analyze --data one-char.txt",
            // Special-token ids the model never meets with these prompts.
            "config.json bos_token_id = 99999999 (--random-init)",
            "config.json eos_token_id = -7 (--random-init)",
            // train.max_steps is set in the probe's config, so epochs is not used.
            "sft --set train.epochs=1000000000000",
            // Prompt files: lines that are not JSON strings or id arrays are plain text.
            "generate --input bad-json.jsonl",
            "perplexity --input bad-json.jsonl",
            "logits --input bad-json.jsonl",
            "generate --input no-field.jsonl",
            "perplexity --input no-field.jsonl",
            "logits --input no-field.jsonl",
            "generate --input numbers.jsonl",
            "perplexity --input numbers.jsonl",
            "logits --input numbers.jsonl",
            "grpo reference one-char.txt",
            "evaluate reference one-char.txt",
            "review make --reference one-char.txt",
            "rewrite --explain --reference one-char.txt",
            // A run adds its files (metrics.jsonl, adapter/, run.json…) beside others and
            // replaces none: a folder with a finished run is refused (the cases above).
            "sft out_dir = a folder with files",
            "sft out_dir = the model dir",
            "grpo out_dir = a folder with files",
            "grpo out_dir = the model dir",
            "evaluate out_dir = the model dir",
            // --resume into a fresh folder starts fresh, with a note.
            "sft --resume with no checkpoint",
            "grpo --resume with no checkpoint",
        ];
        if either.contains(&n) {
            c.want = Want::Either;
        }
    }
}

#[test]
fn reprobe_of_every_class_through_the_binary() {
    if !sft_support::smol_present() {
        return;
    }
    let t0 = Instant::now();
    let d = tempfile::tempdir().unwrap();
    let w = d.path().join("w");
    setup(&w);
    cfgsize_setup(&w);
    copy_tree(&w, &w.with_extension("pristine"));
    let setup_s = t0.elapsed().as_secs_f64();
    let mut cases = vec![];
    sizes(&mut cases);
    hangs(&mut cases);
    exit0(&mut cases);
    corrupt(&mut cases);
    // Last and one at a time: a file one of them changes is then its own doing.
    data_loss(&mut cases);
    by_design(&mut cases);
    if let Ok(f) = std::env::var("PROBE_FILTER") {
        cases.retain(|c| c.name.contains(&f));
    }
    let jobs: usize = std::env::var("PROBE_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let next = AtomicUsize::new(0);
    let lock = Mutex::new(());
    let results: Mutex<Vec<(usize, Result1)>> = Mutex::new(vec![]);
    let serial = Mutex::new(());
    std::thread::scope(|sc| {
        for _ in 0..jobs {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= cases.len() {
                    break;
                }
                let _one = (cases[i].class == "data-loss").then(|| serial.lock().unwrap());
                let r = run_case(&w, i, &cases[i], &lock);
                if std::env::var("PROBE_VERBOSE").is_ok() {
                    eprintln!(
                        "[{i}] {:?} {:.1}s {} {}",
                        r.outcome, r.secs, r.name, r.detail
                    );
                }
                results.lock().unwrap().push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);
    // The table: class × cases × outcome.
    let outcomes = [
        Outcome::Refused,
        Outcome::Ran,
        Outcome::LongRun,
        Outcome::Panic,
        Outcome::Hang,
        Outcome::DataLoss,
        Outcome::WrongExit0,
        Outcome::Unclear,
    ];
    let mut table: BTreeMap<&str, BTreeMap<Outcome, usize>> = BTreeMap::new();
    for (_, r) in &results {
        *table
            .entry(r.class)
            .or_default()
            .entry(r.outcome)
            .or_default() += 1;
    }
    let mut out = String::from("| class | cases |");
    for o in outcomes {
        out += &format!(" {} |", o.label());
    }
    out += "\n|---|---|";
    out += &"---|".repeat(outcomes.len());
    out += "\n";
    let mut total: BTreeMap<Outcome, usize> = BTreeMap::new();
    for class in ["sizes", "data-loss", "hangs", "exit-0", "corrupt"] {
        let Some(row) = table.get(class) else {
            continue;
        };
        let n: usize = row.values().sum();
        out += &format!("| {class} | {n} |");
        for o in outcomes {
            let k = row.get(&o).copied().unwrap_or(0);
            *total.entry(o).or_default() += k;
            out += &format!(" {k} |");
        }
        out += "\n";
    }
    out += &format!("| all | {} |", results.len());
    for o in outcomes {
        out += &format!(" {} |", total.get(&o).copied().unwrap_or(0));
    }
    let wall = t0.elapsed().as_secs_f64();
    let slowest = results
        .iter()
        .map(|(_, r)| r)
        .max_by(|a, b| a.secs.total_cmp(&b.secs))
        .map(|r| format!("{} ({:.1} s)", r.name, r.secs))
        .unwrap_or_default();
    println!(
        "\nre-probe: {} cases, {wall:.0} s (set-up {setup_s:.0} s, {jobs} at once; slowest {slowest})\n{out}\n",
        results.len()
    );
    let failed: Vec<String> = results
        .iter()
        .filter(|(_, r)| !r.outcome.ok())
        .map(|(i, r)| {
            format!("[{i}] {} — {}: {}", r.class, r.name, r.outcome.label())
                + &format!(" — {}", r.detail)
        })
        .collect();
    for f in &failed {
        println!("FAIL {f}");
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed (listed above)",
        failed.len(),
        results.len()
    );
    assert!(results.len() >= 400 || std::env::var("PROBE_FILTER").is_ok());
}
