//! The shipped MiniLM directory: batching and padding do not change a sentence's vector.
use std::path::PathBuf;
use stylerl::encoder::{cosine, load_with, EncoderOptions, SentenceEncoder};

mod common;

fn minilm() -> Box<dyn SentenceEncoder> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-minilm-l6-v2");
    assert!(
        dir.join("model.safetensors").exists(),
        "{} missing: run scripts/setup.sh",
        dir.display()
    );
    load_with(
        dir.to_str().unwrap(),
        &EncoderOptions {
            batch_size: 3,
            ..Default::default()
        },
    )
    .unwrap()
}

fn texts() -> Vec<String> {
    [
        "Short.",
        "A somewhat longer sentence with several more words in it, to force padding.",
        "Medium length words here.",
        "x",
        "Another fairly long sentence: commas, colons; and other punctuation marks!",
        "Ünïcödé and emoji 🎉",
        "The end.",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn batched_equals_one_by_one() {
    let enc = minilm();
    assert_eq!(enc.dim(), 384);
    assert_eq!(enc.name(), "all-minilm-l6-v2");
    let t = texts();
    let batched = enc.encode(&t).unwrap();
    assert_eq!(batched.len(), t.len());
    for (s, v) in t.iter().zip(&batched) {
        let single = enc.encode_one(s).unwrap();
        assert_eq!(single.len(), 384);
        // Padding to the batch's length changes MKL's blocking: 6 layers of float32 matmuls
        // agree to about 1e-6 of the values' magnitude, 1e-4 holds on any vendor.
        common::assert_close(&single, v, 1e-4, &format!("'{s}': batched vs single"));
        // Normalize module present: unit vectors.
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
    // Distinct sentences give distinct vectors (order really is preserved, not all equal).
    assert!(cosine(&batched[0], &batched[1]) < 0.99);
    assert!(enc.encode(&[]).unwrap().is_empty());
}
