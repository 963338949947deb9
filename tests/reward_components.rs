//! Hand-computed values of the pure reward pieces: soft cutoff, R_length, R_punctuation,
//! entity F1 / R_ne_overlap, dropout rates, and the inner/outer dynamics metrics.
use stylerl::reward::config::{LengthConfig, LengthMode, PunctuationConfig};
use stylerl::reward::dropout::{batch_rng, dominance, draw, dropout_rates};
use stylerl::reward::dynamics::{dynamics, population_std};
use stylerl::reward::penalties::{
    entity_f1, length_limit, r_length, r_ne_overlap, r_punctuation, shortfall, soft_cutoff,
};

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} vs {b}");
}

#[test]
fn soft_cutoff_dapo_shape() {
    // limit 100, cache 20: flat to 80, linear to −1 at 100, −1 beyond.
    close(soft_cutoff(0.0, 100.0, 20.0), 0.0);
    close(soft_cutoff(80.0, 100.0, 20.0), 0.0);
    close(soft_cutoff(90.0, 100.0, 20.0), -0.5);
    close(soft_cutoff(95.0, 100.0, 20.0), -0.75);
    close(soft_cutoff(100.0, 100.0, 20.0), -1.0);
    close(soft_cutoff(101.0, 100.0, 20.0), -1.0);
    // cache 0: a step at the limit.
    close(soft_cutoff(100.0, 100.0, 0.0), 0.0);
    close(soft_cutoff(100.5, 100.0, 0.0), -1.0);
}

#[test]
fn length_relative_absolute_and_capped() {
    let mut c = LengthConfig {
        mode: LengthMode::Relative,
        max_tokens: 50,
        ratio: 2.0,
        slack: 16.0,
        cache: 8.0,
        max_completion_length: 256,
        min_ratio: 0.0,
        short_weight: 1.0,
    };
    // L_max = 2·10 + 16 = 36; soft zone 28..36.
    close(length_limit(&c, 10), 36.0);
    close(r_length(&c, 10, 28).0, 0.0);
    close(r_length(&c, 10, 30).0, -0.25); // (28 − 30)/8
    close(r_length(&c, 10, 37).0, -1.0);
    // Capped by max_completion_length: 2·200 + 16 = 416 → 256.
    close(length_limit(&c, 200), 256.0);
    close(r_length(&c, 200, 252).0, -0.5); // (248 − 252)/8
    c.mode = LengthMode::Absolute;
    close(length_limit(&c, 10_000), 50.0);
    close(r_length(&c, 0, 46).0, -0.5); // (42 − 46)/8
                                        // A cache wider than L_max shrinks to L_max: L_max 20, cache 32 → zone 0..20.
    let c = LengthConfig {
        mode: LengthMode::Relative,
        max_tokens: 0,
        ratio: 1.0,
        slack: 10.0,
        cache: 32.0,
        max_completion_length: 256,
        min_ratio: 0.0,
        short_weight: 1.0,
    };
    let (r, limit, cache) = r_length(&c, 10, 5);
    close(limit, 20.0);
    close(cache, 20.0);
    close(r, -0.25); // (0 − 5)/20
}

#[test]
fn shortfall_floor_costs_linearly_below_min_ratio_and_adds_to_r_length() {
    let mut c = LengthConfig {
        mode: LengthMode::Relative,
        max_tokens: 0,
        ratio: 2.0,
        slack: 16.0,
        cache: 8.0,
        max_completion_length: 256,
        min_ratio: 0.0,
        short_weight: 2.0,
    };
    // Off by default: a one-token rewrite of 20 tokens costs nothing.
    close(shortfall(&c, 20, 1), 0.0);
    c.min_ratio = 0.8; // floor 16 tokens
    close(shortfall(&c, 20, 16), 0.0);
    close(shortfall(&c, 20, 30), 0.0);
    close(shortfall(&c, 20, 12), -0.5); // 2 · (1 − 12/16)
    close(shortfall(&c, 20, 0), -2.0);
    close(shortfall(&c, 0, 0), 0.0); // empty input: no floor
    close(r_length(&c, 20, 12).0, -0.5);
    // Both ends at once cannot happen; overlong still costs as before: L_max 56, zone 48..56.
    close(r_length(&c, 20, 52).0, -0.5);
}

#[test]
fn punctuation_limit_from_input_count() {
    let c = PunctuationConfig {
        ratio: 1.5,
        slack: 3.0,
        cache: 3.0,
    };
    // limit = 1.5·4 + 3 = 9; zone 6..9.
    let (r, limit, _) = r_punctuation(&c, 4, 6);
    close(limit, 9.0);
    close(r, 0.0);
    close(r_punctuation(&c, 4, 7).0, -1.0 / 3.0);
    close(r_punctuation(&c, 4, 10).0, -1.0);
    // No punctuation in: limit = slack = 3, zone 0..3.
    close(r_punctuation(&c, 0, 2).0, -2.0 / 3.0);
}

