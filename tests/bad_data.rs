//! Corrupt model files through the binary: one `error:` line naming the file and the fix.
mod common;
use std::process::Command;

#[test]
fn corrupt_model_safetensors_names_the_file_and_the_fix() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("m");
    common::tiny_llama(&model, 1);
    let weights = model.join("model.safetensors");
    // Cut inside the header: the length prefix promises more metadata than there is.
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..64]).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_stylerl"))
        .args(["generate", "--model"])
        .arg(&model)
        .args(["--prompt", "hi", "--max-new-tokens", "2"])
        .env("STYLERL_PROGRESS", "0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("error: ")
            && lines[0].contains(&weights.display().to_string())
            && lines[0].contains("scripts/setup.sh")
            && lines[0].contains("import-gguf"),
        "{err}"
    );
}
