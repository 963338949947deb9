//! Rotary position embeddings, computed in f32 exactly as transformers does
//! (same operation order, so cos/sin agree bit for bit on CPU).
use super::config::RopeScaling;
use tch::{Device, Kind, Tensor};

/// Inverse frequencies [head_dim/2] (f32, CPU) for the config's RoPE type.
pub fn inv_freq(head_dim: i64, theta: f64, scaling: &RopeScaling) -> Tensor {
    let exps = Tensor::arange_start_step(0, head_dim, 2, (Kind::Int64, Device::Cpu))
        .to_kind(Kind::Float)
        / head_dim as f64;
    let inv = Tensor::pow_scalar(theta, &exps).reciprocal();
    match scaling {
        RopeScaling::Default => inv,
        RopeScaling::Linear { factor } => inv / *factor,
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings: old,
        } => {
            let low_wavelen = old / low_freq_factor;
            let high_wavelen = old / high_freq_factor;
            let wavelen = inv.reciprocal() * (2.0 * std::f64::consts::PI);
            let scaled = (&inv / *factor).where_self(&wavelen.gt(low_wavelen), &inv);
            let smooth = ((wavelen.reciprocal() * *old) - *low_freq_factor)
                / (high_freq_factor - low_freq_factor);
            let smoothed = (smooth.ones_like() - &smooth) * &scaled / *factor + &smooth * &scaled;
            let medium = wavelen
                .ge(high_wavelen)
                .logical_and(&wavelen.le(low_wavelen));
            smoothed.where_self(&medium, &scaled)
        }
    }
}

/// Precomputed inverse frequencies on the model's device.
#[derive(Debug)]
pub struct Rope {
    pub inv_freq: Tensor,
}

impl Rope {
    pub fn new(head_dim: i64, theta: f64, scaling: &RopeScaling, device: Device) -> Self {
        Self {
            inv_freq: inv_freq(head_dim, theta, scaling).to_device(device),
        }
    }

    /// cos, sin of shape [B, 1, T, head_dim] in `kind` for integer positions [B, T].
    pub fn cos_sin(&self, positions: &Tensor, kind: Kind) -> (Tensor, Tensor) {
        let freqs = positions.to_kind(Kind::Float).unsqueeze(-1) * &self.inv_freq;
        let emb = Tensor::cat(&[&freqs, &freqs], -1).unsqueeze(1);
        (emb.cos().to_kind(kind), emb.sin().to_kind(kind))
    }
}

/// x·cos + rotate_half(x)·sin, with rotate_half(x) = [−x₂, x₁] over the last dim.
pub fn apply(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    let half = x.size()[x.dim() - 1] / 2;
    let x1 = x.narrow(-1, 0, half);
    let x2 = x.narrow(-1, half, half);
    let rot = Tensor::cat(&[&(-x2), &x1], -1);
    x * cos + rot * sin
}
