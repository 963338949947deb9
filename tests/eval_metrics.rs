//! Evaluation metrics through the aggregation code `stylerl evaluate` uses, on hand-built
//! samples whose answers are worked out in the comments.
use stylerl::eval::aggregate::{aggregate, pair_entity_f1, JudgeCell, ScoredSample};
use stylerl::eval::config::ExampleSelection;
use stylerl::eval::prompts::{pick_examples, prompted_turn};
use stylerl::eval::table;

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

#[test]
fn identical_outputs_are_100_percent_not_rewritten() {
    let s = vec![
        sample("The cat sat.", "The cat sat.", &[0], &[0]),
        sample("Two lines\nhere.", "Two lines here.", &[1], &[1]),
    ];
    let m = aggregate("copy", &s, 3, 0.95);
    assert_eq!(m.not_rewritten_percent, 100.0);
    // Nothing was rewritten, so the consistency vector is empty: undefined, not 0 or 1.
    assert_eq!(m.style_consistency, None);
    // White space is collapsed before comparing (text::edit_similarity): both pairs are identical.
    assert_eq!(m.edit_similarity_mean, 1.0);
}

#[test]
fn consistency_counts_only_rewritten_samples() {
    let s = vec![
        // Rewritten: inputs → refs [0, 1], outputs → [0, 1].
        sample(
            "Hello there, friend.",
            "Greetings, dear companion!",
            &[0, 1],
            &[0, 1],
        ),
        // Identical (not rewritten): would add input [2] and output [2, 2, 2] if it counted.
        sample("Same text.", "Same text.", &[2], &[2, 2, 2]),
    ];
    let m = aggregate("x", &s, 3, 0.95);
    assert_eq!(m.not_rewritten_percent, 50.0);
    // Counting the second sample gives [1,1,1]·[1,1,3] / (√3·√11) ≈ 0.870, not 1.
    assert!((m.style_consistency.unwrap() - 1.0).abs() < 1e-12);
}

#[test]
fn known_count_vectors_give_known_cosine() {
    // Inputs count [2, 1, 0], outputs count [1, 1, 1]: cos = 3 / (√5 · √3).
    let s = vec![
        sample(
            "Alpha beta gamma.",
            "Something else entirely!",
            &[0, 0],
            &[0, 1],
        ),
        sample("Delta epsilon.", "Completely new words here.", &[1], &[2]),
    ];
    let m = aggregate("x", &s, 3, 0.95);
    let want = 3.0 / (5f64.sqrt() * 3f64.sqrt());
    assert!((m.style_consistency.unwrap() - want).abs() < 1e-12);
}

#[test]
fn style_similarity_is_mean_of_text_means_with_inputs_alongside() {
    let mut a = sample("In one. In two.", "Out one. Out two.", &[0, 1], &[0, 1]);
    a.output_sim = vec![0.8, 0.4]; // text mean 0.6
    a.input_sim = vec![0.1, 0.3]; // 0.2
    let mut b = sample("In three.", "Out three.", &[0], &[0]);
    b.output_sim = vec![0.2]; // 0.2
    b.input_sim = vec![0.4]; // 0.4
    let mut c = sample("In four.", "", &[0], &[]);
    c.input_sim = vec![0.6]; // output has no sentence: skipped for outputs only
    c.stopped_at_eos = false;
    let m = aggregate("x", &[a, b, c], 2, 0.95);
    assert!((m.style_similarity.unwrap() - 0.4).abs() < 1e-6);
    assert!((m.input_style_similarity.unwrap() - 0.4).abs() < 1e-6);
    assert!((m.truncated_percent - 100.0 / 3.0).abs() < 1e-9);
    // Words: 4, 2, 0 → 2.
    assert!((m.words_mean - 2.0).abs() < 1e-12);
}

#[test]
fn entity_f1_of_pairs() {
    // Both entity-free → 1; everything kept → 1.
    assert_eq!(pair_entity_f1("hello there", "hi there"), 1.0);
    let kept = pair_entity_f1(
        "Send it to Maria Lopez by 5 May.",
        "Maria Lopez needs it by 5 May.",
    );
    assert_eq!(kept, 1.0);
    // {Maria, Tom, Paris} vs {Tom, Paris}: F1 = 2·2 / (3 + 2) = 0.8.
    let lost = pair_entity_f1("I met Maria and Tom in Paris.", "I met Tom in Paris.");
    assert!((lost - 0.8).abs() < 1e-12, "lost one entity: {lost}");
}

#[test]
fn table_has_every_column_and_says_why_values_are_missing() {
    let s = vec![sample("Same.", "Same.", &[0], &[0])];
    let mut m = aggregate("copy", &s, 1, 0.95);
    let o = table::TableOptions::default();
    let md = table::markdown(std::slice::from_ref(&m), &o);
    for h in table::headers(&o) {
        assert!(md.contains(&h), "missing header {h}:\n{md}");
    }
    // Line 3 is the inputs' own row, line 4 the system.
    assert!(md.lines().nth(2).unwrap().starts_with("| inputs"));
    let row = md.lines().nth(3).unwrap();
    assert!(row.contains("n/a") && row.contains("no endpoint") && row.contains("100.0"));
    assert!(row.contains("not measured"), "no content encoder: {row}");
    assert!(md.contains("95 % paired bootstrap"));
    m.judge = JudgeCell::Percent(62.5);
    let o = table::TableOptions {
        judge_baseline: "prompted".into(),
        ..Default::default()
    };
    let md = table::markdown(&[m.clone()], &o);
    assert!(md.contains("judge preference vs prompted %") && md.contains("62.5"));
    let csv = table::csv(&[m]).unwrap();
    assert_eq!(csv.lines().count(), 2);
    assert!(csv
        .lines()
        .nth(1)
        .unwrap()
        .starts_with("copy,0.5,0.5,100,,62.5,"));
}

#[test]
fn interval_cells_read_estimate_then_bounds() {
    use stylerl::eval::bootstrap::Interval;
    let iv = Interval {
        mean: 0.5123,
        lo: 0.49,
        hi: 0.5301,
    };
    assert_eq!(table::cell(Some(&iv), 3, false), "0.512 [0.490, 0.530]");
    let d = Interval {
        mean: 0.031,
        lo: -0.004,
        hi: 0.06,
    };
    assert_eq!(table::cell(Some(&d), 3, true), "+0.031 [-0.004, +0.060]");
    assert_eq!(table::cell(None, 3, false), "n/a");
    assert_eq!(
        table::encoder_label("models/all-minilm-l6-v2/"),
        "all-minilm-l6-v2"
    );
}

#[test]
fn example_picks_are_seeded_distinct_and_sorted() {
    let a = pick_examples(20, 8, ExampleSelection::Random, 0);
    assert_eq!(a, pick_examples(20, 8, ExampleSelection::Random, 0));
    assert_ne!(a, pick_examples(20, 8, ExampleSelection::Random, 1));
    assert_eq!(a.len(), 8);
    assert!(a.windows(2).all(|w| w[0] < w[1]) && a[7] < 20);
    assert_eq!(
        pick_examples(20, 3, ExampleSelection::First, 9),
        vec![0, 1, 2]
    );
    assert_eq!(
        pick_examples(4, 10, ExampleSelection::Random, 0),
        vec![0, 1, 2, 3]
    );
    let t = prompted_turn("E:\n{examples}\nT: {input}", &["One.", "Two\nlines."], "Hi");
    assert_eq!(t, "E:\n- One.\n- Two lines.\nT: Hi");
}
