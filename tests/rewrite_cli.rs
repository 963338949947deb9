//! `stylerl rewrite` through the binary on the tiny model (issue 13): it renders exactly the
//! training prompt recorded in run.json (the same token ids `generate` samples from that
//! prompt with the same seed), a run directory alone suffices, and every broken run gives
//! one error line and a non-zero exit.
mod common;
mod sft_support;
use serde_json::Value;
use sft_support::*;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

/// Not the default, so a prompt built without run.json's instruction would differ.
const INSTRUCTION: &str = "Say this again, plainly.";
const INPUTS: [&str; 2] = [
    "The old lighthouse keeper counted ships every evening.",
    "Mara left Lisbon on 3 May with two suitcases.",
];

/// The tiny workspace plus a finished 1-step SFT run at `d/sft` trained with INSTRUCTION,
/// started in `d` with relative paths (so run.json must make them absolute).
fn sft_run() -> tempfile::TempDir {
    let d = workspace();
    let cfg = config(d.path(), "sft", "max_steps = 1");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(&format!("{}/", d.path().display()), "")
        .replace(
            "instruction = \"\"",
            &format!("instruction = \"{INSTRUCTION}\""),
        );
    std::fs::write(&cfg, text).unwrap();
    let o = bin()
        .current_dir(d.path())
        .args(["sft", "--config", "sft.toml"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    d
}

fn rewrite(args: &[&str]) -> Output {
    bin().arg("rewrite").args(args).output().unwrap()
}

fn ok_stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `generate --json` over `prompts` (JSON strings) with the chat template; its lines.
fn generate_json(model: &Path, adapter: &Path, prompts: &[String], extra: &[&str]) -> Vec<Value> {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("p.jsonl");
    let lines: Vec<String> = prompts
        .iter()
        .map(|p| Value::from(p.as_str()).to_string())
        .collect();
    std::fs::write(&f, lines.join("\n") + "\n").unwrap();
    let o = bin()
        .args([
            "generate",
            "--chat",
            "--json",
            "--model",
            s(model),
            "--adapter",
            s(adapter),
        ])
        .args(["--input", s(&f)])
        .args(extra)
        .output()
        .unwrap();
    json_lines(&ok_stdout(&o))
}

#[test]
fn rewrite_samples_the_token_ids_generate_gives_the_training_prompt() {
    if !smol_present() {
        return;
    }
    let d = sft_run();
    let (run, tiny) = (d.path().join("sft"), d.path().join("tiny"));
    let sampling = ["--seed", "5", "--max-new-tokens", "12"];
    let mut args = vec!["--run", s(&run), "--json", "--n", "2"];
    args.extend(sampling);
    args.extend(INPUTS);
    let got = json_lines(&ok_stdout(&rewrite(&args)));
    assert_eq!(got.len(), 4, "2 inputs × 2 samples");

    // The training prompt: instruction, blank line, input — rendered by the chat template.
    let trained: Vec<String> = INPUTS
        .iter()
        .map(|i| format!("{INSTRUCTION}\n\n{i}"))
        .collect();
    let mut gen_args = vec!["--num-samples", "2"];
    gen_args.extend(sampling);
    let want = generate_json(&tiny, &run.join("adapter"), &trained, &gen_args);
    assert_eq!(want.len(), 4);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g["index"], w["prompt_index"]);
        assert_eq!(g["sample"], w["sample_index"]);
        assert_eq!(
            g["input"].as_str().unwrap(),
            INPUTS[g["index"].as_u64().unwrap() as usize]
        );
        assert_eq!(
            g["tokens"], w["tokens"],
            "rewrite vs generate on the training prompt"
        );
        assert_eq!(
            g["output"].as_str().unwrap(),
            w["text"].as_str().unwrap().trim()
        );
        assert_eq!(g["run"], "sft");
    }
    // The comparison can tell prompts apart: the bare input samples other tokens.
    let bare: Vec<String> = INPUTS.iter().map(|i| i.to_string()).collect();
    let other = generate_json(&tiny, &run.join("adapter"), &bare, &gen_args);
    assert!(
        got.iter()
            .zip(&other)
            .any(|(g, o)| g["tokens"] != o["tokens"]),
        "the instruction made no difference: the test could not see a wrong prompt"
    );

    // Greedy, plain text: one input gives the rewrite alone, equal to the JSON output.
    let one = ok_stdout(&rewrite(&[
        "--run",
        s(&run),
        "--greedy",
        "--max-new-tokens",
        "8",
        INPUTS[0],
    ]));
    let one_json = rewrite(&[
        "--run",
        s(&run),
        "--greedy",
        "--max-new-tokens",
        "8",
        "--json",
        INPUTS[0],
    ]);
    let j = json_lines(&ok_stdout(&one_json));
    assert_eq!(one.trim_end(), j[0]["output"].as_str().unwrap());
}

