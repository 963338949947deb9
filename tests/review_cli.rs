//! `stylerl review make | score` through the binary: a blind sheet without system names, a
//! key kept apart, verdicts scored from the first system's side, and one error line with a
//! non-zero exit for every bad input.
mod common;
use common::{one_error_line, stylerl};
use std::path::Path;

/// An outputs.jsonl of systems "rl" and "sft" over `n` inputs; rl's outputs say "RL".
fn outputs(dir: &Path, n: usize) -> std::path::PathBuf {
    let mut s = String::new();
    for sys in ["sft", "rl"] {
        for i in 0..n {
            let o = if sys == "rl" {
                format!("RL rewrite {i}.")
            } else {
                format!("plain rewrite {i}.")
            };
            s.push_str(&serde_json::json!({"system": sys, "index": i, "input": format!("input {i}."), "output": o}).to_string());
            s.push('\n');
        }
    }
    let p = dir.join("outputs.jsonl");
    std::fs::write(&p, s).unwrap();
    p
}

#[test]
fn make_then_score_counts_wins_from_the_first_systems_side() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("sheet");
    let o = outputs(d.path(), 12);
    let refp = d.path().join("ref.txt");
    std::fs::write(
        &refp,
        "Once there was a snail. He dreamed of letters. The crows laughed.",
    )
    .unwrap();
    let mk = stylerl(&[
        "review",
        "make",
        "--outputs",
        o.to_str().unwrap(),
        "--systems",
        "rl,sft",
        "--out",
        out.to_str().unwrap(),
        "--reference",
        refp.to_str().unwrap(),
        "--seed",
        "3",
    ]);
    assert!(
        mk.status.success(),
        "{}",
        String::from_utf8_lossy(&mk.stderr)
    );
    let key_path = d.path().join("sheet.key.json");
    assert!(key_path.exists() && !out.join("key.json").exists());
    // The reader's files never name a system.
    for f in ["sheet.html", "sheet.md", "sheet.json"] {
        let t = std::fs::read_to_string(out.join(f)).unwrap();
        assert!(
            !t.contains("\"rl\"") && !t.contains("\"sft\""),
            "{f} names a system"
        );
    }
    let sheet: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sheet.json")).unwrap()).unwrap();
    let key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&key_path).unwrap()).unwrap();
    let sid = sheet["sheet_id"].as_str().unwrap();
    let items = sheet["items"].as_array().unwrap();
    assert_eq!(items.len(), 12);
    // Both A/B orders are drawn.
    let a_rl = key["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["a"] == "rl")
        .count();
    assert!(a_rl > 0 && a_rl < 12, "A is rl in {a_rl} of 12 items");
    // A reader who prefers the text with "RL" for style, the other one for meaning, ties fluency.
    let mut v = String::new();
    for it in items {
        let rl_is_a = it["a"].as_str().unwrap().starts_with("RL");
        let (rl, other) = if rl_is_a { ("A", "B") } else { ("B", "A") };
        v.push_str(
            &serde_json::json!({"sheet_id": sid, "id": it["id"], "style": rl, "meaning": other,
            "fluency": "tie", "a_defective": rl_is_a, "b_defective": !rl_is_a})
            .to_string(),
        );
        v.push('\n');
    }
    let vp = d.path().join("verdicts.jsonl");
    std::fs::write(&vp, &v).unwrap();
    let js = d.path().join("score.json");
    let sc = stylerl(&[
        "review",
        "score",
        "--key",
        key_path.to_str().unwrap(),
        "--verdicts",
        vp.to_str().unwrap(),
        "--json",
        js.to_str().unwrap(),
    ]);
    assert!(
        sc.status.success(),
        "{}",
        String::from_utf8_lossy(&sc.stderr)
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&js).unwrap()).unwrap();
    let dim = |n: usize, k: &str| s["dimensions"][n][k].as_u64().unwrap();
    assert_eq!(
        (dim(0, "wins"), dim(0, "losses"), dim(0, "ties")),
        (12, 0, 0)
    );
    assert_eq!((dim(1, "wins"), dim(1, "losses")), (0, 12));
    assert_eq!(dim(2, "ties"), 12);
    assert!(s["dimensions"][0]["sign_test_p"].as_f64().unwrap() < 0.001);
    assert_eq!(s["defective_percent"]["rl"].as_f64().unwrap(), 100.0);
    assert_eq!(s["defective_percent"]["sft"].as_f64().unwrap(), 0.0);
    // The sheet beside the key gives the style tally over items neither side copied: here all.
    assert_eq!(s["style_both_rewrote"]["wins"].as_u64(), Some(12));
    assert!(String::from_utf8_lossy(&sc.stdout).contains("style where both sides rewrote"));

    // Bad inputs: one line, non-zero exit, nothing replaced.
    let bad = |name: &str, text: String| {
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        one_error_line(&stylerl(&[
            "review",
            "score",
            "--key",
            key_path.to_str().unwrap(),
            "--verdicts",
            p.to_str().unwrap(),
        ]))
    };
    let e = bad("unknown.jsonl", format!("{{\"sheet_id\":\"{sid}\",\"id\":\"item-999\",\"style\":\"A\",\"meaning\":\"A\",\"fluency\":\"A\"}}\n"));
    assert!(e.contains("item-999"), "{e}");
    let e = bad("other.jsonl", "{\"sheet_id\":\"0000\",\"id\":\"item-001\",\"style\":\"A\",\"meaning\":\"A\",\"fluency\":\"A\"}\n".into());
    assert!(e.contains("another sheet"), "{e}");
    let e = bad(
        "missing.jsonl",
        format!("{{\"sheet_id\":\"{sid}\",\"id\":\"item-001\",\"style\":\"A\"}}\n"),
    );
    assert!(e.contains("meaning"), "{e}");
    let e = bad("choice.jsonl", format!("{{\"sheet_id\":\"{sid}\",\"id\":\"item-001\",\"style\":\"C\",\"meaning\":\"A\",\"fluency\":\"A\"}}\n"));
    assert!(e.contains("style"), "{e}");
    let e = one_error_line(&stylerl(&[
        "review",
        "make",
        "--outputs",
        o.to_str().unwrap(),
        "--systems",
        "rl,sft",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(e.contains("--force"), "{e}");
    let e = one_error_line(&stylerl(&[
        "review",
        "make",
        "--outputs",
        o.to_str().unwrap(),
        "--systems",
        "rl,nope",
        "--out",
        d.path().join("x").to_str().unwrap(),
    ]));
    assert!(e.contains("nope"), "{e}");
    let e = one_error_line(&stylerl(&[
        "review",
        "score",
        "--key",
        vp.to_str().unwrap(),
        "--verdicts",
        vp.to_str().unwrap(),
    ]));
    assert!(e.contains("--key"), "{e}");
}
