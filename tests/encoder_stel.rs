//! STEL-or-Content (docs/method.md#stel-or-content) on the shipped test triples: the default
//! reward encoder must measure style, not content, and the test must be able to tell.
use stylerl::encoder::SentenceEncoder;
use stylerl::reward::stel::{load_triples, stel_accuracy};

fn triples(name: &str) -> Vec<stylerl::reward::stel::Triple> {
    load_triples(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("datasets/stel")
            .join(name),
    )
    .unwrap()
}

#[test]
fn the_held_out_split_covers_at_least_ten_features_and_two_hundred_triples() {
    let t = triples("heldout.jsonl");
    assert!(t.len() >= 200, "{}", t.len());
    let mut f: Vec<&str> = t.iter().map(|x| x.feature.as_str()).collect();
    f.sort_unstable();
    f.dedup();
    assert!(f.len() >= 10, "{f:?}");
    // The splits the encoder's weights were set on share no text with the held-out split.
    let mut dev = triples("dev.jsonl");
    dev.extend(triples("triples.jsonl"));
    let test_texts: std::collections::HashSet<&str> = t
        .iter()
        .flat_map(|x| {
            [
                x.anchor.as_str(),
                x.same_style.as_str(),
                x.same_content.as_str(),
            ]
        })
        .collect();
    for d in &dev {
        for s in [&d.anchor, &d.same_style, &d.same_content] {
            assert!(
                !test_texts.contains(s.as_str()),
                "dev text in the test split: {s}"
            );
        }
    }
}

/// The goal is 0.9 on triples the encoder was not set on. Measured 2026-11-28 on the held-out
/// split (written after the weights were set; read twice): 0.896, then 0.933 once possessive
/// "'s" stopped counting as a contraction (a fix found on the tuning splits, dev 0.917 → 0.950,
/// triples 0.883 → 0.9125).
#[test]
fn stylometric_encoder_measures_style_on_the_held_out_split() {
    let enc = stylerl::encoder::load("stylometric").unwrap();
    let r = stel_accuracy(enc.as_ref(), &triples("heldout.jsonl")).unwrap();
    eprintln!("{}", stylerl::reward::stel::markdown(&r));
    assert!(r.accuracy >= 0.9, "STEL-or-Content accuracy {}", r.accuracy);
    // and on the splits its weights were set on
    let r = stel_accuracy(enc.as_ref(), &triples("triples.jsonl")).unwrap();
    assert!(r.accuracy >= 0.9, "tuning split accuracy {}", r.accuracy);
}

/// An encoder that sees only content must fail: all-MiniLM-L6-v2 scores near 0 (measured 0.000).
#[test]
fn a_content_encoder_fails_the_test() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/all-minilm-l6-v2");
    let enc = stylerl::encoder::load(dir.to_str().unwrap()).unwrap();
    let r = stel_accuracy(enc.as_ref(), &triples("heldout.jsonl")).unwrap();
    assert!(
        r.accuracy < 0.2,
        "MiniLM STEL-or-Content accuracy {}",
        r.accuracy
    );
}

/// One vector for every text: every triple is a tie, and ties count as wrong.
struct Constant;
impl SentenceEncoder for Constant {
    fn encode(&self, s: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        Ok(s.iter().map(|_| vec![1.0, 0.0]).collect())
    }
    fn dim(&self) -> usize {
        2
    }
    fn name(&self) -> String {
        "constant".into()
    }
}

#[test]
fn a_constant_encoder_scores_zero() {
    let r = stel_accuracy(&Constant, &triples("heldout.jsonl")).unwrap();
    assert_eq!(r.accuracy, 0.0);
    assert!(r.features.iter().all(|f| f.n > 0));
}
