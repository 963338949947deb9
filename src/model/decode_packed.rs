//! bf16 or int8 sampling weights packed in column panels, and x·Wᵀ on them for decode steps.
//!
//! Why a packed layout: a decode step at batch 1 streams every weight once, so its speed
//! is the speed of reading them. Stored as panels of 32 output columns — panel j holds
//! W[j·32 .. j·32+32, :] transposed, [in, 32], one after another — each panel is read front
//! to back in one sequential stream while its 32 sums per row stay in registers for the whole
//! input; nothing is reloaded or stored until the panel ends. bf16 halves the bytes; each
//! value is widened to the f32 it stands for (placed above a zero half-word) and multiplied
//! in f32, so the only rounding is the weight's own. int8 quarters the bytes: each column
//! has a bf16 scale per 32 input rows (one scale a column for the whole input loses too
//! much on a small model: about twice the log-prob error), and the kernel widens q·scale,
//! which f32 holds exactly, so the product is the f32 product on the dequantized weight.
use tch::{Device, Kind, Tensor};

/// Output columns per panel (two AVX-512 vectors of f32).
const PANEL: usize = 32;

/// The column each of a panel row's 32 stored words holds. The kernel widens a 64-byte row
/// with two interleaving unpacks, which take words 0–3 of each 128-bit lane (then 4–7) into
/// one vector; storing the columns in this order makes those two vectors columns 0–15 and
/// 16–31, so the widening costs two instructions per 32 weights and no shuffles.
const WORD_TO_COLUMN: [i64; PANEL] = {
    let mut m = [0i64; PANEL];
    let mut lane = 0;
    while lane < 4 {
        let mut q = 0;
        while q < 4 {
            m[lane * 8 + q] = (lane * 4 + q) as i64;
            m[lane * 8 + 4 + q] = (16 + lane * 4 + q) as i64;
            q += 1;
        }
        lane += 1;
    }
    m
};
/// The stored word of each column: the inverse of `WORD_TO_COLUMN`.
const COLUMN_TO_WORD: [usize; PANEL] = {
    let mut m = [0usize; PANEL];
    let mut word = 0;
    while word < PANEL {
        m[WORD_TO_COLUMN[word] as usize] = word;
        word += 1;
    }
    m
};

/// Input rows that share one int8 scale per column.
const GROUP: usize = 32;

/// Rows (batch × time) up to which the packed kernel serves a pass; each 8 rows read the
/// weights once more. Above it the layer's own weights go through torch.
pub const MAX_ROWS: i64 = 32;

/// A [out, in] weight as bf16 or int8 panels.
#[derive(Debug)]
pub struct Packed {
    data: Panels,
    out: usize,
    inp: usize,
}

#[derive(Debug)]
enum Panels {
    /// [panels, in, PANEL] bf16, columns in `WORD_TO_COLUMN` order, past `out` zero.
    Bf16(Tensor),
    /// q [panels, in, PANEL] i8 in column order, and scales [panels, ⌈in/GROUP⌉, PANEL] bf16
    /// in `WORD_TO_COLUMN` order: W[c, i] ≈ q[c, i] · scale[c, i / GROUP].
    Int8 { q: Tensor, scales: Tensor },
}

