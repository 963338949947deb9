//! `stylerl evaluate` end to end on a tiny random Llama (SmolLM2's tokenizer and chat
//! template, 2 layers of width 32), the stylometric encoder (also as the content encoder of
//! meaning kept) and charstyle as a judge encoder, 3 inputs and 2 systems: every file is
//! written (chart.svg included), the table has every system and metric column, every metric
//! has an interval around its estimate, and the summary numbers agree with the per-output
//! records.
use std::path::Path;
use std::process::Command;
use stylerl::eval::table;

const SMOL: &str = "models/smollm2-135m-instruct";

fn tiny_model(dir: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir).unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(root.join(SMOL).join(f), dir.join(f)).unwrap();
    }
    let cfg = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 49152,
        "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true,
        "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2, "initializer_range": 0.02
    });
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let m = stylerl::model::Llama::random_init(dir, tch::Device::Cpu, tch::Kind::Float, 7).unwrap();
    m.save_safetensors(&dir.join("model.safetensors")).unwrap();
}

/// Writes the tiny model, 3 held-out inputs, a reference and the config (plus `extra` TOML
/// tables at the end) into `d`; returns the inputs.
fn setup(d: &Path, extra: &str) -> [&'static str; 3] {
    tiny_model(&d.join("tiny"));
    let inputs = [
        "Hi Sam, the meeting moved to 3pm on Friday. Can you tell Priya?",
        "Lost keys near the Oak Street bakery. Blue fob, two keys.",
        "thanks for dinner last night!! the lasagne was amazing",
    ];
    let heldout: String = inputs
        .iter()
        .map(|t| serde_json::json!({"body": t}).to_string() + "\n")
        .collect();
    std::fs::write(d.join("heldout.jsonl"), heldout).unwrap();
    std::fs::write(
        d.join("ref.txt"),
        "Once upon a time, a snail dreamed of letters. Was it silly? Of course it was!\n\nThe crows laughed; the wind hummed.",
    )
    .unwrap();
    let out = d.join("results");
    let cfg = format!(
        r#"
name = "e2e"
out_dir = "{out}"
baseline = "prompted"
judge_encoders = ["charstyle"]
[bootstrap]
resamples = 200
seed = 1
[meaning]
encoder = "stylometric"
[fluency]
model = "{tiny}"
[data]
heldout = "{held}"
field = "body"
[reward]
reference = ["{refp}"]
encoder = "stylometric"
[generation]
max_new_tokens = 6
seed = 3
batch_size = 2
[[systems]]
name = "prompted"
kind = "prompted"
examples = 2
[systems.model]
path = "{tiny}"
[[systems]]
name = "trained"
kind = "model"
[systems.model]
path = "{tiny}"
{extra}
"#,
        out = out.display(),
        held = d.join("heldout.jsonl").display(),
        refp = d.join("ref.txt").display(),
        tiny = d.join("tiny").display(),
        extra = extra,
    );
    std::fs::write(d.join("eval.toml"), cfg).unwrap();
    inputs
}

/// `stylerl evaluate --config d/eval.toml ARGS…`, progress bars off, one libtorch thread:
/// `generation.jobs = 2` runs each system on one thread, and the comparison with a run on
/// the machine's default thread count would compare two float paths (MKL splits sums by
/// thread count), where a near-tie of the random tiny model's logits can flip a token.
fn evaluate(d: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stylerl"))
        .args([
            "evaluate",
            "--config",
            d.join("eval.toml").to_str().unwrap(),
        ])
        .args(args)
        .env("STYLERL_THREADS", "1")
        .env("STYLERL_PROGRESS", "0")
        .output()
        .unwrap()
}

fn smol_missing() -> bool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !root.join(SMOL).join("tokenizer.json").exists() {
        eprintln!("skipped: {SMOL} missing (run scripts/setup.sh)");
        return true;
    }
    false
}

