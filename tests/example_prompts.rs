//! Prompts that show reference sentences as style examples (GRPO `data.examples`, issue 28):
//! each input gets its own seeded draw, the settings are checked before anything loads, and
//! `rewrite --run` on such a run samples from exactly the prompt the run was trained with.
mod common;
mod sft_support;
use serde_json::Value;
use sft_support::*;
use std::path::Path;
use stylerl::eval::prompts::example_turns;

const TEMPLATE: &str = "Style examples:\n{examples}\n\nRewrite:\n{input}";

fn refs() -> Vec<String> {
    (0..20)
        .map(|i| format!("Reference sentence number {i}."))
        .collect()
}

fn shown(turn: &str) -> Vec<&str> {
    turn.lines().filter_map(|l| l.strip_prefix("- ")).collect()
}

#[test]
fn each_input_shows_its_own_seeded_draw_of_k_reference_sentences() {
    let refs = refs();
    let texts: Vec<String> = (0..8).map(|i| format!("Input text {i}.")).collect();
    let a = example_turns(TEMPLATE, &refs, 4, 11, &texts);
    assert_eq!(
        a,
        example_turns(TEMPLATE, &refs, 4, 11, &texts),
        "same seed, same prompts"
    );
    assert_ne!(
        a,
        example_turns(TEMPLATE, &refs, 4, 12, &texts),
        "the seed is used"
    );
    let mut draws = std::collections::BTreeSet::new();
    for (turn, text) in a.iter().zip(&texts) {
        assert!(turn.ends_with(&format!("Rewrite:\n{text}")), "{turn}");
        let ex = shown(turn);
        assert_eq!(ex.len(), 4, "{turn}");
        let distinct: std::collections::BTreeSet<_> = ex.iter().collect();
        assert_eq!(distinct.len(), 4, "a sentence shown twice: {turn}");
        assert!(ex.iter().all(|e| refs.iter().any(|r| r == e)), "{turn}");
        draws.insert(ex.join("|"));
    }
    assert!(draws.len() >= 6, "inputs share one draw: {draws:?}");
    // Input i's draw does not depend on the other inputs (rewrite gets one input at a time
    // only through the same index).
    let first = example_turns(TEMPLATE, &refs, 4, 11, &texts[..1]);
    assert_eq!(first[0], a[0]);
    // Fewer references than K: all of them, once each.
    let few = example_turns(TEMPLATE, &refs[..2], 4, 1, &texts[..1]);
    assert_eq!(shown(&few[0]).len(), 2);
}

fn run(args: &[&str]) -> std::process::Output {
    bin().args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The run failed with sft_support's one `error:` line, and that line names every `want`.
fn refused(o: &std::process::Output, want: &[&str]) {
    let line = one_error_line(o);
    for w in want {
        assert!(line.contains(w), "error line lacks {w:?}: {line}");
    }
}

#[test]
fn bad_example_settings_are_refused_before_loading() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    let g = grpo_config(d.path(), "g");
    let cases: [(&[&str], &[&str]); 3] = [
        (&["data.examples=33"], &["data.examples = 33", "0..=32"]),
        (
            &[
                "data.examples=2",
                "data.example_template=\"Rewrite: {input}\"",
            ],
            &["data.example_template", "{examples}"],
        ),
        (
            &["data.examples=2", "data.instruction=\"Say it again.\""],
            &["data.instruction", "data.example_template"],
        ),
    ];
    for (sets, want) in cases {
        let mut args = vec!["grpo", "--config", s(&g)];
        for v in sets {
            args.extend(["--set", v]);
        }
        refused(&run(&args), want);
        assert!(!d.path().join("g").exists(), "{sets:?}: out_dir written");
    }
}

