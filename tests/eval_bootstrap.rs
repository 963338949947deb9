//! The paired bootstrap behind every interval of `stylerl evaluate`, without a model:
//! exact answers for degenerate cases, pairing, coverage on a known distribution, seeding,
//! and the corpus-level consistency recomputed per resample.
use stylerl::eval::aggregate::{
    add_intervals, aggregate, keys, series, JudgeSeries, SampleSeries, ScoredSample,
};
use stylerl::eval::bootstrap::{percentile, some, Resamples};
use stylerl::rng::SplitMix64;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn constant_samples_give_a_zero_width_interval_at_that_value() {
    let rs = Resamples::new(30, 2000, 0);
    let iv = rs.mean(&some(&[0.37; 30])).unwrap();
    assert!(
        close(iv.mean, 0.37) && close(iv.lo, 0.37) && close(iv.hi, 0.37),
        "{iv:?}"
    );
}

#[test]
fn a_paired_constant_shift_is_recovered_exactly_while_each_mean_varies() {
    // Inputs differ a lot from each other; every output is its input + 0.25.
    let mut rng = SplitMix64::new(11);
    let base: Vec<f64> = (0..40).map(|_| rng.next_f64() * 10.0).collect();
    let shifted: Vec<f64> = base.iter().map(|x| x + 0.25).collect();
    let rs = Resamples::new(40, 2000, 5);
    let d = rs.mean_diff(&some(&shifted), &some(&base)).unwrap();
    assert!(
        close(d.mean, 0.25) && (d.lo - 0.25).abs() < 1e-9 && (d.hi - 0.25).abs() < 1e-9,
        "{d:?}"
    );
    // Unpaired, the same data give an interval many times wider than the shift.
    let a = rs.mean(&some(&shifted)).unwrap();
    assert!(a.hi - a.lo > 1.0, "{a:?}");
}

#[test]
fn intervals_cover_the_true_mean_in_at_least_90_percent_of_repetitions() {
    // Uniform[0, 1), true mean 0.5; 200 data sets of 40 draws, each with its own resamples.
    let mut data_rng = SplitMix64::new(2024);
    let mut covered = 0;
    let mut widths = 0.0;
    for rep in 0..200u64 {
        let xs: Vec<f64> = (0..40).map(|_| data_rng.next_f64()).collect();
        let iv = Resamples::new(40, 2000, rep).mean(&some(&xs)).unwrap();
        assert!(iv.lo <= iv.mean && iv.mean <= iv.hi);
        if iv.lo <= 0.5 && 0.5 <= iv.hi {
            covered += 1;
        }
        widths += iv.hi - iv.lo;
    }
    // A 95 % interval of a mean of 40 uniforms is about 2·1.96·0.2887/√40 ≈ 0.179 wide.
    let w = widths / 200.0;
    assert!((0.15..0.21).contains(&w), "mean width {w}");
    assert!(covered >= 180, "covered {covered} of 200");
}

#[test]
fn same_seed_same_interval_other_seed_other_interval() {
    let mut rng = SplitMix64::new(3);
    let xs = some(&(0..25).map(|_| rng.next_f64()).collect::<Vec<_>>());
    let a = Resamples::new(25, 2000, 9).mean(&xs).unwrap();
    let b = Resamples::new(25, 2000, 9).mean(&xs).unwrap();
    let c = Resamples::new(25, 2000, 10).mean(&xs).unwrap();
    assert_eq!(a, b);
    assert!(a.lo != c.lo || a.hi != c.hi, "{a:?} vs {c:?}");
    assert_eq!(a.mean, c.mean, "the estimate itself is not resampled");
}

#[test]
fn percentile_interpolates_between_order_statistics() {
    let v = [1.0, 2.0, 3.0, 4.0, 5.0];
    // Position p·(m − 1): 0.025·4 = 0.1 → 1.1; 0.975·4 = 3.9 → 4.9.
    assert!(close(percentile(&v, 0.025), 1.1) && close(percentile(&v, 0.975), 4.9));
    assert_eq!((percentile(&v, 0.0), percentile(&v, 1.0)), (1.0, 5.0));
}

#[test]
fn skipped_samples_stay_skipped_inside_each_resample() {
    // A text without sentences (None) counts in neither the estimate nor any resample.
    let xs = vec![Some(1.0), None, Some(1.0)];
    let iv = Resamples::new(3, 500, 1).mean(&xs).unwrap();
    assert_eq!((iv.mean, iv.lo, iv.hi), (1.0, 1.0, 1.0));
    assert_eq!(Resamples::new(2, 500, 1).mean(&[None, None]), None);
}

fn sample(input: &str, output: &str, ib: &[usize], ob: &[usize]) -> ScoredSample {
    ScoredSample {
        input: input.into(),
        output: output.into(),
        input_best: ib.to_vec(),
        input_sim: vec![0.5; ib.len()],
        output_best: ob.to_vec(),
        output_sim: vec![0.5; ob.len()],
        stopped_at_eos: true,
    }
}

fn two_kinds() -> SampleSeries {
    // A: input → ref 0, output → ref 0. B: input → ref 1, output → ref 2. Both rewritten.
    let s = [
        sample("Alpha beta gamma.", "Something else entirely!", &[0], &[0]),
        sample("Delta epsilon.", "Completely new words here.", &[1], &[2]),
    ];
    series(&s, 0.95, None, Vec::new())
}

