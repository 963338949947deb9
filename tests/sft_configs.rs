//! The shipped SFT configs parse (unknown keys would fail) and say what the issue asks:
//! seed 000's Q/A LoRA, the CPU demo, the paper-scale run. Their data files load with the
//! configured fields.
use std::path::Path;
use stylerl::adapter::lora::TargetModules;
use stylerl::train::sft::SftConfig;
use stylerl::train::sft_data::load_conversations;

fn load(p: &str) -> SftConfig {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    stylerl::config::load(&root.join(p), &[]).unwrap()
}

#[test]
fn qa_lora_is_seed_000s_experiment() {
    let c = load("configs/qa-lora.toml");
    assert_eq!((c.lora.r, c.lora.alpha, c.lora.dropout), (8, 16.0, 0.1));
    let want: Vec<String> = ["q_proj", "k_proj", "v_proj", "o_proj"]
        .map(String::from)
        .to_vec();
    assert_eq!(c.lora.target_modules, TargetModules::List(want));
    assert_eq!(c.model.path, Path::new("models/smollm2-135m-instruct"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let train = load_conversations(&c.data, &root.join(&c.data.train)).unwrap();
    let eval = load_conversations(&c.data, &root.join(c.data.eval.as_ref().unwrap())).unwrap();
    assert_eq!((train.len(), eval.len()), (63, 16));
    // the user turn is the bare question, as `generate --chat --input-field question` sends it
    assert_eq!(train[0].0.last().unwrap().content, "Where is Wrenhaven?");
    assert!(train[0].1.starts_with("Wrenhaven is a small fishing town"));
}

#[test]
fn paper_and_demo_configs() {
    let p = load("configs/paper/sft.toml");
    assert_eq!(p.train.max_steps, Some(1000));
    assert_eq!((p.train.batch_size, p.train.optimizer.lr), (1, 2e-5));
    assert_eq!(
        (p.model.device.as_str(), p.model.dtype.as_str()),
        ("cuda", "bf16")
    );
    assert_eq!(
        p.lora.target_modules,
        TargetModules::One("all-linear".into())
    );
    assert!(p.model.path.ends_with("Llama-3.2-3B-Instruct"));

    let d = load("configs/demo/sft.toml");
    assert_eq!(d.model.device, "cpu");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let n = load_conversations(&d.data, &root.join(&d.data.train))
        .unwrap()
        .len();
    assert_eq!(n, 140);
}
