//! Prompts that show the policy K reference sentences before the request: the prompted
//! baseline's turn, and the training prompt of a run with `data.examples` > 0.
use super::sft_data::user_turn;
use crate::rng::SplitMix64;

/// The default template. `{examples}` becomes one "- sentence" line per example.
pub const DEFAULT_PROMPTED_TEMPLATE: &str = "Here are example sentences written in a particular style:\n{examples}\n\nRewrite the following text in that style. Keep its meaning and every name, number and date. Reply with the rewritten text only.\n\n{input}";

/// K distinct indices of `0..n_refs` by a seeded partial Fisher–Yates draw, ascending
/// (reference order). K larger than the reference takes every sentence.
pub fn draw_examples(n_refs: usize, k: usize, seed: u64) -> Vec<usize> {
    let k = k.min(n_refs);
    let mut idx: Vec<usize> = (0..n_refs).collect();
    let mut rng = SplitMix64::new(seed);
    for i in 0..k {
        let j = i + rng.below((n_refs - i) as u64) as usize;
        idx.swap(i, j);
    }
    let mut out = idx[..k].to_vec();
    out.sort_unstable();
    out
}

/// Fills a template: `{examples}` → one "- sentence" line per example, `{input}` → the text.
pub fn prompted_turn(template: &str, examples: &[&str], input: &str) -> String {
    let lines: Vec<String> = examples
        .iter()
        .map(|e| format!("- {}", e.replace('\n', " ")))
        .collect();
    template
        .replace("{examples}", &lines.join("\n"))
        .replace("{input}", input)
}

/// The user turns of a policy trained with K reference sentences in its prompt (`grpo`'s
/// `data.examples`): input i shows its own seeded draw of K (seed + i), so a run's prompts
/// are the same in training and in `rewrite --run`.
pub fn example_turns(
    template: &str,
    refs: &[String],
    k: usize,
    seed: u64,
    texts: &[String],
) -> Vec<String> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let pick = draw_examples(refs.len(), k, seed.wrapping_add(i as u64));
            let ex: Vec<&str> = pick.into_iter().map(|j| refs[j].as_str()).collect();
            prompted_turn(template, &ex, t)
        })
        .collect()
}

/// Every input's user turn under a run's prompt settings, as in training and in `rewrite
/// --run`: with `examples` = 0, `template` is the instruction before the input
/// (`sft_data::user_turn`); otherwise the example template, filled as [`example_turns`].
pub fn run_turns(
    template: &str,
    examples: usize,
    seed: u64,
    refs: &[String],
    texts: &[String],
) -> Vec<String> {
    if examples == 0 {
        return texts.iter().map(|t| user_turn(template, t)).collect();
    }
    example_turns(template, refs, examples, seed, texts)
}
