//! The weight-free stylometric encoder: shape, normalisation, determinism, and that it
//! tells the two shipped reference texts apart.
use stylerl::encoder::stylometric::{raw_features, style_vector, Stylometric, FEATURES};
use stylerl::encoder::{cosine, SentenceEncoder};
use stylerl::text::sentences;

fn reference(name: &str) -> Vec<String> {
    let p = format!("{}/datasets/reference/{name}", env!("CARGO_MANIFEST_DIR"));
    sentences(&std::fs::read_to_string(&p).unwrap())
}

fn mean_sim(a: &[Vec<f32>], b: &[Vec<f32>], same: bool) -> f64 {
    let (mut sum, mut n) = (0f64, 0usize);
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            if same && i == j {
                continue;
            }
            sum += cosine(x, y) as f64;
            n += 1;
        }
    }
    sum / n as f64
}

#[test]
fn vectors_are_unit_length_with_fixed_dim() {
    let enc = Stylometric::new();
    let v = enc
        .encode(&[
            "Hello there, friend!".into(),
            "".into(),
            "🙂".into(),
            "ok".into(),
        ])
        .unwrap();
    assert_eq!(v.len(), 4);
    for x in &v {
        assert_eq!(x.len(), enc.dim());
        assert_eq!(x.len(), FEATURES.len());
        let n: f32 = x.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-5 || n == 0.0, "norm {n}");
        assert!(x.iter().all(|a| a.is_finite()));
    }
    assert_eq!(enc.name(), "stylometric");
}

#[test]
fn raw_features_measure_what_they_say() {
    let f = raw_features("Why, oh why, did I say 42?");
    let idx = |name: &str| FEATURES.iter().position(|(n, ..)| *n == name).unwrap();
    // 7 words: Why oh why did I say 42
    assert!((f[idx("log_words")] - (8f32).ln()).abs() < 1e-6);
    assert!((f[idx("commas")] - 2.0 / 7.0).abs() < 1e-6);
    assert_eq!(f[idx("end_question")], 1.0);
    assert_eq!(f[idx("end_period")], 0.0);
    assert!((f[idx("first_person")] - 1.0 / 7.0).abs() < 1e-6);
    // 2 digits among 20 non-space chars
    assert!((f[idx("digits")] - 2.0 / 20.0).abs() < 1e-6);
    let g = raw_features("I can't, you won't!");
    assert!((g[idx("contractions")] - 2.0 / 4.0).abs() < 1e-6);
    assert!((g[idx("second_person")] - 1.0 / 4.0).abs() < 1e-6);
}

#[test]
fn possessives_are_not_contractions() {
    let at = FEATURES.iter().position(|f| f.0 == "contractions").unwrap();
    let c = |t: &str| raw_features(t)[at];
    assert_eq!(c("My sister organised Dad's party."), 0.0);
    assert_eq!(c("The bank's app froze James’s account."), 0.0);
    assert!(c("It's late and we're tired.") > 0.0);
    assert!(c("That's Dad's coat.") > 0.0); // "that's" is "that is"
    assert!(c("Let's go, don't wait.") > 0.0);
}

#[test]
fn same_sentence_same_vector_and_style_not_content() {
    assert_eq!(
        style_vector("The cat sat on the mat."),
        style_vector("The cat sat on the mat.")
    );
    // Same shape, different content words: nearly identical.
    let a = style_vector("The dog slept on the rug.");
    let b = style_vector("The cat sat on the mat.");
    let c = style_vector("OMG!!! u coming?? 🙂🙂");
    assert!(cosine(&a, &b) > 0.9, "{}", cosine(&a, &b));
    assert!(cosine(&a, &c) < 0.3, "{}", cosine(&a, &c));
}

#[test]
fn separates_the_two_reference_texts() {
    let enc = Stylometric::new();
    let tale = enc.encode(&reference("whimsical_tale.txt")).unwrap();
    let memo = enc.encode(&reference("business_memo.txt")).unwrap();
    assert!(
        tale.len() >= 15 && memo.len() >= 15,
        "{} {}",
        tale.len(),
        memo.len()
    );
    // The tale mixes many habits ("!", "?", quotes, long and short sentences), so its
    // sentences are not all alike; what must hold is that a sentence is nearer its own
    // text than the other one: leave-one-out mean similarity, own text vs other text.
    let nearer_own = |own: &[Vec<f32>], other: &[Vec<f32>]| {
        (0..own.len())
            .filter(|&i| {
                let one = std::slice::from_ref(&own[i]);
                let rest: Vec<Vec<f32>> = own
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, v)| v.clone())
                    .collect();
                mean_sim(one, &rest, false) > mean_sim(one, other, false)
            })
            .count() as f64
            / own.len() as f64
    };
    let (t, m) = (nearer_own(&tale, &memo), nearer_own(&memo, &tale));
    eprintln!("nearer own text: tale {t:.3}, memo {m:.3}");
    // Measured: tale 0.700, memo 0.889 (0.650 / 1.000 before the formal-register features,
    // which a few memo sentences share with the tale's narrator). The tale's plain narrative sentences carry no marked
    // habit and so sit with the memo: the price of down-weighting content-bound features for
    // STEL-or-Content (tests/encoder_stel.rs). Chance is 0.5; a content-blind mix-up fails.
    assert!(t >= 0.6 && m >= 0.85, "tale {t} memo {m}");
}
