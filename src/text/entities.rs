//! Rule-based entity extraction for R_ne_overlap (docs/method.md#r_ne_overlap): names
//! (people, places, organisations as capitalised spans), numbers, dates, times, money,
//! e-mails, URLs, @handles and #tags.
//!
//! Passes run in a fixed priority order over the whole text — e-mail, URL, handle, tag,
//! money, date, time, number, then names — and a span already claimed by an earlier pass
//! is not reused, so the digits of a URL are not also a number. Every entity carries a
//! canonical `norm` (case-folded, separators removed, dates/times in one format) and the
//! reward compares norms, so a rewrite that reformats "$1,200" as "1200 USD" keeps it.
//! Number words ("three") are not numbers here.
use super::candidate::Candidate;
pub use super::candidate::{normalize_entity, EntityKind};
use regex::{Captures, Regex};
use serde::Serialize;
use std::collections::HashSet;
use std::sync::OnceLock;

/// One entity occurrence: its class, the text as written, its canonical form and byte offset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entity {
    pub kind: EntityKind,
    pub text: String,
    pub norm: String,
    #[serde(skip)]
    pub start: usize,
}

/// A plain number with thousands separators (`1,234.56`, `1 000`, `1.234,56`) or a decimal.
pub const NUM: &str = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d{1,3}(?:[ \x{A0}\x{202F}]\d{3})+(?:[.,]\d+)?|\d{1,3}(?:\.\d{3})+,\d+|\d+(?:[.,]\d+)?";

const CURRENCY_CODES: &str = "USD|EUR|GBP|JPY|CHF|CAD|AUD|NZD|INR|CNY|RUB|SEK|NOK|DKK|PLN|BRL|MXN";

struct Patterns {
    email: Regex,
    url: Regex,
    domain: Regex,
    handle: Regex,
    hashtag: Regex,
    money_prefix: Regex,
    money_suffix: Regex,
    number: Regex,
}

fn pats() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        email: Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}").unwrap(),
        url: Regex::new(r#"(?i)\b(?:https?://|ftp://|www\.)[^\s<>"'“”‘’]+"#).unwrap(),
        domain: Regex::new(r"(?i)\b[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)*\.(?:com|org|net|edu|gov|io|ai|co|uk|de|fr|us|info|biz|dev|app)\b(?:/[^\s<>\x22']*)?").unwrap(),
        handle: Regex::new(r"(?:^|[^\w@.])(@[A-Za-z0-9_]{1,30})\b").unwrap(),
        hashtag: Regex::new(r"(?:^|[^\w&#])(#[\p{L}\p{N}_]*\p{L}[\p{L}\p{N}_]*)").unwrap(),
        money_prefix: Regex::new(&format!(
            r"(?:(?:US|A|C|NZ|HK)?([$€£¥₹₽₩])|\b({CURRENCY_CODES})\s?)\s?({NUM})(?:\s?(k|K|m|M|bn|million|billion|thousand)\b)?"
        ))
        .unwrap(),
        money_suffix: Regex::new(&format!(
            r"\b({NUM})(?:\s?(k|K|m|M|bn|million|billion|thousand))?\s?(?:([$€£¥₹])|\b({CURRENCY_CODES}|dollars?|euros?|pounds?|yen|cents?)\b)"
        ))
        .unwrap(),
        number: Regex::new(&format!(r"\b({NUM})(st|nd|rd|th|s)?\b(\s?%| percent\b)?")).unwrap(),
    })
}

/// All entities of `text`, in text order.
pub fn entities(text: &str) -> Vec<Entity> {
    entities_with_evidence(text, &HashSet::new()).0
}

/// Entities of an input and its rewrite, sharing name evidence: a one-word name at a
/// sentence start in one text counts when the other text capitalises it mid-sentence, so
/// moving "Bob" to the front of a sentence does not lose him.
pub fn entity_pair(input: &str, output: &str) -> (Vec<Entity>, Vec<Entity>) {
    let empty = HashSet::new();
    let (_, ev_in) = entities_with_evidence(input, &empty);
    let (_, ev_out) = entities_with_evidence(output, &empty);
    let known: HashSet<String> = ev_in.union(&ev_out).cloned().collect();
    (
        entities_with_evidence(input, &known).0,
        entities_with_evidence(output, &known).0,
    )
}

