//! Names as capitalised spans (people, places, organisations).
//!
//! A span is a run of capitalised tokens ("New York City", "Mary-Jane O'Neil", "U.S. Army")
//! that may contain lower-case connectors followed by another capital ("Bank of America").
//! Rules against false positives:
//! - titles (Dr, Mr, Ms, …) and the pronoun "I" are never part of a name;
//! - at the start of a sentence (text start, after `.!?:…`, a newline or a bullet), a token
//!   from the [`STOP`] list (The, When, Please, …) is a common word, not a name;
//! - a one-token span at a sentence start ("Whiskers smiled.") counts only when the same
//!   token is also capitalised somewhere not at a sentence start in the text;
//! - all-caps memo words ([`CAPS_STOP`]) and lines written mostly in capitals are skipped.
use super::entities::{normalize_entity, Candidate, EntityKind};
use regex::Regex;
use std::collections::HashSet;
use std::sync::OnceLock;

/// Common words that are capitalised only because they start a sentence.
#[rustfmt::skip]
pub const STOP: &[&str] = &[
    "a", "an", "the", "this", "that", "these", "those", "it", "its", "it's", "he", "she", "we", "they", "you",
    "i", "me", "my", "our", "your", "his", "her", "their", "there", "here", "when", "what", "why", "how", "who",
    "whom", "where", "which", "whose", "if", "but", "and", "or", "so", "yet", "nor", "in", "on", "at", "for",
    "with", "from", "to", "by", "of", "about", "after", "before", "as", "because", "since", "while", "although",
    "though", "yes", "no", "not", "please", "thanks", "thank", "hi", "hello", "hey", "dear", "oh", "ah", "well",
    "also", "then", "now", "just", "all", "some", "any", "each", "every", "many", "most", "one", "two", "three",
    "first", "next", "last", "once", "do", "does", "did", "is", "are", "was", "were", "be", "been", "have",
    "has", "had", "can", "could", "will", "would", "shall", "should", "may", "might", "must", "let", "let's",
    "i'm", "i'll", "i've", "i'd", "don't", "didn't", "can't", "won't", "isn't", "wasn't", "there's", "that's",
    "what's", "you're", "we're", "they're", "he's", "she's", "still", "even", "only", "maybe", "perhaps",
    "sure", "okay", "ok", "good", "great", "sorry", "regards", "best", "cheers", "sincerely", "note", "re",
    "subject", "today", "tomorrow", "yesterday", "tonight", "everyone", "everybody", "someone", "nobody",
    "nothing", "something", "other", "another", "such", "both", "either", "neither", "more", "less", "very",
    "much", "again", "never", "always", "often", "sometimes", "soon", "later", "meanwhile", "however",
    "therefore", "finally", "instead", "otherwise", "indeed", "suddenly", "unfortunately", "fortunately",
    "luckily", "actually", "really", "wow", "whoa", "ugh", "alas", "hooray", "goodbye", "bye", "welcome",
    "attention", "action", "update",
];

/// Titles dropped from names ("Dr. Smith" is the name "Smith").
#[rustfmt::skip]
pub const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "mx", "dr", "prof", "professor", "rev", "sir", "dame", "lord", "lady", "madam", "miss",
    "st", "sr", "jr", "capt", "captain", "gen", "general", "col", "lt", "sgt", "hon", "gov", "sen", "rep",
    "president", "doctor", "mister", "uncle", "aunt",
];

/// All-caps words common in memos and chat that are not organisations.
#[rustfmt::skip]
pub const CAPS_STOP: &[&str] = &[
    "ok", "okay", "fyi", "asap", "urgent", "note", "ps", "am", "pm", "todo", "re", "fw", "fwd", "cc", "bcc",
    "btw", "lol", "omg", "imo", "imho", "tbd", "tba", "eta", "eod", "cob", "yes", "no", "faq", "diy", "rsvp",
    "ooo", "wfh", "np", "thx", "pls", "aka", "vs", "etc",
];

/// Lower-case words allowed inside a name when another capital follows.
#[rustfmt::skip]
const CONNECTORS: &[&str] = &[
    "of", "the", "de", "van", "von", "der", "den", "da", "del", "della", "di", "du", "la", "le", "al", "bin",
    "y", "&",
];

fn token_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?:\p{Lu}\.){2,}|[\p{L}\p{N}][\p{L}\p{M}\p{N}'’\-]*|&").unwrap())
}

struct Tok {
    start: usize,
    end: usize,
    cap: bool,
    initial: bool,
    lower: String,
}

fn is_caps_word(s: &str) -> bool {
    let letters: Vec<char> = s.chars().filter(|c| c.is_alphabetic()).collect();
    letters.len() >= 2 && letters.iter().all(|c| c.is_uppercase())
}

