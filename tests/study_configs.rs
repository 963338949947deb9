//! The recipes `scripts/seed_study.sh` trains (configs/study/): they parse and validate as GRPO
//! configs, a1f is a1 with fallback-mode usage dropout and nothing else changed, and a1b is a1f
//! with R_balance and nothing else, a1n2 is a1f with 2 anchored neighbours instead of 8, and
//! a1n2nd is a1n2 without dropout — each README difference is that one change's only if so. The
//! demo's GRPO runs are a1n2 / a1n2nd themselves, so the five-seed study describes its recipe.
use std::path::Path;
use stylerl::reward::config::{DropoutMode, DropoutRates};
use stylerl::train::grpo_config::GrpoConfig;

fn file(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// A config file's TOML without its `out_dir`.
fn settings(rel: &str) -> toml::Value {
    let mut v: toml::Value = toml::from_str(&file(rel)).unwrap();
    v.as_table_mut().unwrap().remove("out_dir");
    v
}

/// A config's recipe: its settings without the precision keys, which choose how fast the
/// same arithmetic runs on this CPU (within the tolerances of tests/precision_modes.rs).
fn recipe(rel: &str) -> toml::Value {
    let mut v = settings(rel);
    let t = v.as_table_mut().unwrap();
    for (table, key) in [("model", "matmul"), ("grpo", "sampling_weights")] {
        if let Some(tb) = t.get_mut(table).and_then(|x| x.as_table_mut()) {
            tb.remove(key);
        }
    }
    v
}

fn config(name: &str) -> GrpoConfig {
    load(&format!("configs/study/{name}"))
}

/// A config file parsed and validated as a GRPO config.
fn load(rel: &str) -> GrpoConfig {
    let cfg: GrpoConfig = toml::from_str(&file(rel)).unwrap();
    cfg.validate().unwrap();
    cfg
}

#[test]
fn study_recipes_parse_and_validate() {
    let a1 = config("a1.toml");
    assert!(!a1.reward.dropout.enabled);
    let a1f = config("a1f.toml");
    let d = &a1f.reward.dropout;
    assert!(d.enabled);
    assert_eq!(d.mode, DropoutMode::Fallback);
    assert_eq!(d.rates, DropoutRates::Usage);
    assert_eq!(a1.out_dir, Path::new("runs/study/a1"));
    assert_eq!(a1f.out_dir, Path::new("runs/study/a1f"));
    let a1b = config("a1b.toml");
    assert!(a1b.reward.balance.weight > 0.0);
    assert_eq!(a1b.out_dir, Path::new("runs/study/a1b"));
    let a1n2 = config("a1n2.toml");
    assert_eq!(a1n2.reward.neighbours, 2);
    assert_eq!(a1f.reward.neighbours, 8);
}

/// A recipe's TOML without its `out_dir` and without `[reward].<key>`.
fn without(name: &str, key: &str) -> toml::Value {
    let mut v = settings(&format!("configs/study/{name}"));
    v["reward"].as_table_mut().unwrap().remove(key);
    v
}

#[test]
fn a1f_is_a1_plus_dropout_only() {
    assert_eq!(
        without("a1.toml", "dropout"),
        without("a1f.toml", "dropout")
    );
}

#[test]
fn a1b_is_a1f_plus_balance_only() {
    assert_eq!(
        without("a1f.toml", "balance"),
        without("a1b.toml", "balance")
    );
}

#[test]
fn a1n2_is_a1f_with_two_neighbours_only() {
    assert_eq!(
        without("a1f.toml", "neighbours"),
        without("a1n2.toml", "neighbours")
    );
}

#[test]
fn a1n2nd_is_a1n2_without_dropout() {
    assert_eq!(
        without("a1n2.toml", "dropout"),
        without("a1n2nd.toml", "dropout")
    );
    assert!(!config("a1n2nd.toml").reward.dropout.enabled);
}

#[test]
fn the_demo_runs_a1n2_and_a1n2nd() {
    assert_eq!(
        recipe("configs/demo/grpo-dropout.toml"),
        recipe("configs/study/a1n2.toml")
    );
    assert_eq!(
        recipe("configs/demo/grpo.toml"),
        recipe("configs/study/a1n2nd.toml")
    );
    // Bit-LoRA: the dropout run with ternary adapters, nothing else changed.
    let mut bitlora = settings("configs/demo/grpo-bitlora.toml");
    let g = bitlora["grpo"].as_table_mut().unwrap();
    assert_eq!(g.remove("bitlora"), Some(toml::Value::Boolean(true)));
    assert_eq!(bitlora, settings("configs/demo/grpo-dropout.toml"));
    for name in ["grpo", "grpo-dropout", "grpo-bitlora"] {
        let cfg = load(&format!("configs/demo/{name}.toml"));
        assert_eq!(cfg.out_dir, Path::new("runs/demo").join(name));
        // The demo takes the fast path where this CPU has one (f32 elsewhere).
        assert_eq!(cfg.model.matmul, "auto");
        assert_eq!(cfg.grpo.sampling_weights, "auto");
    }
}
