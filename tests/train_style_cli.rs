//! `stylerl train-style` through the binary on a tiny random model: one command trains a GRPO
//! style against a user's reference from a given warm-up and evaluates it, printing the table,
//! three rewrites and the rewrite command; bad input is one error line with nothing written.
mod common;
use std::path::Path;
use std::process::{Command, Output};

fn train_style(args: &[&str]) -> Output {
    train_style_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

/// `stylerl train-style ARGS` run from `dir` (relative paths resolve there).
fn train_style_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stylerl"))
        .arg("train-style")
        .args(args)
        .current_dir(dir)
        .env("STYLERL_PROGRESS", "0")
        .env("STYLERL_THREADS", "1")
        .output()
        .unwrap()
}

fn one_error_line(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "expected a failure: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one error line expected: {err}");
    lines[0].to_string()
}

#[test]
fn one_command_trains_and_evaluates_a_users_style() {
    if !common::smol_dir().join("tokenizer.json").exists() {
        eprintln!("skipped: run scripts/setup.sh");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let p = |x: &str| d.path().join(x).display().to_string();
    common::tiny_llama(&d.path().join("tiny"), 3);
    let mine =
        "I write short lines. Then I stop. The sea was grey today! Was it cold? Of course it was. \
                My dog ran ahead. I followed, slowly. We came home at dusk. Tea, then bed.";
    std::fs::write(p("mine.txt"), mine).unwrap();
    let sets = [
        "--set",
        "grpo.steps=1",
        "--set",
        "grpo.prompts_per_step=1",
        "--set",
        "grpo.num_generations=2",
        "--set",
        "grpo.max_completion_length=6",
        "--set",
        "reward.length.max_completion_length=6",
    ];
    let (out, mine_p, tiny) = (p("me"), p("mine.txt"), p("tiny"));
    let mut args = vec![
        "--reference",
        &mine_p[..],
        "--warmup",
        &tiny[..],
        "--out",
        &out[..],
        "--eval-limit",
        "3",
    ];
    args.extend(sets);
    let o = train_style(&args);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(Path::new(&out)
        .join("grpo/adapter/adapter_model.safetensors")
        .exists());
    assert!(Path::new(&out).join("eval/table.md").exists());
    assert!(
        stdout.contains("| warmup") && stdout.contains("| style"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Three rewrites") && stdout.contains("your style:"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("stylerl rewrite --run {out}/grpo")),
        "{stdout}"
    );
    // The same --out again without --resume: refused, nothing changed.
    let e = one_error_line(&train_style(&args));
    assert!(e.contains("--resume"), "{e}");
    // --resume with everything done: evaluates again, trains nothing.
    let mut again = args.clone();
    again.push("--resume");
    let o = train_style(&again);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("trained already"));

    // Bad input: one line naming the problem, nothing written.
    std::fs::write(p("short.txt"), "Just one line. And another.").unwrap();
    std::fs::write(p("empty.txt"), "  \n").unwrap();
    for (refp, inputs, want) in [
        (p("nope.txt"), None, "cannot read"),
        (p("empty.txt"), None, "is empty"),
        (p("short.txt"), None, "at least 8"),
        (p("mine.txt"), Some(p("missing.jsonl")), "--inputs"),
    ] {
        let fresh = p("fresh");
        let mut a = vec![
            "--reference",
            &refp[..],
            "--warmup",
            &tiny[..],
            "--out",
            &fresh[..],
        ];
        let inp;
        if let Some(i) = inputs {
            inp = i;
            a.extend(["--inputs", &inp[..]]);
        }
        let e = one_error_line(&train_style(&a));
        assert!(e.contains(want), "{want}: {e}");
        assert!(!Path::new(&fresh).exists(), "{want}: --out was created");
    }
}

/// A working folder like the repository root, its parts linked in: `names` from the checkout.
fn root_like(dir: &Path, names: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for n in names {
        std::os::unix::fs::symlink(root.join(n), dir.join(n)).unwrap();
    }
}

#[test]
fn without_a_warmup_it_merges_the_shipped_one() {
    if !common::smol_dir().join("model.safetensors").exists() {
        eprintln!("skipped: run scripts/setup.sh");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    // No runs/demo/sft/merged here, so train-style must build the warm-up itself.
    root_like(d.path(), &["configs", "datasets", "models", "warmup"]);
    let o = train_style_in(
        d.path(),
        &[
            "--reference",
            "datasets/reference/chat_messages.txt",
            "--out",
            "me",
            "--eval-limit",
            "1",
            "--set",
            "grpo.steps=1",
            "--set",
            "grpo.prompts_per_step=1",
            "--set",
            "grpo.num_generations=2",
            "--set",
            "grpo.ppo_epochs=1",
            "--set",
            "grpo.max_completion_length=6",
            "--set",
            "reward.length.max_completion_length=6",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("merging the shipped warm-up (warmup/1-corpus + warmup/2-rft)"),
        "{err}"
    );
    let merged = d.path().join("me/sft/merged");
    assert!(merged.join("config.json").is_file());
    // The GRPO run and the evaluation start from the merged warm-up.
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("me/grpo/run.json")).unwrap())
            .unwrap();
    assert_eq!(
        Path::new(run["model"].as_str().unwrap())
            .canonicalize()
            .unwrap(),
        merged.canonicalize().unwrap()
    );
    assert!(d.path().join("me/eval/table.md").is_file());

    // Without the shipped adapters: one error line naming the missing file, nothing written.
    let bare = tempfile::tempdir().unwrap();
    root_like(bare.path(), &["configs", "datasets", "models"]);
    let o = train_style_in(
        bare.path(),
        &[
            "--reference",
            "datasets/reference/chat_messages.txt",
            "--out",
            "me",
        ],
    );
    let e = one_error_line(&o);
    assert!(
        e.contains("warmup/1-corpus/adapter_model.safetensors is missing"),
        "{e}"
    );
    assert!(!bare.path().join("me").exists(), "--out was created");
}