/// Whether the token starting at `start` begins a sentence (see module docs).
fn starts_sentence(text: &str, start: usize) -> bool {
    let before = &text[..start];
    // A word glued to an opening quote starts a quoted sentence.
    if before.chars().last().is_some_and(|c| "\"“‘'".contains(c)) {
        return true;
    }
    let trimmed = before.trim_end_matches(|c: char| {
        (c.is_whitespace() && c != '\n') || "\"“‘'([{*•–—-".contains(c)
    });
    let Some(last) = trimmed.chars().last() else {
        return true;
    };
    match last {
        '\n' | '!' | '?' | ':' | '…' => true,
        '.' => {
            // "Dr. Smith" and "U.S. Army": the dot after a title or initialism ends no sentence.
            let word: String = trimmed[..trimmed.len() - 1]
                .chars()
                .rev()
                .take_while(|c| c.is_alphabetic() || *c == '.')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let w = word.to_lowercase();
            !(TITLES.contains(&w.as_str())
                || super::sentences::TITLES.contains(&w.as_str())
                || w.contains('.'))
        }
        _ => false,
    }
}

fn shouting_lines(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut off = 0;
    for line in text.split_inclusive('\n') {
        let words: Vec<&str> = line
            .split_whitespace()
            .filter(|w| w.chars().any(|c| c.is_alphabetic()))
            .collect();
        let caps = words.iter().filter(|w| is_caps_word(w)).count();
        if words.len() >= 4 && caps * 10 >= words.len() * 7 {
            out.push((off, off + line.len()));
        }
        off += line.len();
    }
    out
}

/// Name candidates in `text`, skipping bytes already claimed by other passes (`taken`).
/// `known` adds evidence from elsewhere (normal forms of tokens seen capitalised mid-sentence
/// in a companion text), so that "Bob met Alice." counts Bob when the rewrite says
/// "Then Bob met Alice." Returns the candidates and this text's own mid-sentence evidence.
pub fn find_names(
    text: &str,
    taken: &[bool],
    known: &HashSet<String>,
) -> (Vec<Candidate>, HashSet<String>) {
    let shouting = shouting_lines(text);
    let toks: Vec<Tok> = token_re()
        .find_iter(text)
        .filter(|m| !taken[m.start()..m.end()].iter().any(|&t| t))
        .filter(|m| {
            !shouting
                .iter()
                .any(|&(a, b)| m.start() >= a && m.start() < b)
        })
        .map(|m| {
            let s = m.as_str().trim_end_matches(['\'', '’', '-']);
            let lower = s.to_lowercase();
            let first = s.chars().next().unwrap_or(' ');
            let excluded = TITLES.contains(&lower.as_str())
                || matches!(
                    lower.as_str(),
                    "i" | "i'm" | "i’m" | "i'll" | "i've" | "i'd"
                )
                || (is_caps_word(s) && CAPS_STOP.contains(&lower.as_str()));
            Tok {
                start: m.start(),
                end: m.start() + s.len(),
                cap: first.is_uppercase() && !excluded,
                initial: starts_sentence(text, m.start()),
                lower,
            }
        })
        .collect();

    // Spans of token indices [a, b).
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if !t.cap || (t.initial && STOP.contains(&t.lower.as_str())) {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        loop {
            // Extend over connectors only when a capitalised token follows them.
            let mut k = j;
            while k < toks.len()
                && k - j < 2
                && CONNECTORS.contains(&toks[k].lower.as_str())
                && adjacent(text, &toks[k - 1], &toks[k])
            {
                k += 1;
            }
            if k < toks.len()
                && toks[k].cap
                && !toks[k].initial
                && adjacent(text, &toks[k - 1], &toks[k])
            {
                j = k + 1;
            } else {
                break;
            }
        }
        spans.push((i, j));
        i = j;
    }

    let mid_sentence: HashSet<String> = spans
        .iter()
        .flat_map(|&(a, b)| {
            (a..b)
                .filter(|&k| !toks[k].initial && toks[k].cap)
                .map(|k| normalize_entity(&toks[k].lower))
        })
        .collect();
    let names = spans
        .into_iter()
        .filter(|&(a, b)| {
            let norm = normalize_entity(&toks[a].lower);
            !(b - a == 1
                && toks[a].initial
                && !mid_sentence.contains(&norm)
                && !known.contains(&norm))
        })
        .map(|(a, b)| {
            let s = &text[toks[a].start..toks[b - 1].end];
            Candidate {
                start: toks[a].start,
                end: toks[b - 1].end,
                kind: EntityKind::Name,
                norm: normalize_entity(s),
            }
        })
        .filter(|c| !c.norm.is_empty())
        .collect();
    (names, mid_sentence)
}

/// Two tokens are adjacent in a name when only spaces (no newline, no punctuation) lie between.
fn adjacent(text: &str, a: &Tok, b: &Tok) -> bool {
    let gap = &text[a.end..b.start];
    !gap.is_empty() && gap.chars().all(|c| c == ' ' || c == '\u{a0}')
}
