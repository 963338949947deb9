//! Does an automatic measure agree with blind readers? For every item a reader decided on a
//! dimension, the measure agrees when the output the reader picked is the one the measure calls
//! better (docs/method.md#agreement-with-readers). A style score whose agreement with the
//! readers' style verdicts is at chance is not evidence of style a reader sees.
//!
//! Pure: the CLI reads keys, verdicts and outputs.jsonl and hands over the values.
use super::review::{wilson, Choice, Key, Verdict, DIMENSIONS};
use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::BTreeMap;

/// One output of one system: (system, input index).
pub type OutputId = (String, usize);

/// The measure that carries the detectors' verdict: 1 when they find no defect, 0 when they do;
/// also what the reader's defect marks are counted against.
pub const NOT_DEFECTIVE: &str = "not defective (detectors)";

/// What one sheet contributes: its key, the reader's verdicts, and per output the measures'
/// values (oriented so that higher is better, or for plain descriptors, higher is "more").
pub struct Reading<'a> {
    pub key: &'a Key,
    pub verdicts: &'a [Verdict],
    pub values: &'a BTreeMap<OutputId, BTreeMap<String, f64>>,
}

/// One measure against one dimension's verdicts, pooled over the readings.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Agreement {
    pub measure: String,
    pub dimension: String,
    /// Decided items where the reader's pick has the higher value.
    pub agree: usize,
    /// Decided items where it has the lower value.
    pub disagree: usize,
    /// Decided items where the two values are equal (or one is missing): left out.
    pub equal: usize,
    /// agree / (agree + disagree) with a 95 % Wilson interval; chance is 0.5.
    pub share: Option<f64>,
    pub share_lo: Option<f64>,
    pub share_hi: Option<f64>,
    pub sign_test_p: f64,
}

/// The detectors' defective flag against the reader's "seriously defective" marks.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct DefectAgreement {
    /// Outputs both marked / reader only / detectors only / neither.
    pub both: usize,
    pub reader_only: usize,
    pub detectors_only: usize,
    pub neither: usize,
}

impl DefectAgreement {
    /// Share of the reader's marks the detectors also flag.
    pub fn recall(&self) -> Option<f64> {
        let n = self.both + self.reader_only;
        (n > 0).then(|| self.both as f64 / n as f64)
    }
    /// Share of the detectors' flags the reader also marks.
    pub fn precision(&self) -> Option<f64> {
        let n = self.both + self.detectors_only;
        (n > 0).then(|| self.both as f64 / n as f64)
    }
}

