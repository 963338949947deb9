//! `stylerl logits`: the logits of prompts as safetensors (parity checks against
//! transformers).
use super::args::ModelOpts;
use super::prompts::model_and_inputs;
use crate::infer::generate::left_pad;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use tch::{Kind, Tensor};

#[derive(clap::Args, Debug)]
pub struct LogitsArgs {
    #[command(flatten)]
    pub m: ModelOpts,
    /// JSON-lines file of prompts (strings, tokenized with the tokenizer's specials, or id arrays).
    #[arg(long)]
    pub input: PathBuf,
    /// Output safetensors file: `logits_<i>` [len, vocab] (f32) and `input_ids_<i>` per prompt.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace --out when it exists.
    #[arg(long)]
    pub force: bool,
    /// Run all prompts as one left-padded batch instead of one by one.
    #[arg(long)]
    pub batched: bool,
}

pub fn logits(a: &LogitsArgs) -> Result<()> {
    let mut inputs = vec![
        ("--input", a.input.as_path()),
        ("--model", a.m.model.as_path()),
    ];
    let adapters: Vec<PathBuf> =
        a.m.adapters
            .iter()
            .map(|s| PathBuf::from(s.rsplit_once(':').map_or(s.as_str(), |(p, _)| p)))
            .collect();
    inputs.extend(adapters.iter().map(|p| ("--adapter", p.as_path())));
    super::args::check_not_input("--out", &a.out, &inputs)?;
    super::args::check_out_file("--out", &a.out, a.force)?;
    let (model, ids) = model_and_inputs(&a.m, &a.input)?;
    if let Some(i) = ids.iter().position(|x| x.is_empty()) {
        bail!("{} prompt {} has no tokens", a.input.display(), i + 1);
    }
    // Every prompt's logits are kept until written (f32), and --batched pads all of them
    // to the longest in one pass.
    let vocab = model.config.vocab_size as f64;
    let kept: f64 = ids.iter().map(|r| r.len() as f64).sum::<f64>() * vocab * 4.0;
    let longest = ids.iter().map(|r| r.len()).max().unwrap_or(0) as f64;
    let pass = match a.batched {
        true => ids.len() as f64 * longest * vocab * 4.0,
        false => longest * vocab * 4.0,
    };
    crate::util::check_fits(
        kept + pass,
        &format!(
            "keeping the logits of {} prompt(s) ({} tokens, vocabulary {vocab})",
            ids.len(),
            kept / vocab / 4.0
        ),
        "give fewer or shorter prompts (or leave out --batched)",
    )?;
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