#[test]
fn evaluate_writes_every_file_with_every_system_and_metric() {
    if smol_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let inputs = setup(d, "");
    let out = d.join("results");
    let run = evaluate(d, &[]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let md = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert_eq!(stdout.trim(), md.trim(), "stdout is the Markdown table");
    let opts = table::TableOptions {
        baseline: Some("prompted".into()),
        judge_encoders: vec!["charstyle".into()],
        ..Default::default()
    };
    for h in table::headers(&opts) {
        assert!(md.contains(&h), "no column {h}:\n{md}");
    }
    assert!(md.contains("Δ vs prompted") && md.contains("charstyle similarity"));
    let rows: Vec<&str> = md
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert_eq!(rows.len(), 3, "{md}");
    assert!(rows[0].starts_with("| inputs"));
    assert!(rows[1].starts_with("| prompted") && rows[2].starts_with("| trained"));
    assert!(rows[1..].iter().all(|r| r.contains("no endpoint")));
    assert!(
        rows[1].contains("| baseline"),
        "the baseline's own Δ cell: {}",
        rows[1]
    );
    // Interval cells: "0.512 [0.490, 0.530]".
    assert!(rows[2].contains(" ["), "{}", rows[2]);
    assert!(
        md.contains("95 % paired bootstrap, 3 inputs, 200 resamples")
            && md.contains("by stylometric"),
        "legend:\n{md}"
    );
    let csv = std::fs::read_to_string(out.join("table.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3);
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .contains("charstyle_similarity_lo"));
    // Reader checks: fluency under the frozen base model, facts, defects, per output and per system.
    for h in [
        "fluency NLL",
        "facts kept %",
        "negation flips %",
        "entity precision",
        "defective %",
        "cut off %",
        "defective Δ vs prompted",
    ] {
        assert!(md.contains(h), "no reader-check column {h}:\n{md}");
    }
    let rc = std::fs::read_to_string(out.join("reader_checks.csv")).unwrap();
    assert_eq!(rc.lines().count(), 3, "{rc}");
    assert!(rc
        .lines()
        .next()
        .unwrap()
        .contains("fluency_nll_minus_baseline_lo"));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("outputs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for l in &lines {
        let r = &l["reader_checks"];
        assert!(
            r["defective"].is_boolean() && r["defects"]["repetition"].is_boolean(),
            "{l}"
        );
        // A text of 2+ tokens has a finite NLL; fewer tokens give null.
        if let Some(f) = r["fluency_nll"].as_f64() {
            assert!(f.is_finite() && f > 0.0, "{l}");
        }
    }
    // The per-system fluency is the mean of the per-output values.
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    for sys in metrics["systems"].as_array().unwrap() {
        let name = sys["name"].as_str().unwrap();
        let v: Vec<f64> = lines
            .iter()
            .filter(|l| l["system"] == name)
            .filter_map(|l| l["reader_checks"]["fluency_nll"].as_f64())
            .collect();
        let want = v.iter().sum::<f64>() / v.len() as f64;
        let got = sys["intervals"]["fluency_nll"]["mean"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-9, "{name}: {got} vs {want}");
    }
    let svg = std::fs::read_to_string(out.join("chart.svg")).unwrap();
    assert!(svg.starts_with("<svg") || svg.contains("<svg"));
    for t in [
        "prompted",
        "trained",
        "meaning kept",
        "charstyle",
        "length ratio",
    ] {
        assert!(svg.contains(t), "chart.svg lacks {t}");
    }

    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["n_inputs"], 3);
    assert_eq!(metrics["bootstrap"]["resamples"], 200);
    assert_eq!(metrics["meaning_encoder"], "stylometric");
    let systems = metrics["systems"].as_array().unwrap();
    assert_eq!(systems.len(), 2);
    assert_eq!(systems[0]["examples"].as_array().unwrap().len(), 2);
    let within = |iv: &serde_json::Value, what: &str| {
        let (m, lo, hi) = (
            iv["mean"].as_f64().unwrap(),
            iv["lo"].as_f64().unwrap(),
            iv["hi"].as_f64().unwrap(),
        );
        assert!(lo <= m + 1e-12 && m <= hi + 1e-12, "{what}: {iv}");
    };
    for sys in systems {
        for k in [
            "style_similarity",
            "input_style_similarity",
            "not_rewritten_percent",
            "meaning_kept",
            "entity_f1",
            "words",
            "length_ratio",
        ] {
            within(&sys["intervals"][k], k);
        }
        within(&sys["minus_inputs"]["style_similarity"], "Δ inputs");
        let j = &sys["judge_encoders"][0];
        assert_eq!(j["encoder"], "charstyle");
        within(&j["style_similarity"], "charstyle");
        within(&j["minus_inputs"], "charstyle Δ inputs");
    }
    // Only the non-baseline system has differences to the baseline, on the same inputs.
    assert!(systems[0]["minus_baseline"].as_object().unwrap().is_empty());
    within(
        &systems[1]["minus_baseline"]["style_similarity"],
        "Δ baseline",
    );
    within(
        &systems[1]["judge_encoders"][0]["minus_baseline"],
        "charstyle Δ baseline",
    );

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("outputs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    for (s, sys) in systems.iter().enumerate() {
        let mine: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| l["system"] == sys["name"])
            .collect();
        assert_eq!(mine.len(), 3);
        for (i, l) in mine.iter().enumerate() {
            assert_eq!(l["input"], inputs[i]);
            for m in l["input_sentences"].as_array().unwrap() {
                let k = m["reference"].as_u64().unwrap() as usize;
                assert!(k < metrics["n_reference_sentences"].as_u64().unwrap() as usize);
                assert!(m["reference_text"].as_str().unwrap().len() > 1);
            }
        }
        // The summary agrees with the per-output records.
        let n_same = mine.iter().filter(|l| l["not_rewritten"] == true).count();
        let pct = sys["not_rewritten_percent"].as_f64().unwrap();
        assert!(
            (pct - 100.0 * n_same as f64 / 3.0).abs() < 1e-9,
            "system {s}"
        );
        let words: f64 = mine
            .iter()
            .map(|l| l["words"].as_f64().unwrap())
            .sum::<f64>()
            / 3.0;
        assert!((sys["words_mean"].as_f64().unwrap() - words).abs() < 1e-9);
        let f1: f64 = mine
            .iter()
            .map(|l| l["entity_f1"].as_f64().unwrap())
            .sum::<f64>()
            / 3.0;
        assert!((sys["entity_f1_mean"].as_f64().unwrap() - f1).abs() < 1e-9);
        // Inputs' own similarity: mean of the per-input means (every input has sentences).
        let ins: f64 = mine
            .iter()
            .map(|l| l["input_style_similarity"].as_f64().unwrap())
            .sum::<f64>()
            / 3.0;
        let got = sys["input_style_similarity"].as_f64().unwrap();
        assert!(
            (got - ins).abs() <= 1e-6 * ins.abs().max(1.0),
            "{got} vs {ins}"
        );
        // Meaning kept and length ratio: means of the per-output values.
        let mk: f64 = mine
            .iter()
            .map(|l| l["meaning_kept"].as_f64().unwrap())
            .sum::<f64>()
            / 3.0;
        assert!((sys["meaning_kept"].as_f64().unwrap() - mk).abs() < 1e-9);
        let ratio: f64 = mine
            .iter()
            .map(|l| {
                l["words"].as_f64().unwrap()
                    / l["input"].as_str().unwrap().split_whitespace().count() as f64
            })
            .sum::<f64>()
            / 3.0;
        assert!((sys["length_ratio_mean"].as_f64().unwrap() - ratio).abs() < 1e-9);
        assert!(mine.iter().all(|l| l["judge_encoder_style_similarity"]
            .get("charstyle")
            .is_some()));
    }

    // Same seed, same outputs: a rerun reproduces outputs.jsonl exactly.
    let first = std::fs::read_to_string(out.join("outputs.jsonl")).unwrap();
    let again = evaluate(d, &["--systems", "prompted,trained"]);
    assert!(again.status.success());
    assert_eq!(
        first,
        std::fs::read_to_string(out.join("outputs.jsonl")).unwrap()
    );

    // Both systems generated at once (one thread each): the same outputs, in config order.
    let jobs = evaluate(d, &["--set", "generation.jobs=2"]);
    assert!(
        jobs.status.success(),
        "{}",
        String::from_utf8_lossy(&jobs.stderr)
    );
    assert_eq!(
        first,
        std::fs::read_to_string(out.join("outputs.jsonl")).unwrap()
    );
}

