//! Inputs that used to run forever (issue: reliability, class 3) finish within seconds: a
//! chat template whose loops never end is stopped by a step limit with one error line, and
//! `plot` on metric values like ±1e308 draws what it can instead of spinning.
mod common;
mod reliability_support;
mod sft_support;
use reliability_support::*;

#[test]
fn a_chat_template_with_endless_loops_is_stopped() {
    if !sft_support::smol_present() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("loop");
    config_only(&m, "llama", |_| {});
    let tc = m.join("tokenizer_config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&tc).unwrap()).unwrap();
    v["chat_template"] = "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}x{% endfor %}{% endfor %}{% endfor %}".into();
    std::fs::write(&tc, v.to_string()).unwrap();
    let mut c = stylerl();
    c.args([
        "generate",
        "--model",
        s(&m),
        "--chat",
        "--render-only",
        "--prompt",
        "Hi",
    ]);
    let o = run_for(c, 60);
    refused(&o, &["chat template ran past", "steps", "fix the template"]);
    assert!(o.stdout.is_empty());
    // The real template still renders.
    let o = run(&[
        "generate",
        "--model",
        s(&common::smol_dir()),
        "--chat",
        "--render-only",
        "--prompt",
        "Hi",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn plot_draws_metrics_with_extreme_values_without_spinning() {
    let d = tempfile::tempdir().unwrap();
    let lines = [
        r#"{"step": 1, "loss": 1e308, "lr": 0.001}"#,
        r#"{"step": 2, "loss": -1e308, "lr": 0.001}"#,
        r#"{"step": 3, "loss": 0.5, "lr": 0.001}"#,
        r#"{"step": 1e300, "reward": 0.2}"#,
        r#"{"step": 5, "reward": 1e-300, "grad_norm": 1e99}"#,
        r#"{"step": 6, "reward": 2e-300, "grad_norm": -1e99}"#,
    ];
    std::fs::write(d.path().join("metrics.jsonl"), lines.join("\n") + "\n").unwrap();
    let mut c = stylerl();
    c.arg("plot").arg(d.path());
    let o = run_for(c, 60);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("3 value(s)") && err.contains("left out"),
        "{err}"
    );
    let svg = std::fs::read_to_string(d.path().join("plots/metrics.svg")).unwrap();
    assert!(svg.contains("grad_norm") && svg.contains("loss"));
}