#[test]
fn a_run_directory_alone_suffices_from_anywhere_and_for_every_input_kind() {
    if !smol_present() {
        return;
    }
    let d = sft_run();
    let run = d.path().join("sft");
    let info: Value = read_json(&run.join("run.json"));
    assert_eq!(info["kind"], "sft");
    assert_eq!(info["instruction"], INSTRUCTION);
    assert_eq!(info["model"].as_str().unwrap(), s(&d.path().join("tiny")));
    assert_eq!(info["command"], "stylerl sft --config sft.toml");
    assert_eq!(info["cwd"].as_str().unwrap(), s(d.path()));
    assert_eq!(info["config"]["data.instruction"], INSTRUCTION);

    // From another working directory, with only --run: lines on stdin, JSON lines to --out.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = elsewhere.path().join("out.jsonl");
    let mut c = bin();
    c.current_dir(elsewhere.path())
        .args([
            "rewrite",
            "--run",
            s(&run),
            "--max-new-tokens",
            "6",
            "--out",
            s(&out),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    write!(stdin, "{}\n\n{}\n", INPUTS[0], INPUTS[1]).unwrap();
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    assert!(
        ok_stdout(&o).is_empty(),
        "--out writes the file, not stdout"
    );
    let from_stdin = json_lines(&std::fs::read_to_string(&out).unwrap());
    let inputs: Vec<&str> = from_stdin
        .iter()
        .map(|v| v["input"].as_str().unwrap())
        .collect();
    assert_eq!(inputs, INPUTS);

    // A JSONL file through evaluate's loader (field `text`) gives the same rewrites.
    let f = d.path().join("in.jsonl");
    let rows: Vec<String> = INPUTS
        .iter()
        .map(|t| serde_json::json!({"text": t}).to_string())
        .collect();
    std::fs::write(&f, rows.join("\n")).unwrap();
    let o = rewrite(&[
        "--run",
        s(&run),
        "--max-new-tokens",
        "6",
        "--json",
        "--input",
        s(&f),
    ]);
    let from_file = json_lines(&ok_stdout(&o));
    for (a, b) in from_file.iter().zip(&from_stdin) {
        assert_eq!(a["tokens"], b["tokens"]);
    }
    assert_eq!(from_file.len(), 2);
}

#[test]
fn compare_and_explain_use_each_run_and_the_grpo_reward_reference() {
    if !smol_present() {
        return;
    }
    let d = sft_run();
    let g = grpo_config(d.path(), "grpo");
    let o = bin().args(["grpo", "--config", s(&g)]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (sft_dir, grpo_dir) = (d.path().join("sft"), d.path().join("grpo"));
    let info: Value = read_json(&grpo_dir.join("run.json"));
    assert_eq!(info["encoder"], "stylometric");
    let reference = PathBuf::from(info["reference"][0].as_str().unwrap());
    assert!(reference.ends_with("datasets/reference/whimsical_tale.txt"));

    let args = [
        "--run",
        s(&grpo_dir),
        "--compare",
        s(&sft_dir),
        "--max-new-tokens",
        "16",
    ];
    let o = rewrite(&[&args[..], &["--explain", "--json", INPUTS[0]]].concat());
    let rows = json_lines(&ok_stdout(&o));
    let runs: Vec<&str> = rows.iter().map(|r| r["run"].as_str().unwrap()).collect();
    assert_eq!(runs, ["grpo", "sft"]);
    let refs = std::fs::read_to_string(&reference).unwrap();
    let mut seen = 0;
    for r in &rows {
        for m in r["sentences"].as_array().unwrap() {
            let sim = m["similarity"].as_f64().unwrap();
            assert!((-1.0..=1.0 + 1e-6).contains(&sim), "{m}");
            // The closest reference sentence is a sentence of the run's reference file.
            assert!(
                refs.contains(m["reference_text"].as_str().unwrap().trim()),
                "{m}"
            );
            seen += 1;
        }
    }
    assert!(seen > 0, "no output sentence was explained: {rows:?}");

    // Plain text: a block for the input with each run's rewrite under its name, and under
    // each rewrite one line per explained sentence (same seed, so the same sentences).
    let text = ok_stdout(&rewrite(&[&args[..], &["--explain", INPUTS[0]]].concat()));
    assert!(
        text.starts_with(&format!("### input 1\n{}\n--- grpo\n", INPUTS[0])),
        "{text}"
    );
    assert!(text.contains("\n--- sft\n"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains("  ≈  ")).count(),
        seen,
        "{text}"
    );
}

/// Copies a run directory (files one level deep and adapter/) to `to`.
fn copy_run(from: &Path, to: &Path) {
    for sub in ["", "adapter"] {
        std::fs::create_dir_all(to.join(sub)).unwrap();
        for e in std::fs::read_dir(from.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, to.join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
}

/// Rewrites `run.json` of `dir` with `edit`.
fn edit_info(dir: &Path, edit: impl Fn(&mut Value)) {
    let p = dir.join("run.json");
    let mut v: Value = read_json(&p);
    edit(&mut v);
    std::fs::write(&p, v.to_string()).unwrap();
}

#[test]
fn each_broken_run_is_one_error_line_naming_what_is_missing_and_how_to_make_it() {
    if !smol_present() {
        return;
    }
    let d = sft_run();
    let p = d.path();
    let run = p.join("sft");

    let half = p.join("half");
    copy_run(&run, &half);
    std::fs::remove_dir_all(half.join("adapter")).unwrap();

    let moved = p.join("moved");
    copy_run(&run, &moved);
    edit_info(&moved, |v| v["model"] = Value::from(s(&p.join("gone"))));

    // The demo's layout: the GRPO run starts from `<sft run>/merged`, which is not there.
    let unmerged = p.join("unmerged");
    copy_run(&run, &unmerged);
    edit_info(&unmerged, |v| {
        v["model"] = Value::from(s(&run.join("merged")))
    });

    let corrupt = p.join("corrupt");
    copy_run(&run, &corrupt);
    let full = std::fs::read_to_string(corrupt.join("run.json")).unwrap();
    std::fs::write(corrupt.join("run.json"), &full[..full.len() / 2]).unwrap();

    let no_record = p.join("no-record");
    copy_run(&run, &no_record);
    std::fs::remove_file(no_record.join("run.json")).unwrap();

    // The same model with another chat template: the prompt would no longer be the trained one.
    let retemplated = p.join("tiny-retemplated");
    common::tiny_llama(&retemplated, 7);
    let tc = retemplated.join("tokenizer_config.json");
    let mut tv: Value = read_json(&tc);
    tv["chat_template"] = Value::from("{% for m in messages %}{{ m['content'] }}\n{% endfor %}");
    std::fs::write(&tc, tv.to_string()).unwrap();

    // A run that died before run.json existed: metrics, no record, no adapter.
    let early = p.join("early");
    std::fs::create_dir_all(&early).unwrap();
    std::fs::copy(run.join("metrics.jsonl"), early.join("metrics.jsonl")).unwrap();

    let missing = p.join("never-trained");
    let adapter = run.join("adapter");
    let cases: Vec<(Vec<&str>, Vec<String>)> = vec![
        (
            vec!["--run", s(&missing)],
            vec![
                s(&missing).into(),
                "does not exist".into(),
                "stylerl grpo --config".into(),
            ],
        ),
        (
            vec!["--run", s(&half)],
            vec![
                "half-written".into(),
                "adapter/adapter_model.safetensors".into(),
                format!("`cd {} && stylerl sft --config sft.toml --resume`", s(p)),
            ],
        ),
        (
            vec!["--run", s(&moved)],
            vec![
                format!("base model {} is missing", s(&p.join("gone"))),
                "--model DIR".into(),
            ],
        ),
        (
            vec!["--run", s(&unmerged)],
            vec![
                "merged is missing".into(),
                format!("written by `cd {} && stylerl sft --config sft.toml`", s(p)),
                "with train.merge = true".into(),
            ],
        ),
        (
            vec!["--run", s(&corrupt)],
            vec!["run.json is not a valid run record".into()],
        ),
        (
            vec!["--run", s(&early)],
            vec!["half-written: no run.json".into(), "--resume`".into()],
        ),
        (
            vec!["--run", s(&no_record)],
            vec![
                "has no run.json".into(),
                // As the adapter names it (relative to where it was trained).
                "--model tiny --adapter".into(),
            ],
        ),
        (
            vec!["--run", s(&run), "--model", s(&retemplated)],
            vec!["chat template".into(), "changed since training".into()],
        ),
        (vec![], vec!["give --run DIR".into()]),
        (
            vec!["--run", s(&run), "--explain"],
            vec![
                "--explain needs reference sentences".into(),
                "--reference FILE".into(),
            ],
        ),
        (
            vec!["--run", s(&run), "--adapter", s(&adapter)],
            vec!["--adapter and --instruction are for --model without --run".into()],
        ),
    ];
    for (args, want) in &cases {
        let o = rewrite(&[&args[..], &["--max-new-tokens", "2", "hello there"]].concat());
        let line = one_error_line(&o);
        for w in want {
            assert!(line.contains(w.as_str()), "{args:?}: '{w}' not in: {line}");
        }
    }
}

/// `--best-of 3` samples exactly what `--n 3` samples and prints one of them per input: the
/// one `eval::select` keeps, numbered as among the three; 0 and a clash with --n are refused.
#[test]
fn best_of_keeps_one_of_the_samples_n_would_give() {
    if !smol_present() {
        return;
    }
    let d = sft_run();
    let run = d.path().join("sft");
    let common = [
        "--run",
        s(&run),
        "--json",
        "--seed",
        "5",
        "--max-new-tokens",
        "10",
    ];
    let all = json_lines(&ok_stdout(&rewrite(
        &[&common[..], &["--n", "3"], &INPUTS[..]].concat(),
    )));
    assert_eq!(all.len(), 6);
    let best = json_lines(&ok_stdout(&rewrite(
        &[
            &common[..],
            &["--best-of", "3", "--meaning-encoder", "none"],
            &INPUTS[..],
        ]
        .concat(),
    )));
    assert_eq!(best.len(), 2, "one rewrite per input");
    for (i, b) in best.iter().enumerate() {
        assert_eq!(b["index"], i);
        assert_eq!(b["best_of"], 3);
        let same = all
            .iter()
            .find(|a| a["index"] == b["index"] && a["sample"] == b["sample"])
            .expect("the kept sample's number is one of --n 3's");
        assert_eq!(same["tokens"], b["tokens"]);
    }
    // --clean-only keeps exactly the inputs whose kept sample `select` calls clean.
    let mut samples = vec![Vec::new(); INPUTS.len()];
    for a in &all {
        samples[a["index"].as_u64().unwrap() as usize].push(stylerl::eval::select::Sampled {
            text: a["output"].as_str().unwrap().to_string(),
            stopped_at_eos: a["stopped_at_eos"].as_bool().unwrap(),
        });
    }
    let inputs: Vec<String> = INPUTS.iter().map(|i| i.to_string()).collect();
    let none = stylerl::text::defects::ReferenceRuns::from_sentences::<String>(&[]);
    let chosen = stylerl::eval::select::choose(&inputs, &samples, &none, 0.95, None).unwrap();
    let want: Vec<u64> = (0..INPUTS.len() as u64)
        .filter(|&i| chosen[i as usize].1[chosen[i as usize].0].clean())
        .collect();
    let o = rewrite(
        &[
            &common[..],
            &[
                "--best-of",
                "3",
                "--meaning-encoder",
                "none",
                "--clean-only",
            ],
            &INPUTS[..],
        ]
        .concat(),
    );
    let clean = json_lines(&ok_stdout(&o));
    let got: Vec<u64> = clean.iter().map(|c| c["index"].as_u64().unwrap()).collect();
    assert_eq!(got, want, "{chosen:?}");
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains(&format!("{} of 2 inputs have a clean rewrite", want.len())),
        "{e}"
    );
    for (args, want) in [
        (vec!["--best-of", "0", "x"], "--best-of 0"),
        (
            vec!["--best-of", "2", "--n", "2", "x"],
            "cannot be used with",
        ),
        (vec!["--clean-only", "x"], "--best-of"),
    ] {
        let o = rewrite(&[&["--run", s(&run)][..], &args[..]].concat());
        assert!(!o.status.success());
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(want), "{e}");
    }
}