/// A loopback "judge" that answers `n` chat requests by picking the longer rewrite (A on ties).
fn longer_judge(n: usize) -> (String, std::thread::JoinHandle<usize>) {
    stylerl::eval::judge_stub::serve(n, |prompt| {
        let after_a = prompt.split("\n\nRewrite A:\n").nth(1).unwrap();
        let (a, rest) = after_a.split_once("\n\nRewrite B:\n").unwrap();
        let b = rest.rsplit_once("\n\nWhich rewrite").unwrap().0;
        let pick = if a.chars().count() >= b.chars().count() {
            "A"
        } else {
            "B"
        };
        pick.to_string()
    })
}

#[test]
fn judge_column_compares_each_system_with_the_baseline() {
    if smol_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // One non-baseline system × 3 inputs = 3 requests.
    let (url, server) = longer_judge(3);
    setup(
        d,
        &format!("[judge]\nurl = \"{url}\"\nmodel = \"m\"\nbaseline = \"prompted\"\napi_key_env = \"STYLERL_TEST_NO_KEY\"\ntimeout_s = 20\n"),
    );
    let run = evaluate(d, &[]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(server.join().unwrap(), 3);
    let out = d.join("results");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("outputs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let text = |sys: &str, i: usize| -> String {
        lines
            .iter()
            .find(|l| l["system"] == sys && l["index"] == i)
            .unwrap()["output"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // The judge prefers the longer rewrite; on a tie it answers A, whichever that was, so
    // ties are excluded from the expectation unless there are none.
    let (mut wins, mut ties) = (0, 0);
    for i in 0..3 {
        let (t, p) = (
            text("trained", i).chars().count(),
            text("prompted", i).chars().count(),
        );
        if t > p {
            wins += 1;
        } else if t == p {
            ties += 1;
        }
    }
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let sys = metrics["systems"].as_array().unwrap();
    assert_eq!(sys[0]["judge"]["status"], "baseline");
    assert_eq!(sys[1]["judge"]["status"], "percent");
    let got = sys[1]["judge"]["value"].as_f64().unwrap();
    let lo = 100.0 * wins as f64 / 3.0;
    let hi = 100.0 * (wins + ties) as f64 / 3.0;
    assert!(
        got >= lo - 1e-9 && got <= hi + 1e-9,
        "judge {got}, expected in [{lo}, {hi}]"
    );
    let md = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(md.contains("judge preference vs prompted %"), "{md}");
    // Line 3 is the inputs' row; the baseline system comes next.
    assert!(md.lines().nth(3).unwrap().contains("baseline"));
}

/// `judge.pairwise`: each pair asked in both orders; a judge that always answers A on meaning
/// (pure position bias) gives only ties there, while its style answers (the longer rewrite)
/// count; the verdicts land in review format and `stylerl review score` reads them.
#[test]
fn pairwise_judge_removes_position_bias_and_writes_a_review() {
    if smol_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 3 preference requests + 3 items × 2 orders.
    let (url, server) = stylerl::eval::judge_stub::serve(9, |prompt| {
        if !prompt.contains("three lines") {
            return "A".to_string();
        }
        let after_a = prompt.split("\n\nRewrite A:\n").nth(1).unwrap();
        let (a, rest) = after_a.split_once("\n\nRewrite B:\n").unwrap();
        let b = rest.split("\n\nCompare A and B").next().unwrap();
        let (la, lb) = (a.chars().count(), b.chars().count());
        let style = if la > lb {
            "A"
        } else if lb > la {
            "B"
        } else {
            "tie"
        };
        format!("style: {style}\nmeaning: A\nfluency: tie")
    });
    setup(
        d,
        &format!("[judge]\nurl = \"{url}\"\nmodel = \"m\"\nbaseline = \"prompted\"\napi_key_env = \"STYLERL_TEST_NO_KEY\"\ntimeout_s = 20\npairwise = true\n"),
    );
    let run = evaluate(d, &[]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(server.join().unwrap(), 9);
    let out = d.join("results");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("outputs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let len = |sys: &str, i: usize| {
        lines
            .iter()
            .find(|l| l["system"] == sys && l["index"] == i)
            .unwrap()["output"]
            .as_str()
            .unwrap()
            .chars()
            .count()
    };
    let wins = (0..3)
        .filter(|&i| len("trained", i) > len("prompted", i))
        .count() as u64;
    let losses = (0..3)
        .filter(|&i| len("trained", i) < len("prompted", i))
        .count() as u64;
    let rdir = out.join("judge_review/trained-vs-prompted");
    let score: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(rdir.join("score.json")).unwrap()).unwrap();
    let dim = |n: usize, k: &str| score["dimensions"][n][k].as_u64().unwrap();
    assert_eq!((dim(0, "wins"), dim(0, "losses")), (wins, losses));
    assert_eq!(
        (dim(1, "wins"), dim(1, "losses"), dim(1, "ties")),
        (0, 0, 3),
        "position bias must cancel"
    );
    assert_eq!(dim(2, "ties"), 3);
    let md = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(md.contains("| trained vs prompted |"), "{md}");
    let key = out.join("judge_review/trained-vs-prompted.key.json");
    let o = Command::new(env!("CARGO_BIN_EXE_stylerl"))
        .args([
            "review",
            "score",
            "--key",
            key.to_str().unwrap(),
            "--verdicts",
        ])
        .arg(rdir.join("verdicts.jsonl"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("| style | {wins} | {losses} |")));
}

/// `best_of = 4`: every input's four samples are recorded with what the choice looked at,
/// the kept one is the output scored, and it is the one `select::pick` prefers.
#[test]
fn best_of_keeps_the_sample_the_choice_prefers_and_records_every_candidate() {
    if smol_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let extra = format!(
        "[[systems]]\nname = \"best4\"\nkind = \"model\"\nbest_of = 4\n[systems.model]\npath = \"{}\"\n",
        d.join("tiny").display()
    );
    let inputs = setup(d, &extra);
    let run = evaluate(
        d,
        &["--systems", "trained,best4", "--set", "baseline=trained"],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = d.join("results");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("outputs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let best: Vec<&serde_json::Value> = lines.iter().filter(|l| l["system"] == "best4").collect();
    assert_eq!(best.len(), inputs.len());
    let mut differ = false;
    for l in &best {
        let b = &l["best_of"];
        let cands = b["candidates"].as_array().unwrap();
        assert_eq!(cands.len(), 4);
        let kept = b["kept"].as_u64().unwrap() as usize;
        assert_eq!(
            l["output"], cands[kept]["text"],
            "the scored output is the kept sample"
        );
        assert_eq!(l["meaning_kept"], cands[kept]["meaning_kept"]);
        assert_eq!(l["reader_checks"]["defective"], cands[kept]["defective"]);
        let parsed: Vec<stylerl::eval::select::Candidate> = cands
            .iter()
            .map(|c| stylerl::eval::select::Candidate {
                defective: c["defective"].as_bool().unwrap(),
                question_changed: c["question_changed"].as_bool().unwrap(),
                phrase_repeated: c["phrase_repeated"].as_bool().unwrap(),
                copy: c["copy"].as_bool().unwrap(),
                meaning: c["meaning_kept"].as_f64(),
            })
            .collect();
        assert_eq!(stylerl::eval::select::pick(&parsed), Some(kept));
        differ |= cands.iter().any(|c| c["text"] != cands[0]["text"]);
    }
    assert!(
        differ,
        "four samples of a random model should not all be equal"
    );
    assert!(lines
        .iter()
        .filter(|l| l["system"] == "trained")
        .all(|l| l.get("best_of").is_none()));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let sys = m["systems"].as_array().unwrap();
    assert_eq!(
        sys.iter().find(|s| s["name"] == "best4").unwrap()["best_of"],
        4
    );
}
