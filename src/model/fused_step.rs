//! One decode step of a Llama-family model — one new token for each of up to 32 rows — as a
//! single loop over the layers on the packed bf16 sampling weights.
//!
//! Why: at batch 1 the op-by-op forward streams SmolLM2's packed weights in ~12.5 ms a token
//! but spends ~3 ms more dispatching and allocating ~30 torch ops a layer. Here the layers
//! run on plain slices; torch only keeps the cache's bookkeeping and makes the cos/sin rows.
//! The arithmetic is the op path's (the same RMSNorm, cos/sin, mask rule, packed products,
//! SwiGLU); only the order of the f32 sums inside attention differs, so the two agree to
//! rounding (tests/fused_step.rs). Where anything does not fit (GPT-2, f32 sampling weights,
//! gradients, more rows, no AVX-512), `forward_hidden` takes the op path.
use super::decode_packed::{self, Packed};
use super::kv_cache::KvCache;
use super::linear::Linear;
use super::llama::{rms_norm_rows, Llama, Mlp, Norm, NormKind, Qkv};
use super::rope::rotate_row;
use crate::util::{new_f32, plain_f32};
use tch::{Device, Kind, Tensor};

/// Final hidden states [B, 1, H] for one new real token a row (`ids` [B, 1]) after the
/// cached ones: the fused step where it applies, else [`Llama::forward_hidden`]. Either way
/// the cache moves on by one slot.
pub fn forward_hidden(model: &Llama, ids: &Tensor, cache: &mut KvCache) -> Tensor {
    match step(model, ids, cache) {
        Some(h) => h,
        None => model.forward_hidden(ids, None, Some(cache)),
    }
}

/// The sizes one step works with.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    pub rows: usize,
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub inter: usize,
    /// Cache slots per row and head.
    pub max_len: usize,
    /// The slot the new token goes to (the cache's length before the step).
    pub slot: usize,
}

/// A packed projection and its bias.
struct Proj<'a> {
    w: &'a Packed,
    bias: Option<&'a [f32]>,
}

impl Proj<'_> {
    fn of(l: &Linear, inp: usize, out: usize) -> Option<Proj<'_>> {
        // Packed weights hold the adapters; a layer without adapters uses them even with
        // adapters "off" (as `Linear::forward` does).
        let w = l
            .packed
            .as_ref()
            .filter(|_| l.adapters_enabled || l.adapters.is_empty())?;
        if w.in_features() as usize != inp || w.out_features() as usize != out {
            return None;
        }
        let bias = match &l.bias {
            Some(b) => Some(plain_f32(b).filter(|b| b.len() == out)?),
            None => None,
        };
        Some(Proj { w, bias })
    }

    fn apply(&self, x: &[f32], y: &mut [f32]) {
        decode_packed::matmul_rows(x, self.w, y);
        if let Some(b) = self.bias {
            for row in y.chunks_exact_mut(b.len()) {
                for (v, bv) in row.iter_mut().zip(b) {
                    *v += bv;
                }
            }
        }
    }
}

/// An RMSNorm's weight and eps.
type Rms<'a> = (&'a [f32], f32);

fn rms_of(n: &Norm, size: usize) -> Option<Rms<'_>> {
    if n.kind != NormKind::Rms {
        return None;
    }
    Some((
        plain_f32(&n.weight).filter(|w| w.len() == size)?,
        n.eps as f32,
    ))
}

struct LayerView<'a> {
    norm1: Rms<'a>,
    norm2: Rms<'a>,
    q_norm: Option<Rms<'a>>,
    k_norm: Option<Rms<'a>>,
    q: Proj<'a>,
    k: Proj<'a>,
    v: Proj<'a>,
    o: Proj<'a>,
    gate: Proj<'a>,
    up: Proj<'a>,
    down: Proj<'a>,
}

