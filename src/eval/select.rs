//! Best-of-N (docs/method.md#best-of-n): a system with `best_of = N` samples N rewrites of
//! each input and keeps the one a reader is most likely to accept. Blind readers reward a
//! faithful rewrite first (results/reader-agreement/: meaning kept agrees with their meaning
//! picks 83 % of the time, the style scores at chance), so the order is: no detector flag,
//! then the input's question (or statement) kept as one, then a rewrite rather than a copy
//! of the input, then the highest meaning kept.
use super::metrics::is_not_rewritten;
use super::quality;
use crate::encoder::SentenceEncoder;
use crate::reward::meaning::meaning_kept;
use crate::text::defects::ReferenceRuns;
use anyhow::Result;
use std::cmp::Ordering;

/// What the choice looks at for one sampled rewrite (also outputs.jsonl's record of it).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Candidate {
    /// Flagged by the defect or fact detectors.
    pub defective: bool,
    /// A question of the input dropped, or one added (`FactCheck::question_changed`).
    pub question_changed: bool,
    /// A two-word phrase said more often than the input says it (`defects::phrase_repeated`).
    pub phrase_repeated: bool,
    /// Edit similarity to the input at or above the not-rewritten threshold.
    pub copy: bool,
    /// Meaning kept (content-encoder cosine to the input); `None` without an encoder.
    #[serde(rename = "meaning_kept")]
    pub meaning: Option<f64>,
}

/// The index of the candidate to keep: not defective before defective (a faithful copy is
/// harmless, a broken rewrite is not), then the fewer doubts — a question dropped or added
/// (readers mark "Is the room free?" → "The room is free." as changed meaning), a phrase
/// said again ("… announced that the winner will be announced") — then a rewrite before a
/// copy, then the highest meaning kept (missing or non-finite counts lowest), then the
/// earliest. `None` for no candidates.
pub fn pick(cands: &[Candidate]) -> Option<usize> {
    let meaning = |c: &Candidate| c.meaning.filter(|m| m.is_finite());
    (0..cands.len()).min_by(|&i, &j| {
        let (a, b) = (&cands[i], &cands[j]);
        a.defective
            .cmp(&b.defective)
            .then(a.doubts().cmp(&b.doubts()))
            .then(a.copy.cmp(&b.copy))
            .then_with(|| match (meaning(a), meaning(b)) {
                (Some(x), Some(y)) => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            })
            .then(i.cmp(&j))
    })
}

impl Candidate {
    /// How many of the milder signs (not defects) the rewrite shows.
    pub fn doubts(&self) -> u8 {
        u8::from(self.question_changed) + u8::from(self.phrase_repeated)
    }

    /// A rewrite to learn from: no detector flag, no doubt, not a copy of the input (what a
    /// rejection-sampling round keeps; docs/method.md#rejection-sampling).
    pub fn clean(&self) -> bool {
        !self.defective && self.doubts() == 0 && !self.copy
    }
}

/// One sampled rewrite: its text and whether it ended at an end-of-sequence token.
#[derive(Debug, Clone)]
pub struct Sampled {
    pub text: String,
    pub stopped_at_eos: bool,
}

