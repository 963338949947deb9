//! Names as capitalised spans (people, places, organisations).
//!
//! A span is a run of capitalised tokens ("New York City", "Mary-Jane O'Neil", "U.S. Army")
//! that may contain lower-case connectors followed by another capital ("Bank of America").
//! Rules against false positives:
//! - titles (Dr, Mr, Ms, …) and the pronoun "I" are never part of a name;
//! - at the start of a sentence (text start, after `.!?:…`, a newline or a bullet), a token
//!   from the [`STOP`] list (The, When, Please, …) is a common word, not a name;
//! - a one-token span at a sentence start ("Whiskers smiled.") counts only when the same
//!   token is also capitalised somewhere not at a sentence start in the text (or in the
//!   companion text given as `known`); leading words of a longer span at a sentence start
//!   need the same evidence ("Tell Sophie" is Sophie) unless they are [`NAME_HEADS`]
//!   ("New York City"); a possessive ends a name and an acronym after a title-case word
//!   starts a new one; a leading "the" is dropped from the normal form;
//! - all-caps memo words ([`CAPS_STOP`]) and lines written mostly in capitals are skipped.
use super::candidate::{normalize_entity, Candidate, EntityKind};
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
    "st", "sr", "jr", "capt", "captain", "gen", "col", "lt", "sgt", "hon", "gov", "sen", "rep",
    "president", "doctor", "mister", "uncle", "aunt",
];

/// All-caps words common in memos and chat that are not organisations.
#[rustfmt::skip]
pub const CAPS_STOP: &[&str] = &[
    "ok", "okay", "fyi", "asap", "urgent", "note", "ps", "am", "pm", "todo", "re", "fw", "fwd", "cc", "bcc",
    "btw", "lol", "omg", "imo", "imho", "tbd", "tba", "eta", "eod", "cob", "yes", "no", "faq", "diy", "rsvp",
    "ooo", "wfh", "np", "thx", "pls", "aka", "vs", "etc",
];

/// Words that often open a multi-word name; kept at a sentence start without evidence.
#[rustfmt::skip]
pub const NAME_HEADS: &[&str] = &[
    "new", "north", "south", "east", "west", "san", "santa", "saint", "los", "las", "el", "fort", "port", "mount",
    "lake", "glen", "upper", "lower", "old", "great", "royal", "united", "national", "university", "bank", "st",
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
    /// Ends in 's: the name ends here ("Kai's BBQ" is Kai).
    possessive: bool,
    /// All capitals: an acronym after a title-case name starts a new one.
    caps: bool,
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
            // An initialism has one letter between dots; "example.com." does end a sentence.
            let initialism = w.contains('.') && w.split('.').all(|seg| seg.chars().count() <= 1);
            // Only abbreviated titles ("Dr.") keep a sentence going; "in general." ends one.
            !(super::sentences::TITLES.contains(&w.as_str()) || initialism)
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
                || (is_caps_word(s)
                    && (CAPS_STOP.contains(&lower.as_str()) || STOP.contains(&lower.as_str())));
            Tok {
                start: m.start(),
                end: m.start() + s.len(),
                cap: first.is_uppercase() && !excluded,
                initial: starts_sentence(text, m.start()),
                possessive: lower.ends_with("'s") || lower.ends_with("’s"),
                caps: is_caps_word(s),
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
            let last = &toks[j - 1];
            if k < toks.len()
                && toks[k].cap
                && !toks[k].initial
                && !last.possessive
                && !(toks[k].caps && !last.caps)
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
    // At a sentence start, leading words without mid-sentence evidence (here or in `known`)
    // are ordinary capitalised words: "Tell Sophie" is Sophie, "Blue Corolla" is Corolla.
    let evident = |k: usize| {
        let n = normalize_entity(&toks[k].lower);
        mid_sentence.contains(&n) || known.contains(&n)
    };
    let head = |k: usize| NAME_HEADS.contains(&normalize_entity(&toks[k].lower).as_str());
    let names = spans
        .into_iter()
        .filter_map(|(mut a, b)| {
            if toks[a].initial {
                while b - a > 1 && !evident(a) && !head(a) {
                    a += 1;
                    while a < b && !toks[a].cap {
                        a += 1;
                    }
                }
                if a >= b || (b - a == 1 && toks[a].initial && !evident(a)) {
                    return None;
                }
            }
            let s = &text[toks[a].start..toks[b - 1].end];
            let norm = normalize_entity(s);
            let norm = norm.strip_prefix("the ").map(String::from).unwrap_or(norm);
            Some(Candidate {
                start: toks[a].start,
                end: toks[b - 1].end,
                kind: EntityKind::Name,
                norm,
            })
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
