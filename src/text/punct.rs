//! Punctuation counting for R_punctuation: every char in a Unicode punctuation category
//! (Pc, Pd, Ps, Pe, Pi, Pf, Po). Symbols such as `$`, `+` or emoji are not punctuation.
use regex::Regex;
use std::sync::OnceLock;

fn punct_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\p{P}").unwrap())
}

/// Whether `c` is Unicode punctuation (general category P*).
pub fn is_punctuation(c: char) -> bool {
    if c.is_ascii() {
        // ASCII punctuation minus the chars Unicode files under Symbol.
        return c.is_ascii_punctuation()
            && !matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~');
    }
    let mut buf = [0u8; 4];
    punct_re().is_match(c.encode_utf8(&mut buf))
}

/// Number of punctuation characters in `text`.
pub fn count_punctuation(text: &str) -> usize {
    text.chars().filter(|&c| is_punctuation(c)).count()
}