/// For every input, the index of the kept rewrite among its samples and the candidates'
/// descriptions. `meaning` is the evaluation's content encoder (without one, the choice
/// rests on the detectors and the copy check alone).
pub fn choose(
    inputs: &[String],
    samples: &[Vec<Sampled>],
    refs: &ReferenceRuns,
    not_rewritten_threshold: f64,
    meaning: Option<&dyn SentenceEncoder>,
) -> Result<Vec<(usize, Vec<Candidate>)>> {
    let kept = match meaning {
        Some(enc) => {
            let pairs: Vec<(&str, &str)> = inputs
                .iter()
                .zip(samples)
                .flat_map(|(i, s)| s.iter().map(move |c| (i.as_str(), c.text.as_str())))
                .collect();
            Some(meaning_kept(enc, &pairs)?)
        }
        None => None,
    };
    let mut at = 0;
    let mut out = Vec::with_capacity(inputs.len());
    for (input, s) in inputs.iter().zip(samples) {
        let cands: Vec<Candidate> = s
            .iter()
            .map(|c| {
                let m = kept.as_ref().map(|k| k[at]);
                at += 1;
                let checked = quality::check(input, &c.text, refs, Some(c.stopped_at_eos));
                Candidate {
                    defective: checked.defective(),
                    question_changed: checked.facts.question_changed(),
                    phrase_repeated: crate::text::defects::phrase_repeated(input, &c.text),
                    copy: is_not_rewritten(input, &c.text, not_rewritten_threshold),
                    meaning: m,
                }
            })
            .collect();
        out.push((pick(&cands).unwrap_or(0), cands));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(defective: bool, copy: bool, meaning: Option<f64>) -> Candidate {
        Candidate {
            defective,
            question_changed: false,
            phrase_repeated: false,
            copy,
            meaning,
        }
    }

    #[test]
    fn a_kept_question_beats_a_closer_rewrite_that_drops_it_and_a_copy_beats_both() {
        let q = |changed, copy, m| Candidate {
            question_changed: changed,
            ..c(false, copy, Some(m))
        };
        assert_eq!(
            pick(&[q(true, false, 0.99), q(false, false, 0.90)]),
            Some(1)
        );
        assert_eq!(pick(&[q(true, false, 0.99), q(false, true, 1.0)]), Some(1));
        assert_eq!(
            pick(&[c(true, false, Some(0.9)), q(true, false, 0.5)]),
            Some(1),
            "a changed question is not worse than a detector flag"
        );
        let both = Candidate {
            phrase_repeated: true,
            ..q(true, false, 0.99)
        };
        assert_eq!(
            pick(&[both, q(true, false, 0.5)]),
            Some(1),
            "two doubts before one"
        );
    }

    #[test]
    fn clean_means_no_flag_no_doubt_and_no_copy() {
        assert!(c(false, false, None).clean());
        assert!(!c(true, false, Some(0.9)).clean());
        assert!(!c(false, true, Some(0.9)).clean());
        let doubt = Candidate {
            phrase_repeated: true,
            ..c(false, false, Some(0.9))
        };
        assert!(!doubt.clean());
    }

    #[test]
    fn a_faithful_rewrite_beats_a_closer_broken_one_and_a_copy() {
        let cands = [
            c(true, false, Some(0.99)),
            c(false, true, Some(1.0)),
            c(false, false, Some(0.80)),
            c(false, false, Some(0.90)),
        ];
        assert_eq!(pick(&cands), Some(3));
    }

    #[test]
    fn a_copy_beats_a_broken_rewrite() {
        assert_eq!(
            pick(&[c(true, false, Some(0.9)), c(false, true, Some(0.5))]),
            Some(1)
        );
    }

    #[test]
    fn missing_or_non_finite_meaning_counts_lowest_and_ties_keep_the_first() {
        assert_eq!(
            pick(&[c(false, false, None), c(false, false, Some(0.1))]),
            Some(1)
        );
        assert_eq!(
            pick(&[c(false, false, Some(f64::NAN)), c(false, false, Some(0.1))]),
            Some(1)
        );
        assert_eq!(
            pick(&[c(false, false, Some(0.5)), c(false, false, Some(0.5))]),
            Some(0)
        );
        assert_eq!(pick(&[c(true, true, None), c(true, true, None)]), Some(0));
        assert_eq!(pick(&[]), None);
    }

    #[test]
    fn choose_without_an_encoder_uses_the_detectors_and_the_copy_check() {
        let refs =
            ReferenceRuns::from_sentences(&["Once upon a time there was a fox.".to_string()]);
        let inputs = vec!["Please don't park in bay 12 on Friday.".to_string()];
        let s = |t: &str| Sampled {
            text: t.into(),
            stopped_at_eos: true,
        };
        let samples = vec![vec![
            s("Please park in bay 12 on Friday."),
            s("Please don't park in bay 12 on Friday."),
            s("Kindly do not leave your car in bay 12 this Friday. Can you do that?"),
            s("Kindly do not leave your car in bay 12 this Friday."),
        ]];
        let got = choose(&inputs, &samples, &refs, 0.95, None).unwrap();
        assert_eq!(got[0].0, 3, "{:?}", got[0].1);
        assert!(got[0].1[0].defective, "the lost negation is flagged");
        assert!(got[0].1[1].copy);
        assert!(got[0].1[2].question_changed && !got[0].1[2].defective);
    }
}