#[test]
fn consistency_is_recomputed_from_the_resampled_count_vectors() {
    let s = two_kinds();
    // k_A copies of A and k_B of B: inputs [k_A, k_B, 0], outputs [k_A, 0, k_B],
    // cos = k_A² / (k_A² + k_B²).
    assert!(close(s.consistency_at(&[0, 1], 3).unwrap(), 0.5));
    assert!(close(s.consistency_at(&[0, 0, 1], 3).unwrap(), 0.8));
    assert!(close(s.consistency_at(&[1, 1], 3).unwrap(), 0.0));
    // Resamples of 2 are (2,0) → 1, (1,1) → 0.5, (0,2) → 0 with chances ¼, ½, ¼: the
    // 2.5th and 97.5th percentiles are the extremes, the estimate is 0.5.
    let rs = Resamples::new(2, 2000, 0);
    let iv = rs.interval(|idx| s.consistency_at(idx, 3)).unwrap();
    assert!(
        close(iv.mean, 0.5) && close(iv.lo, 0.0) && close(iv.hi, 1.0),
        "{iv:?}"
    );
    // A resample of only not-rewritten samples has no consistency and is left out.
    let c = series(
        &[sample("Same.", "Same.", &[0], &[0])],
        0.95,
        None,
        Vec::new(),
    );
    assert_eq!(c.consistency_at(&[0], 1), None);
}

#[test]
fn add_intervals_fills_every_metric_pairs_the_baseline_and_matches_the_point_values() {
    let s = [
        sample("One two three four.", "Uno dos.", &[0], &[1]),
        sample("Five six.", "Cinco seis siete ocho.", &[1], &[1]),
        sample("Same text.", "Same text.", &[0], &[0]),
    ];
    let judge = JudgeSeries {
        encoder: "charstyle".into(),
        output: vec![Some(0.9), Some(0.7), None],
        input: vec![Some(0.5), Some(0.5), Some(0.6)],
    };
    let ser = series(&s, 0.95, Some(&[0.8, 0.6, 1.0]), vec![judge]);
    let rs = Resamples::new(3, 2000, 0);
    let mut m = aggregate("sys", &s, 2, 0.95);
    add_intervals(&mut m, &ser, Some(&ser), &rs, 2);
    let iv = |k: &str| m.intervals[k];
    assert!(close(iv(keys::STYLE).mean, m.style_similarity.unwrap()));
    assert!(close(iv(keys::NOT_REWRITTEN).mean, m.not_rewritten_percent));
    assert!(close(
        iv(keys::CONSISTENCY).mean,
        m.style_consistency.unwrap()
    ));
    assert!(close(iv(keys::ENTITY_F1).mean, m.entity_f1_mean));
    assert!(close(iv(keys::WORDS).mean, m.words_mean));
    assert!(close(m.meaning_kept.unwrap(), 0.8));
    // Length ratio: 2/4, 4/2, 2/2 → mean 7/6.
    assert!(close(m.length_ratio_mean.unwrap(), 7.0 / 6.0));
    // Against itself every paired difference is exactly 0.
    for (k, d) in &m.minus_baseline {
        assert_eq!((d.mean, d.lo, d.hi), (0.0, 0.0, 0.0), "{k}");
    }
    assert!(m.minus_baseline.contains_key(keys::CONSISTENCY));
    let j = &m.judge_encoders[0];
    // Outputs 0.9, 0.7 (third skipped) → 0.8; inputs (0.5 + 0.5 + 0.6)/3.
    assert!(close(j.style_similarity.unwrap().mean, 0.8));
    assert!(close(j.minus_inputs.unwrap().mean, 0.8 - 1.6 / 3.0));
    assert_eq!(j.minus_baseline.unwrap().hi, 0.0);
}

#[test]
fn chart_panels_skip_unmeasured_metrics_and_draw_the_inputs_level() {
    use stylerl::eval::chart::panels;
    use stylerl::eval::table::TableOptions;
    let s = [
        sample("One two.", "Uno dos tres.", &[0], &[1]),
        sample("Three.", "Tres.", &[1], &[0]),
    ];
    let mut m = aggregate("sys", &s, 2, 0.95);
    add_intervals(
        &mut m,
        &series(&s, 0.95, None, Vec::new()),
        None,
        &Resamples::new(2, 200, 0),
        2,
    );
    let o = TableOptions::default();
    let p = panels(std::slice::from_ref(&m), &o);
    let titles: Vec<&str> = p.iter().map(|x| x.title.as_str()).collect();
    // No content encoder ran: no meaning panel.
    assert!(!titles.iter().any(|t| t.contains("meaning")), "{titles:?}");
    assert!(titles[0].starts_with("style similarity"));
    // Inputs' style similarity: both inputs score 0.5.
    assert_eq!(p[0].level, Some(0.5));
    let ratio = p
        .iter()
        .find(|x| x.title.starts_with("length ratio"))
        .unwrap();
    assert_eq!(ratio.level, Some(1.0));
    // (3/2 + 1/1) / 2.
    assert!(close(ratio.points[0].unwrap().mean, 1.25));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("chart.svg");
    assert_eq!(stylerl::eval::chart::draw(&[m], &o, &out).unwrap(), p.len());
    assert!(std::fs::read_to_string(&out).unwrap().contains("<svg"));
}