/// Agreement of every measure (sorted by name) with every dimension, and of the detectors'
/// flag with the reader's defect marks, pooled over `readings`. A verdict whose item is not in
/// its key, or an item whose outputs are missing, is an error (the wrong outputs file).
pub fn agreement(readings: &[Reading]) -> Result<(Vec<Agreement>, DefectAgreement)> {
    if readings.is_empty() {
        bail!("no readings: give at least one reviewed sheet");
    }
    // (measure, dimension) → [agree, disagree, equal]
    let mut counts: BTreeMap<(String, usize), [usize; 3]> = BTreeMap::new();
    let mut defects = DefectAgreement::default();
    for r in readings {
        let items: BTreeMap<&str, _> = r.key.items.iter().map(|k| (k.id.as_str(), k)).collect();
        for v in r.verdicts {
            let Some(k) = items.get(v.id.as_str()) else {
                bail!(
                    "sheet {}: verdict for item '{}', which is not in its key",
                    r.key.sheet_id,
                    v.id
                );
            };
            let a: OutputId = (k.a.clone(), k.index);
            let b: OutputId = (k.b.clone(), k.index);
            let (Some(va), Some(vb)) = (r.values.get(&a), r.values.get(&b)) else {
                bail!(
                    "sheet {}: no output of '{}' or '{}' for input {} in the outputs given: is it the evaluation the sheet was made from?",
                    r.key.sheet_id, k.a, k.b, k.index
                );
            };
            let names: std::collections::BTreeSet<&String> = va.keys().chain(vb.keys()).collect();
            for (d, choice) in v.choices.iter().enumerate() {
                let (win, lose) = match choice {
                    Choice::A => (va, vb),
                    Choice::B => (vb, va),
                    Choice::Tie => continue,
                };
                for &name in &names {
                    let c = counts.entry((name.clone(), d)).or_default();
                    match (win.get(name), lose.get(name)) {
                        (Some(w), Some(l)) if w > l => c[0] += 1,
                        (Some(w), Some(l)) if w < l => c[1] += 1,
                        _ => c[2] += 1,
                    }
                }
            }
            for (vals, mark) in [(va, v.a_defective), (vb, v.b_defective)] {
                let (Some(reader), Some(&ok)) = (mark, vals.get(NOT_DEFECTIVE)) else {
                    continue;
                };
                match (reader, ok == 0.0) {
                    (true, true) => defects.both += 1,
                    (true, false) => defects.reader_only += 1,
                    (false, true) => defects.detectors_only += 1,
                    (false, false) => defects.neither += 1,
                }
            }
        }
    }
    // Every measure gets a row per dimension, zero counts where no item was decided.
    for r in readings {
        for name in r.values.values().flat_map(|m| m.keys()) {
            for d in 0..DIMENSIONS.len() {
                counts.entry((name.clone(), d)).or_default();
            }
        }
    }
    let out = counts
        .into_iter()
        .map(|((measure, d), [agree, disagree, equal])| {
            let n = agree + disagree;
            let w = wilson(agree, n);
            Agreement {
                measure,
                dimension: DIMENSIONS[d].to_string(),
                agree,
                disagree,
                equal,
                share: (n > 0).then(|| agree as f64 / n as f64),
                share_lo: w.map(|x| x.0),
                share_hi: w.map(|x| x.1),
                sign_test_p: super::review::sign_test(agree, n),
            }
        })
        .collect();
    Ok((out, defects))
}

