//! Blind A/B review (docs/method.md#blind-review): a sheet of items (reference excerpt,
//! input, output A, output B) whose A/B order is drawn from a seed, a key kept apart that
//! says which system wrote A, and the score of a reader's verdicts against the key.
//!
//! Pure: no model, no files; the CLI reads and writes them.
use crate::rng::SplitMix64;
use anyhow::{bail, Context, Result};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// The judged dimensions, in sheet order.
pub const DIMENSIONS: [&str; 3] = ["style", "meaning", "fluency"];

/// One item as the reader sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SheetItem {
    pub id: String,
    pub input: String,
    pub a: String,
    pub b: String,
}

/// What the reader gets: no system names anywhere.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sheet {
    pub sheet_id: String,
    pub title: String,
    pub reference_excerpt: Vec<String>,
    pub items: Vec<SheetItem>,
}

/// Which system wrote A for one item.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyItem {
    pub id: String,
    /// Place of the input in the outputs file (its `index`).
    pub index: usize,
    pub a: String,
    pub b: String,
}

/// The key: kept apart from the sheet.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Key {
    pub sheet_id: String,
    pub seed: u64,
    pub systems: [String; 2],
    pub items: Vec<KeyItem>,
}

/// One input's outputs from the two systems.
#[derive(Debug, Clone)]
pub struct Pair {
    pub index: usize,
    pub input: String,
    pub first: String,
    pub second: String,
}

/// FNV-1a over the sheet's content: the key names the sheet it belongs to.
fn content_id(title: &str, items: &[SheetItem]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |s: &str| {
        for b in s.bytes().chain([0u8]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(title);
    for it in items {
        for s in [&it.id, &it.input, &it.a, &it.b] {
            eat(s);
        }
    }
    format!("{h:016x}")
}

/// Builds the sheet and its key: item order shuffled and each item's A/B order drawn, both
/// from `seed`. `systems` = (first, second) names the pairs' two outputs.
pub fn make(
    title: &str,
    systems: (&str, &str),
    pairs: &[Pair],
    reference_excerpt: Vec<String>,
    seed: u64,
) -> Result<(Sheet, Key)> {
    if pairs.is_empty() {
        bail!("no items: the outputs file has no input rewritten by both systems");
    }
    let mut rng = SplitMix64::new(seed);
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    // Fisher–Yates with the crate's own RNG, so a seed gives the same sheet on any build.
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let mut items = Vec::new();
    let mut key_items = Vec::new();
    for (n, &p) in order.iter().enumerate() {
        let pr = &pairs[p];
        let flip = rng.next_u64() & 1 == 1;
        let (a, b, sa, sb) = if flip {
            (&pr.second, &pr.first, systems.1, systems.0)
        } else {
            (&pr.first, &pr.second, systems.0, systems.1)
        };
        let id = format!("item-{:03}", n + 1);
        items.push(SheetItem {
            id: id.clone(),
            input: pr.input.clone(),
            a: a.clone(),
            b: b.clone(),
        });
        key_items.push(KeyItem {
            id,
            index: pr.index,
            a: sa.to_string(),
            b: sb.to_string(),
        });
    }
    let sheet_id = content_id(title, &items);
    Ok((
        Sheet {
            sheet_id: sheet_id.clone(),
            title: title.to_string(),
            reference_excerpt,
            items,
        },
        Key {
            sheet_id,
            seed,
            systems: [systems.0.to_string(), systems.1.to_string()],
            items: key_items,
        },
    ))
}

/// A reader's choice on one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    A,
    B,
    Tie,
}

/// One verdict line: the sheet, the item, a choice per dimension, and optionally which
/// outputs the reader marked seriously defective.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub id: String,
    pub choices: [Choice; 3],
    pub a_defective: Option<bool>,
    pub b_defective: Option<bool>,
}