/// Entities of `text` with extra name evidence `known` (see [`entity_pair`]); also returns
/// the text's own evidence (names capitalised mid-sentence).
pub fn entities_with_evidence(
    text: &str,
    known: &HashSet<String>,
) -> (Vec<Entity>, HashSet<String>) {
    let mut taken = vec![false; text.len()];
    let mut found: Vec<Candidate> = Vec::new();
    claim(find_emails(text), &mut taken, &mut found);
    claim(find_urls(text), &mut taken, &mut found);
    claim(
        find_tagged(text, &pats().handle, EntityKind::Handle),
        &mut taken,
        &mut found,
    );
    claim(
        find_tagged(text, &pats().hashtag, EntityKind::Hashtag),
        &mut taken,
        &mut found,
    );
    claim(find_money(text), &mut taken, &mut found);
    claim(super::dates::find_dates(text), &mut taken, &mut found);
    claim(super::dates::find_times(text), &mut taken, &mut found);
    claim(find_numbers(text), &mut taken, &mut found);
    let (names, evidence) = super::names::find_names(text, &taken, known);
    claim(names, &mut taken, &mut found);
    found.sort_by_key(|c| c.start);
    merge_name_parts(&mut found);
    let ents = found
        .into_iter()
        .map(|c| Entity {
            kind: c.kind,
            text: text[c.start..c.end].to_string(),
            norm: c.norm,
            start: c.start,
        })
        .collect();
    (ents, evidence)
}

/// A one-word name that is a word of a longer name in the same text ("Nadia" after "Nadia
/// Flores") is the same entity: it takes the longer name's normal form.
fn merge_name_parts(found: &mut [Candidate]) {
    let long: Vec<String> = found
        .iter()
        .filter(|c| c.kind == EntityKind::Name && c.norm.contains(' '))
        .map(|c| c.norm.clone())
        .collect();
    for c in found
        .iter_mut()
        .filter(|c| c.kind == EntityKind::Name && !c.norm.contains(' '))
    {
        if let Some(full) = long.iter().find(|l| l.split(' ').any(|w| w == c.norm)) {
            c.norm = full.clone();
        }
    }
}

/// Keeps each candidate whose bytes are all still free, and marks them taken.
fn claim(cands: Vec<Candidate>, taken: &mut [bool], found: &mut Vec<Candidate>) {
    for c in cands {
        if c.start < c.end && !taken[c.start..c.end].iter().any(|&t| t) {
            taken[c.start..c.end].iter_mut().for_each(|t| *t = true);
            found.push(c);
        }
    }
}

/// Canonical digits of a [`NUM`] match: separators removed, decimal comma made a point,
/// trailing fractional zeros dropped ("1,200.50" → "1200.5", "1 000" → "1000").
pub fn canonical_number(s: &str) -> String {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let (int_part, frac) = match (compact.rfind('.'), compact.rfind(',')) {
        // Both present: the later one is the decimal mark.
        (Some(d), Some(c)) => {
            let k = d.max(c);
            (compact[..k].to_string(), Some(compact[k + 1..].to_string()))
        }
        // A single kind of mark: decimal only when it occurs once and is not followed by
        // exactly three digits as a thousands group ("1,200" is 1200, "3,50" is 3.5).
        (Some(k), None) | (None, Some(k)) => {
            let mark = compact.as_bytes()[k] as char;
            let tail = &compact[k + 1..];
            let once = compact.matches(mark).count() == 1;
            if once && (tail.len() != 3 || mark == '.') {
                (compact[..k].to_string(), Some(tail.to_string()))
            } else {
                (compact.clone(), None)
            }
        }
        (None, None) => (compact.clone(), None),
    };
    let digits: String = int_part.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    match frac.map(|f| f.trim_end_matches('0').to_string()) {
        Some(f) if !f.is_empty() => format!("{digits}.{f}"),
        _ => digits.to_string(),
    }
}