#[test]
fn rewrite_on_an_example_run_samples_from_its_training_prompt() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    let g = grpo_config(d.path(), "g");
    let o = run(&[
        "grpo",
        "--config",
        s(&g),
        "--set",
        "data.examples=3",
        "--set",
        "data.example_seed=9",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let runp = d.path().join("g");
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(runp.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["examples"], 3);
    assert_eq!(info["example_seed"], 9);
    let template = info["instruction"].as_str().unwrap().to_string();
    assert!(template.contains("{examples}"), "{template}");

    let inputs = [
        "The old lighthouse keeper counted ships every evening.",
        "Mara left Lisbon on 3 May with two suitcases.",
    ];
    let mut args = vec!["rewrite", "--run", s(&runp), "--json", "--greedy"];
    args.extend(["--max-new-tokens", "32"]);
    args.extend(inputs);
    let o = run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    // The prompts the run was trained with, built here from the reference file.
    let refr = common::root().join("datasets/reference/whimsical_tale.txt");
    let sentences = stylerl::text::sentences(&std::fs::read_to_string(refr).unwrap());
    let texts: Vec<String> = inputs.iter().map(|t| t.to_string()).collect();
    let turns = example_turns(&template, &sentences, 3, 9, &texts);
    let want = generate(d.path(), &runp, &turns);
    assert_eq!(got.len(), 2);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(
            g["tokens"], w["tokens"],
            "rewrite vs generate on the example prompt"
        );
        let gap = max_gap(&g["logprobs"], &w["logprobs"]);
        assert!(gap < 1e-3, "rewrite vs generate log-probs differ by {gap}");
    }
    // The check can see a wrong prompt: the instruction form, or another draw of examples,
    // gives the same tokens other log-probs (a tiny random model's greedy tokens barely
    // depend on the prompt, its log-probs always do).
    let plain: Vec<String> = texts
        .iter()
        .map(|t| {
            stylerl::train::sft_data::user_turn(stylerl::train::sft_data::DEFAULT_INSTRUCTION, t)
        })
        .collect();
    let other_draw = example_turns(&template, &sentences, 3, 10, &texts);
    for wrong in [plain, other_draw] {
        let other = generate(d.path(), &runp, &wrong);
        for (g, o) in got.iter().zip(&other) {
            if g["tokens"] == o["tokens"] {
                let gap = max_gap(&g["logprobs"], &o["logprobs"]);
                assert!(
                    gap > 1e-3,
                    "a wrong prompt went unseen (log-prob gap {gap})"
                );
            }
        }
    }
}

/// The largest absolute difference between two JSON arrays of numbers of one length.
fn max_gap(a: &Value, b: &Value) -> f64 {
    let (a, b) = (a.as_array().unwrap(), b.as_array().unwrap());
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x.as_f64().unwrap() - y.as_f64().unwrap()).abs())
        .fold(0.0, f64::max)
}

/// Greedy `generate --chat --json` over user turns with the run's adapter.
fn generate(d: &Path, run: &Path, turns: &[String]) -> Vec<Value> {
    let f = d.join("turns.jsonl");
    let lines: Vec<String> = turns
        .iter()
        .map(|t| Value::from(t.as_str()).to_string())
        .collect();
    std::fs::write(&f, lines.join("\n") + "\n").unwrap();
    let o = bin()
        .args([
            "generate",
            "--chat",
            "--json",
            "--greedy",
            "--max-new-tokens",
            "32",
        ])
        .args([
            "--model",
            s(&d.join("tiny")),
            "--adapter",
            s(&run.join("adapter")),
        ])
        .args(["--input", s(&f)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `evaluate`'s `example_selection = "per_input"` builds exactly a run's training prompts, so
/// an example-trained run is evaluated on the prompt it learned; "random" shows one draw to all.
#[test]
fn evaluation_per_input_selection_matches_the_training_prompts() {
    use stylerl::eval::config::SystemConfig;
    use stylerl::eval::prompts::user_turns;
    let sys = |how: &str| -> SystemConfig {
        toml::from_str(&format!(
            "name = \"x\"\nkind = \"prompted\"\nexamples = 4\nexample_seed = 5\nexample_selection = \"{how}\"\ninstruction = {TEMPLATE:?}\n[model]\npath = \"m\"\n"
        ))
        .unwrap()
    };
    let refs = refs();
    let texts: Vec<String> = (0..6).map(|i| format!("Input text {i}.")).collect();
    let per_input = user_turns(&sys("per_input"), &refs, &texts);
    assert_eq!(per_input, example_turns(TEMPLATE, &refs, 4, 5, &texts));
    let shared = user_turns(&sys("random"), &refs, &texts);
    let draws: std::collections::BTreeSet<_> = shared.iter().map(|t| shown(t).join("|")).collect();
    assert_eq!(draws.len(), 1, "random: one draw for every input");
    assert_ne!(per_input, shared);
}
