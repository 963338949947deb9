//! GGUF ↔ Hugging Face Llama tensor names, shapes, and the Q/K row (un-)permutation.
use anyhow::{bail, Result};

/// Maps a llama.cpp tensor name to its Hugging Face Llama name.
pub fn hf_name(gguf: &str) -> Result<String> {
    let whole = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(n) = whole {
        return Ok(n.to_string());
    }
    let parts: Vec<&str> = gguf.split('.').collect();
    if let ["blk", layer, leaf, "weight"] = parts.as_slice() {
        if layer.parse::<usize>().is_ok() {
            let hf = match *leaf {
                "attn_q" => "self_attn.q_proj",
                "attn_k" => "self_attn.k_proj",
                "attn_v" => "self_attn.v_proj",
                "attn_output" => "self_attn.o_proj",
                "ffn_gate" => "mlp.gate_proj",
                "ffn_up" => "mlp.up_proj",
                "ffn_down" => "mlp.down_proj",
                "attn_norm" => "input_layernorm",
                "ffn_norm" => "post_attention_layernorm",
                _ => "",
            };
            if !hf.is_empty() {
                return Ok(format!("model.layers.{layer}.{hf}.weight"));
            }
        }
    }
    if gguf == "rope_freqs.weight" {
        bail!("tensor 'rope_freqs.weight' (llama3 rope scaling) is not supported by this importer");
    }
    bail!("tensor '{gguf}' has no Hugging Face Llama equivalent (unsupported tensor)")
}

/// Maps a Hugging Face Llama tensor name to llama.cpp's (the inverse of [`hf_name`]).
pub fn gguf_name(hf: &str) -> Result<String> {
    let whole = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(n) = whole {
        return Ok(n.to_string());
    }
    if let Some(rest) = hf.strip_prefix("model.layers.") {
        if let Some((layer, module)) = rest.split_once('.') {
            if layer.parse::<usize>().is_ok() {
                // Weights and biases share a leaf (Qwen2's q/k/v biases become attn_q.bias ...).
                let (module, kind) = module.rsplit_once('.').unwrap_or((module, ""));
                let leaf = match module {
                    "self_attn.q_proj" => "attn_q",
                    "self_attn.k_proj" => "attn_k",
                    "self_attn.v_proj" => "attn_v",
                    "self_attn.o_proj" => "attn_output",
                    "self_attn.q_norm" => "attn_q_norm",
                    "self_attn.k_norm" => "attn_k_norm",
                    "mlp.gate_proj" => "ffn_gate",
                    "mlp.up_proj" => "ffn_up",
                    "mlp.down_proj" => "ffn_down",
                    "input_layernorm" => "attn_norm",
                    "post_attention_layernorm" => "ffn_norm",
                    _ => "",
                };
                if !leaf.is_empty() && matches!(kind, "weight" | "bias") {
                    return Ok(format!("blk.{layer}.{leaf}.{kind}"));
                }
            }
        }
    }
    if let Some(n) = gpt2_gguf_name(hf) {
        return Ok(n);
    }
    bail!("tensor '{hf}' has no llama.cpp equivalent (unsupported tensor)")
}

/// GPT-2's names (`transformer.*`) as llama.cpp's gpt2 architecture names them.
fn gpt2_gguf_name(hf: &str) -> Option<String> {
    let (module, kind) = hf.strip_prefix("transformer.")?.rsplit_once('.')?;
    if !matches!(kind, "weight" | "bias") {
        return None;
    }
    let whole = match module {
        "wte" => Some("token_embd"),
        "wpe" => Some("position_embd"),
        "ln_f" => Some("output_norm"),
        _ => None,
    };
    if let Some(n) = whole {
        return Some(format!("{n}.{kind}"));
    }
    let (layer, leaf) = module.strip_prefix("h.")?.split_once('.')?;
    layer.parse::<usize>().ok()?;
    let leaf = match leaf {
        "ln_1" => "attn_norm",
        "attn.c_attn" => "attn_qkv",
        "attn.c_proj" => "attn_output",
        "ln_2" => "ffn_norm",
        "mlp.c_fc" => "ffn_up",
        "mlp.c_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{leaf}.{kind}"))
}

/// Hugging Face shape of a ggml tensor: ggml lists the fastest dimension first, HF last.
pub fn hf_shape(dims: &[u64]) -> Vec<usize> {
    dims.iter().rev().map(|&d| d as usize).collect()
}

/// Which heads to un-permute a tensor with: `Some(n_head)` for q_proj, `Some(n_head_kv)` for
/// k_proj, `None` for every other tensor.
pub fn rope_heads(gguf: &str, n_head: usize, n_head_kv: usize) -> Option<usize> {
    if gguf.ends_with(".attn_q.weight") {
        Some(n_head)
    } else if gguf.ends_with(".attn_k.weight") {
        Some(n_head_kv)
    } else {
        None
    }
}

/// Undoes llama.cpp's Q/K row permutation.
///
/// llama.cpp's converter takes the HF rows of each head, `[half0 | half1]` (rotate-half RoPE
/// pairs row i with row i + head_dim/2), and interleaves them (`reshape(n_head, 2, hd/2, in)
/// .swapaxes(1, 2)`), so GGUF row `h*hd + 2i + s` is HF row `h*hd + s*hd/2 + i`. This puts
/// every row back, for a row-major `[rows, cols]` matrix.
pub fn unpermute_rows(data: &[f32], rows: usize, cols: usize, n_head: usize) -> Result<Vec<f32>> {
    move_rows(data, rows, cols, n_head, false)
}