/// Parses one verdict JSON line; errors name the line and the field.
pub fn parse_verdict(line: &str, lineno: usize, sheet_id: &str) -> Result<Verdict> {
    let v: serde_json::Value =
        serde_json::from_str(line).with_context(|| format!("verdicts line {lineno}: not JSON"))?;
    let field = |k: &str| -> Result<&str> {
        v.get(k)
            .and_then(|x| x.as_str())
            .with_context(|| format!("verdicts line {lineno}: missing field '{k}'"))
    };
    let sid = field("sheet_id")?;
    if sid != sheet_id {
        bail!(
            "verdicts line {lineno}: sheet_id {sid} is not the key's sheet {sheet_id}: the key belongs to another sheet"
        );
    }
    let id = field("id")?.to_string();
    let mut choices = [Choice::Tie; 3];
    for (c, d) in choices.iter_mut().zip(DIMENSIONS) {
        *c = match field(d)? {
            "A" | "a" => Choice::A,
            "B" | "b" => Choice::B,
            "tie" | "TIE" | "Tie" => Choice::Tie,
            other => bail!("verdicts line {lineno}: {d} = '{other}': use A, B or tie"),
        };
    }
    let flag = |k: &str| -> Result<Option<bool>> {
        match v.get(k) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(x) => x
                .as_bool()
                .map(Some)
                .with_context(|| format!("verdicts line {lineno}: {k} must be true or false")),
        }
    };
    Ok(Verdict {
        id,
        choices,
        a_defective: flag("a_defective")?,
        b_defective: flag("b_defective")?,
    })
}

/// Wins of each system on one dimension.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DimensionScore {
    pub dimension: String,
    pub wins: usize,
    pub losses: usize,
    pub ties: usize,
    /// Share of decided items the first system won, with a 95 % Wilson interval.
    pub win_share: Option<f64>,
    pub win_share_lo: Option<f64>,
    pub win_share_hi: Option<f64>,
    /// Two-sided exact sign test over decided items.
    pub sign_test_p: f64,
}

/// The whole score, from the first system's side (`systems[0]` of the key).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Score {
    pub sheet_id: String,
    pub systems: [String; 2],
    pub items: usize,
    pub dimensions: Vec<DimensionScore>,
    /// % of items the reader marked seriously defective, per system (when marked).
    pub defective_percent: BTreeMap<String, f64>,
    /// Style on the items where both outputs are rewrites (neither a copy of the input): with
    /// no style on either side a reader's "closer in style" follows the intact text, so a
    /// copier can win the plain tally (results/rft-grpo-nocopy/). Needs the sheet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style_both_rewrote: Option<DimensionScore>,
}

/// 95 % Wilson score interval for k successes out of n.
pub fn wilson(k: usize, n: usize) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let z = 1.959_963_984_540_054_f64;
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let den = 1.0 + z * z / n;
    let mid = (p + z * z / (2.0 * n)) / den;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / den;
    Some(((mid - half).max(0.0), (mid + half).min(1.0)))
}

/// Two-sided exact sign test: P(a split at least as uneven as k : n − k) under p = ½.
pub fn sign_test(k: usize, n: usize) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let m = k.min(n - k);
    // log C(n, i) accumulated, so n in the thousands does not overflow.
    let ln2n = n as f64 * std::f64::consts::LN_2;
    let mut ln_c = 0.0f64;
    let mut tail = 0.0f64;
    for i in 0..=m {
        if i > 0 {
            ln_c += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_c - ln2n).exp();
    }
    (2.0 * tail).min(1.0)
}

/// One dimension's counts with the Wilson interval of the win share and the sign test.
fn dimension_score(name: &str, w: usize, l: usize, t: usize) -> DimensionScore {
    let n = w + l;
    let iv = wilson(w, n);
    DimensionScore {
        dimension: name.to_string(),
        wins: w,
        losses: l,
        ties: t,
        win_share: (n > 0).then(|| w as f64 / n as f64),
        win_share_lo: iv.map(|x| x.0),
        win_share_hi: iv.map(|x| x.1),
        sign_test_p: sign_test(w, n),
    }
}