fn whole(c: &Captures, kind: EntityKind, norm: String) -> Candidate {
    let m = c.get(0).unwrap();
    Candidate {
        start: m.start(),
        end: m.end(),
        kind,
        norm,
    }
}

fn find_emails(text: &str) -> Vec<Candidate> {
    pats()
        .email
        .find_iter(text)
        .map(|m| Candidate {
            start: m.start(),
            end: m.end(),
            kind: EntityKind::Email,
            norm: m.as_str().to_lowercase(),
        })
        .collect()
}

fn find_urls(text: &str) -> Vec<Candidate> {
    let mut out = Vec::new();
    for re in [&pats().url, &pats().domain] {
        for m in re.find_iter(text) {
            // Sentence punctuation after a URL is not part of it.
            let s = m
                .as_str()
                .trim_end_matches(|c: char| ".,;:!?)]}'\"".contains(c));
            if s.is_empty() {
                continue;
            }
            let lower = s.to_lowercase();
            let mut norm = lower.as_str();
            for p in ["https://", "http://", "ftp://"] {
                norm = norm.strip_prefix(p).unwrap_or(norm);
            }
            norm = norm.strip_prefix("www.").unwrap_or(norm);
            let norm = norm.trim_end_matches('/').to_string();
            out.push(Candidate {
                start: m.start(),
                end: m.start() + s.len(),
                kind: EntityKind::Url,
                norm,
            });
        }
    }
    out
}

/// Handles and tags: the regex's group 1 is the entity (group 0 includes the char before it).
fn find_tagged(text: &str, re: &Regex, kind: EntityKind) -> Vec<Candidate> {
    re.captures_iter(text)
        .map(|c| {
            let m = c.get(1).unwrap();
            Candidate {
                start: m.start(),
                end: m.end(),
                kind,
                norm: m.as_str().to_lowercase(),
            }
        })
        .collect()
}

fn currency_code(sym: &str) -> String {
    match sym.to_lowercase().as_str() {
        "$" | "dollar" | "dollars" => "usd".into(),
        "€" | "euro" | "euros" => "eur".into(),
        "£" | "pound" | "pounds" => "gbp".into(),
        "¥" | "yen" => "jpy".into(),
        "₹" => "inr".into(),
        "₽" => "rub".into(),
        "₩" => "krw".into(),
        "cent" | "cents" => "cent".into(),
        other => other.to_string(),
    }
}

fn scale_suffix(s: Option<regex::Match>) -> &'static str {
    match s.map(|m| m.as_str().to_lowercase()).as_deref() {
        Some("k") | Some("thousand") => "k",
        Some("m") | Some("million") => "m",
        Some("bn") | Some("billion") => "bn",
        _ => "",
    }
}

fn find_money(text: &str) -> Vec<Candidate> {
    let p = pats();
    let mut out = Vec::new();
    for c in p.money_prefix.captures_iter(text) {
        let sym = c.get(1).or(c.get(2)).unwrap().as_str();
        let norm = format!(
            "{} {}{}",
            currency_code(sym),
            canonical_number(&c[3]),
            scale_suffix(c.get(4))
        );
        out.push(whole(&c, EntityKind::Money, norm));
    }
    for c in p.money_suffix.captures_iter(text) {
        let sym = c.get(3).or(c.get(4)).unwrap().as_str();
        let norm = format!(
            "{} {}{}",
            currency_code(sym),
            canonical_number(&c[1]),
            scale_suffix(c.get(2))
        );
        out.push(whole(&c, EntityKind::Money, norm));
    }
    out
}

fn find_numbers(text: &str) -> Vec<Candidate> {
    pats()
        .number
        .captures_iter(text)
        .map(|c| {
            // Ordinals and decades count as their number: "40th" and "1990s" are 40 and 1990.
            let mut norm = canonical_number(&c[1]);
            if c.get(3).is_some() {
                norm.push('%');
            }
            whole(&c, EntityKind::Number, norm)
        })
        .collect()
}