impl Packed {
    /// Packs a [out, in] weight (any float kind; rounded to bf16 to nearest even, as torch
    /// rounds). One pass over the weight, read input-major: a model's f32 weights and their
    /// merges are stored that way (`linear::input_major`), so no copy comes first; the
    /// packing runs before every rollout of a GRPO step.
    pub fn new(weight: &Tensor) -> Packed {
        let _g = tch::no_grad_guard();
        let (t, n, k) = input_major_f32(weight);
        let inp = k as i64;
        let panels = n.div_ceil(PANEL);
        // Every word is written below; only a partial last panel needs zeros past `out`.
        let shape = [panels as i64, inp, PANEL as i64];
        let data = match n % PANEL {
            0 => Tensor::empty(shape, (Kind::BFloat16, Device::Cpu)),
            _ => Tensor::zeros(shape, (Kind::BFloat16, Device::Cpu)),
        };
        // SAFETY: t is a contiguous [k, n] f32 tensor and data a fresh contiguous
        // [panels, k, PANEL] bf16 (16-bit) tensor; both stay alive for these borrows.
        let (src, dst) = unsafe {
            (
                std::slice::from_raw_parts(t.data_ptr() as *const f32, k * n),
                std::slice::from_raw_parts_mut(
                    data.data_ptr() as *mut half::bf16,
                    panels * k * PANEL,
                ),
            )
        };
        let full = n / PANEL;
        for (kk, row) in src.chunks_exact(n.max(1)).enumerate().take(k) {
            let mut j0 = 0;
            #[cfg(target_arch = "x86_64")]
            if enabled() {
                // SAFETY: `enabled()` checked AVX-512F/BW; row holds n ≥ full·PANEL values
                // and dst every panel's row kk.
                unsafe { pack_row_simd(row, dst, kk, k, full) };
                j0 = full;
            }
            for j in j0..panels {
                let out_row = &mut dst[(j * k + kk) * PANEL..(j * k + kk + 1) * PANEL];
                for (word, &col) in WORD_TO_COLUMN.iter().enumerate() {
                    let c = j * PANEL + col as usize;
                    if c < n {
                        out_row[word] = half::bf16::from_f32(row[c]);
                    }
                }
            }
        }
        Packed {
            data: Panels::Bf16(data),
            out: n,
            inp: k,
        }
    }

    /// Packs a [out, in] weight as int8 with a bf16 scale per column and GROUP input rows:
    /// the scale is the group's largest |w| / 127 rounded up to bf16 (so every q fits in
    /// ±127), q = w / scale rounded to nearest (ties to even). A weight's error is at most
    /// half its scale.
    pub fn new_int8(weight: &Tensor) -> Packed {
        let _g = tch::no_grad_guard();
        let (t, n, k) = input_major_f32(weight);
        let inp = k as i64;
        let (panels, groups) = (n.div_ceil(PANEL), k.div_ceil(GROUP));
        let q = Tensor::zeros(
            [panels as i64, inp, PANEL as i64],
            (Kind::Int8, Device::Cpu),
        );
        let scales = Tensor::zeros(
            [panels as i64, groups as i64, PANEL as i64],
            (Kind::BFloat16, Device::Cpu),
        );
        // SAFETY: t is a contiguous [k, n] f32 tensor, q a fresh contiguous [panels, k, PANEL]
        // i8 tensor and scales a fresh contiguous [panels, groups, PANEL] 16-bit tensor; all
        // stay alive for these borrows.
        let (src, qd, sd) = unsafe {
            (
                std::slice::from_raw_parts(t.data_ptr() as *const f32, k * n),
                std::slice::from_raw_parts_mut(q.data_ptr() as *mut i8, panels * k * PANEL),
                std::slice::from_raw_parts_mut(
                    scales.data_ptr() as *mut u16,
                    panels * groups * PANEL,
                ),
            )
        };
        let (mut scale, mut inv) = (vec![0f32; n], vec![0f32; n]);
        for (g, rows) in src.chunks(GROUP * n.max(1)).enumerate().take(groups) {
            scale.fill(0.0);
            for row in rows.chunks_exact(n) {
                for (s, &w) in scale.iter_mut().zip(row) {
                    *s = s.max(w.abs());
                }
            }
            for (c, (s, i)) in scale.iter_mut().zip(inv.iter_mut()).enumerate() {
                let bits = round_up_bf16(*s / 127.0);
                *s = f32::from_bits(bits << 16);
                *i = if *s > 0.0 { 1.0 / *s } else { 0.0 };
                sd[((c / PANEL) * groups + g) * PANEL + COLUMN_TO_WORD[c % PANEL]] = bits as u16;
            }
            for (r, row) in rows.chunks_exact(n).enumerate() {
                let kk = g * GROUP + r;
                for (j, (ws, is)) in row.chunks(PANEL).zip(inv.chunks(PANEL)).enumerate() {
                    let dst = &mut qd[(j * k + kk) * PANEL..][..ws.len()];
                    for ((d, &w), &i) in dst.iter_mut().zip(ws).zip(is) {
                        *d = round_even(w * i).clamp(-127.0, 127.0) as i8;
                    }
                }
            }
        }
        Packed {
            data: Panels::Int8 { q, scales },
            out: n,
            inp: k,
        }
    }

