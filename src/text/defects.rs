//! Defects a reader sees in a rewrite at a glance (docs/method.md#defects): a repetition
//! loop, assistant speech or a leaked instruction, a passage copied from the style
//! reference, an empty output, an output cut off mid-sentence.
//!
//! Pure and rule-based; each detector's precision and recall on the hand-labelled set
//! datasets/eval/defects.jsonl is held by tests/eval_defects.rs.
use super::facts::words;
use regex::Regex;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::OnceLock;

/// Word run length that counts as a copied passage.
pub const COPY_RUN: usize = 8;

/// The defects of one output.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Defects {
    pub repetition: bool,
    pub assistant: bool,
    pub copied_reference: bool,
    pub empty: bool,
    pub truncated: bool,
}

impl Defects {
    pub fn any(&self) -> bool {
        self.repetition || self.assistant || self.copied_reference || self.empty || self.truncated
    }
}

/// The word `COPY_RUN`-grams of a set of reference texts, for [`copied_reference`].
#[derive(Debug, Clone, Default)]
pub struct ReferenceRuns {
    runs: HashSet<Vec<String>>,
    /// The style leaves sentences open (see [`leaves_sentences_open`]): an output whose last
    /// sentence has no closing mark is then that style, not a cut-off.
    pub open_endings: bool,
}

/// Whether at least a third of a reference's sentences end without a closing mark ("see you
/// at 6 x", "righto"): chat styles write so, and a reader does not call such text cut off.
pub fn leaves_sentences_open<S: AsRef<str>>(sentences: &[S]) -> bool {
    let n = sentences.len();
    let open = sentences
        .iter()
        .filter(|s| {
            let t = s.as_ref().trim_end();
            !t.is_empty() && !ends_finished(t)
        })
        .count();
    n > 0 && 3 * open >= n
}

impl ReferenceRuns {
    pub fn new<S: AsRef<str>>(references: &[S]) -> Self {
        let mut runs = HashSet::new();
        for r in references {
            let w = words(r.as_ref());
            for g in w.windows(COPY_RUN) {
                runs.insert(g.to_vec());
            }
        }
        Self {
            runs,
            open_endings: false,
        }
    }

    /// The runs of the reference sentences, with [`leaves_sentences_open`] taken from them.
    pub fn from_sentences<S: AsRef<str>>(sentences: &[S]) -> Self {
        let joined: Vec<&str> = sentences.iter().map(|s| s.as_ref()).collect();
        Self {
            open_endings: leaves_sentences_open(sentences),
            ..Self::new(&[joined.join(" ")])
        }
    }
}

/// The output shares a run of `COPY_RUN` words with a reference text that the input does
/// not also contain (a quote the input brought along is not a copy).
pub fn copied_reference(input: &str, output: &str, refs: &ReferenceRuns) -> bool {
    let inp: HashSet<Vec<String>> = words(input).windows(COPY_RUN).map(|g| g.to_vec()).collect();
    words(output)
        .windows(COPY_RUN)
        .any(|g| refs.runs.contains(g) && !inp.contains(g))
}

/// A loop: some run of 1–8 words repeated three times back to back, a run of five or more
/// words said twice, or one name-like word three or more times where the input has it
/// at most once.
pub fn repetition(input: &str, output: &str) -> bool {
    let w = words(output);
    let n = w.len();
    for len in 1..=8usize {
        for i in 0..n.saturating_sub(3 * len - 1) {
            let a = &w[i..i + len];
            if a == &w[i + len..i + 2 * len] && a == &w[i + 2 * len..i + 3 * len] {
                return true;
            }
        }
    }
    // A long run said twice (overlap not allowed).
    const LONG: usize = 5;
    for i in 0..n.saturating_sub(LONG) {
        for j in i + LONG..=n.saturating_sub(LONG) {
            if w[i..i + LONG] == w[j..j + LONG] {
                return true;
            }
        }
    }
    // "Larkfield Larkfield ...": a word doubled back to back that the input never doubles.
    let wi = words(input);
    let doubled = |v: &[String]| -> HashSet<String> {
        v.windows(2)
            .filter(|p| p[0] == p[1] && p[0].chars().all(|c| c.is_alphabetic()))
            .map(|p| p[0].clone())
            .collect()
    };
    let (d_out, d_in) = (doubled(&w), doubled(&wi));
    d_out.iter().any(|x| {
        !d_in.contains(x)
            && !matches!(
                x.as_str(),
                "very" | "so" | "really" | "ha" | "no" | "bye" | "that" | "had"
            )
    })
}

