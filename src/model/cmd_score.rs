//! `stylerl perplexity` and `stylerl logits`: score given texts (or token ids) with the model.
use super::cmd::{LogitsArgs, ModelOpts, PerplexityArgs};
use super::cmd_run::{check_model_dir, encode, load_model, read_prompts, tokenizer_if_needed};
use super::generate::left_pad;
use super::llama::Llama;
use super::scoring::token_logprobs;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;
use tch::{Kind, Tensor};

/// The model (with its adapters) and the input file's lines as token ids, without a chat
/// template: what both scoring commands start from.
fn model_and_inputs(m: &ModelOpts, input: &Path) -> Result<(Llama, Vec<Vec<i64>>)> {
    check_model_dir(m)?;
    let prompts = read_prompts(input)?;
    let model = load_model(m)?;
    let tok = tokenizer_if_needed(&m.model, &prompts)?;
    let ids = prompts
        .iter()
        .map(|p| encode(&tok, p, None))
        .collect::<Result<_>>()?;
    Ok((model, ids))
}

/// Mean NLL of tokens 2..n given the tokens before them (transformers' labels=input_ids loss).
/// The tokenizer's own post-processor decides whether a BOS token is prepended.
pub fn perplexity(a: &PerplexityArgs) -> Result<()> {
    let (model, ids) = model_and_inputs(&a.m, &a.input)?;
    for (i, x) in ids.iter().enumerate() {
        if x.len() < 2 {
            bail!(
                "{} text {}: {} token(s); perplexity needs at least 2",
                a.input.display(),
                i + 1,
                x.len()
            );
        }
    }
    let _g = tch::no_grad_guard();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for chunk in ids.chunks(a.batch_size.max(1)) {
        let rows: Vec<&[i64]> = chunk.iter().map(|r| r.as_slice()).collect();
        let (ids_t, mask) = left_pad(&rows, 0);
        let lp = token_logprobs(
            &model,
            &ids_t.to_device(model.device),
            Some(&mask.to_device(model.device)),
            1,
            1.0,
        );
        let lp = lp.to_kind(Kind::Double).to_device(tch::Device::Cpu);
        let t = ids_t.size()[1] as usize;
        for (r, row) in chunk.iter().enumerate() {
            // Left-padded: the row's scored targets are its last len-1 positions.
            let n = row.len();
            let sum = lp
                .get(r as i64)
                .narrow(0, (t - n) as i64, (n - 1) as i64)
                .sum(Kind::Double)
                .double_value(&[]);
            let mean_nll = -sum / (n - 1) as f64;
            writeln!(
                out,
                "{}",
                serde_json::json!({"tokens": n, "mean_nll": mean_nll, "perplexity": mean_nll.exp()})
            )?;
        }
    }
    Ok(())
}

pub fn logits(a: &LogitsArgs) -> Result<()> {
    let (model, ids) = model_and_inputs(&a.m, &a.input)?;
    if let Some(i) = ids.iter().position(|x| x.is_empty()) {
        bail!("{} prompt {} has no tokens", a.input.display(), i + 1);
    }
    let _g = tch::no_grad_guard();
    let mut named: Vec<(String, Tensor)> = Vec::new();
    let per_row: Vec<Tensor> = if a.batched {
        let rows: Vec<&[i64]> = ids.iter().map(|r| r.as_slice()).collect();
        let (x, mask) = left_pad(&rows, 0);
        let l = model.forward(
            &x.to_device(model.device),
            Some(&mask.to_device(model.device)),
            None,
        );
        let t = x.size()[1];
        ids.iter()
            .enumerate()
            .map(|(i, r)| {
                l.get(i as i64)
                    .narrow(0, t - r.len() as i64, r.len() as i64)
            })
            .collect()
    } else {
        ids.iter()
            .map(|r| {
                model
                    .forward(
                        &Tensor::from_slice(r).unsqueeze(0).to_device(model.device),
                        None,
                        None,
                    )
                    .get(0)
            })
            .collect()
    };
    for (i, (l, r)) in per_row.into_iter().zip(&ids).enumerate() {
        named.push((
            format!("logits_{i}"),
            l.to_kind(Kind::Float)
                .to_device(tch::Device::Cpu)
                .contiguous(),
        ));
        named.push((format!("input_ids_{i}"), Tensor::from_slice(r)));
    }
    if let Some(dir) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Tensor::write_safetensors(&named, &a.out)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    Ok(())
}