    /// The packed weights' kind: bf16 or int8.
    pub fn kind(&self) -> Kind {
        match self.data {
            Panels::Bf16(_) => Kind::BFloat16,
            Panels::Int8 { .. } => Kind::Int8,
        }
    }

    pub fn out_features(&self) -> i64 {
        self.out as i64
    }

    pub fn in_features(&self) -> i64 {
        self.inp as i64
    }

    /// The weight the kernel multiplies, as f32 [out, in] (tests).
    pub fn unpack(&self) -> Tensor {
        let column_to_word = COLUMN_TO_WORD.map(|w| w as i64);
        let in_columns = |t: &Tensor| {
            t.index_select(2, &Tensor::from_slice(&column_to_word))
                .to_kind(Kind::Float)
        };
        let w = match &self.data {
            Panels::Bf16(d) => in_columns(d),
            Panels::Int8 { q, scales } => {
                let s = in_columns(scales)
                    .repeat_interleave_self_int(GROUP as i64, 1, None)
                    .narrow(1, 0, self.inp as i64);
                q.to_kind(Kind::Float) * s
            }
        };
        let p = w.size()[0];
        w.transpose(1, 2)
            .reshape([p * PANEL as i64, self.inp as i64])
            .narrow(0, 0, self.out as i64)
    }
}

/// A [out, in] weight as a contiguous [in, out] f32 tensor (a view when the weight is
/// input-major already), with out and in.
fn input_major_f32(weight: &Tensor) -> (Tensor, usize, usize) {
    let (out, inp) = weight.size2().expect("a weight is [out, in]");
    let t = weight
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .tr()
        .contiguous();
    (t, out as usize, inp as usize)
}

/// x [.., in] · Wᵀ from the panels when the kernel applies (AVX-512F, one thread, f32 x
/// without gradient, ≤ MAX_ROWS rows), else None.
pub fn try_matmul(x: &Tensor, w: &Packed) -> Option<Tensor> {
    if !enabled()
        || x.device() != Device::Cpu
        || x.kind() != Kind::Float
        || x.requires_grad()
        || x.size().last() != Some(&(w.inp as i64))
    {
        return None;
    }
    let m = x.numel() / w.inp.max(1);
    if m == 0 || m as i64 > MAX_ROWS || !cfg!(target_arch = "x86_64") {
        return None;
    }
    let x2 = x.reshape([m as i64, w.inp as i64]).contiguous();
    let xs = crate::util::plain_f32(&x2)?;
    let y = crate::util::new_f32(&[m as i64, w.out as i64], |ys| matmul_rows(xs, w, ys));
    let mut shape = x.size();
    *shape.last_mut().unwrap() = w.out as i64;
    Some(y.view(shape.as_slice()))
}