#[test]
fn entity_f1_is_set_f1() {
    close(
        entity_f1(&["a", "b", "c"], &["b", "c", "d"]),
        2.0 * 2.0 / 6.0,
    );
    // Duplicates do not count twice.
    close(entity_f1(&["a", "a", "b"], &["a", "b", "b"]), 1.0);
    close(entity_f1::<&str>(&[], &[]), 1.0);
    close(entity_f1(&["a"], &[]), 0.0);
    close(entity_f1(&[], &["x"]), 0.0);
    close(r_ne_overlap(0.5, 2.0 / 3.0), -1.0 / 6.0);
    close(r_ne_overlap(2.0, 1.0), 0.0);
}

#[test]
fn dropout_rates_gamma_10() {
    let m = vec![
        vec![1.0f32, 0.8, 0.6],
        vec![0.8, 1.0, 0.4],
        vec![0.6, 0.4, 1.0],
    ];
    let d = dominance(&m);
    // D = [0.8 + 0.6, 0.8 + 0.4, 0.6 + 0.4]
    for (a, b) in d.iter().zip([1.4, 1.2, 1.0]) {
        assert!((a - b).abs() < 1e-6, "{a} {b}");
    }
    // q = [1, 6/7, 5/7]; q^10 = [1, 0.2140583156, 0.0345716130]; clip to [0, 0.9].
    let p = dropout_rates(&m, 10.0, 0.0, 0.9);
    assert!((p[0] - 0.9).abs() < 1e-9);
    assert!((p[1] - 0.2140583156).abs() < 1e-6, "{}", p[1]);
    assert!((p[2] - 0.0345716130).abs() < 1e-6, "{}", p[2]);
    // eps_min lifts the small ones.
    let p = dropout_rates(&m, 10.0, 0.05, 0.9);
    assert!((p[2] - 0.05).abs() < 1e-12);
}

#[test]
fn dropout_rates_degenerate_matrices() {
    // One reference: D = 0 = max D → eps_min.
    assert_eq!(dropout_rates(&[vec![1.0]], 10.0, 0.1, 0.9), vec![0.1]);
    // All dissimilar: max D < 0 → eps_min for all, no NaN.
    let m = vec![vec![1.0f32, -0.5], vec![-0.5, 1.0]];
    assert_eq!(dropout_rates(&m, 10.0, 0.0, 0.9), vec![0.0, 0.0]);
    // A negative D beside a positive max: q = 0, not NaN.
    let m = vec![
        vec![1.0f32, 0.9, -0.8],
        vec![0.9, 1.0, -0.8],
        vec![-0.8, -0.8, 1.0],
    ];
    let p = dropout_rates(&m, 2.5, 0.0, 1.0);
    assert_eq!(p[2], 0.0);
    assert!((p[0] - 1.0).abs() < 1e-12 && (p[1] - 1.0).abs() < 1e-12);
    assert!(dropout_rates(&[], 10.0, 0.0, 0.9).is_empty());
}

#[test]
fn draws_are_seeded_and_follow_the_rate() {
    let draws = |seed, step| {
        let mut rng = batch_rng(seed, step);
        (0..4000)
            .map(|_| draw(&mut rng, 0.3))
            .collect::<Vec<bool>>()
    };
    assert_eq!(draws(7, 3), draws(7, 3));
    assert_ne!(draws(7, 3), draws(7, 4));
    assert_ne!(draws(7, 3), draws(8, 3));
    let frac = draws(1, 1).iter().filter(|&&d| d).count() as f64 / 4000.0;
    assert!((frac - 0.3).abs() < 0.04, "{frac}");
    let mut rng = batch_rng(0, 0);
    assert!((0..100).all(|_| !draw(&mut rng, 0.0)));
    assert!((0..100).all(|_| draw(&mut rng, 1.0)));
}

#[test]
fn dynamics_inner_outer_population_std() {
    let s = vec![vec![1.0f32, 0.0], vec![0.5, 0.5], vec![0.2, 0.8]];
    let d = dynamics(&s);
    // Row stds: 0.5, 0, 0.3 → inner 0.2666…; column stds both sqrt(0.326667/3).
    assert!((d.inner - 0.8 / 3.0).abs() < 1e-6, "{}", d.inner);
    assert!((d.outer - 0.3299831646).abs() < 1e-6, "{}", d.outer);
    // One generated sentence: outer = 0; nothing at all: zeros.
    assert_eq!(dynamics(&[vec![0.3, 0.9]]).outer, 0.0);
    assert_eq!(dynamics(&[]).inner, 0.0);
    close(population_std(&[2.0, 4.0]), 1.0);
    close(population_std(&[]), 0.0);
}