fn layer_view<'a>(model: &'a Llama, l: usize, d: &Dims) -> Option<LayerView<'a>> {
    let layer = &model.layers[l];
    let a = &layer.self_attn;
    let (h, hd) = (d.hidden, d.head_dim);
    let (qo, kvo) = (d.heads * hd, d.kv_heads * hd);
    let Qkv::Split {
        q_proj,
        k_proj,
        v_proj,
    } = &a.qkv
    else {
        return None;
    };
    let Mlp::Gated {
        gate_proj,
        up_proj,
        down_proj,
    } = &layer.mlp
    else {
        return None;
    };
    let qk = |n: &'a Option<Norm>| match n {
        Some(n) => rms_of(n, hd).map(Some),
        None => Some(None),
    };
    Some(LayerView {
        norm1: rms_of(&layer.input_layernorm, h)?,
        norm2: rms_of(&layer.post_attention_layernorm, h)?,
        q_norm: qk(&a.q_norm)?,
        k_norm: qk(&a.k_norm)?,
        q: Proj::of(q_proj, h, qo)?,
        k: Proj::of(k_proj, h, kvo)?,
        v: Proj::of(v_proj, h, kvo)?,
        o: Proj::of(&a.o_proj, qo, h)?,
        gate: Proj::of(gate_proj, h, d.inter)?,
        up: Proj::of(up_proj, h, d.inter)?,
        down: Proj::of(down_proj, d.inter, h)?,
    })
}

/// The cache buffer of one layer as a mutable slice, if it is the contiguous f32 CPU
/// [rows, kv_heads, max_len, head_dim] block the step writes.
fn cache_slice<'a>(t: &'a mut Tensor, d: &Dims) -> Option<&'a mut [f32]> {
    let n = d.rows * d.kv_heads * d.max_len * d.head_dim;
    if t.device() != Device::Cpu || t.kind() != Kind::Float || !t.is_contiguous() {
        return None;
    }
    if t.numel() != n || n == 0 {
        return None;
    }
    // SAFETY: contiguous f32 CPU storage of n values (checked above); the &mut borrow of
    // the tensor (held by the caller's &mut KvCache) keeps every other user out while the
    // slice lives.
    Some(unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, n) })
}

