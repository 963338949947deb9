//! The reward with the shipped MiniLM encoder (models/all-minilm-l6-v2): a reference
//! sentence matches itself, and scoring texts in one batch equals scoring them one by one.
use stylerl::reward::{RewardConfig, RewardModel, Rollout};

mod common;
use common::assert_close;

/// Scoring texts together or alone pads MiniLM's batches differently: float32 through six
/// layers agrees to about 1e-6 of the values' magnitude, 1e-4 holds on any vendor.
const RTOL: f64 = 1e-4;

fn model() -> RewardModel {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = format!("{root}/models/all-minilm-l6-v2");
    assert!(
        std::path::Path::new(&dir)
            .join("model.safetensors")
            .exists(),
        "{dir} missing: run scripts/setup.sh"
    );
    let mut c = RewardConfig::default();
    c.encoder = dir;
    c.reference = vec![format!("{root}/datasets/reference/whimsical_tale.txt").into()];
    c.dropout.enabled = false;
    RewardModel::from_config(&c).unwrap()
}

#[test]
fn reference_sentences_match_themselves_and_batching_changes_nothing() {
    let m = model();
    let refs = m.style.references().to_vec();
    let own = format!("{} {}", refs[3], refs[9]);
    let texts = [
        own.as_str(),
        "The quarterly numbers are attached. Please review by Friday.",
        "ok",
        "",
    ];
    let batch: Vec<Rollout> = texts
        .iter()
        .map(|t| Rollout {
            input: "x",
            output: t,
            input_tokens: 1,
            output_tokens: 1,
        })
        .collect();
    let together = m.score_batch(&batch, 0).unwrap();
    let r = &together.rewards[0];
    assert_eq!(
        r.style
            .sentences
            .iter()
            .map(|s| s.reference)
            .collect::<Vec<_>>(),
        vec![3, 9]
    );
    assert_close(
        &r.r_style,
        &2.0,
        RTOL,
        "r_style of two exact reference sentences",
    );
    // A fresh model (empty cache) scoring each text alone gives the same numbers.
    let m2 = model();
    for (k, b) in batch.iter().enumerate() {
        let alone = m2.score_batch(std::slice::from_ref(b), 0).unwrap();
        let (x, y) = (&alone.rewards[0], &together.rewards[k]);
        assert_close(&x.r_style, &y.r_style, RTOL, &format!("text {k}: r_style"));
        for (a, b) in x.style.sentences.iter().zip(&y.style.sentences) {
            assert_eq!(a.reference, b.reference);
            assert_close(
                &a.similarity,
                &b.similarity,
                RTOL,
                &format!("text {k}: similarity"),
            );
        }
    }
    assert!(together.dynamics.inner > 0.0 && together.dynamics.outer > 0.0);
}
