//! The evaluation's fact and defect detectors against the hand-labelled set
//! datasets/eval/defects.jsonl (written for the project; none of its inputs is a held-out
//! input): precision and recall of every detector are printed and held at ≥ 0.8.
use std::collections::BTreeMap;
use std::path::Path;
use stylerl::eval::quality::check;
use stylerl::text::defects::ReferenceRuns;

const LABELS: [&str; 9] = [
    "number_changed",
    "number_invented",
    "negation_flip",
    "name_invented",
    "repetition",
    "assistant",
    "copied_reference",
    "empty",
    "truncated",
];
const FLOOR: f64 = 0.8;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Which labels the detectors give one row.
fn detected(input: &str, output: &str, refs: &ReferenceRuns) -> Vec<&'static str> {
    let c = check(input, output, refs, None);
    let flags = [
        c.facts.number_changed(),
        c.facts.number_invented(),
        c.facts.negation_flip(),
        c.facts.name_invented(),
        c.defects.repetition,
        c.defects.assistant,
        c.defects.copied_reference,
        c.defects.empty,
        c.defects.truncated,
    ];
    LABELS
        .iter()
        .zip(flags)
        .filter(|(_, f)| *f)
        .map(|(l, _)| *l)
        .collect()
}

/// (precision, recall, labelled positives) per detector, and the row count, of one set; prints
/// the table (and every miss with STYLERL_SHOW_MISSES set).
fn measure(file: &str) -> (BTreeMap<&'static str, (f64, f64, usize)>, usize) {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    let mut refs: BTreeMap<String, ReferenceRuns> = BTreeMap::new();
    // (true positives, false positives, false negatives) per label; any-defect as one more.
    let mut counts: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    let mut rows = 0;
    let mut misses: Vec<String> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let s = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("{k} in {line}"))
                .to_string()
        };
        let name = s("reference");
        let r = refs.entry(name.clone()).or_insert_with(|| {
            let t = std::fs::read_to_string(root().join(format!("datasets/reference/{name}.txt")))
                .unwrap();
            ReferenceRuns::new(&[t])
        });
        let want: Vec<String> = v["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        for w in &want {
            assert!(LABELS.contains(&w.as_str()), "unknown label {w} in {line}");
        }
        let got = detected(&s("input"), &s("output"), r);
        for l in LABELS.iter().copied().chain(["defective"]) {
            let (w, g) = if l == "defective" {
                (!want.is_empty(), !got.is_empty())
            } else {
                (want.iter().any(|x| x == l), got.contains(&l))
            };
            let e = counts.entry(l).or_default();
            match (w, g) {
                (true, true) => e.0 += 1,
                (false, true) => e.1 += 1,
                (true, false) => e.2 += 1,
                _ => {}
            }
            if w != g && l != "defective" {
                misses.push(format!("{} {l}: want {w} got {g}", s("id")));
            }
        }
        rows += 1;
    }
    eprintln!(
        "{file}: {rows} rows\n| detector | positives | precision | recall |\n|---|---|---|---|"
    );
    let mut out = BTreeMap::new();
    for (l, (tp, fp, fn_)) in &counts {
        let p = *tp as f64 / (tp + fp).max(1) as f64;
        let r = *tp as f64 / (tp + fn_).max(1) as f64;
        eprintln!("| {l} | {} | {p:.3} | {r:.3} |", tp + fn_);
        out.insert(*l, (p, r, tp + fn_));
    }
    if std::env::var("STYLERL_SHOW_MISSES").is_ok() {
        eprintln!("{}", misses.join("\n"));
    }
    (out, rows)
}

/// The set the detectors were developed on: every detector ≥ 0.8 precision and recall.
#[test]
fn detectors_hold_precision_and_recall_on_the_labelled_set() {
    let (m, rows) = measure("datasets/eval/defects.jsonl");
    assert!(
        rows >= 200,
        "the labelled set has {rows} rows; at least 200 expected"
    );
    let mut failed = Vec::new();
    for (l, (p, r, n)) in &m {
        if *n < 20 {
            failed.push(format!("{l}: only {n} labelled positives (20 needed)"));
        }
        if *p < FLOOR || *r < FLOOR {
            failed.push(format!(
                "{l}: precision {p:.3}, recall {r:.3} (floor {FLOOR})"
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("; "));
}

/// A second set written independently (another writer, other kinds of text), never used to
/// tune the detectors: what they do on text they were not fitted to. With ~11 positives per
/// detector its per-detector numbers are coarse, so the floor here is on "defective" (any
/// defect or changed fact, the column the tables report).
#[test]
fn detectors_on_the_independent_holdout_set() {
    let (m, rows) = measure("datasets/eval/defects_holdout.jsonl");
    assert!(rows >= 150, "{rows} rows");
    let (p, r, _) = m["defective"];
    assert!(
        p >= FLOOR && r >= FLOOR,
        "defective: precision {p:.3}, recall {r:.3} (floor {FLOOR})"
    );
}
