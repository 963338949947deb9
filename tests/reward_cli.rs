//! `stylerl reward` and `stylerl analyze` through the binary, checked against hand values
//! and against the library computed independently.
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use stylerl::encoder::stylometric::style_vector;
use stylerl::encoder::{cosine, SentenceEncoder};
use stylerl::text::sentences;

const REFERENCE: &str = "The fox jumped! Did it land?\nIt did, gracefully, on the soft moss. \"Hooray,\" cried the owl.";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stylerl"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("STYLERL_PROGRESS", "0");
    c
}

fn setup(extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let r = d.path().join("ref.txt");
    std::fs::write(&r, REFERENCE).unwrap();
    let cfg = d.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[other]\nignored = true\n[reward]\nreference = [{:?}]\nencoder = \"stylometric\"\n[reward.dropout]\nenabled = false\n[reward.length]\nratio = 1.0\nslack = 2.0\ncache = 4.0\n[reward.punctuation]\nratio = 1.0\nslack = 1.0\ncache = 2.0\n[reward.entities]\nweight = 0.5\n{extra}",
            r.display().to_string()
        ),
    )
    .unwrap();
    (d, cfg)
}

fn run_reward(cfg: &Path, input: &str, output: &str, extra: &[&str]) -> Value {
    let o = bin()
        .args(["reward", "--config"])
        .arg(cfg)
        .args(["--input", input, "--output", output])
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn close(a: &Value, b: f64) {
    let a = a.as_f64().unwrap();
    // Relative: the JSON holds float32 sums; 1e-5 of the magnitude is a few roundings.
    assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
}

#[test]
fn reward_json_matches_hand_values() {
    let (_d, cfg) = setup("");
    let input = "Bob met Alice in Paris on 2024-05-06.";
    let output = "Well, Bob met Alice in Paris! When? On 6 May 2024, I think, maybe, perhaps.";
    let j = run_reward(&cfg, input, output, &[]);
    // Tokens = whitespace words: 7 in, 15 out. L_max = 1·7 + 2 = 9, cache 4 → −1.
    assert_eq!(j["length"]["input_tokens"], 7);
    assert_eq!(j["length"]["output_tokens"], 15);
    close(&j["length"]["limit"], 9.0);
    close(&j["components"]["r_length"], -1.0);
    // Punctuation: in '-', '-', '.' = 3 → limit 4, cache 2 (zone 2..4); out , ! ? , , , . = 7 → −1.
    assert_eq!(j["punctuation"]["input"], 3);
    assert_eq!(j["punctuation"]["output"], 7);
    close(&j["components"]["r_punctuation"], -1.0);
    // Entities: {bob, alice, paris, 2024-05-06} both sides → F1 1 → 0.
    close(&j["entities"]["f1"], 1.0);
    close(&j["components"]["r_ne_overlap"], 0.0);
    // R_style recomputed here: sum over sentences of the best cosine to the reference.
    let refs = sentences(REFERENCE);
    let rv: Vec<Vec<f32>> = refs.iter().map(|s| style_vector(s)).collect();
    let sents = sentences(output);
    assert_eq!(
        j["style"]["sentences"].as_array().unwrap().len(),
        sents.len()
    );
    let mut total = 0.0;
    for (s, js) in sents
        .iter()
        .zip(j["style"]["sentences"].as_array().unwrap())
    {
        let v = style_vector(s);
        let (k, best) = rv
            .iter()
            .enumerate()
            .map(|(k, r)| (k, cosine(&v, r) as f64))
            .fold((0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a });
        assert_eq!(js["sentence"], s.as_str());
        assert_eq!(js["reference_index"], k);
        assert_eq!(js["reference"], refs[k].as_str());
        close(&js["similarity"], best);
        assert_eq!(js["dropped"], false);
        total += best;
    }
    close(&j["components"]["r_style"], total);
    close(&j["components"]["r_total"], total - 1.0 - 1.0);
    assert_eq!(j["encoder"], "stylometric");
    assert_eq!(j["reference_sentences"], refs.len());
}

#[test]
fn overrides_and_entity_loss() {
    let (_d, cfg) = setup("");
    let j = run_reward(
        &cfg,
        "Pay $5 to Carol.",
        "Pay five to her.",
        &[
            "--set",
            "reward.weights.style=0",
            "--set",
            "reward.entities.weight=2",
        ],
    );
    // In {usd 5, carol}, out {} → F1 0 → 2·(0 − 1).
    close(&j["components"]["r_ne_overlap"], -2.0);
    // 4 words in → L_max 6; 4 out → zone 2..6 → (2 − 4)/4. Punctuation in: the final '.' only ($ is a symbol).
    close(&j["components"]["r_length"], -0.5);
    assert_eq!(j["punctuation"]["input"], 1);
    // Style weight 0: total is the penalties alone.
    let total = j["components"]["r_length"].as_f64().unwrap()
        + j["components"]["r_ne_overlap"].as_f64().unwrap()
        + j["components"]["r_punctuation"].as_f64().unwrap();
    close(&j["components"]["r_total"], total);
}

#[test]
fn dropout_output_is_reproducible_and_marks_drops() {
    let (_d, cfg) = setup("");
    let out = "It did. It did. It did. It did. It did. It did.";
    let a = run_reward(
        &cfg,
        "x",
        out,
        &[
            "--set",
            "reward.dropout.enabled=true",
            "--set",
            "reward.dropout.eps_min=0.5",
            "--set",
            "reward.dropout.eps_max=0.5",
            "--step",
            "3",
        ],
    );
    let b = run_reward(
        &cfg,
        "x",
        out,
        &[
            "--set",
            "reward.dropout.enabled=true",
            "--set",
            "reward.dropout.eps_min=0.5",
            "--set",
            "reward.dropout.eps_max=0.5",
            "--step",
            "3",
        ],
    );
    assert_eq!(a["style"], b["style"]);
    let sents = a["style"]["sentences"].as_array().unwrap();
    let kept: f64 = sents
        .iter()
        .filter(|s| s["dropped"] == false)
        .map(|s| s["similarity"].as_f64().unwrap())
        .sum();
    assert!(sents
        .iter()
        .all(|s| s["dropout_rate"].as_f64().unwrap() == 0.5));
    close(&a["components"]["r_style"], kept);
}

#[test]
fn reward_errors_are_one_line() {
    let (_d, cfg) = setup("");
    let o = bin()
        .args(["reward", "--config"])
        .arg(&cfg)
        .args([
            "--input",
            "a",
            "--output",
            "b",
            "--set",
            "reward.dropout.gama=3",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("gama") && err.trim().lines().count() == 1,
        "{err}"
    );
    let (_d2, cfg2) = setup("");
    let o = bin()
        .args(["reward", "--config"])
        .arg(&cfg2)
        .args([
            "--input",
            "a",
            "--output",
            "b",
            "--set",
            "reward.reference=[\"/nonexistent/ref.txt\"]",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code() == Some(1) && err.contains("/nonexistent/ref.txt"),
        "{err}"
    );
}

#[test]
fn shipped_config_runs() {
    let j = run_reward(
        Path::new("configs/reward.toml"),
        "The meeting is on Friday.",
        "Oh my! Is the meeting on Friday? It is!",
        &[],
    );
    for k in [
        "r_total",
        "r_style",
        "r_length",
        "r_ne_overlap",
        "r_punctuation",
    ] {
        assert!(j["components"][k].as_f64().unwrap().is_finite());
    }
    assert_eq!(j["style"]["n_sentences"], 3);
    assert!(j["reference_sentences"].as_u64().unwrap() >= 15);
}

#[test]
fn analyze_writes_tables_matching_the_library() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("docs.jsonl");
    let docs = [
        "Short one. Then another! Why not?",
        "Single sentence here.",
        "Memo: act now. Budget: 5%. Done.",
    ];
    std::fs::write(
        &data,
        docs.iter()
            .map(|t| format!("{}\n", serde_json::json!({ "body": t })))
            .collect::<String>(),
    )
    .unwrap();
    let out = d.path().join("out");
    let o = bin()
        .args(["analyze", "--encoder", "stylometric", "--data"])
        .arg(format!("{}:body", data.display()))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(md.contains("/docs:body | 3 | 2 | 7 |"), "{md}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), md);
    let csv = std::fs::read_to_string(out.join("table.csv")).unwrap();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    let enc = stylerl::encoder::stylometric::Stylometric::new();
    let texts: Vec<String> = docs.iter().map(|s| s.to_string()).collect();
    let c = stylerl::reward::analyze::characterise(&enc, "docs:body", &texts).unwrap();
    assert_eq!(row[0], enc.name());
    for (i, v) in [(5, c.inner_doc), (6, c.sentence_doc), (7, c.all_sentences)] {
        assert!(
            (row[i].parse::<f64>().unwrap() - v).abs() <= 1e-5 * v.abs().max(1.0),
            "{csv}"
        );
    }
    // Hand check of the pooled column: mean over ordered pairs of distinct sentences.
    let sv: Vec<Vec<f32>> = docs
        .iter()
        .flat_map(|d| sentences(d))
        .map(|s| style_vector(&s))
        .collect();
    let mut sum = 0.0;
    for i in 0..sv.len() {
        for j in 0..sv.len() {
            if i != j {
                sum += cosine(&sv[i], &sv[j]) as f64;
            }
        }
    }
    let want = sum / (sv.len() * (sv.len() - 1)) as f64;
    assert!((c.all_sentences - want).abs() <= 1e-5 * want.abs().max(1.0));
}

#[test]
fn analyze_missing_dataset_is_an_error() {
    let o = bin()
        .args([
            "analyze",
            "--encoder",
            "stylometric",
            "--data",
            "/nonexistent/x.jsonl",
            "--out",
            "/tmp/stylerl-never",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found"));
}