/// Several readings pooled into one (e.g. one sheet per training seed, each system pair in the
/// same roles): wins, losses and ties summed per dimension, the interval and the sign test taken
/// over all decided items; each role's defective % weighted by its marked items. The pooled
/// systems are each role's names joined by "/"; the sheet ids are joined by "+".
pub fn pool(scores: &[Score]) -> Result<Score> {
    if scores.is_empty() {
        bail!("no scores to pool");
    }
    let join = |f: &dyn Fn(&Score) -> &str| {
        let mut names: Vec<&str> = Vec::new();
        for s in scores {
            if !names.contains(&f(s)) {
                names.push(f(s));
            }
        }
        names.join("/")
    };
    let systems = [
        join(&|s| s.systems[0].as_str()),
        join(&|s| s.systems[1].as_str()),
    ];
    let mut dims = Vec::new();
    for name in DIMENSIONS {
        let mut ds = Vec::new();
        for s in scores {
            let Some(d) = s.dimensions.iter().find(|d| d.dimension == name) else {
                bail!("score of sheet {} has no {name} dimension", s.sheet_id);
            };
            ds.push(d);
        }
        dims.push(summed(name, &ds));
    }
    let mut defective_percent = BTreeMap::new();
    for (role, pooled) in systems.iter().enumerate() {
        let (mut marked, mut items) = (0.0, 0usize);
        for s in scores {
            if let Some(p) = s.defective_percent.get(&s.systems[role]) {
                marked += p / 100.0 * s.items as f64;
                items += s.items;
            }
        }
        if items > 0 {
            defective_percent.insert(pooled.clone(), 100.0 * marked / items as f64);
        }
    }
    Ok(Score {
        sheet_id: scores
            .iter()
            .map(|s| s.sheet_id.as_str())
            .collect::<Vec<_>>()
            .join("+"),
        systems,
        items: scores.iter().map(|s| s.items).sum(),
        dimensions: dims,
        defective_percent,
        // Summed only when every reading has it.
        style_both_rewrote: scores
            .iter()
            .map(|s| s.style_both_rewrote.as_ref())
            .collect::<Option<Vec<_>>>()
            .map(|ds| summed(DIMENSIONS[0], &ds)),
    })
}

/// Several readings' counts of one dimension summed, the interval and test taken again.
fn summed(name: &str, ds: &[&DimensionScore]) -> DimensionScore {
    let sum = |f: fn(&DimensionScore) -> usize| ds.iter().map(|d| f(d)).sum();
    dimension_score(name, sum(|d| d.wins), sum(|d| d.losses), sum(|d| d.ties))
}

/// Scores verdicts against the key. Every sheet item must have exactly one verdict; a
/// verdict for an item not in the key, or a second verdict for one, is an error.
pub fn score(key: &Key, verdicts: &[Verdict]) -> Result<Score> {
    let items: BTreeMap<&str, &KeyItem> = key.items.iter().map(|k| (k.id.as_str(), k)).collect();
    let mut seen = HashSet::new();
    for v in verdicts {
        if !items.contains_key(v.id.as_str()) {
            bail!("verdict for item '{}', which is not in the key", v.id);
        }
        if !seen.insert(v.id.as_str()) {
            bail!("two verdicts for item '{}': keep one", v.id);
        }
    }
    if verdicts.is_empty() {
        bail!("no verdicts: answer some items and export again");
    }
    let first = &key.systems[0];
    let mut dims = Vec::new();
    for (d, name) in DIMENSIONS.iter().enumerate() {
        let picks = verdicts
            .iter()
            .map(|v| (v.choices[d], &items[v.id.as_str()].a == first));
        dims.push(tally(name, picks));
    }
    let mut defective_percent = BTreeMap::new();
    for sys in &key.systems {
        let marks: Vec<bool> = verdicts
            .iter()
            .filter_map(|v| {
                let k = items[v.id.as_str()];
                if &k.a == sys {
                    v.a_defective
                } else {
                    v.b_defective
                }
            })
            .collect();
        if !marks.is_empty() {
            let n = marks.iter().filter(|&&m| m).count();
            defective_percent.insert(sys.clone(), 100.0 * n as f64 / marks.len() as f64);
        }
    }
    Ok(Score {
        sheet_id: key.sheet_id.clone(),
        systems: key.systems.clone(),
        items: verdicts.len(),
        dimensions: dims,
        defective_percent,
        style_both_rewrote: None,
    })
}

/// The style tally over the items where neither output is a copy of its input (edit
/// similarity below `threshold`, as the evaluation's not-rewritten share), from the key's
/// first system's side. The sheet gives each item's input and outputs.
pub fn style_both_rewrote(
    key: &Key,
    sheet: &Sheet,
    verdicts: &[Verdict],
    threshold: f64,
) -> Result<DimensionScore> {
    if sheet.sheet_id != key.sheet_id {
        bail!(
            "the sheet is {}, the key's is {}: give the sheet this key was made with",
            sheet.sheet_id,
            key.sheet_id
        );
    }
    let items: BTreeMap<&str, &SheetItem> =
        sheet.items.iter().map(|i| (i.id.as_str(), i)).collect();
    let keys: BTreeMap<&str, &KeyItem> = key.items.iter().map(|k| (k.id.as_str(), k)).collect();
    let mut picks = Vec::new();
    for v in verdicts {
        let (Some(it), Some(k)) = (items.get(v.id.as_str()), keys.get(v.id.as_str())) else {
            bail!("verdict for item '{}', which is not in the sheet", v.id);
        };
        let copy = |out: &str| super::metrics::is_not_rewritten(&it.input, out, threshold);
        if !(copy(&it.a) || copy(&it.b)) {
            picks.push((v.choices[0], k.a == key.systems[0]));
        }
    }
    Ok(tally(DIMENSIONS[0], picks.into_iter()))
}

