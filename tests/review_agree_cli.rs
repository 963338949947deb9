//! `stylerl review agree` through the binary: a reader who always picks the output with the
//! higher style score gives that measure full agreement on style, a measure the reader goes
//! against gives none, and bad input gives one error line.
mod common;
use common::{one_error_line, stylerl};
use std::path::{Path, PathBuf};

/// style_similarity of (system, input i): rl's is higher on every input; meaning_kept is
/// higher for sft; rl's outputs are flagged defective by the detectors on even inputs.
fn style(sys: &str, i: usize) -> f64 {
    if sys == "rl" {
        0.8 + 0.001 * i as f64
    } else {
        0.5
    }
}

/// results/<eval>/outputs.jsonl and a made sheet at results/<eval>/review/rl-vs-sft.
fn made_sheet(root: &Path, n: usize) -> PathBuf {
    let eval = root.join("eval");
    std::fs::create_dir_all(eval.join("review")).unwrap();
    let mut s = String::new();
    for sys in ["sft", "rl"] {
        for i in 0..n {
            let rec = serde_json::json!({
                "system": sys, "index": i, "input": format!("input {i}."),
                "output": format!("{sys} rewrite {i}."),
                "style_similarity": style(sys, i),
                "meaning_kept": if sys == "rl" { 0.7 } else { 0.9 },
                "words": 3,
                "judge_encoder_style_similarity": {"charstyle": 0.6},
                "reader_checks": {"fluency_nll": 4.0, "defective": sys == "rl" && i % 2 == 0},
            });
            s.push_str(&rec.to_string());
            s.push('\n');
        }
    }
    std::fs::write(eval.join("outputs.jsonl"), s).unwrap();
    let sheet = eval.join("review").join("rl-vs-sft");
    let mk = stylerl(&[
        "review",
        "make",
        "--outputs",
        eval.join("outputs.jsonl").to_str().unwrap(),
        "--systems",
        "rl,sft",
        "--out",
        sheet.to_str().unwrap(),
        "--seed",
        "5",
    ]);
    assert!(
        mk.status.success(),
        "{}",
        String::from_utf8_lossy(&mk.stderr)
    );
    sheet
}

/// The reader picks the higher style score on style, the sft output on meaning, ties fluency,
/// and marks rl's outputs defective on inputs divisible by 4.
fn write_verdicts(sheet: &Path) {
    let key: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.key.json", sheet.display())).unwrap(),
    )
    .unwrap();
    let mut s = String::new();
    for it in key["items"].as_array().unwrap() {
        let (a, b) = (it["a"].as_str().unwrap(), it["b"].as_str().unwrap());
        let i = it["index"].as_u64().unwrap() as usize;
        let style_pick = if style(a, i) > style(b, i) { "A" } else { "B" };
        let meaning_pick = if a == "sft" { "A" } else { "B" };
        let marked = |sys: &str| sys == "rl" && i % 4 == 0;
        s.push_str(
            &serde_json::json!({
                "sheet_id": key["sheet_id"], "id": it["id"], "style": style_pick,
                "meaning": meaning_pick, "fluency": "tie",
                "a_defective": marked(a), "b_defective": marked(b),
            })
            .to_string(),
        );
        s.push('\n');
    }
    std::fs::write(sheet.join("verdicts.jsonl"), s).unwrap();
}

#[test]
fn agreement_follows_the_readers_picks() {
    let d = tempfile::tempdir().unwrap();
    let sheet = made_sheet(d.path(), 8);
    write_verdicts(&sheet);
    let json = d.path().join("agree.json");
    // A trailing slash (as a shell glob of folders gives) names the same sheet.
    let slashed = format!("{}/", sheet.display());
    let o = stylerl(&[
        "review",
        "agree",
        "--sheets",
        &slashed,
        "--json",
        json.to_str().unwrap(),
        "--plot",
        d.path().join("agree.svg").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("8 items read"), "{out}");
    let svg = std::fs::read_to_string(d.path().join("agree.svg")).unwrap();
    assert!(
        svg.contains("style picks") && svg.contains("style: reward enc."),
        "{svg}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let row = |m: &str, dim: &str| {
        j["agreement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["measure"] == m && r["dimension"] == dim)
            .unwrap_or_else(|| panic!("no row {m} / {dim}: {j}"))
            .clone()
    };
    let s = row("style similarity (reward encoder)", "style");
    assert_eq!(
        (s["agree"].as_u64(), s["disagree"].as_u64()),
        (Some(8), Some(0))
    );
    // The reader picked sft on meaning, which the reward encoder scores lower: no agreement.
    let m = row("style similarity (reward encoder)", "meaning");
    assert_eq!(
        (m["agree"].as_u64(), m["disagree"].as_u64()),
        (Some(0), Some(8))
    );
    let mk = row("meaning kept", "meaning");
    assert_eq!(mk["share"].as_f64(), Some(1.0));
    // Equal values are left out, not counted as agreement.
    let cs = row("style similarity (charstyle)", "style");
    assert_eq!(
        (cs["agree"].as_u64(), cs["equal"].as_u64()),
        (Some(0), Some(8))
    );
    // Fluency verdicts were all ties: nothing decided.
    let f = row("meaning kept", "fluency");
    assert_eq!(
        f["agree"].as_u64().unwrap() + f["disagree"].as_u64().unwrap(),
        0
    );
    // rl flagged on inputs 0, 2, 4, 6; the reader marked 0 and 4; sft never.
    let def = &j["defects"];
    assert_eq!(def["both"], 2);
    assert_eq!(def["detectors_only"], 2);
    assert_eq!(def["reader_only"], 0);
    assert_eq!(def["neither"], 12);
}

/// The one error line of `stylerl review agree --sheets SHEET ARGS…`.
fn agree_error(sheet: &Path, args: &[&str]) -> String {
    let mut all = vec!["review", "agree", "--sheets", sheet.to_str().unwrap()];
    all.extend_from_slice(args);
    one_error_line(&stylerl(&all))
}

#[test]
fn bad_input_gives_one_error_line() {
    let d = tempfile::tempdir().unwrap();
    let sheet = made_sheet(d.path(), 4);
    // No verdicts yet.
    let e = agree_error(&sheet, &[]);
    assert!(e.contains("verdicts.jsonl"), "{e}");
    write_verdicts(&sheet);
    // Outputs of another evaluation (inputs the sheet does not know).
    let other = d.path().join("other.jsonl");
    let other_s = other.to_str().unwrap();
    std::fs::write(
        &other,
        "{\"system\":\"rl\",\"index\":99,\"output\":\"x\"}\n",
    )
    .unwrap();
    let e = agree_error(&sheet, &["--outputs", other_s]);
    assert!(
        e.contains("is it the evaluation the sheet was made from"),
        "{e}"
    );
    // Not JSON.
    std::fs::write(&other, "not json\n").unwrap();
    let e = agree_error(&sheet, &["--outputs", other_s]);
    assert!(e.contains("line 1: not JSON"), "{e}");
    // A missing sheet folder.
    let e = agree_error(&d.path().join("nope"), &[]);
    assert!(e.contains("key"), "{e}");
    // --json onto an existing file without --force.
    let j = d.path().join("a.json");
    std::fs::write(&j, "{}").unwrap();
    let e = agree_error(&sheet, &["--json", j.to_str().unwrap()]);
    assert!(e.contains("--force"), "{e}");
}
