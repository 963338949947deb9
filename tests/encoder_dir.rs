//! A bad sentence-transformers directory fails in one line naming the path and the missing piece.
use std::fs;
use std::path::Path;
use stylerl::encoder::st_dir::StDir;

const BERT_CONFIG: &str = r#"{"model_type": "bert", "vocab_size": 10, "hidden_size": 8,
  "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
  "max_position_embeddings": 32, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0}"#;

const MODULES: &str = r#"[
 {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
 {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
 {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]"#;

/// A directory with every file present (weights and tokenizer are placeholders: StDir only
/// checks they exist).
fn complete(dir: &Path) {
    fs::write(dir.join("modules.json"), MODULES).unwrap();
    fs::write(dir.join("config.json"), BERT_CONFIG).unwrap();
    fs::write(dir.join("model.safetensors"), b"").unwrap();
    fs::write(dir.join("tokenizer.json"), b"{}").unwrap();
    fs::write(
        dir.join("sentence_bert_config.json"),
        r#"{"max_seq_length": 16, "do_lower_case": true}"#,
    )
    .unwrap();
    fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    fs::write(
        dir.join("1_Pooling/config.json"),
        r#"{"pooling_mode_cls_token": true}"#,
    )
    .unwrap();
}

/// The one-line message of opening `dir`, which must fail.
fn error_of(dir: &Path) -> String {
    let err = StDir::open(dir).expect_err("expected an error");
    let line = format!("{err:#}");
    assert!(!line.contains('\n'), "error spans lines: {line}");
    line
}

#[test]
fn complete_directory_reads_settings() {
    let tmp = tempfile::tempdir().unwrap();
    complete(tmp.path());
    let d = StDir::open(tmp.path()).unwrap();
    assert_eq!(d.max_seq_length, 16);
    assert!(d.do_lower_case && d.normalize);
    assert_eq!(d.pooling, vec![stylerl::encoder::pooling::PoolMode::Cls]);
    assert_eq!(d.config.hidden_size, 8);
}

#[test]
fn max_seq_length_is_capped_by_positions() {
    let tmp = tempfile::tempdir().unwrap();
    complete(tmp.path());
    fs::write(
        tmp.path().join("sentence_bert_config.json"),
        r#"{"max_seq_length": 512}"#,
    )
    .unwrap();
    assert_eq!(StDir::open(tmp.path()).unwrap().max_seq_length, 32);
    // RoBERTa: positions start at pad + 1, so 32 - 2 usable.
    let roberta = BERT_CONFIG
        .replace("\"bert\"", "\"roberta\"")
        .replace("\"pad_token_id\": 0", "\"pad_token_id\": 1");
    fs::write(tmp.path().join("config.json"), roberta).unwrap();
    assert_eq!(StDir::open(tmp.path()).unwrap().max_seq_length, 30);
}

#[test]
fn not_a_directory() {
    let e = error_of(Path::new("/nonexistent/encoder-dir"));
    assert!(
        e.contains("/nonexistent/encoder-dir") && e.contains("not a directory"),
        "{e}"
    );
}

fn missing_case(remove: &str, expect: &str) {
    let tmp = tempfile::tempdir().unwrap();
    complete(tmp.path());
    fs::remove_file(tmp.path().join(remove)).unwrap();
    let e = error_of(tmp.path());
    assert!(
        e.contains(&tmp.path().join(remove).display().to_string()),
        "{e}"
    );
    assert!(e.contains(expect), "{e}");
}

#[test]
fn missing_files_are_named() {
    missing_case("modules.json", "is missing");
    missing_case("config.json", "is missing");
    missing_case("model.safetensors", "is missing");
    missing_case("tokenizer.json", "is missing");
    missing_case("1_Pooling/config.json", "is missing");
}

#[test]
fn pickle_weights_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    complete(tmp.path());
    fs::remove_file(tmp.path().join("model.safetensors")).unwrap();
    fs::write(tmp.path().join("pytorch_model.bin"), b"").unwrap();
    let e = error_of(tmp.path());
    assert!(
        e.contains("pytorch_model.bin") && e.contains("model.safetensors"),
        "{e}"
    );
}

#[test]
fn unsupported_model_type_and_dense_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    complete(tmp.path());
    fs::write(
        tmp.path().join("config.json"),
        BERT_CONFIG.replace("\"bert\"", "\"gpt2\""),
    )
    .unwrap();
    let e = error_of(tmp.path());
    assert!(e.contains("model_type 'gpt2' is not supported"), "{e}");

    complete(tmp.path());
    let dense = MODULES.replace(
        "Normalize\"}]",
        "Normalize\"}, {\"path\": \"3_Dense\", \"type\": \"sentence_transformers.models.Dense\"}]",
    );
    fs::write(tmp.path().join("modules.json"), dense).unwrap();
    let e = error_of(tmp.path());
    assert!(e.contains("Dense modules are not supported"), "{e}");
}

#[test]
fn load_reports_the_path() {
    let e = stylerl::encoder::load("/nonexistent/st-model")
        .err()
        .expect("load must fail");
    assert!(format!("{e:#}").contains("/nonexistent/st-model"));
}

#[test]
fn cli_prints_one_error_line() {
    let tmp = tempfile::tempdir().unwrap();
    complete(tmp.path());
    fs::remove_file(tmp.path().join("tokenizer.json")).unwrap();
    let input = tmp.path().join("in.txt");
    fs::write(&input, "hello\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stylerl"))
        .args(["embed", "--encoder"])
        .arg(tmp.path())
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("tokenizer.json is missing"), "{err}");
}