/// y [m, out] = x [m, in] · Wᵀ on plain slices (m = x.len() / in, at most MAX_ROWS), for
/// callers that hold their rows as slices (the fused decode step). Only where [`enabled`].
pub fn matmul_rows(x: &[f32], w: &Packed, y: &mut [f32]) {
    let m = x.len() / w.inp.max(1);
    assert!(
        enabled() && x.len() == m * w.inp && y.len() == m * w.out && m as i64 <= MAX_ROWS,
        "packed matmul: x {} / y {} values for [{m}, {}]·[{}, {}]ᵀ",
        x.len(),
        y.len(),
        w.inp,
        w.out,
        w.inp
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: lengths checked above: x holds m rows of `in`, y m rows of `out`; the panels
    // are contiguous tensors of the shapes `Panels` states, alive for the call; `enabled()`
    // checked AVX-512F and AVX-512BW.
    unsafe {
        let (wp, sp, q8) = match &w.data {
            Panels::Bf16(d) => (d.data_ptr() as *const u8, std::ptr::null(), false),
            Panels::Int8 { q, scales } => (
                q.data_ptr() as *const u8,
                scales.data_ptr() as *const u16,
                true,
            ),
        };
        let (k, n) = (w.inp, w.out);
        let mut r = 0;
        while r < m {
            let rows = (m - r).min(8);
            let (xr, yr) = (x.as_ptr().add(r * k), y.as_mut_ptr().add(r * n));
            macro_rules! run {
                ($q8:literal) => {
                    match rows {
                        1 => panels_one::<$q8>(xr, wp, sp, yr, k, n),
                        2 => panels::<2, $q8>(xr, wp, sp, yr, k, n),
                        3 => panels::<3, $q8>(xr, wp, sp, yr, k, n),
                        4 => panels::<4, $q8>(xr, wp, sp, yr, k, n),
                        5 => panels::<5, $q8>(xr, wp, sp, yr, k, n),
                        6 => panels::<6, $q8>(xr, wp, sp, yr, k, n),
                        7 => panels::<7, $q8>(xr, wp, sp, yr, k, n),
                        _ => panels::<8, $q8>(xr, wp, sp, yr, k, n),
                    }
                };
            }
            match q8 {
                true => run!(true),
                false => run!(false),
            }
            r += rows;
        }
    }
}

/// Row kk of the first `full` panels: 32 f32 a panel rounded to bf16 (to nearest even,
/// as torch and `half` round finite values) and stored in the kernel's word order, which is
/// what `packus` gives from the two 16-column halves.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn pack_row_simd(row: &[f32], dst: &mut [half::bf16], kk: usize, k: usize, full: usize) {
    use std::arch::x86_64::*;
    unsafe {
        let round = |v: __m512i| {
            let odd = _mm512_and_si512(_mm512_srli_epi32::<16>(v), _mm512_set1_epi32(1));
            let bias = _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd);
            _mm512_srli_epi32::<16>(_mm512_add_epi32(v, bias))
        };
        for j in 0..full {
            let p = row.as_ptr().add(j * PANEL);
            let lo = round(_mm512_castps_si512(_mm512_loadu_ps(p)));
            let hi = round(_mm512_castps_si512(_mm512_loadu_ps(p.add(16))));
            let out = dst.as_mut_ptr().add((j * k + kk) * PANEL);
            _mm512_storeu_si512(out as *mut __m512i, _mm512_packus_epi32(lo, hi));
        }
    }
}

/// Whether the packed kernel runs: the decode kernel's conditions (AVX-512F, one thread, not
/// switched off) and AVX-512BW for the 16-bit unpacks.
pub fn enabled() -> bool {
    use std::sync::OnceLock;
    static BW: OnceLock<bool> = OnceLock::new();
    super::decode_matmul::enabled()
        && *BW.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            return std::arch::is_x86_feature_detected!("avx512bw");
            #[cfg(not(target_arch = "x86_64"))]
            return false;
        })
}

/// Bytes of one panel row: 32 bf16 or 32 int8 weights.
const fn row_bytes(q8: bool) -> usize {
    if q8 {
        PANEL
    } else {
        2 * PANEL
    }
}

/// One panel row at `p` widened to f32 columns 0–15 and 16–31: bf16 placed above a zero
/// word; int8 sign-extended, converted and times the group's scales `s`.
macro_rules! widen_row {
    ($q8:expr, $p:expr, $s:expr) => {
        if $q8 {
            let q0 = _mm512_cvtepi8_epi32(_mm_loadu_si128($p as *const __m128i));
            let q1 = _mm512_cvtepi8_epi32(_mm_loadu_si128($p.add(16) as *const __m128i));
            (
                _mm512_mul_ps(_mm512_cvtepi32_ps(q0), $s.0),
                _mm512_mul_ps(_mm512_cvtepi32_ps(q1), $s.1),
            )
        } else {
            widen_bf16($p as *const u16)
        }
    };
}

/// 32 bf16 words at `p` (in `WORD_TO_COLUMN` order) as f32 columns 0–15 and 16–31: each
/// word placed above a zero word.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn widen_bf16(p: *const u16) -> (std::arch::x86_64::__m512, std::arch::x86_64::__m512) {
    use std::arch::x86_64::*;
    unsafe {
        let v = _mm512_loadu_si512(p as *const __m512i);
        let zero = _mm512_setzero_si512();
        (
            _mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, v)),
            _mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, v)),
        )
    }
}

/// The scales of panel `panel`'s group `g` as two f32 vectors (int8; ones for bf16).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn group_scales<const Q8: bool>(
    s: *const u16,
    panel: usize,
    groups: usize,
    g: usize,
) -> (std::arch::x86_64::__m512, std::arch::x86_64::__m512) {
    use std::arch::x86_64::*;
    unsafe {
        if !Q8 {
            return (_mm512_set1_ps(1.0), _mm512_set1_ps(1.0));
        }
        widen_bf16(s.add((panel * groups + g) * PANEL))
    }
}