/// A phrase said again: some two-word phrase with a word of four or more letters ("this
/// morning", "be announced") occurs more often in the output than in the input, and at least
/// twice. Milder than [`repetition`] and not a defect (a style may repeat itself on purpose;
/// on the labelled sets it marks 1 of 160 clean rewrites and 30 of 33 labelled loops),
/// so only a tie-breaker of best-of-N: readers mark "On 9 March it will be announced that the
/// winner will be announced" as garbled.
pub fn phrase_repeated(input: &str, output: &str) -> bool {
    let count = |w: &[String]| {
        let mut m: std::collections::HashMap<(String, String), usize> = Default::default();
        for p in w.windows(2) {
            if p[0].chars().count() >= 4 || p[1].chars().count() >= 4 {
                *m.entry((p[0].clone(), p[1].clone())).or_default() += 1;
            }
        }
        m
    };
    let (o, i) = (count(&words(output)), count(&words(input)));
    o.iter()
        .any(|(p, &n)| n >= 2 && n > i.get(p).copied().unwrap_or(0))
}

fn assistant_pattern() -> &'static Regex {
    static P: OnceLock<Regex> = OnceLock::new();
    P.get_or_init(|| {
        Regex::new(
            r"(?ix)
            ^\W*(sure|certainly|of\ course|absolutely|okay|ok)\b[^.!?\n]{0,40}[,.!:]\s*(here|i|below)\b
            | \bhere(\ is|'s|’s|\ are)\ (a|an|the|your|my)?\s*(\w+\s){0,4}?(rewrite|rewritten|rephrased|revised|version|paraphrase|text\ in)
            | \b(rewritten|revised|rephrased)\ (text|version|message|sentence)\s*:
            | ^\W*(rewrite|rewritten|output|answer|response|revised)\s*:
            | \bas\ an\ ai\b | \blanguage\ model\b
            | \bi\ hope\ (this|that|the)\ (helps|rewrite|version|text|captures)\b
            | \b(another|a\ different)\ (version|rewrite)\b
            | (^|\n)\s*note\s*:\s*(i|this|the\ (rewrite|text|tone))\b
            | \bas\ (you\ )?requested\b
            | \blet\ me\ know\ if\ you('d|’d|\ would)?\ (like|want|need)\ (any|more|another|further|me\ to)\b
            | \brewrite\ the\ following\b | \bthe\ following\ text\b | \bthe\ original\ text\b
            | \bin\ the\ style\ of\ the\ reference\b | \bstyle\ of\ the\ (reference|examples)\b
            | \bi('d|’d|\ would)\ be\ happy\ to\ (help|rewrite)\b | \bi\ can\ help\ (you\ )?(with|rewrite)\b
            | \bhere\ you\ go\b | \bfeel\ free\ to\ (adjust|modify|tweak|ask)\b
            ",
        )
        .unwrap()
    })
}

/// Assistant speech or a leaked instruction ("Sure! Here's the rewritten text:", "I hope
/// this helps", "Rewrite the following text").
pub fn assistant(output: &str) -> bool {
    assistant_pattern().is_match(output)
}

/// Nothing but white space and punctuation.
pub fn empty(output: &str) -> bool {
    !output.chars().any(|c| c.is_alphanumeric())
}

/// Words after which an English sentence cannot end.
const OPEN_WORDS: [&str; 46] = [
    "the", "a", "an", "and", "or", "but", "to", "of", "with", "for", "in", "on", "at", "from",
    "by", "my", "your", "our", "their", "his", "her", "its", "is", "are", "was", "were", "will",
    "would", "can", "could", "should", "be", "been", "that", "which", "who", "if", "because", "as",
    "into", "about", "than", "so", "we", "i", "very",
];

fn ends_finished(t: &str) -> bool {
    let last = t.chars().last().unwrap_or(' ');
    matches!(
        last,
        '.' | '!' | '?' | '…' | ')' | '"' | '”' | '\'' | '’' | '*' | ']'
    ) || !(last.is_alphanumeric() || last.is_ascii_punctuation())
}

/// Cut off mid-sentence: it ends on a comma, colon, dash or opening bracket, or on a word
/// after which no sentence ends ("the", "and", "with"), or the input ends its last sentence
/// and the output's last sentence is left open (unless `open_ok`: the target style itself
/// leaves sentences open). `stopped_at_eos == Some(false)` (the generation hit its token
/// limit) with an unfinished last sentence also counts.
pub fn truncated(input: &str, output: &str, stopped_at_eos: Option<bool>, open_ok: bool) -> bool {
    let t = output.trim_end();
    if empty(t) {
        return false;
    }
    let last = t.chars().last().unwrap_or(' ');
    if matches!(last, ',' | ':' | ';' | '-' | '–' | '(' | '[' | '/' | '&') {
        return true;
    }
    let w = words(t);
    if last.is_alphanumeric() {
        if let Some(lw) = w.last() {
            if OPEN_WORDS.contains(&lw.as_str()) {
                return true;
            }
        }
    }
    let finished = ends_finished(t);
    if !finished && stopped_at_eos == Some(false) {
        return true;
    }
    // The input closes its last sentence; the output stops inside a sentence of 4+ words.
    let last_sentence_words = t
        .rsplit(|c| matches!(c, '.' | '!' | '?' | '\n'))
        .next()
        .map(|s| s.split_whitespace().count())
        .unwrap_or(0);
    !open_ok && !finished && ends_finished(input.trim_end()) && last_sentence_words >= 4
}

/// Every defect of one output.
pub fn find_defects(
    input: &str,
    output: &str,
    refs: &ReferenceRuns,
    stopped_at_eos: Option<bool>,
) -> Defects {
    Defects {
        repetition: repetition(input, output),
        assistant: assistant(output),
        copied_reference: copied_reference(input, output, refs),
        empty: empty(output),
        truncated: truncated(input, output, stopped_at_eos, refs.open_endings),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phrase_said_again_that_the_input_says_once() {
        let input = "The winner will be announced on 9 March.";
        assert!(phrase_repeated(
            input,
            "On 9 March it will be announced that the winner will be announced."
        ));
        assert!(!phrase_repeated(
            input,
            "The winner is announced on 9 March."
        ));
        // Said twice in the input too, or short words only: not counted.
        assert!(!phrase_repeated(
            "this morning and this morning again",
            "this morning, and this morning again"
        ));
        assert!(!phrase_repeated("x", "it is in it is in a box"));
    }

    #[test]
    fn each_detector_fires_on_its_case_and_not_on_a_clean_rewrite() {
        let clean = "Dear Ms Hale, the boiler will be serviced on Tuesday at 9 am.";
        let input = "Boiler service Tuesday 9am, Ms Hale.";
        let refs = ReferenceRuns::new(&[
            "there lived a snail called Bartholomew who dreamed quite seriously",
        ]);
        assert_eq!(
            find_defects(input, clean, &refs, Some(true)),
            Defects::default()
        );
        assert!(repetition(input, "see you soon see you soon see you soon"));
        assert!(repetition(
            "Larkfield closes Friday.",
            "Larkfield Larkfield closes Friday."
        ));
        assert!(assistant(
            "Sure! Here's the rewritten text: boiler on Tuesday."
        ));
        assert!(copied_reference(
            input,
            "Once there lived a snail called Bartholomew who dreamed of tea.",
            &refs
        ));
        assert!(empty(" ... "));
        assert!(truncated(
            input,
            "The boiler will be serviced on",
            Some(true),
            false
        ));
        assert!(truncated(
            input,
            "The boiler will be serviced on Tuesday morning by Ms",
            None,
            false
        ));
    }

    #[test]
    fn an_open_last_sentence_is_a_style_when_the_reference_writes_so() {
        let chat = [
            "morning!!",
            "on earlies again so i'll be out by half 6 x",
            "righto",
        ];
        let tale = [
            "There lived a snail.",
            "Was it a ridiculous dream?",
            "Oh, how they cheered!",
        ];
        assert!(leaves_sentences_open(&chat));
        assert!(!leaves_sentences_open(&tale));
        assert!(!leaves_sentences_open::<&str>(&[]));
        let input = "The office is open on 26 December. Please tell the team.";
        let out = "the office is open on 26 December so please tell the team";
        let (open, closed) = (
            ReferenceRuns::from_sentences(&chat),
            ReferenceRuns::from_sentences(&tale),
        );
        assert!(find_defects(input, out, &closed, Some(true)).truncated);
        assert!(!find_defects(input, out, &open, Some(true)).truncated);
        // Still cut off in any style: a dangling word, or the token limit hit mid-sentence.
        let dangling = "the office is open on 26 December so please tell the";
        assert!(find_defects(input, dangling, &open, Some(true)).truncated);
        assert!(find_defects(input, out, &open, Some(false)).truncated);
        // The copy runs are those of the joined sentences.
        assert!(
            find_defects(
                input,
                "on earlies again so i'll be out by half 6",
                &open,
                Some(true)
            )
            .copied_reference
        );
    }
}
