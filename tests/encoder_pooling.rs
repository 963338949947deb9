//! Pooling math on hand-made token states, position ids and weight-name handling.
use stylerl::encoder::bert::{canonical_name, position_ids};
use stylerl::encoder::pooling::{self, parse_pooling_config, PoolMode};
use stylerl::encoder::st_dir::Arch;
use tch::{Kind, Tensor};

mod common;

/// Row 0: three tokens, the last is padding. Row 1: three real tokens.
fn sample() -> (Tensor, Tensor) {
    let h =
        Tensor::from_slice(&[1f32, 2., 3., 4., 5., 6., -1., 0., 2., -2., 7., 1.]).view([2, 3, 2]);
    let m = Tensor::from_slice(&[1i64, 1, 0, 1, 1, 1]).view([2, 3]);
    (h, m)
}

fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    let d = t.size()[1] as usize;
    let flat = Vec::<f32>::try_from(t.to_kind(Kind::Float).contiguous().view([-1])).unwrap();
    flat.chunks(d).map(|c| c.to_vec()).collect()
}

fn close(a: &[Vec<f32>], b: &[Vec<f32>]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.len(), y.len());
        // One division or square root per value: exact up to a few float32 roundings.
        common::assert_close(x, y, 1e-6, &format!("{a:?} vs {b:?}"));
    }
}

#[test]
fn mean_ignores_padding() {
    let (h, m) = sample();
    close(
        &rows(&pooling::mean(&h, &m)),
        &[vec![2., 3.], vec![8. / 3., -1. / 3.]],
    );
}

#[test]
fn max_ignores_padding() {
    let (h, m) = sample();
    // Row 0's pad holds the largest values (5, 6); they must not win.
    close(&rows(&pooling::max(&h, &m)), &[vec![3., 4.], vec![7., 1.]]);
}

#[test]
fn cls_takes_the_first_token() {
    let (h, m) = sample();
    close(&rows(&pooling::cls(&h, &m)), &[vec![1., 2.], vec![-1., 0.]]);
}

#[test]
fn mean_sqrt_len_divides_by_root_of_count() {
    let (h, m) = sample();
    let s2 = 2f32.sqrt();
    let s3 = 3f32.sqrt();
    close(
        &rows(&pooling::mean_sqrt_len(&h, &m)),
        &[vec![4. / s2, 6. / s2], vec![8. / s3, -1. / s3]],
    );
}

#[test]
fn last_token_and_weighted_mean() {
    let (h, m) = sample();
    close(
        &rows(&pooling::last_token(&h, &m)),
        &[vec![3., 4.], vec![7., 1.]],
    );
    // Weights 1, 2 (row 0) and 1, 2, 3 (row 1).
    let r1 = vec![(-1. + 4. + 21.) / 6., (0. - 4. + 3.) / 6.];
    close(
        &rows(&pooling::weighted_mean(&h, &m)),
        &[vec![7. / 3., 10. / 3.], r1],
    );
}

#[test]
fn modes_concatenate_in_order() {
    let (h, m) = sample();
    let v = pooling::pool(&h, &m, &[PoolMode::Cls, PoolMode::Mean]);
    close(
        &rows(&v),
        &[vec![1., 2., 2., 3.], vec![-1., 0., 8. / 3., -1. / 3.]],
    );
}

#[test]
fn l2_normalize_rows() {
    let x = Tensor::from_slice(&[3f32, 4., 0., 0.]).view([2, 2]);
    close(
        &rows(&pooling::l2_normalize(&x)),
        &[vec![0.6, 0.8], vec![0., 0.]],
    );
}

#[test]
fn pooling_config_formats() {
    let legacy = serde_json::json!({"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true,
        "pooling_mode_max_tokens": false});
    assert_eq!(
        parse_pooling_config(&legacy).unwrap(),
        vec![PoolMode::Cls, PoolMode::Mean]
    );
    let named = serde_json::json!({"pooling_mode": "mean_sqrt_len_tokens"});
    assert_eq!(
        parse_pooling_config(&named).unwrap(),
        vec![PoolMode::MeanSqrtLen]
    );
    let list = serde_json::json!({"pooling_mode": ["max", "lasttoken"]});
    assert_eq!(
        parse_pooling_config(&list).unwrap(),
        vec![PoolMode::Max, PoolMode::LastToken]
    );
    assert_eq!(
        parse_pooling_config(&serde_json::json!({})).unwrap(),
        vec![PoolMode::Mean]
    );
    let bad = parse_pooling_config(&serde_json::json!({"pooling_mode": "median"})).unwrap_err();
    assert!(bad.to_string().contains("'median'"), "{bad}");
}

#[test]
fn roberta_positions_start_after_pad_and_skip_pads() {
    let ids = Tensor::from_slice(&[0i64, 5, 6, 2, 1, 1, 0, 7, 2, 1, 1, 1]).view([2, 6]);
    let p = Vec::<i64>::try_from(position_ids(&ids, Arch::Roberta, 1).view([-1])).unwrap();
    assert_eq!(p, vec![2, 3, 4, 5, 1, 1, 2, 3, 4, 1, 1, 1]);
    let p = Vec::<i64>::try_from(position_ids(&ids, Arch::Bert, 0).reshape([-1])).unwrap();
    assert_eq!(p, vec![0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]);
}

#[test]
fn weight_names_lose_model_prefix() {
    assert_eq!(
        canonical_name("bert.encoder.layer.0.output.dense.weight"),
        "encoder.layer.0.output.dense.weight"
    );
    assert_eq!(
        canonical_name("roberta.embeddings.LayerNorm.weight"),
        "embeddings.LayerNorm.weight"
    );
    assert_eq!(
        canonical_name("embeddings.LayerNorm.gamma"),
        "embeddings.LayerNorm.weight"
    );
    assert_eq!(
        canonical_name("embeddings.LayerNorm.beta"),
        "embeddings.LayerNorm.bias"
    );
    assert_eq!(
        canonical_name("encoder.layer.1.attention.self.key.bias"),
        "encoder.layer.1.attention.self.key.bias"
    );
}
