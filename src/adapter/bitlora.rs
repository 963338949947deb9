//! Bit-LoRA: ternary LoRA factors (docs/method.md#bit-lora).
//!
//! Forward: s = max(mean|W|, ε) per tensor, W_q = s · clamp(round(W/s), −1, 1).
//! Backward: straight-through, W + (W_q − W).detach(), so the gradient reaches the
//! latent fp32 W unchanged; the optimizer updates the latent W.
//!
//! Packed form (`adapter_ternary.safetensors`, see [`pack`]): each weight is 2 bits,
//! four to a byte, first weight in the lowest two bits; code 0 = 0, 1 = +1, 2 = −1
//! (3 is invalid). Per tensor three entries: `<key>` u8 [⌈n/4⌉] packed codes,
//! `<key>.scale` f32 [1] the scale s, `<key>.shape` i64 [ndim] the shape. The file's
//! metadata has `format = stylerl-ternary-v1`. Unpacking gives exactly s·{−1,0,+1}.
use anyhow::{bail, Context, Result};
use tch::{Kind, Tensor};

/// Floor on the absmean scale so an all-zero tensor (B at init) quantizes to zeros
/// without dividing by zero.
pub const TERNARY_EPS: f64 = 1e-8;

/// Metadata value of the packed file's `format` key.
pub const PACKED_FORMAT: &str = "stylerl-ternary-v1";

/// The per-tensor scale s = max(mean|W|, ε), a 0-dim f32 tensor (no gradient).
pub fn ternary_scale(w: &Tensor) -> Tensor {
    w.detach()
        .to_kind(Kind::Float)
        .abs()
        .mean(Kind::Float)
        .clamp_min(TERNARY_EPS)
}

/// Integer codes round(W/s) clamped to {−1, 0, 1} (as f32) and the scale s.
pub fn ternary_codes(w: &Tensor) -> (Tensor, Tensor) {
    let s = ternary_scale(w);
    let q = (w.detach().to_kind(Kind::Float) / &s)
        .round()
        .clamp(-1.0, 1.0);
    (q, s)
}

/// W_q = s · clamp(round(W/s), −1, 1), no gradient.
pub fn ternary_quantize(w: &Tensor) -> Tensor {
    let (q, s) = ternary_codes(w);
    (q * s).to_kind(w.kind())
}

/// Straight-through ternary weight: value W_q, gradient d/dW = identity.
pub fn ternary_ste(w: &Tensor) -> Tensor {
    w + (ternary_quantize(w) - w).detach()
}

/// One packed ternary tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    pub shape: Vec<i64>,
    pub scale: f32,
    pub bytes: Vec<u8>,
}

impl Packed {
    /// Payload size: packed codes plus one f32 scale.
    pub fn size_bytes(&self) -> usize {
        self.bytes.len() + 4
    }
}

/// Packs the ternary quantization of `w` (2 bits a weight, 4 a byte, + scale).
pub fn pack(w: &Tensor) -> Packed {
    let (q, s) = ternary_codes(w);
    let codes: Vec<f32> =
        Vec::<f32>::try_from(q.flatten(0, -1).to_device(tch::Device::Cpu)).unwrap_or_default();
    let mut bytes = vec![0u8; codes.len().div_ceil(4)];
    for (i, &c) in codes.iter().enumerate() {
        let code: u8 = if c > 0.5 {
            1
        } else if c < -0.5 {
            2
        } else {
            0
        };
        bytes[i / 4] |= code << (2 * (i % 4));
    }
    Packed {
        shape: w.size(),
        scale: s.double_value(&[]) as f32,
        bytes,
    }
}

/// Unpacks to the f32 tensor s·{−1,0,+1} with the stored shape (CPU).
pub fn unpack(p: &Packed) -> Result<Tensor> {
    let n: i64 = p.shape.iter().product();
    if n < 0 || p.bytes.len() != (n as usize).div_ceil(4) {
        bail!(
            "packed ternary tensor of shape {:?} needs {} bytes, found {}",
            p.shape,
            (n.max(0) as usize).div_ceil(4),
            p.bytes.len()
        );
    }
    let mut vals = Vec::with_capacity(n as usize);
    for i in 0..n as usize {
        let code = (p.bytes[i / 4] >> (2 * (i % 4))) & 3;
        vals.push(match code {
            0 => 0.0f32,
            1 => p.scale,
            2 => -p.scale,
            _ => bail!("invalid ternary code 3 at element {i}: the packed file is corrupt"),
        });
    }
    Ok(Tensor::from_slice(&vals).reshape(p.shape.as_slice()))
}