/// One chart panel per dimension: each measure's agreement share with its Wilson interval, in
/// the order of `measures`, and chance (0.5) as the dashed line.
pub fn panels(rows: &[Agreement], measures: &[String]) -> Vec<super::chart::Panel> {
    DIMENSIONS
        .iter()
        .map(|d| super::chart::Panel {
            title: format!(
                "reader's {d} picks: share of decided items the measure agrees with (95 % Wilson); dashed: chance"
            ),
            points: measures
                .iter()
                .map(|m| {
                    let r = rows.iter().find(|r| &r.measure == m && r.dimension == *d)?;
                    Some(super::bootstrap::Interval {
                        mean: r.share?,
                        lo: r.share_lo?,
                        hi: r.share_hi?,
                    })
                })
                .collect(),
            level: Some(0.5),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::review::KeyItem;

    fn key(n: usize) -> Key {
        Key {
            sheet_id: "s".into(),
            seed: 0,
            systems: ["rl".into(), "sft".into()],
            // rl is A on even items, B on odd ones.
            items: (0..n)
                .map(|i| KeyItem {
                    id: format!("item-{i}"),
                    index: i,
                    a: if i % 2 == 0 { "rl" } else { "sft" }.into(),
                    b: if i % 2 == 0 { "sft" } else { "rl" }.into(),
                })
                .collect(),
        }
    }

    type Values = BTreeMap<OutputId, BTreeMap<String, f64>>;

    /// One sheet's agreement.
    fn agree_one(
        k: &Key,
        vs: &[Verdict],
        values: &Values,
    ) -> Result<(Vec<Agreement>, DefectAgreement)> {
        agreement(&[Reading {
            key: k,
            verdicts: vs,
            values,
        }])
    }

    fn verdict(i: usize, style: Choice, a_def: Option<bool>, b_def: Option<bool>) -> Verdict {
        Verdict {
            id: format!("item-{i}"),
            choices: [style, Choice::Tie, Choice::Tie],
            a_defective: a_def,
            b_defective: b_def,
        }
    }

    #[test]
    fn counts_the_readers_pick_against_each_measure() {
        let k = key(6);
        // The reader picks rl's output on style for items 0..4, ties item 4, picks sft on 5.
        let pick_rl = |i: usize| if i % 2 == 0 { Choice::A } else { Choice::B };
        let vs: Vec<Verdict> = (0..6)
            .map(|i| {
                let c = match i {
                    4 => Choice::Tie,
                    5 => Choice::A, // item 5: A is sft
                    _ => pick_rl(i),
                };
                verdict(i, c, None, None)
            })
            .collect();
        let mut values = BTreeMap::new();
        for i in 0..6 {
            // "up" is higher for rl everywhere; "flat" is equal; "down" is higher for sft
            // except on item 3, where it is missing for sft.
            let rl = BTreeMap::from([
                ("up".to_string(), 1.0),
                ("flat".to_string(), 0.5),
                ("down".to_string(), 0.0),
            ]);
            let mut sft = BTreeMap::from([
                ("up".to_string(), 0.0),
                ("flat".to_string(), 0.5),
                ("down".to_string(), 1.0),
            ]);
            if i == 3 {
                sft.remove("down");
            }
            values.insert(("rl".to_string(), i), rl);
            values.insert(("sft".to_string(), i), sft);
        }
        let (rows, _) = agree_one(&k, &vs, &values).unwrap();
        let get = |m: &str| {
            rows.iter()
                .find(|r| r.measure == m && r.dimension == "style")
                .unwrap()
                .clone()
        };
        // Five decided items: rl picked on 4 (0..4), sft on 1 (5).
        let up = get("up");
        assert_eq!((up.agree, up.disagree, up.equal), (4, 1, 0));
        assert!((up.share.unwrap() - 0.8).abs() < 1e-12);
        let down = get("down");
        assert_eq!((down.agree, down.disagree, down.equal), (1, 3, 1));
        let flat = get("flat");
        assert_eq!((flat.agree, flat.disagree, flat.equal), (0, 0, 5));
        assert_eq!(flat.share, None);
        // Meaning and fluency were all ties: no decided items, counted nowhere.
        let m = rows
            .iter()
            .find(|r| r.measure == "up" && r.dimension == "meaning")
            .unwrap();
        assert_eq!(m.agree + m.disagree + m.equal, 0);
    }

    #[test]
    fn defect_marks_meet_the_detectors_flags() {
        let k = key(2);
        let vs = vec![
            verdict(0, Choice::Tie, Some(true), Some(false)), // a = rl, b = sft
            verdict(1, Choice::Tie, Some(true), None),        // a = sft; b unmarked
        ];
        // The detectors flag rl on both inputs and sft on input 0 (NOT_DEFECTIVE = 0).
        let flag = |defective: bool| {
            BTreeMap::from([(NOT_DEFECTIVE.to_string(), if defective { 0.0 } else { 1.0 })])
        };
        let values: Values = [
            (("rl".to_string(), 0), flag(true)),
            (("sft".to_string(), 0), flag(true)),
            (("rl".to_string(), 1), flag(true)),
            (("sft".to_string(), 1), flag(false)),
        ]
        .into();
        let (_, d) = agree_one(&k, &vs, &values).unwrap();
        assert_eq!(
            d,
            DefectAgreement {
                both: 1,
                reader_only: 1,
                detectors_only: 1,
                neither: 0
            }
        );
        assert_eq!(d.recall(), Some(0.5));
        assert_eq!(d.precision(), Some(0.5));
    }

    #[test]
    fn a_missing_output_or_a_foreign_item_is_an_error() {
        let k = key(2);
        let vs = vec![verdict(1, Choice::A, None, None)];
        let values: Values = [(("rl".to_string(), 1), BTreeMap::new())].into();
        let e = agree_one(&k, &vs, &values).unwrap_err().to_string();
        assert!(e.contains("no output of 'sft' or 'rl' for input 1"), "{e}");
        let vs = vec![verdict(7, Choice::A, None, None)];
        let e = agree_one(&k, &vs, &values).unwrap_err().to_string();
        assert!(e.contains("'item-7', which is not in its key"), "{e}");
        assert!(agreement(&[]).is_err());
    }
}