/// Writes a panel's 32 sums (fewer past `out`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn store_panel(
    y: *mut f32,
    lo: std::arch::x86_64::__m512,
    hi: std::arch::x86_64::__m512,
    width: usize,
) {
    use std::arch::x86_64::*;
    unsafe {
        if width == PANEL {
            _mm512_storeu_ps(y, lo);
            _mm512_storeu_ps(y.add(16), hi);
        } else {
            let mut buf = [0f32; PANEL];
            _mm512_storeu_ps(buf.as_mut_ptr(), lo);
            _mm512_storeu_ps(buf.as_mut_ptr().add(16), hi);
            std::ptr::copy_nonoverlapping(buf.as_ptr(), y, width);
        }
    }
}

/// M rows of x against every panel: 2·M accumulators live for a whole panel. The input runs
/// in groups of GROUP rows, each under its scales (for bf16 one group, scales unused).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
#[allow(clippy::needless_range_loop)] // r indexes x, y and the accumulators together
unsafe fn panels<const M: usize, const Q8: bool>(
    x: *const f32,
    w: *const u8,
    s: *const u16,
    y: *mut f32,
    k: usize,
    n: usize,
) {
    use std::arch::x86_64::*;
    unsafe {
        let (rb, group) = (row_bytes(Q8), if Q8 { GROUP } else { k.max(1) });
        let groups = k.div_ceil(GROUP);
        let (mut j, mut panel) = (0, w);
        while j < n {
            let mut lo = [_mm512_setzero_ps(); M];
            let mut hi = [_mm512_setzero_ps(); M];
            let mut kk = 0;
            while kk < k {
                let sc = group_scales::<Q8>(s, j / PANEL, groups, kk / GROUP);
                for kq in kk..(kk + group).min(k) {
                    let p = panel.add(kq * rb);
                    // 1 KiB ahead: the stream is sequential, this only hides latency.
                    _mm_prefetch::<_MM_HINT_T0>((p as *const i8).add(1024));
                    let (w0, w1) = widen_row!(Q8, p, sc);
                    for r in 0..M {
                        let xv = _mm512_set1_ps(*x.add(r * k + kq));
                        lo[r] = _mm512_fmadd_ps(xv, w0, lo[r]);
                        hi[r] = _mm512_fmadd_ps(xv, w1, hi[r]);
                    }
                }
                kk += group;
            }
            for r in 0..M {
                store_panel(y.add(r * n + j), lo[r], hi[r], (n - j).min(PANEL));
            }
            j += PANEL;
            panel = panel.add(k * rb);
        }
    }
}

/// One row: four interleaved pairs of accumulators, so consecutive FMAs do not wait on
/// each other (one chain of `in` dependent FMAs per panel would bound the speed instead of
/// memory).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn panels_one<const Q8: bool>(
    x: *const f32,
    w: *const u8,
    s: *const u16,
    y: *mut f32,
    k: usize,
    n: usize,
) {
    use std::arch::x86_64::*;
    unsafe {
        let (rb, group) = (row_bytes(Q8), if Q8 { GROUP } else { k.max(1) });
        let groups = k.div_ceil(GROUP);
        let (mut j, mut panel) = (0, w);
        while j < n {
            let mut lo = [_mm512_setzero_ps(); 4];
            let mut hi = [_mm512_setzero_ps(); 4];
            let mut kk = 0;
            while kk < k {
                let sc = group_scales::<Q8>(s, j / PANEL, groups, kk / GROUP);
                let end = (kk + group).min(k);
                let mut kq = kk;
                while kq < end {
                    let u = (end - kq).min(4);
                    for q in 0..u {
                        let p = panel.add((kq + q) * rb);
                        _mm_prefetch::<_MM_HINT_T0>((p as *const i8).add(1024));
                        let xv = _mm512_set1_ps(*x.add(kq + q));
                        let (w0, w1) = widen_row!(Q8, p, sc);
                        lo[q] = _mm512_fmadd_ps(xv, w0, lo[q]);
                        hi[q] = _mm512_fmadd_ps(xv, w1, hi[q]);
                    }
                    kq += u;
                }
                kk = end;
            }
            let l = _mm512_add_ps(_mm512_add_ps(lo[0], lo[1]), _mm512_add_ps(lo[2], lo[3]));
            let h = _mm512_add_ps(_mm512_add_ps(hi[0], hi[1]), _mm512_add_ps(hi[2], hi[3]));
            store_panel(y.add(j), l, h, (n - j).min(PANEL));
            j += PANEL;
            panel = panel.add(k * rb);
        }
    }
}

