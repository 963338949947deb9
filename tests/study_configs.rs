//! The recipes `scripts/seed_study.sh` trains (configs/study/): they parse and validate as GRPO
//! configs, and a1f is a1 with fallback-mode usage dropout and nothing else changed — the
//! README's a1f − a1 difference is the dropout's only if that holds.
use std::path::Path;
use stylerl::reward::config::{DropoutMode, DropoutRates};
use stylerl::train::grpo_config::GrpoConfig;

fn text(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs/study")
            .join(name),
    )
    .unwrap()
}

fn config(name: &str) -> GrpoConfig {
    let cfg: GrpoConfig = toml::from_str(&text(name)).unwrap();
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
}

#[test]
fn a1f_is_a1_plus_dropout_only() {
    let strip = |name: &str| {
        let mut v: toml::Value = toml::from_str(&text(name)).unwrap();
        let t = v.as_table_mut().unwrap();
        t.remove("out_dir");
        t["reward"].as_table_mut().unwrap().remove("dropout");
        v
    };
    assert_eq!(strip("a1.toml"), strip("a1f.toml"));
}
