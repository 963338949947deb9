//! Rotary position embeddings, computed in f32 exactly as transformers does
//! (same operation order, so cos/sin agree bit for bit on CPU).
use super::config::RopeScaling;
use crate::util::{new_f32, plain_f32};
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
    if let Some(y) = apply_rows(x, cos, sin) {
        return y;
    }
    let half = x.size()[x.dim() - 1] / 2;
    let x1 = x.narrow(-1, 0, half);
    let x2 = x.narrow(-1, half, half);
    let rot = Tensor::cat(&[&(-x2), &x1], -1);
    x * cos + rot * sin
}

/// The same for the few f32 rows of a decode step on the CPU (x [B, n, T, hd], cos/sin
/// [B, 1, T, hd], all contiguous, no gradient), in one loop instead of seven torch ops whose
/// dispatch is most of their cost at these sizes. Same arithmetic: x·cos + rot·sin, each
/// product rounded in f32, then the sum. None where it does not apply.
fn apply_rows(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Option<Tensor> {
    let (b, n, t, hd) = x.size4().ok()?;
    let (xs, cs, ss) = (plain_f32(x)?, plain_f32(cos)?, plain_f32(sin)?);
    if cos.size() != [b, 1, t, hd] || sin.size() != [b, 1, t, hd] || hd % 2 != 0 || b * n * t > 512
    {
        return None;
    }
    let hd = hd as usize;
    Some(new_f32(&[b, n, t, hd as i64], |ys| {
        for (row, (xr, yr)) in xs.chunks_exact(hd).zip(ys.chunks_exact_mut(hd)).enumerate() {
            // row = ((bi·n + h)·t + ti): cos/sin row bi·t + ti.
            let ti = row % t as usize;
            let bi = row / (n as usize * t as usize);
            let at = (bi * t as usize + ti) * hd;
            rotate_row(xr, &cs[at..at + hd], &ss[at..at + hd], yr);
        }
    }))
}

/// One head's row: y = x·cos + rotate_half(x)·sin, each product rounded in f32, then the
/// sum (the decode-sized loops: this file's and the fused decode step's).
pub fn rotate_row(x: &[f32], cos: &[f32], sin: &[f32], y: &mut [f32]) {
    let half = x.len() / 2;
    for i in 0..x.len() {
        let rot = if i < half { -x[i + half] } else { x[i - half] };
        y[i] = x[i] * cos[i] + rot * sin[i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_loop_equals_the_torch_ops() {
        let cfg = (Kind::Float, Device::Cpu);
        for &(b, n, t) in &[(1, 9, 1), (3, 2, 4), (2, 3, 1)] {
            let x = Tensor::randn([b, n, t, 8], cfg);
            let pos = Tensor::randint(50, [b, t], (Kind::Int64, Device::Cpu));
            let (c, s) = Rope::new(8, 10000.0, &RopeScaling::Default, Device::Cpu)
                .cos_sin(&pos, Kind::Float);
            let fast = apply_rows(&x, &c, &s).expect("applies");
            let half = 4;
            let rot = Tensor::cat(&[&(-x.narrow(-1, half, half)), &x.narrow(-1, 0, half)], -1);
            let slow = &x * &c + rot * &s;
            assert!(fast.allclose(&slow, 1e-6, 1e-6, false), "[{b},{n},{t}]");
        }
    }
}
