//! Entity extraction on the shipped SFT pairs, whose rewrites keep every entity by design
//! (datasets/README.md): matched pairs must score F1 ≈ 1, mismatched pairs must not.
use stylerl::reward::penalties::entity_f1;
use stylerl::text::entity_pair;

fn pairs(file: &str) -> Vec<(String, String)> {
    let p = format!("{}/datasets/sft/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["input"].as_str().unwrap().to_string(),
                v["output"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn f1(i: &str, o: &str) -> f64 {
    let (a, b) = entity_pair(i, o);
    let n = |v: &[stylerl::text::Entity]| v.iter().map(|e| e.norm.clone()).collect::<Vec<_>>();
    entity_f1(&n(&a), &n(&b))
}

#[test]
fn preserved_entities_score_high_and_swapped_pairs_low() {
    for file in ["train.jsonl", "eval.jsonl"] {
        let ps = pairs(file);
        let matched = ps.iter().map(|(i, o)| f1(i, o)).sum::<f64>() / ps.len() as f64;
        let swapped = (0..ps.len())
            .map(|k| f1(&ps[k].0, &ps[(k + 1) % ps.len()].1))
            .sum::<f64>()
            / ps.len() as f64;
        eprintln!(
            "{file}: mean F1 matched {matched:.3}, swapped {swapped:.3} over {} pairs",
            ps.len()
        );
        assert!(matched > 0.97, "{file}: matched {matched}");
        assert!(swapped < 0.3, "{file}: swapped {swapped}");
    }
}
