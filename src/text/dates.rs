//! Date and time entities with canonical forms, so "March 1st" and "1 March" (or "5pm"
//! and "17:00") count as the same entity when a rewrite changes the format.
//!
//! Canonical forms: `YYYY-MM-DD`, `MM-DD` (no year), `YYYY-MM` (no day), `month-MM`
//! (a month name alone), the weekday name in lower case, and `HH:MM` (24 h) for times.
//! Slashed dates are read month/day/year (US) unless the first number exceeds 12;
//! dotted dates (1.3.2024) are day.month.year; two-digit years map to 20yy below 70,
//! else 19yy.
use super::candidate::{Candidate, EntityKind};
use regex::{Captures, Regex};
use std::sync::OnceLock;

const MONTH: &str = r"(Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\b\.?";

struct Patterns {
    iso: Regex,
    slash: Regex,
    dotted: Regex,
    month_day: Regex,
    day_month: Regex,
    month_year: Regex,
    month_alone: Regex,
    weekday: Regex,
    time_12: Regex,
    time_24: Regex,
}

fn pats() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        iso: Regex::new(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b").unwrap(),
        slash: Regex::new(r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b").unwrap(),
        dotted: Regex::new(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4})\b").unwrap(),
        month_day: Regex::new(&format!(r"\b{MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})\b)?")).unwrap(),
        day_month: Regex::new(&format!(r"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH}(?:,?\s+(\d{{4}})\b)?")).unwrap(),
        month_year: Regex::new(&format!(r"\b{MONTH},?\s+(\d{{4}})\b")).unwrap(),
        month_alone: Regex::new(r"\b(January|February|March|April|June|July|August|September|October|November|December)\b").unwrap(),
        weekday: Regex::new(r"\b(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)s?\b").unwrap(),
        time_12: Regex::new(r"\b(\d{1,2})(?:[:.](\d{2}))?(?::\d{2})?\s?([AaPp])\.?\s?[Mm]\.?").unwrap(),
        time_24: Regex::new(r"\b([01]?\d|2[0-3]):([0-5]\d)(?::[0-5]\d)?\b").unwrap(),
    })
}

/// Month number of an English month name or abbreviation.
pub fn month_number(name: &str) -> Option<u32> {
    let l = name.trim_end_matches('.').to_lowercase();
    let m = match l.get(..3)? {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => return None,
    };
    Some(m)
}

fn num(c: &Captures, i: usize) -> Option<u32> {
    c.get(i)?.as_str().parse().ok()
}

fn year(c: &Captures, i: usize) -> Option<u32> {
    let s = c.get(i)?.as_str();
    let y: u32 = s.parse().ok()?;
    Some(if s.len() == 2 {
        if y < 70 {
            2000 + y
        } else {
            1900 + y
        }
    } else {
        y
    })
}

fn ymd(y: Option<u32>, m: u32, d: Option<u32>) -> Option<String> {
    if !(1..=12).contains(&m) || d.is_some_and(|d| !(1..=31).contains(&d)) {
        return None;
    }
    Some(match (y, d) {
        (Some(y), Some(d)) => format!("{y:04}-{m:02}-{d:02}"),
        (None, Some(d)) => format!("{m:02}-{d:02}"),
        (Some(y), None) => format!("{y:04}-{m:02}"),
        (None, None) => format!("month-{m:02}"),
    })
}

fn push(out: &mut Vec<Candidate>, c: &Captures, kind: EntityKind, norm: Option<String>) {
    if let Some(norm) = norm {
        let m = c.get(0).unwrap();
        out.push(Candidate {
            start: m.start(),
            end: m.end(),
            kind,
            norm,
        });
    }
}

/// Date candidates, most specific patterns first (the caller keeps the first of overlaps).
pub fn find_dates(text: &str) -> Vec<Candidate> {
    let p = pats();
    let mut out = Vec::new();
    for c in p.iso.captures_iter(text) {
        push(
            &mut out,
            &c,
            EntityKind::Date,
            ymd(num(&c, 1), num(&c, 2).unwrap_or(0), num(&c, 3)),
        );
    }
    for c in p.slash.captures_iter(text) {
        let (a, b) = (num(&c, 1).unwrap_or(0), num(&c, 2).unwrap_or(0));
        let (m, d) = if a > 12 { (b, a) } else { (a, b) };
        push(&mut out, &c, EntityKind::Date, ymd(year(&c, 3), m, Some(d)));
    }
    for c in p.dotted.captures_iter(text) {
        push(
            &mut out,
            &c,
            EntityKind::Date,
            ymd(num(&c, 3), num(&c, 2).unwrap_or(0), num(&c, 1)),
        );
    }
    for c in p.month_day.captures_iter(text) {
        let m = month_number(&c[1]).unwrap_or(0);
        push(
            &mut out,
            &c,
            EntityKind::Date,
            ymd(num(&c, 3), m, num(&c, 2)),
        );
    }
    for c in p.day_month.captures_iter(text) {
        let m = month_number(&c[2]).unwrap_or(0);
        push(
            &mut out,
            &c,
            EntityKind::Date,
            ymd(num(&c, 3), m, num(&c, 1)),
        );
    }
    for c in p.month_year.captures_iter(text) {
        let m = month_number(&c[1]).unwrap_or(0);
        push(&mut out, &c, EntityKind::Date, ymd(num(&c, 2), m, None));
    }
    for c in p.month_alone.captures_iter(text) {
        let m = month_number(&c[1]).unwrap_or(0);
        push(&mut out, &c, EntityKind::Date, ymd(None, m, None));
    }
    for c in p.weekday.captures_iter(text) {
        push(&mut out, &c, EntityKind::Date, Some(c[1].to_lowercase()));
    }
    out
}

/// Time candidates ("5pm", "5:30 a.m.", "17:30"), canonical `HH:MM`.
pub fn find_times(text: &str) -> Vec<Candidate> {
    let p = pats();
    let mut out = Vec::new();
    for c in p.time_12.captures_iter(text) {
        let end = c.get(0).unwrap().end();
        // "5 amazing": the am/pm must not run on into a word.
        if text[end..]
            .chars()
            .next()
            .is_some_and(|ch| ch.is_alphanumeric())
        {
            continue;
        }
        let h = num(&c, 1).unwrap_or(99);
        let mi = num(&c, 2).unwrap_or(0);
        if !(1..=12).contains(&h) || mi > 59 {
            continue;
        }
        let pm = c[3].eq_ignore_ascii_case("p");
        let h24 = match (h, pm) {
            (12, false) => 0,
            (12, true) => 12,
            (h, true) => h + 12,
            (h, false) => h,
        };
        // "5pm." ends a sentence: without a dot inside am/pm, a final dot is the full stop.
        let whole = c.get(0).unwrap();
        let suffix = &text[c.get(3).unwrap().start()..whole.end()];
        let end = if suffix.ends_with('.') && suffix.matches('.').count() == 1 {
            whole.end() - 1
        } else {
            whole.end()
        };
        let norm = format!("{h24:02}:{mi:02}");
        out.push(Candidate {
            start: whole.start(),
            end,
            kind: EntityKind::Time,
            norm,
        });
    }
    for c in p.time_24.captures_iter(text) {
        let h = num(&c, 1).unwrap_or(0);
        let mi = num(&c, 2).unwrap_or(0);
        push(
            &mut out,
            &c,
            EntityKind::Time,
            Some(format!("{h:02}:{mi:02}")),
        );
    }
    out
}
