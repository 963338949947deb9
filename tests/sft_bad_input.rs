//! Bad SFT input through the binary: each case exits 1 with one `error:` line naming the
//! problem; over-long examples are truncated and counted (or refused); NaN losses skip
//! the update, are counted, and stop the run after K in a row.
mod common;
mod sft_support;
use sft_support::*;
use std::path::Path;

fn expect_error(cfg: &Path, set: &[&str], want: &[&str]) {
    let mut args = Vec::new();
    for s in set {
        args.push("--set");
        args.push(s);
    }
    let line = one_error_line(&sft(cfg, &args, &[]));
    for w in want {
        assert!(line.contains(w), "'{w}' not in: {line}");
    }
}

#[test]
fn bad_config_and_data_give_one_line() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    let cfg = config(d.path(), "run", "max_steps = 1");
    let p = |f: &str| d.path().join(f).display().to_string();

    expect_error(&cfg, &["train.max_stepz=3"], &["max_stepz"]);
    expect_error(&cfg, &["lora.rank=3"], &["rank"]);
    expect_error(
        &cfg,
        &["data.input_field=text"],
        &["data.input_field", "'text'"],
    );
    std::fs::write(d.path().join("empty.jsonl"), "\n\n").unwrap();
    expect_error(
        &cfg,
        &[&format!("data.train={}", p("empty.jsonl"))],
        &["empty.jsonl", "empty"],
    );
    expect_error(
        &cfg,
        &[&format!("model.path={}", p("no_such_model"))],
        &["no_such_model"],
    );
    expect_error(
        &cfg,
        &["data.max_length=24", "data.overlong=refuse"],
        &["more than max_len = 24"],
    );
    expect_error(&cfg, &["data.overlong=cut"], &["cut"]);
}

#[test]
fn overlong_examples_are_truncated_and_counted() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    // One answer far longer than max_length (truncated), one input that alone exceeds it
    // (dropped), one that fits.
    let long = "word ".repeat(300);
    let rows = [
        serde_json::json!({"input": "Short note.", "output": long}),
        serde_json::json!({"input": long, "output": "Short."}),
        serde_json::json!({"input": "Hi there.", "output": "Hello there."}),
    ];
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(d.path().join("train.jsonl"), text).unwrap();
    let cfg = config(d.path(), "run", "max_steps = 1");
    let o = sft(&cfg, &[], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("1 examples truncated, 1 dropped (longer than data.max_length = 128)"),
        "{err}"
    );
}

#[test]
fn nan_losses_are_skipped_counted_and_stop_the_run() {
    if !smol_present() {
        return;
    }
    let d = workspace();
    let cfg = config(d.path(), "one", "max_steps = 4\nnan_max_in_a_row = 2");
    let o = sft(&cfg, &[], &[("STYLERL_FAULT_NAN_AT_STEPS", "2")]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("skipped 1 update(s)"), "{out}");
    let m = metrics(&d.path().join("one"))[1..].to_vec(); // [0] is the step-0 eval
    let skipped: Vec<bool> = m.iter().map(|r| r["skipped"].as_bool().unwrap()).collect();
    assert_eq!(skipped, [false, true, false, false]);
    assert_eq!(m[3]["nan_total"], 1);
    // The skipped step left the adapter as it was after step 1 (checkpoints keep 3: 2, 3, 4).
    let ck = d.path().join("one/checkpoints");
    let w = "adapter_model.safetensors";
    let cfg1 = config(d.path(), "ref", "max_steps = 1\nnan_max_in_a_row = 2");
    assert!(sft(&cfg1, &[], &[]).status.success());
    let after1 = d.path().join("ref/adapter").join(w);
    assert_eq!(max_diff(&after1, &ck.join("step-2").join(w)), 0.0);
    assert!(max_diff(&ck.join("step-2").join(w), &ck.join("step-3").join(w)) > 0.0);

    let cfg2 = config(d.path(), "two", "max_steps = 6\nnan_max_in_a_row = 2");
    let line = one_error_line(&sft(&cfg2, &[], &[("STYLERL_FAULT_NAN_AT_STEPS", "2,3")]));
    assert!(
        line.contains("step 3") && line.contains("2 steps in a row"),
        "{line}"
    );
}