/// One dimension's score from the reader's picks, each with whether A is the first system.
fn tally(name: &str, picks: impl Iterator<Item = (Choice, bool)>) -> DimensionScore {
    let (mut w, mut l, mut t) = (0, 0, 0);
    for pick in picks {
        match pick {
            (Choice::Tie, _) => t += 1,
            (Choice::A, true) | (Choice::B, false) => w += 1,
            _ => l += 1,
        }
    }
    dimension_score(name, w, l, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_readings_sum_counts_and_retest() {
        let one = |id: &str, first: &str, w: usize, l: usize, t: usize, def: f64| Score {
            sheet_id: id.into(),
            systems: [first.into(), "sft".into()],
            items: w + l + t,
            dimensions: DIMENSIONS
                .iter()
                .map(|d| dimension_score(d, w, l, t))
                .collect(),
            defective_percent: BTreeMap::from([(first.to_string(), def), ("sft".into(), 50.0)]),
            style_both_rewrote: None,
        };
        // 6 of 8 decided in each of two readings: p 0.29 alone, 12 of 16 pooled: p 0.077.
        let (a, b) = (
            one("x", "grpo-s0", 6, 2, 2, 10.0),
            one("y", "grpo-s1", 6, 2, 2, 30.0),
        );
        assert!(a.dimensions[0].sign_test_p > 0.2);
        let p = pool(&[a, b]).unwrap();
        assert_eq!(
            p.systems,
            ["grpo-s0/grpo-s1".to_string(), "sft".to_string()]
        );
        assert_eq!(p.items, 20);
        assert_eq!(p.sheet_id, "x+y");
        let d = &p.dimensions[1];
        assert_eq!((d.wins, d.losses, d.ties), (12, 4, 4));
        assert!((d.sign_test_p - sign_test(12, 16)).abs() < 1e-12 && d.sign_test_p < 0.08);
        assert!((p.defective_percent["grpo-s0/grpo-s1"] - 20.0).abs() < 1e-9);
        assert!((p.defective_percent["sft"] - 50.0).abs() < 1e-9);
        assert!(pool(&[]).is_err());
    }

    #[test]
    fn style_where_both_rewrote_skips_items_with_a_copy() {
        let input = "Please don't park in bay 12 on Friday.";
        let rewrite = "Kindly leave bay 12 free this Friday, if you would.";
        let item = |id: &str, a: &str, b: &str| SheetItem {
            id: id.into(),
            input: input.into(),
            a: a.into(),
            b: b.into(),
        };
        let sheet = Sheet {
            sheet_id: "s".into(),
            title: "t".into(),
            reference_excerpt: vec![],
            items: vec![
                item("i1", input, rewrite),
                item("i2", rewrite, "Do not park in bay 12 on Friday, please."),
                item("i3", "Bay 12 stays empty on Friday, please.", rewrite),
            ],
        };
        let k = |id: &str, a: &str, b: &str| KeyItem {
            id: id.into(),
            index: 0,
            a: a.into(),
            b: b.into(),
        };
        let key = Key {
            sheet_id: "s".into(),
            seed: 0,
            systems: ["rl".into(), "sft".into()],
            items: vec![
                k("i1", "rl", "sft"),
                k("i2", "sft", "rl"),
                k("i3", "rl", "sft"),
            ],
        };
        let v = |id: &str, style: &str| {
            let line = format!(
                r#"{{"sheet_id": "s", "id": "{id}", "style": "{style}", "meaning": "tie", "fluency": "tie"}}"#
            );
            parse_verdict(&line, 1, "s").unwrap()
        };
        // i1: the copy (rl's A) wins style; i2: rl's B wins; i3: sft's B wins.
        let verdicts = [v("i1", "A"), v("i2", "B"), v("i3", "B")];
        let all = score(&key, &verdicts).unwrap();
        assert_eq!((all.dimensions[0].wins, all.dimensions[0].losses), (2, 1));
        let both = style_both_rewrote(&key, &sheet, &verdicts, 0.95).unwrap();
        assert_eq!((both.wins, both.losses, both.ties), (1, 1, 0));
        let other = Sheet {
            sheet_id: "x".into(),
            ..sheet.clone()
        };
        assert!(style_both_rewrote(&key, &other, &verdicts, 0.95).is_err());
        let mut one = all.clone();
        one.style_both_rewrote = Some(both);
        let p = pool(&[one.clone(), one.clone()]).unwrap();
        let d = p.style_both_rewrote.unwrap();
        assert_eq!((d.wins, d.losses), (2, 2));
        assert!(pool(&[one, all]).unwrap().style_both_rewrote.is_none());
    }

    #[test]
    fn sign_test_and_wilson_match_known_values() {
        // 10 of 10: 2 / 1024.
        assert!((sign_test(10, 10) - 2.0 / 1024.0).abs() < 1e-12);
        assert!((sign_test(5, 10) - 1.0).abs() < 1e-12);
        // 2 of 10: 2 · (1 + 10 + 45) / 1024.
        assert!((sign_test(2, 10) - 112.0 / 1024.0).abs() < 1e-12);
        let (lo, hi) = wilson(8, 10).unwrap();
        assert!(
            (lo - 0.4902).abs() < 1e-3 && (hi - 0.9433).abs() < 1e-3,
            "{lo} {hi}"
        );
    }
}

/// The self-contained review page: the sheet embedded as JSON (no network, no files), the
/// answers kept in the browser's localStorage under the sheet id, export as JSONL.
pub fn page(sheet: &Sheet) -> Result<String> {
    // "</" inside the embedded JSON would close the script element early.
    let json = serde_json::to_string(sheet)?.replace("</", "<\\/");
    Ok(include_str!("review_page.html").replacen("__SHEET_JSON__", &json, 1))
}

/// The sheet as Markdown, for a reader who works from text: the same items, no key.
pub fn sheet_markdown(sheet: &Sheet) -> String {
    let mut s = format!(
        "# {}\n\nsheet_id: {}\n\nReference (the target style): {}\n\nFor each item, choose A, B or tie for style (closer to the reference's manner), meaning (keeps the input's facts, requests and negations) and fluency (natural, well-formed text), and mark an output seriously defective where it is. One JSON line per item:\n\n    {{\"sheet_id\": \"{}\", \"id\": \"item-001\", \"style\": \"A\", \"meaning\": \"tie\", \"fluency\": \"B\", \"a_defective\": false, \"b_defective\": true}}\n\n",
        sheet.title,
        sheet.sheet_id,
        sheet.reference_excerpt.join(" "),
        sheet.sheet_id
    );
    for it in &sheet.items {
        s.push_str(&format!(
            "## {}\n\nInput: {}\n\nA: {}\n\nB: {}\n\n",
            it.id, it.input, it.a, it.b
        ));
    }
    s
}

/// The verdict on one key item, given from the first system's side per dimension
/// (`Some(true)`: it won, `Some(false)`: it lost, `None`: tie), in the sheet's A/B terms.
pub fn verdict_for(item: &KeyItem, first: &str, first_won: [Option<bool>; 3]) -> Verdict {
    let first_is_a = item.a == first;
    Verdict {
        id: item.id.clone(),
        choices: first_won.map(|w| match (w, first_is_a) {
            (None, _) => Choice::Tie,
            (Some(true), true) | (Some(false), false) => Choice::A,
            _ => Choice::B,
        }),
        a_defective: None,
        b_defective: None,
    }
}

/// One verdict as the page exports it (a JSON line).
pub fn verdict_line(sheet_id: &str, v: &Verdict) -> String {
    let c = |x: Choice| match x {
        Choice::A => "A",
        Choice::B => "B",
        Choice::Tie => "tie",
    };
    serde_json::json!({
        "sheet_id": sheet_id, "id": v.id, "style": c(v.choices[0]), "meaning": c(v.choices[1]),
        "fluency": c(v.choices[2]), "a_defective": v.a_defective, "b_defective": v.b_defective,
    })
    .to_string()
}
