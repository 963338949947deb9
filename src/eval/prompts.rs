//! The user turn each system sees. Trained systems get exactly the training prompt
//! (`sft_data::user_turn(DEFAULT_INSTRUCTION, input)`, no system message); the prompted
//! baseline gets K reference sentences as style examples before the same kind of request.
use super::config::{ExampleSelection, SystemConfig, SystemKind, DEFAULT_PROMPTED_TEMPLATE};
use crate::rng::SplitMix64;
use crate::train::sft_data::{user_turn, DEFAULT_INSTRUCTION};

/// Indices of the K reference sentences shown to a prompted system, ascending (reference
/// order). `Random`: a seeded partial Fisher–Yates draw of K distinct indices; `First`: 0..K.
/// K larger than the reference takes every sentence.
pub fn pick_examples(n_refs: usize, k: usize, how: ExampleSelection, seed: u64) -> Vec<usize> {
    let k = k.min(n_refs);
    let mut idx: Vec<usize> = (0..n_refs).collect();
    if how == ExampleSelection::Random {
        let mut rng = SplitMix64::new(seed);
        for i in 0..k {
            let j = i + rng.below((n_refs - i) as u64) as usize;
            idx.swap(i, j);
        }
    }
    let mut out = idx[..k].to_vec();
    out.sort_unstable();
    out
}

/// Fills a prompted template: `{examples}` → one "- sentence" line per example, `{input}` → the text.
pub fn prompted_turn(template: &str, examples: &[&str], input: &str) -> String {
    let lines: Vec<String> = examples
        .iter()
        .map(|e| format!("- {}", e.replace('\n', " ")))
        .collect();
    template
        .replace("{examples}", &lines.join("\n"))
        .replace("{input}", input)
}

/// Builds the user turn of every input for one system; `examples` are the chosen reference
/// sentences (used by prompted systems only).
pub fn user_turns(sys: &SystemConfig, examples: &[&str], inputs: &[String]) -> Vec<String> {
    match sys.kind {
        SystemKind::Model => {
            let ins = sys.instruction.as_deref().unwrap_or(DEFAULT_INSTRUCTION);
            inputs.iter().map(|i| user_turn(ins, i)).collect()
        }
        SystemKind::Prompted => {
            let t = sys
                .instruction
                .as_deref()
                .unwrap_or(DEFAULT_PROMPTED_TEMPLATE);
            inputs
                .iter()
                .map(|i| prompted_turn(t, examples, i))
                .collect()
        }
    }
}
