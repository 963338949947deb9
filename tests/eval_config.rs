//! `stylerl evaluate` config errors: unknown keys, missing system files (one line naming the
//! path and the command that creates it), bad values.
use std::process::Command;
use stylerl::eval::config::{check_systems_exist, EvalConfig};

fn base(extra_system: &str) -> String {
    format!(
        r#"
name = "t"
[data]
heldout = "datasets/rewrite/heldout.jsonl"
[reward]
reference = ["datasets/reference/whimsical_tale.txt"]
[[systems]]
name = "a"
kind = "model"
[systems.model]
path = "models/smollm2-135m-instruct"
{extra_system}
"#
    )
}

fn parse(text: &str) -> anyhow::Result<EvalConfig> {
    let c: EvalConfig = stylerl::config::parse(text, &[])?;
    c.validate()?;
    Ok(c)
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    let e = parse(&base("").replace("[data]", "[data]\nlimt = 3"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("limt"), "{e}");
    let e = parse(&base("exampels = 4")).unwrap_err().to_string();
    assert!(e.contains("exampels"), "{e}");
    let e = parse(&base("").replace("[reward]", "[reward]\nencodr = \"x\""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("encodr"), "{e}");
}

#[test]
fn defaults_and_bad_values() {
    let c = parse(&base("")).unwrap();
    assert_eq!(c.not_rewritten_threshold, 0.95);
    assert_eq!(c.out_dir(), std::path::PathBuf::from("results/t"));
    assert!(c.judge.url.is_none());
    let e = parse(&format!("not_rewritten_threshold = 1.5\n{}", base("")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not_rewritten_threshold"), "{e}");
    let dup = base("").replace("[data]", "") + "[data]\nheldout = \"x\"\n";
    assert!(parse(&dup).is_err());
    let two = format!(
        "{}\n[[systems]]\nname = \"a\"\nkind = \"model\"\n[systems.model]\npath = \"x\"\n",
        base("")
    );
    assert!(parse(&two).unwrap_err().to_string().contains("'a'"));
    let judge = base("").replace(
        "[reward]",
        "[judge]\nurl = \"http://127.0.0.1:1/v1\"\nbaseline = \"nope\"\n[reward]",
    );
    assert!(parse(&judge)
        .unwrap_err()
        .to_string()
        .contains("judge.baseline"));
    assert_eq!(c.generation.jobs, 1);
    assert_eq!(c.systems[0].best_of, 1, "one sample as drawn unless asked");
    let best = |n: &str| {
        parse(&base("").replace(
            "kind = \"model\"",
            &format!("kind = \"model\"\nbest_of = {n}"),
        ))
    };
    assert_eq!(best("8").unwrap().systems[0].best_of, 8);
    for bad in ["0", "33"] {
        let e = best(bad).unwrap_err().to_string();
        assert!(
            e.contains("system 'a': best_of = ") && e.contains("1 to 32"),
            "{e}"
        );
    }
    for bad in ["0", "65"] {
        let e = parse(&format!(
            "{}
[generation]
jobs = {bad}
",
            base("")
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("generation.jobs = ") && e.contains("between 1 and 64"),
            "{e}"
        );
    }
}

#[test]
fn missing_system_files_name_the_path_and_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let merged = dir.path().join("merged");
    std::fs::create_dir_all(&merged).unwrap();
    std::fs::write(merged.join("config.json"), "{}").unwrap();
    let adapter = dir.path().join("grpo/adapter");
    let text = base("").replace("models/smollm2-135m-instruct", merged.to_str().unwrap())
        + &format!(
            "[[systems]]\nname = \"grpo\"\nkind = \"model\"\ncreated_by = \"stylerl grpo --config configs/demo/grpo.toml\"\n[systems.model]\npath = \"{}\"\nadapters = [\"{}:0.5\"]\n",
            merged.display(),
            adapter.display()
        );
    let c = parse(&text).unwrap();
    let e = check_systems_exist(&c.systems).unwrap_err().to_string();
    assert!(e.contains(&adapter.display().to_string()), "{e}");
    assert!(!e.contains(":0.5"), "{e}");
    assert!(
        e.contains("`stylerl grpo --config configs/demo/grpo.toml`"),
        "{e}"
    );
    assert!(!e.contains("system 'a'"), "system a exists: {e}");

    // Through the binary: exit 1, one error line, nothing loaded or written.
    let cfg = dir.path().join("eval.toml");
    let text = text.replace(
        "name = \"t\"",
        &format!(
            "name = \"t\"\nout_dir = \"{}\"",
            dir.path().join("out").display()
        ),
    );
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stylerl"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["evaluate", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("error:") && lines[0].contains("grpo/adapter"),
        "{err}"
    );
    assert!(!dir.path().join("out").exists());

    // --systems with an unknown name is an error listing the real ones.
    let out = Command::new(env!("CARGO_BIN_EXE_stylerl"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "evaluate",
            "--config",
            cfg.to_str().unwrap(),
            "--systems",
            "a,zzz",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("zzz") && err.contains("a, grpo"), "{err}");
}

#[test]
fn bootstrap_baseline_meaning_and_judge_encoder_settings() {
    use stylerl::eval::config::DEFAULT_MEANING_ENCODER;
    let c = parse(&base("")).unwrap();
    assert_eq!((c.bootstrap.resamples, c.bootstrap.seed), (2000, 0));
    assert!(c.baseline.is_none() && c.judge_encoders.is_empty());
    // Unset: the MiniLM directory when it is there (tests run from the crate root).
    let here = std::path::Path::new(DEFAULT_MEANING_ENCODER).is_dir();
    assert_eq!(
        c.meaning.resolved(),
        here.then(|| DEFAULT_MEANING_ENCODER.to_string())
    );
    let none = parse(&(base("") + "[meaning]\nencoder = \"none\"\n")).unwrap();
    assert_eq!(none.meaning.resolved(), None);
    let sty = parse(&(base("") + "[meaning]\nencoder = \"stylometric\"\n")).unwrap();
    assert_eq!(sty.meaning.resolved().as_deref(), Some("stylometric"));

    let e = parse(&(base("") + "[bootstrap]\nresamples = 50\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bootstrap.resamples = 50") && e.contains("100"),
        "{e}"
    );
    let e = parse(&(base("") + "[bootstrap]\nresample = 5000\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("resample"), "{e}");
    let e = parse(&format!("baseline = \"nope\"\n{}", base("")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("baseline = 'nope'") && e.contains("(a)"), "{e}");
    assert!(parse(&format!("baseline = \"a\"\n{}", base(""))).is_ok());
    // Leaving the baseline out with --systems drops the comparison instead of failing.
    let two = format!(
        "baseline = \"a\"\n{}\n[[systems]]\nname = \"b\"\nkind = \"model\"\n[systems.model]\npath = \"x\"\n",
        base("")
    );
    let mut c = parse(&two).unwrap();
    c.select_systems(&["b".to_string()]).unwrap();
    assert!(c.baseline.is_none() && c.validate().is_ok());
    let mut c = parse(&two).unwrap();
    c.select_systems(&["a".to_string(), "b".to_string()])
        .unwrap();
    assert_eq!(c.baseline.as_deref(), Some("a"));
    let e = parse(&format!("judge_encoders = [\"\"]\n{}", base("")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("judge_encoders"), "{e}");
}

#[test]
fn a_judge_encoder_that_does_not_load_is_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let merged = dir.path().join("merged");
    std::fs::create_dir_all(&merged).unwrap();
    std::fs::write(merged.join("config.json"), "{}").unwrap();
    let text = format!(
        "judge_encoders = [\"{}\"]\n{}",
        dir.path().join("no-such-encoder").display(),
        base("").replace("models/smollm2-135m-instruct", merged.to_str().unwrap())
    )
    .replace(
        "name = \"t\"",
        &format!(
            "name = \"t\"\nout_dir = \"{}\"",
            dir.path().join("out").display()
        ),
    ) + "[meaning]\nencoder = \"none\"\n";
    let cfg = dir.path().join("eval.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stylerl"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["evaluate", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("judge_encoders entry") && lines[0].contains("no-such-encoder"),
        "{err}"
    );
}
