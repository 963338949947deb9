//! `sentences(T)` (docs/method.md#sentences).
//!
//! Each line is split on Unicode sentence boundaries (UAX #29, `unicode-segmentation`);
//! pieces are trimmed and empty ones dropped, so a text with no boundary is one sentence
//! and newlines always separate sentences.
//!
//! One deliberate extension over bare UAX #29: UAX #29 breaks after "Dr." in "Dr. Smith"
//! (a full stop followed by a capital). A piece that ends in a title abbreviation from
//! [`TITLES`] is joined with the piece after it on the same line, because a reward that
//! scores "Dr." as a sentence of its own would reward title spam.
use unicode_segmentation::UnicodeSegmentation;

/// Abbreviations (without the dot, lower case) that never end a sentence in practice.
#[rustfmt::skip]
pub const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "mx", "dr", "prof", "rev", "fr", "sr", "st", "mt", "gen", "col", "capt", "lt", "sgt",
    "cpl", "hon", "gov", "sen", "rep", "pres", "supt", "insp", "messrs", "mme", "mlle", "e.g", "i.e", "vs",
    "cf", "approx", "ext", "tel", "fig", "vol", "dept",
];

/// The sentences of `text`, in order, trimmed, none empty.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut pending = String::new();
        for piece in line.split_sentence_bounds() {
            pending.push_str(piece);
            if ends_with_title(pending.trim_end()) {
                continue;
            }
            push_trimmed(&mut out, &pending);
            pending.clear();
        }
        push_trimmed(&mut out, &pending);
    }
    out
}

fn push_trimmed(out: &mut Vec<String>, s: &str) {
    let t = s.trim();
    if !t.is_empty() {
        out.push(t.to_string());
    }
}

/// True when `s` ends with "<title>." where the title is a whole word in [`TITLES`].
pub fn ends_with_title(s: &str) -> bool {
    let Some(body) = s.strip_suffix('.') else {
        return false;
    };
    let word_start = body
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_alphabetic() || *c == '.'))
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0);
    let word = body[word_start..].to_lowercase();
    !word.is_empty() && TITLES.contains(&word.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_detected_as_whole_words() {
        assert!(ends_with_title("I met Dr."));
        assert!(ends_with_title("e.g."));
        assert!(!ends_with_title("It was a dream."));
        assert!(!ends_with_title("Dr"));
    }
}
