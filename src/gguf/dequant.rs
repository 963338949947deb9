//! ggml tensor types and dequantization to f32.
//!
//! Block layouts follow ggml (all little-endian, scales in f16):
//! - Q4_0 (32 values, 18 bytes): d, 16 bytes of nibbles; value = (nibble - 8) * d.
//! - Q4_1 (32 values, 20 bytes): d, m, 16 bytes of nibbles; value = nibble * d + m.
//!   In both, byte j holds value j in its low nibble and value j + 16 in its high nibble.
//! - Q8_0 (32 values, 34 bytes): d, 32 i8; value = q * d.
//! - Q4_K (256 values, 144 bytes): d, dmin, 12 bytes of packed 6-bit (scale, min) pairs for
//!   8 sub-blocks of 32, 128 bytes of nibbles; value = d * scale * nibble - dmin * min.
//! - Q6_K (256 values, 210 bytes): 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 i8
//!   scales, d; value = d * scale * (q6 - 32).
use anyhow::{bail, Result};
use half::{bf16, f16};
use rayon::prelude::*;

/// The ggml tensor types a GGUF file may name. Sizes are known for all of them, so a file
/// opens even when one of its types cannot be dequantized here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    I8,
    I16,
    I32,
    I64,
    F64,
    IQ1_M,
    BF16,
    TQ1_0,
    TQ2_0,
    MXFP4,
}

const TYPES: &[(u32, GgmlType, usize, usize)] = {
    use GgmlType::*;
    &[
        (0, F32, 1, 4),
        (1, F16, 1, 2),
        (2, Q4_0, 32, 18),
        (3, Q4_1, 32, 20),
        (6, Q5_0, 32, 22),
        (7, Q5_1, 32, 24),
        (8, Q8_0, 32, 34),
        (9, Q8_1, 32, 40),
        (10, Q2_K, 256, 84),
        (11, Q3_K, 256, 110),
        (12, Q4_K, 256, 144),
        (13, Q5_K, 256, 176),
        (14, Q6_K, 256, 210),
        (15, Q8_K, 256, 292),
        (16, IQ2_XXS, 256, 66),
        (17, IQ2_XS, 256, 74),
        (18, IQ3_XXS, 256, 98),
        (19, IQ1_S, 256, 50),
        (20, IQ4_NL, 32, 18),
        (21, IQ3_S, 256, 110),
        (22, IQ2_S, 256, 82),
        (23, IQ4_XS, 256, 136),
        (24, I8, 1, 1),
        (25, I16, 1, 2),
        (26, I32, 1, 4),
        (27, I64, 1, 8),
        (28, F64, 1, 8),
        (29, IQ1_M, 256, 56),
        (30, BF16, 1, 2),
        (34, TQ1_0, 256, 54),
        (35, TQ2_0, 256, 66),
        (39, MXFP4, 32, 17),
    ]
};

/// The types [`dequantize`] handles.
pub const SUPPORTED: &[GgmlType] = &[
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q4_K,
    GgmlType::Q6_K,
];

impl GgmlType {
    pub fn from_id(id: u32) -> Result<Self> {
        match TYPES.iter().find(|t| t.0 == id) {
            Some(t) => Ok(t.1),
            None => bail!("unknown ggml tensor type id {id}"),
        }
    }

    pub fn id(self) -> u32 {
        TYPES
            .iter()
            .find(|t| t.1 == self)
            .expect("every type is in TYPES")
            .0
    }

    /// (values per block, bytes per block).
    pub fn block(self) -> (usize, usize) {
        let t = TYPES
            .iter()
            .find(|t| t.1 == self)
            .expect("every type is in TYPES");
        (t.2, t.3)
    }
}

/// Dequantizes `bytes` holding `n` values of type `ty` into f32, in parallel over blocks.
pub fn dequantize(ty: GgmlType, bytes: &[u8], n: usize) -> Result<Vec<f32>> {
    let (block, size) = ty.block();
    if n % block != 0 || bytes.len() != n / block * size {
        bail!(
            "{ty:?}: {} bytes do not hold {n} values ({block} per {size}-byte block)",
            bytes.len()
        );
    }
    let f: fn(&[u8], &mut [f32]) = match ty {
        GgmlType::F32 => |b, y| y[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        GgmlType::F16 => |b, y| y[0] = f16::from_le_bytes([b[0], b[1]]).to_f32(),
        GgmlType::BF16 => |b, y| y[0] = bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        GgmlType::Q8_0 => block_q8_0,
        GgmlType::Q4_0 => block_q4_0,
        GgmlType::Q4_1 => block_q4_1,
        GgmlType::Q4_K => block_q4_k,
        GgmlType::Q6_K => block_q6_k,
        other => bail!(
            "unsupported tensor type {other:?} (supported: {})",
            SUPPORTED
                .iter()
                .map(|t| format!("{t:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut out = vec![0f32; n];
    // Group blocks into chunks so scalar types do not pay rayon's per-item cost.
    let per_chunk = (16384 / block).max(1);
    out.par_chunks_mut(block * per_chunk)
        .zip(bytes.par_chunks(size * per_chunk))
        .for_each(|(ys, bs)| {
            for (y, b) in ys.chunks_exact_mut(block).zip(bs.chunks_exact(size)) {
                f(b, y);
            }
        });
    Ok(out)
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

pub fn block_q8_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (yi, &q) in y.iter_mut().zip(&b[2..34]) {
        *yi = (q as i8) as f32 * d;
    }
}

pub fn block_q4_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    for (j, &q) in b[2..18].iter().enumerate() {
        y[j] = ((q & 0x0F) as i32 - 8) as f32 * d;
        y[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

pub fn block_q4_1(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    for (j, &q) in b[4..20].iter().enumerate() {
        y[j] = (q & 0x0F) as f32 * d + m;
        y[j + 16] = (q >> 4) as f32 * d + m;
    }
}

/// The 6-bit (scale, min) of sub-block `j` (0..8) from Q4_K's 12 packed bytes.
pub fn q4k_scale_min(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

pub fn block_q4_k(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let dmin = f16_at(b, 2);
    let scales = &b[4..16];
    let qs = &b[16..144];
    // Four groups of 64 values; each group's 32 bytes give 32 low nibbles then 32 high nibbles.
    for g in 0..4 {
        let (sc1, m1) = q4k_scale_min(2 * g, scales);
        let (sc2, m2) = q4k_scale_min(2 * g + 1, scales);
        let (d1, min1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, min2) = (d * sc2 as f32, dmin * m2 as f32);
        let q = &qs[32 * g..32 * g + 32];
        let out = &mut y[64 * g..64 * g + 64];
        for l in 0..32 {
            out[l] = d1 * (q[l] & 0x0F) as f32 - min1;
            out[32 + l] = d2 * (q[l] >> 4) as f32 - min2;
        }
    }
}

pub fn block_q6_k(b: &[u8], y: &mut [f32]) {
    let ql = &b[0..128];
    let qh = &b[128..192];
    let sc = &b[192..208];
    let d = f16_at(b, 208);
    // Two halves of 128 values; each uses 64 bytes of ql, 32 of qh and 8 scales.
    for h in 0..2 {
        let (ql, qh, sc) = (&ql[64 * h..], &qh[32 * h..], &sc[8 * h..]);
        let out = &mut y[128 * h..128 * h + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            out[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            out[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            out[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            out[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

#[cfg(test)]
#[path = "dequant_tests.rs"]
mod tests;