/// Named packed tensors to safetensors entries (see the module doc for the layout).
pub fn packed_entries(items: &[(String, Packed)]) -> Vec<(String, Tensor)> {
    let mut out = Vec::with_capacity(items.len() * 3);
    for (key, p) in items {
        out.push((key.clone(), Tensor::from_slice(&p.bytes)));
        out.push((format!("{key}.scale"), Tensor::from_slice(&[p.scale])));
        out.push((format!("{key}.shape"), Tensor::from_slice(&p.shape)));
    }
    out
}

/// Writes a packed ternary file atomically.
pub fn write_packed(path: &std::path::Path, items: &[(String, Packed)]) -> Result<()> {
    let meta = std::collections::HashMap::from([("format".to_string(), PACKED_FORMAT.to_string())]);
    crate::io::tensorfile::write(path, &packed_entries(items), Some(meta))
}

/// Reads a packed ternary file back into (key, packed) pairs, in file order.
pub fn read_packed(path: &std::path::Path) -> Result<Vec<(String, Packed)>> {
    let f = crate::io::tensorfile::read(path)?;
    if f.metadata.get("format").map(String::as_str) != Some(PACKED_FORMAT) {
        bail!(
            "{}: not a stylerl ternary file (metadata format != {PACKED_FORMAT})",
            path.display()
        );
    }
    let mut out = Vec::new();
    for (name, t) in &f.tensors {
        if name.ends_with(".scale") || name.ends_with(".shape") {
            continue;
        }
        let scale = f.get(&format!("{name}.scale"), path)?.double_value(&[0]) as f32;
        let shape =
            Vec::<i64>::try_from(f.get(&format!("{name}.shape"), path)?).context("shape tensor")?;
        let bytes = Vec::<u8>::try_from(t)
            .with_context(|| format!("{}: tensor {name} is not u8", path.display()))?;
        out.push((
            name.clone(),
            Packed {
                shape,
                scale,
                bytes,
            },
        ));
    }
    Ok(out)
}

/// Payload bytes of the fp32 form and of the packed form of the given tensors.
pub fn sizes(tensors: &[&Tensor]) -> (usize, usize) {
    let numels = tensors.iter().map(|t| t.numel());
    numels.fold((0, 0), |(f, p), n| (f + 4 * n, p + n.div_ceil(4) + 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
    }

    #[test]
    fn quantizer_matches_hand_values() {
        // mean|W| = (0.1+0.4+0.9+1.2+0.0+0.2)/6 = 0.4666…
        let w = Tensor::from_slice(&[0.1f32, -0.4, 0.9, -1.2, 0.0, 0.2]);
        let s = 2.8f32 / 6.0;
        // W/s = 0.214, −0.857, 1.93, −2.57, 0, 0.43 → round/clamp 0, −1, 1, −1, 0, 0
        let want = [0.0, -s, s, -s, 0.0, 0.0];
        for (g, w) in vals(&ternary_quantize(&w)).iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
        // all zeros: floor keeps it finite and zero
        let z = Tensor::zeros([3, 2], (Kind::Float, tch::Device::Cpu));
        assert_eq!(vals(&ternary_quantize(&z)), vec![0.0; 6]);
    }

    #[test]
    fn pack_unpack_round_trip_is_exact() {
        tch::manual_seed(3);
        let w = Tensor::randn([7, 13], (Kind::Float, tch::Device::Cpu));
        let p = pack(&w);
        assert_eq!(p.bytes.len(), (7 * 13usize).div_ceil(4));
        let u = unpack(&p).unwrap();
        assert_eq!(u.size(), vec![7, 13]);
        assert!(u.equal(&ternary_quantize(&w)));
        let mut bad = p.clone();
        bad.bytes[0] = 0xff;
        assert!(unpack(&bad).unwrap_err().to_string().contains("corrupt"));
    }
}