/// The fused step: hidden states [B, 1, H] with the cache moved on, or None (cache
/// untouched) where it does not apply.
pub fn step(model: &Llama, ids: &Tensor, cache: &mut KvCache) -> Option<Tensor> {
    let (b, t) = ids.size2().ok()?;
    let c = &model.config;
    if t != 1
        || !(1..=decode_packed::MAX_ROWS).contains(&b)
        || !decode_packed::enabled()
        || model.kind != Kind::Float
        || model.device != Device::Cpu
        || model.wpe.is_some()
        || cache.batch() != b
        || cache.len + 1 > cache.max_len
        || c.num_key_value_heads < 1
        || c.num_attention_heads % c.num_key_value_heads != 0
    {
        return None;
    }
    let d = Dims {
        rows: b as usize,
        hidden: c.hidden_size as usize,
        heads: c.num_attention_heads as usize,
        kv_heads: c.num_key_value_heads as usize,
        head_dim: c.head_dim as usize,
        inter: c.intermediate_size as usize,
        max_len: cache.max_len as usize,
        slot: cache.len as usize,
    };
    let rope = model.rope.as_ref()?;
    let layers = (0..model.layers.len())
        .map(|l| layer_view(model, l, &d))
        .collect::<Option<Vec<_>>>()?;
    let final_norm = rms_of(&model.norm, d.hidden)?;
    let embed = plain_f32(&model.embed_tokens)?;
    let ids: Vec<i64> = Vec::try_from(&ids.to_device(Device::Cpu).reshape([-1])).ok()?;
    if ids.iter().any(|&i| i < 0 || i >= c.vocab_size) || embed.len() % d.hidden != 0 {
        return None;
    }
    if cache.k.len() != layers.len() || cache.v.len() != layers.len() {
        return None;
    }
    // Each layer's key and value buffers, borrowed for the whole step.
    let mut kv = cache
        .k
        .iter_mut()
        .zip(cache.v.iter_mut())
        .map(|(k, v)| Some((cache_slice(k, &d)?, cache_slice(v, &d)?)))
        .collect::<Option<Vec<_>>>()?;
    // The new token's cos/sin rows (at each row's next position) and the slots it sees: the
    // cached ones marked real, and its own.
    let (cos, sin) = rope.cos_sin(&cache.next_pos.unsqueeze(1), Kind::Float);
    let (cos, sin) = (plain_f32(&cos)?, plain_f32(&sin)?);
    let old: Vec<bool> = match d.slot {
        0 => Vec::new(),
        n => Vec::try_from(
            &cache
                .valid
                .narrow(1, 0, n as i64)
                .contiguous()
                .reshape([-1]),
        )
        .ok()?,
    };
    let mut valid = Vec::with_capacity(d.rows * (d.slot + 1));
    for row in 0..d.rows {
        valid.extend_from_slice(&old[row * d.slot..(row + 1) * d.slot]);
        valid.push(true);
    }
    // Everything fits, so nothing below declines: the bookkeeping `forward_hidden` does for
    // an all-ones mask (the new slot is real; each row's next position moves on).
    let _ = cache.valid.narrow(1, cache.len, 1).fill_(1);
    let _ = cache.next_pos.g_add_scalar_(1);

    let (h, hd) = (d.hidden, d.head_dim);
    let mut x = vec![0f32; d.rows * h];
    for (row, &id) in x.chunks_exact_mut(h).zip(&ids) {
        row.copy_from_slice(&embed[id as usize * h..(id as usize + 1) * h]);
    }
    let mut normed = vec![0f32; d.rows * h];
    let mut q = vec![0f32; d.rows * d.heads * hd];
    let mut k = vec![0f32; d.rows * d.kv_heads * hd];
    let mut v = vec![0f32; d.rows * d.kv_heads * hd];
    let mut att = vec![0f32; d.rows * d.heads * hd];
    let mut out = vec![0f32; d.rows * h];
    let mut gate = vec![0f32; d.rows * d.inter];
    let mut up = vec![0f32; d.rows * d.inter];
    for (l, lv) in layers.iter().enumerate() {
        rms_norm(&x, lv.norm1, &mut normed);
        lv.q.apply(&normed, &mut q);
        lv.k.apply(&normed, &mut k);
        lv.v.apply(&normed, &mut v);
        if let Some(n) = lv.q_norm {
            rms_norm_in_place(&mut q, n);
        }
        if let Some(n) = lv.k_norm {
            rms_norm_in_place(&mut k, n);
        }
        rope_rows(&mut q, d.heads, hd, cos, sin);
        rope_rows(&mut k, d.kv_heads, hd, cos, sin);
        let (kc, vc) = &mut kv[l];
        write_slot(kc, &k, &d);
        write_slot(vc, &v, &d);
        attend(&q, kc, vc, &valid, &d, &mut att);
        lv.o.apply(&att, &mut out);
        add(&mut x, &out);
        rms_norm(&x, lv.norm2, &mut normed);
        lv.gate.apply(&normed, &mut gate);
        lv.up.apply(&normed, &mut up);
        silu_mul(&mut gate, &up);
        lv.down.apply(&gate, &mut out);
        add(&mut x, &out);
    }
    cache.len += 1;
    Some(new_f32(&[b, 1, h as i64], |y| rms_norm(&x, final_norm, y)))
}

/// RMSNorm of every row of `x` (rows of the weight's length).
fn rms_norm(x: &[f32], (w, eps): Rms, y: &mut [f32]) {
    rms_norm_rows(x, w, eps, y)
}