/// v rounded to the nearest integer, ties to even, for |v| < 2²²: adding 1.5·2²³ leaves no
/// fraction bits, so the addition itself rounds. Plain float ops, which vectorize where
/// `f32::round` (a library call) does not.
fn round_even(v: f32) -> f32 {
    const M: f32 = 12_582_912.0;
    (v + M) - M
}

/// `bits` of the smallest bf16 ≥ v (v ≥ 0, finite), as the top 16 bits of its f32.
fn round_up_bf16(v: f32) -> u32 {
    let b = v.to_bits();
    match b & 0xffff {
        0 => b >> 16,
        _ => (b >> 16) + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel on `p` against torch's x·Wᵀ on `reference` (the weight the panels stand
    /// for), to 1e-5 of the product's magnitude, for a random [m, in] x.
    fn assert_kernel_matches(m: i64, p: &Packed, reference: &Tensor) {
        let k = p.in_features();
        let x = Tensor::randn([m, k], (Kind::Float, Device::Cpu));
        let got = try_matmul(&x, p).expect("kernel should apply");
        let want = x.matmul(&reference.tr());
        let d = (&got - &want).abs().max().double_value(&[]);
        let scale = want.abs().max().double_value(&[]).max(1e-6);
        assert!(
            d <= 1e-5 * scale,
            "{:?} [{m},{k}]x[{k},{}]: {d} vs max {scale}",
            p.kind(),
            p.out_features()
        );
    }

    #[test]
    fn packs_losslessly_and_multiplies_like_torch_on_the_rounded_weights() {
        tch::set_num_threads(1);
        tch::manual_seed(4);
        for &(m, k, n) in &[
            (1, 576, 1536),
            (8, 64, 32),
            (13, 37, 70),
            (32, 130, 49),
            (2, 9, 15),
        ] {
            let w = Tensor::randn([n, k], (Kind::Float, Device::Cpu));
            let p = Packed::new(&w);
            let rounded = w.to_kind(Kind::BFloat16).to_kind(Kind::Float);
            assert!(p.unpack().equal(&rounded), "pack/unpack [{n},{k}]");
            if enabled() {
                assert_kernel_matches(m, &p, &rounded);
            }
        }
    }

    #[test]
    fn int8_keeps_each_weight_within_half_its_groups_step_and_multiplies_like_torch() {
        tch::set_num_threads(1);
        tch::manual_seed(5);
        for &(m, k, n) in &[
            (1, 576, 1536),
            (8, 64, 32),
            (13, 37, 70),
            (32, 130, 49),
            (2, 9, 15),
            (3, 1536, 64),
        ] {
            // Columns of very different sizes, and one all-zero group, as real weights have.
            let w = Tensor::randn([n, k], (Kind::Float, Device::Cpu))
                * Tensor::randn([n, 1], (Kind::Float, Device::Cpu)).exp();
            let _ = w.narrow(1, 0, k.min(GROUP as i64)).narrow(0, 0, 1).zero_();
            let p = Packed::new_int8(&w);
            assert_eq!(p.kind(), Kind::Int8);
            let got = p.unpack();
            let groups = (k + GROUP as i64 - 1) / GROUP as i64;
            let step = w
                .constant_pad_nd([0, groups * GROUP as i64 - k])
                .view([n, groups, GROUP as i64])
                .abs()
                .amax([2], true)
                .repeat_interleave_self_int(GROUP as i64, 2, None)
                .view([n, groups * GROUP as i64])
                .narrow(1, 0, k)
                / 127.0;
            let over = (&got - &w).abs() - &step * (0.5 * (1.0 + 1.0 / 128.0));
            assert!(
                over.max().double_value(&[]) <= 1e-7,
                "[{n},{k}]: an int8 weight off by more than half its step"
            );
            if enabled() {
                assert_kernel_matches(m, &p, &got);
            }
        }
    }

    #[test]
    fn rounds_to_nearest_even() {
        for (v, want) in [
            (2.5f32, 2.0f32),
            (3.5, 4.0),
            (-2.5, -2.0),
            (1.4, 1.0),
            (-126.6, -127.0),
        ] {
            assert_eq!(round_even(v), want, "{v}");
        }
    }

    #[test]
    fn rounds_scales_up_to_bf16() {
        assert_eq!(round_up_bf16(1.0), 1.0f32.to_bits() >> 16);
        let up = f32::from_bits(round_up_bf16(1.001) << 16);
        assert!(up >= 1.001 && up < 1.001 * (1.0 + 1.0 / 64.0), "{up}");
        assert_eq!(round_up_bf16(0.0), 0);
    }

    #[test]
    fn keeps_leading_dims_and_declines_what_it_cannot_serve() {
        tch::set_num_threads(1);
        if !enabled() {
            return;
        }
        let p = Packed::new(&Tensor::randn([48, 20], (Kind::Float, Device::Cpu)));
        let x = Tensor::randn([2, 3, 20], (Kind::Float, Device::Cpu));
        assert_eq!(try_matmul(&x, &p).unwrap().size(), [2, 3, 48]);
        let big = Tensor::randn([MAX_ROWS + 1, 20], (Kind::Float, Device::Cpu));
        assert!(try_matmul(&big, &p).is_none());
        assert!(try_matmul(&x.set_requires_grad(true), &p).is_none());
        assert!(try_matmul(&Tensor::randn([2, 21], (Kind::Float, Device::Cpu)), &p).is_none());
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    /// `cargo test --release --lib decode_packed::speed -- --ignored --nocapture`: one sweep over
    /// SmolLM2-135M's projections (30 layers and lm_head), packed bf16 and int8 against the f32 kernel
    /// of `decode_matmul`, best of 5.
    #[test]
    #[ignore]
    fn sweep() {
        tch::set_num_threads(1);
        let shapes: Vec<(i64, i64)> = (0..30)
            .flat_map(|_| {
                [
                    (576, 576),
                    (192, 576),
                    (192, 576),
                    (576, 576),
                    (1536, 576),
                    (1536, 576),
                    (576, 1536),
                ]
            })
            .chain([(49152, 576)])
            .collect();
        let ws: Vec<Tensor> = shapes
            .iter()
            .map(|&(n, k)| Tensor::randn([n, k], (Kind::Float, Device::Cpu)))
            .collect();
        let im: Vec<Tensor> = ws.iter().map(|w| w.tr().contiguous().tr()).collect();
        let t = std::time::Instant::now();
        let packed: Vec<Packed> = im.iter().map(Packed::new).collect();
        eprintln!(
            "packing the sweep's weights (input-major f32): {:.0} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
        let t = std::time::Instant::now();
        let packed8: Vec<Packed> = im.iter().map(Packed::new_int8).collect();
        eprintln!(
            "packing them as int8: {:.0} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
        let im32: Vec<Tensor> = ws.iter().map(|w| w.tr().contiguous().tr()).collect();
        for m in [1i64, 8] {
            let xs: Vec<Tensor> = shapes
                .iter()
                .map(|&(_, k)| Tensor::randn([m, k], (Kind::Float, Device::Cpu)))
                .collect();
            let time = |f: &dyn Fn(usize) -> Tensor| {
                (0..5)
                    .map(|_| {
                        let t = std::time::Instant::now();
                        for i in 0..shapes.len() {
                            let _ = f(i);
                        }
                        t.elapsed().as_secs_f64() * 1e3
                    })
                    .fold(f64::MAX, f64::min)
            };
            let p = time(&|i| try_matmul(&xs[i], &packed[i]).unwrap());
            let q = time(&|i| try_matmul(&xs[i], &packed8[i]).unwrap());
            let f = time(&|i| super::super::decode_matmul::try_matmul(&xs[i], &im32[i]).unwrap());
            eprintln!("rows {m}: packed bf16 {p:.1} ms, int8 {q:.1} ms, f32 {f:.1} ms");
        }
    }
}
