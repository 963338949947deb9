//! The user turn each system sees. Trained systems get exactly the training prompt
//! (`sft_data::user_turn(DEFAULT_INSTRUCTION, input)`, no system message); the prompted
//! baseline gets K reference sentences as style examples before the same kind of request.
use super::config::{ExampleSelection, SystemConfig, SystemKind, DEFAULT_PROMPTED_TEMPLATE};
use crate::train::example_prompts::draw_examples;
pub use crate::train::example_prompts::{example_turns, prompted_turn};
use crate::train::sft_data::{user_turn, DEFAULT_INSTRUCTION};

/// Indices of the K reference sentences shown to a prompted system, ascending (reference
/// order). `Random`: the seeded draw of `example_prompts::draw_examples`; `First`: 0..K.
/// K larger than the reference takes every sentence.
pub fn pick_examples(n_refs: usize, k: usize, how: ExampleSelection, seed: u64) -> Vec<usize> {
    match how {
        ExampleSelection::Random | ExampleSelection::PerInput => draw_examples(n_refs, k, seed),
        ExampleSelection::First => (0..k.min(n_refs)).collect(),
    }
}

/// Builds the user turn of every input for one system from the reference sentences (a
/// prompted system shows some of them as style examples; a model system none).
pub fn user_turns(sys: &SystemConfig, refs: &[String], inputs: &[String]) -> Vec<String> {
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
            if sys.example_selection == ExampleSelection::PerInput {
                return example_turns(t, refs, sys.examples, sys.example_seed, inputs);
            }
            let ex: Vec<&str> = shared_examples(sys, refs.len())
                .into_iter()
                .map(|k| refs[k].as_str())
                .collect();
            inputs.iter().map(|i| prompted_turn(t, &ex, i)).collect()
        }
    }
}

/// The reference indices every prompt of a system shows (none for a model system, or for a
/// prompted one whose inputs each draw their own).
pub fn shared_examples(sys: &SystemConfig, n_refs: usize) -> Vec<usize> {
    match (sys.kind, sys.example_selection) {
        (SystemKind::Model, _) | (_, ExampleSelection::PerInput) => Vec::new(),
        (SystemKind::Prompted, how) => pick_examples(n_refs, sys.examples, how, sys.example_seed),
    }
}
