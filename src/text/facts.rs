//! Facts a faithful rewrite keeps (docs/method.md#facts-kept): the input's numbers, amounts,
//! dates, weekdays and times; no such facts the input lacks; its negations; no names it lacks.
//!
//! Pure and rule-based, built on the entity passes of [`super::entities`], so the evaluation
//! and the reward guards see the same facts. A small number written as a word ("two") keeps
//! the input's digit ("2"), since a reader takes them as the same fact.
use super::entities::{entity_pair, Entity, EntityKind};
use serde::Serialize;
use std::collections::HashSet;

/// What one input/output pair keeps and changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FactCheck {
    /// Distinct numeric facts (numbers, money, dates, weekdays, times) of the input.
    pub input_facts: usize,
    /// How many of them the output keeps (same normal form, or a number word of the value).
    pub kept: usize,
    /// Distinct numeric facts of the output that the input does not have.
    pub invented: usize,
    /// Negation cues in the input and in the output.
    pub input_negations: usize,
    pub output_negations: usize,
    /// Distinct names of the output, and how many of them the input does not contain.
    pub output_names: usize,
    pub names_invented: usize,
    /// Questions asked (runs of '?') in the input and in the output.
    pub input_questions: usize,
    pub output_questions: usize,
}

impl FactCheck {
    /// Some numeric fact of the input is missing or altered.
    pub fn number_changed(&self) -> bool {
        self.kept < self.input_facts
    }
    /// The output states a numeric fact the input does not have.
    pub fn number_invented(&self) -> bool {
        self.invented > 0
    }
    /// A negation in one text and not the other.
    pub fn negation_flip(&self) -> bool {
        (self.input_negations > 0) != (self.output_negations > 0)
    }
    pub fn name_invented(&self) -> bool {
        self.names_invented > 0
    }
    /// A question in one text and not the other: a question or request turned into a
    /// statement ("Is the spare room free?" → "The spare room is free."), or one added
    /// ("… Can you help?"). Blind readers count both as changed meaning.
    pub fn question_changed(&self) -> bool {
        (self.input_questions > 0) != (self.output_questions > 0)
    }
    /// Share of the input's numeric facts kept; `None` when it has none.
    pub fn kept_share(&self) -> Option<f64> {
        (self.input_facts > 0).then(|| self.kept as f64 / self.input_facts as f64)
    }
    /// Share of the output's names that the input has (entity precision over names);
    /// `None` when the output names nobody.
    pub fn name_precision(&self) -> Option<f64> {
        (self.output_names > 0)
            .then(|| (self.output_names - self.names_invented) as f64 / self.output_names as f64)
    }
    /// Any fact changed: a numeric fact lost or invented, a negation flipped, a name invented.
    /// (Not a changed question: a new register may rightly ask "Fancy learning piano?" —
    /// on the labelled set 8 of 160 clean rewrites do — so it is not a defect, only a
    /// tie-breaker of best-of-N.)
    pub fn any_change(&self) -> bool {
        self.number_changed()
            || self.number_invented()
            || self.negation_flip()
            || self.name_invented()
    }
}

fn is_numeric(k: EntityKind) -> bool {
    matches!(
        k,
        EntityKind::Number | EntityKind::Money | EntityKind::Date | EntityKind::Time
    )
}

const NUMBER_WORDS: [&str; 21] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

/// Lower-case words of a text (letters, digits and apostrophes), curly apostrophes made straight.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace(['’', '‘'], "'")
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\'').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// The values of the number words up to twenty in a text, as digits ("two" → "2").
fn number_word_values(text: &str) -> HashSet<String> {
    words(text)
        .iter()
        .filter_map(|w| NUMBER_WORDS.iter().position(|n| n == w))
        .map(|v| v.to_string())
        .collect()
}

/// Questions in `text`: runs of '?' (so "really??" is one), '？' included.
pub fn question_count(text: &str) -> usize {
    let mut n = 0;
    let mut prev = false;
    for c in text.chars() {
        let q = c == '?' || c == '？';
        n += usize::from(q && !prev);
        prev = q;
    }
    n
}

/// Negation cues: not, n't (also written without the apostrophe: "cant", "dont"), never,
/// no, nobody, nothing, none, nowhere, neither, nor, cannot, without, unable, refrain.
/// Idioms that do not negate the message are removed first: "don't forget" (= remember),
/// "no later than", "no sooner", "no matter", "no doubt", "not only".
pub fn negation_count(text: &str) -> usize {
    const CUES: [&str; 13] = [
        "not", "never", "no", "nobody", "nothing", "none", "nowhere", "neither", "nor", "cannot",
        "without", "unable", "refrain",
    ];
    const BARE: [&str; 16] = [
        "cant", "dont", "wont", "didnt", "doesnt", "isnt", "arent", "wasnt", "werent", "havent",
        "hasnt", "hadnt", "shouldnt", "wouldnt", "couldnt", "mustnt",
    ];
    const IDIOMS: [&[&str]; 9] = [
        &["don't", "forget"],
        &["dont", "forget"],
        &["do", "not", "forget"],
        &["never", "forget"],
        &["no", "later", "than"],
        &["no", "sooner"],
        &["no", "matter"],
        &["no", "doubt"],
        &["not", "only"],
    ];
    let w = words(text);
    let mut skip = vec![false; w.len()];
    for idiom in IDIOMS {
        for i in 0..w.len().saturating_sub(idiom.len() - 1) {
            if idiom.iter().zip(&w[i..]).all(|(a, b)| a == b) {
                skip[i..i + idiom.len()].iter_mut().for_each(|s| *s = true);
            }
        }
    }
    w.iter()
        .zip(&skip)
        .filter(|(w, &s)| {
            !s && (CUES.contains(&w.as_str())
                || BARE.contains(&w.as_str())
                || w.ends_with("n't")
                || w.starts_with("refrain"))
        })
        .count()
}

