//! What the entity passes share: the entity classes, a proposed match, and the generic
//! normal form. Kept apart from `entities` so the name and date passes it calls do not
//! import it back.
use serde::Serialize;

/// The entity classes of docs/method.md#r_ne_overlap. People, places and organisations
/// cannot be told apart by rules, so they share `Name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Name,
    Number,
    Date,
    Time,
    Money,
    Email,
    Url,
    Handle,
    Hashtag,
}

/// A match proposed by one pass: byte range, class and canonical form.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub start: usize,
    pub end: usize,
    pub kind: EntityKind,
    pub norm: String,
}

/// Generic normal form: case-folded, curly quotes made straight, whitespace collapsed,
/// punctuation trimmed from both ends, a trailing possessive `'s` removed.
pub fn normalize_entity(s: &str) -> String {
    let folded: String = s
        .chars()
        .map(|c| match c {
            '’' | '‘' | '`' => '\'',
            '“' | '”' => '"',
            c => c,
        })
        .collect::<String>()
        .to_lowercase();
    let collapsed = folded.split_whitespace().collect::<Vec<_>>().join(" ");
    let trim = |c: char| super::punct::is_punctuation(c) || c.is_whitespace();
    let mut t = collapsed.trim_matches(trim).to_string();
    if let Some(stripped) = t.strip_suffix("'s") {
        t = stripped.trim_matches(trim).to_string();
    }
    t
}