/// The same over every row of `x` in place (Qwen3's per-head q/k norm).
fn rms_norm_in_place(x: &mut [f32], norm: Rms) {
    let mut row = vec![0f32; norm.0.len()];
    for xr in x.chunks_exact_mut(norm.0.len()) {
        row.copy_from_slice(xr);
        rms_norm(&row, norm, xr);
    }
}

/// RoPE on `x` [rows, heads, hd] in place, with each row's cos/sin [rows, hd].
fn rope_rows(x: &mut [f32], heads: usize, hd: usize, cos: &[f32], sin: &[f32]) {
    let mut r = vec![0f32; hd];
    for (i, head) in x.chunks_exact_mut(hd).enumerate() {
        let at = (i / heads) * hd;
        r.copy_from_slice(head);
        rotate_row(&r, &cos[at..at + hd], &sin[at..at + hd], head);
    }
}

/// Writes the new keys (or values) [rows, kv_heads, hd] at `d.slot` of a layer's cache
/// [rows, kv_heads, max_len, hd].
fn write_slot(cache: &mut [f32], new: &[f32], d: &Dims) {
    let hd = d.head_dim;
    for (i, src) in new.chunks_exact(hd).enumerate() {
        let at = (i * d.max_len + d.slot) * hd;
        cache[at..at + hd].copy_from_slice(src);
    }
}

/// Scaled dot-product attention of one query a row and head (`q` [rows, heads, hd]) over
/// the cache's slots 0..=slot, each kv head serving heads/kv_heads query heads: a slot is
/// seen when `valid` [rows, slot+1] marks it real or it is the query's own (the op path's
/// mask). Output [rows, heads, hd].
pub fn attend(q: &[f32], kc: &[f32], vc: &[f32], valid: &[bool], d: &Dims, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if decode_packed::enabled() {
        // SAFETY: `enabled()` checked AVX-512F; the body is the portable one below.
        unsafe { attend_avx512(q, kc, vc, valid, d, out) };
        return;
    }
    attend_portable(q, kc, vc, valid, d, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn attend_avx512(
    q: &[f32],
    kc: &[f32],
    vc: &[f32],
    valid: &[bool],
    d: &Dims,
    out: &mut [f32],
) {
    // The same code compiled with 16-wide vectors for the dot products and sums.
    attend_portable(q, kc, vc, valid, d, out)
}

#[inline(always)]
fn attend_portable(q: &[f32], kc: &[f32], vc: &[f32], valid: &[bool], d: &Dims, out: &mut [f32]) {
    let (hd, seen) = (d.head_dim, d.slot + 1);
    let group = d.heads / d.kv_heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut p = vec![0f32; seen];
    for r in 0..d.rows {
        let ok = &valid[r * seen..(r + 1) * seen];
        for h in 0..d.heads {
            let qv = &q[(r * d.heads + h) * hd..][..hd];
            let base = (r * d.kv_heads + h / group) * d.max_len * hd;
            let mut top = f32::NEG_INFINITY;
            for (j, s) in p.iter_mut().enumerate() {
                *s = if ok[j] || j == d.slot {
                    dot(qv, &kc[base + j * hd..][..hd]) * scale
                } else {
                    f32::NEG_INFINITY
                };
                top = top.max(*s);
            }
            let mut sum = 0f32;
            for s in p.iter_mut() {
                *s = (*s - top).exp();
                sum += *s;
            }
            let o = &mut out[(r * d.heads + h) * hd..][..hd];
            o.fill(0.0);
            for (j, &w) in p.iter().enumerate() {
                if w > 0.0 {
                    for (ov, vv) in o.iter_mut().zip(&vc[base + j * hd..][..hd]) {
                        *ov += w * vv;
                    }
                }
            }
            let inv = 1.0 / sum;
            o.iter_mut().for_each(|v| *v *= inv);
        }
    }
}

/// A dot product in 16 independent lanes (so it vectorises).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// gate ← silu(gate) · up.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}