/// llama.cpp's Q/K row permutation (the inverse of [`unpermute_rows`]): HF row
/// `h*hd + s*hd/2 + i` becomes GGUF row `h*hd + 2i + s`, so rotate-half pairs sit side by side.
pub fn permute_rows(data: &[f32], rows: usize, cols: usize, n_head: usize) -> Result<Vec<f32>> {
    move_rows(data, rows, cols, n_head, true)
}

/// The one row mapping behind both directions: HF row `h*hd + s*hd/2 + i` ↔ GGUF row
/// `h*hd + 2i + s`; `to_gguf` picks which side is the source.
fn move_rows(
    data: &[f32],
    rows: usize,
    cols: usize,
    n_head: usize,
    to_gguf: bool,
) -> Result<Vec<f32>> {
    if n_head == 0 || rows % n_head != 0 || (rows / n_head) % 2 != 0 || data.len() != rows * cols {
        let verb = if to_gguf { "permute" } else { "un-permute" };
        bail!("cannot {verb} a [{rows}, {cols}] tensor over {n_head} heads (rows must split into heads of even size)");
    }
    let hd = rows / n_head;
    let half = hd / 2;
    let mut out = vec![0f32; data.len()];
    for h in 0..n_head {
        for s in 0..2 {
            for i in 0..half {
                let hf = h * hd + s * half + i;
                let gguf = h * hd + 2 * i + s;
                let (src, dst) = if to_gguf { (hf, gguf) } else { (gguf, hf) };
                out[dst * cols..(dst + 1) * cols]
                    .copy_from_slice(&data[src * cols..(src + 1) * cols]);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            hf_name("token_embd.weight").unwrap(),
            "model.embed_tokens.weight"
        );
        assert_eq!(
            hf_name("blk.12.attn_q.weight").unwrap(),
            "model.layers.12.self_attn.q_proj.weight"
        );
        assert_eq!(
            hf_name("blk.0.ffn_down.weight").unwrap(),
            "model.layers.0.mlp.down_proj.weight"
        );
        assert_eq!(
            hf_name("blk.3.ffn_norm.weight").unwrap(),
            "model.layers.3.post_attention_layernorm.weight"
        );
        assert_eq!(hf_name("output.weight").unwrap(), "lm_head.weight");
        assert!(hf_name("blk.x.attn_q.weight").is_err());
        assert!(hf_name("blk.0.attn_q.bias").is_err());
        assert!(hf_name("rope_freqs.weight").is_err());
    }

    #[test]
    fn unpermute_one_head_by_hand() {
        // One head of 4 rows, 1 column. HF rows [a b | c d] are stored interleaved as [a c b d].
        let gguf = [10.0, 30.0, 20.0, 40.0];
        assert_eq!(
            unpermute_rows(&gguf, 4, 1, 1).unwrap(),
            vec![10.0, 20.0, 30.0, 40.0]
        );
        // Two heads of 4 rows, 2 columns: each head is un-interleaved on its own.
        let gguf: Vec<f32> = [0, 2, 1, 3, 4, 6, 5, 7]
            .iter()
            .flat_map(|&r| [r as f32, -(r as f32)])
            .collect();
        let want: Vec<f32> = (0..8).flat_map(|r| [r as f32, -(r as f32)]).collect();
        assert_eq!(unpermute_rows(&gguf, 8, 2, 2).unwrap(), want);
        assert!(unpermute_rows(&gguf, 8, 2, 3).is_err());
    }

    #[test]
    fn names_and_permutation_invert() {
        for g in [
            "token_embd.weight",
            "output_norm.weight",
            "output.weight",
            "blk.3.attn_q.weight",
            "blk.3.attn_k.weight",
            "blk.3.attn_v.weight",
            "blk.3.attn_output.weight",
            "blk.0.ffn_gate.weight",
            "blk.0.ffn_up.weight",
            "blk.0.ffn_down.weight",
            "blk.7.attn_norm.weight",
            "blk.7.ffn_norm.weight",
        ] {
            assert_eq!(gguf_name(&hf_name(g).unwrap()).unwrap(), g);
        }
        // Qwen's biases and q/k norms, GPT-2's names; anything else is refused.
        for (hf, g) in [
            ("model.layers.0.self_attn.q_proj.bias", "blk.0.attn_q.bias"),
            (
                "model.layers.2.self_attn.k_norm.weight",
                "blk.2.attn_k_norm.weight",
            ),
            ("transformer.wpe.weight", "position_embd.weight"),
            ("transformer.ln_f.bias", "output_norm.bias"),
            (
                "transformer.h.1.attn.c_attn.weight",
                "blk.1.attn_qkv.weight",
            ),
            ("transformer.h.1.mlp.c_proj.bias", "blk.1.ffn_down.bias"),
        ] {
            assert_eq!(gguf_name(hf).unwrap(), g);
        }
        assert!(gguf_name("model.layers.0.self_attn.q_proj.scale").is_err());
        assert!(gguf_name("transformer.h.0.attn.masked_bias").is_err());
        assert!(gguf_name("model.layers.x.mlp.up_proj.weight").is_err());
        // HF rows [a b | c d] of one head are stored interleaved as [a c b d].
        assert_eq!(
            permute_rows(&[10.0, 20.0, 30.0, 40.0], 4, 1, 1).unwrap(),
            vec![10.0, 30.0, 20.0, 40.0]
        );
        let x: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let p = permute_rows(&x, 12, 2, 3).unwrap();
        assert_ne!(p, x);
        assert_eq!(unpermute_rows(&p, 12, 2, 3).unwrap(), x);
        assert!(permute_rows(&x, 12, 2, 5).is_err());
    }
}
