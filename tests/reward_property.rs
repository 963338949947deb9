//! Property test (seeded, no extra crate): for random strings with unicode, punctuation,
//! emoji, digits, newlines and empties, every reward component is finite and in range,
//! and the text utilities never panic.
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use stylerl::encoder::stylometric::Stylometric;
use stylerl::reward::{Aggregation, RewardConfig, RewardModel, Rollout};

const POOL: &[&str] = &[
    "a",
    "Z",
    "é",
    "ß",
    "Ω",
    "日本",
    "ж",
    "ا",
    " ",
    " ",
    "  ",
    "\n",
    "\n\n",
    "\t",
    "\r\n",
    ".",
    "!",
    "?",
    ",",
    ";",
    ":",
    "…",
    "...",
    "—",
    "-",
    "'",
    "’",
    "\"",
    "“",
    "”",
    "(",
    ")",
    "«",
    "»",
    "@",
    "#",
    "$",
    "€",
    "%",
    "&",
    "0",
    "7",
    "12",
    "1,234.5",
    "3/1/2024",
    "2024-03-01",
    "5pm",
    "17:30",
    "a.m.",
    "Dr.",
    "Mr.",
    "U.S.",
    "e.g.",
    "New",
    "York",
    "The",
    "I",
    "March",
    "1st",
    "🙂",
    "🚀",
    "\u{200d}",
    "\u{fe0f}",
    "\u{301}",
    "x@y.io",
    "http://",
    "www.",
    ".com",
    "Hello",
    "world",
    "don't",
    "!!",
    "??",
    "\u{0}",
    "\u{a0}",
    "\u{2028}",
    "ǅ",
    "İ",
];

fn random_text(rng: &mut StdRng) -> String {
    let n = match rng.gen_range(0..10) {
        0 => 0,
        1 => 1,
        _ => rng.gen_range(1..60),
    };
    let mut s = String::new();
    for _ in 0..n {
        if rng.gen_bool(0.15) {
            // Any scalar value, including rare planes.
            let c = loop {
                if let Some(c) = char::from_u32(rng.gen_range(0..0x2FFFF)) {
                    break c;
                }
            };
            s.push(c);
        } else {
            s.push_str(POOL[rng.gen_range(0..POOL.len())]);
        }
    }
    s
}

#[test]
fn no_component_is_nan_or_infinite() {
    let mut rng = StdRng::seed_from_u64(20240301);
    let reference = (0..12)
        .map(|_| random_text(&mut rng))
        .collect::<Vec<_>>()
        .join("\n");
    let mut refs = stylerl::text::sentences(&reference);
    refs.push("A plain reference sentence.".into());
    let mut models = Vec::new();
    for (agg, dropout) in [
        (Aggregation::Sum, true),
        (Aggregation::Mean, true),
        (Aggregation::Sum, false),
    ] {
        let mut c = RewardConfig::default();
        c.aggregation = agg;
        c.dropout.enabled = dropout;
        c.dropout.eps_max = 1.0;
        c.length.cache = 0.0;
        models.push(
            RewardModel::with_encoder(&c, Arc::new(Stylometric::new()), refs.clone()).unwrap(),
        );
    }
    for case in 0..400 {
        let inputs: Vec<String> = (0..4).map(|_| random_text(&mut rng)).collect();
        let outputs: Vec<String> = (0..4).map(|_| random_text(&mut rng)).collect();
        let batch: Vec<Rollout> = inputs
            .iter()
            .zip(&outputs)
            .map(|(i, o)| Rollout {
                input: i,
                output: o,
                input_tokens: rng.gen_range(0..300),
                output_tokens: rng.gen_range(0..600),
            })
            .collect();
        let m = &models[case % models.len()];
        let s = m.score_batch(&batch, case as u64).unwrap();
        assert!(
            s.dynamics.inner.is_finite()
                && s.dynamics.outer.is_finite()
                && s.dynamics.inner >= 0.0
                && s.dynamics.outer >= 0.0
        );
        for (r, ro) in s.rewards.iter().zip(&batch) {
            let ctx = format!("case {case}: {:?} -> {:?}", ro.input, ro.output);
            for v in [
                r.r_total,
                r.r_style,
                r.r_length,
                r.r_ne_overlap,
                r.r_punctuation,
                r.style.r_style_undropped,
                r.entities.f1,
                r.length.limit,
                r.punctuation.limit,
            ] {
                assert!(v.is_finite(), "{ctx}: {r:?}");
            }
            assert!((-1.0..=0.0).contains(&r.r_length), "{ctx}");
            assert!((-1.0..=0.0).contains(&r.r_punctuation), "{ctx}");
            assert!((-1.0..=0.0).contains(&r.r_ne_overlap), "{ctx}");
            assert!((0.0..=1.0).contains(&r.entities.f1), "{ctx}");
            assert!(
                r.style
                    .sentences
                    .iter()
                    .all(|x| x.similarity.is_finite() && x.similarity.abs() <= 1.0 + 1e-5),
                "{ctx}"
            );
            assert!(
                r.r_style.abs() <= r.style.n_sentences as f64 + 1e-6,
                "{ctx}"
            );
            // Every sentence is non-empty and trimmed.
            assert!(
                r.style
                    .sentences
                    .iter()
                    .all(|x| !x.text.is_empty() && x.text.trim() == x.text),
                "{ctx}"
            );
            // Entity texts are real slices of their source.
            assert!(
                r.entities
                    .output
                    .iter()
                    .all(|e| ro.output.contains(&e.text)),
                "{ctx}"
            );
        }
    }
}