fn numeric_norms(es: &[Entity]) -> HashSet<(EntityKind, String)> {
    es.iter()
        .filter(|e| is_numeric(e.kind))
        .map(|e| (e.kind, e.norm.clone()))
        .collect()
}

/// A name of the output counts as the input's when their normal forms share a word
/// ("Coach Harris" keeps "Harris"; "Mr Okafor" keeps "Okafor").
fn name_known(name: &str, input_names: &[String], input_words: &HashSet<String>) -> bool {
    name.split(' ').any(|w| {
        input_words.contains(w) || input_names.iter().any(|n| n.split(' ').any(|x| x == w))
    })
}

/// The fact check of one pair.
pub fn check_facts(input: &str, output: &str) -> FactCheck {
    let (a, b) = entity_pair(input, output);
    let (fa, fb) = (numeric_norms(&a), numeric_norms(&b));
    let (wa, wb) = (number_word_values(input), number_word_values(output));
    let norms = |s: &HashSet<(EntityKind, String)>| -> HashSet<String> {
        s.iter().map(|(_, n)| n.clone()).collect()
    };
    let (na, nb) = (norms(&fa), norms(&fb));
    let lost: Vec<EntityKind> = fa
        .iter()
        .filter(|(_, n)| !nb.contains(n) && !wb.contains(n))
        .map(|(k, _)| *k)
        .collect();
    let new: Vec<EntityKind> = fb
        .iter()
        .filter(|(_, n)| !na.contains(n) && !wa.contains(n))
        .map(|(k, _)| *k)
        .collect();
    // A new value of a kind the output lost ("£35" → "£53") is that fact changed, not a
    // fact invented: only the new values beyond the lost ones of their kind count.
    let invented = new
        .iter()
        .collect::<HashSet<_>>()
        .into_iter()
        .map(|k| {
            let n = new.iter().filter(|x| *x == k).count();
            n.saturating_sub(lost.iter().filter(|x| *x == k).count())
        })
        .sum();
    let kept = fa.len() - lost.len();
    let in_names: Vec<String> = a
        .iter()
        .filter(|e| e.kind == EntityKind::Name)
        .map(|e| e.norm.clone())
        .collect();
    let in_words: HashSet<String> = words(input).into_iter().collect();
    let out_names: HashSet<String> = b
        .iter()
        .filter(|e| e.kind == EntityKind::Name)
        .map(|e| e.norm.clone())
        .collect();
    let names_invented = out_names
        .iter()
        .filter(|n| !name_known(n, &in_names, &in_words))
        .count();
    FactCheck {
        input_facts: fa.len(),
        kept,
        invented,
        input_negations: negation_count(input),
        output_negations: negation_count(output),
        output_names: out_names.len(),
        names_invented,
        input_questions: question_count(input),
        output_questions: question_count(output),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_changed_and_invented_numbers() {
        let c = check_facts(
            "Pickup is £35 on Friday at 3 pm.",
            "Collect it Friday, 3pm, for £35.",
        );
        assert_eq!((c.input_facts, c.kept, c.invented), (3, 3, 0));
        let c = check_facts("Pickup is £35 on Friday.", "Pickup is £53 on Thursday.");
        assert!(c.number_changed() && !c.number_invented());
        let c = check_facts("Pickup is £35.", "Pickup is £35 on Thursday.");
        assert!(!c.number_changed() && c.number_invented());
        let c = check_facts("Bring 2 chairs.", "Please bring two chairs.");
        assert!(!c.number_changed() && !c.number_invented());
    }

    #[test]
    fn negations_and_names() {
        assert!(
            check_facts("Please don't park in bay 12.", "Please park in bay 12.").negation_flip()
        );
        assert!(!check_facts("I can't come.", "I cannot come.").negation_flip());
        let c = check_facts("Ask Priya about it.", "Ask Priya and Tomasz Wren about it.");
        assert!(c.name_invented());
        assert_eq!(c.name_precision(), Some(0.5));
    }

    #[test]
    fn questions_dropped_or_added() {
        let c = check_facts(
            "Is the spare room free this weekend?",
            "The spare room is free this weekend.",
        );
        assert!(c.question_changed() && !c.any_change());
        let c = check_facts(
            "The tickets are booked.",
            "The tickets are booked. Can you help?",
        );
        assert!(c.question_changed());
        let c = check_facts("Want me to book two??", "Shall I book two?");
        assert_eq!((c.input_questions, c.output_questions), (1, 1));
        assert!(!c.question_changed());
        assert!(!check_facts("See you at noon.", "See you at noon!").question_changed());
        assert_eq!(question_count("Really?! Why？ ok"), 2);
    }
}
