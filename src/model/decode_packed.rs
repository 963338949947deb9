//! bf16 sampling weights packed in column panels, and x·Wᵀ on them for decode steps.
//!
//! Why a packed layout: a decode step at batch 1 streams every weight once, so its speed
//! is the speed of reading them. Stored as panels of 32 output columns — panel j holds
//! W[j·32 .. j·32+32, :] transposed, [in, 32], one after another — each panel is read front
//! to back in one sequential stream while its 32 sums per row stay in registers for the whole
//! input; nothing is reloaded or stored until the panel ends. bf16 halves the bytes; each
//! value is widened to the f32 it stands for (placed above a zero half-word) and multiplied
//! in f32, so the only rounding is the weight's own.
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
/// Rows (batch × time) up to which the packed kernel serves a pass; each 8 rows read the
/// weights once more. Above it the layer's own weights go through torch.
pub const MAX_ROWS: i64 = 32;

/// A [out, in] weight as bf16 panels.
#[derive(Debug)]
pub struct Packed {
    /// [panels, in, PANEL] bf16, columns past `out` zero.
    data: Tensor,
    out: usize,
    inp: usize,
}

impl Packed {
    /// Packs a [out, in] weight (any float kind; rounded to bf16 to nearest even, as torch
    /// rounds). One pass over the weight, read input-major: a model's f32 weights and their
    /// merges are stored that way (`linear::input_major`), so no copy comes first; the
    /// packing runs before every rollout of a GRPO step.
    pub fn new(weight: &Tensor) -> Packed {
        let _g = tch::no_grad_guard();
        let (out, inp) = weight.size2().expect("a weight is [out, in]");
        let (n, k) = (out as usize, inp as usize);
        // [in, out] contiguous f32: a view when the weight is input-major already.
        let t = weight
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .tr()
            .contiguous();
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
            data,
            out: n,
            inp: k,
        }
    }

    pub fn out_features(&self) -> i64 {
        self.out as i64
    }

    pub fn in_features(&self) -> i64 {
        self.inp as i64
    }

    /// The weight back as f32 [out, in] (tests).
    pub fn unpack(&self) -> Tensor {
        let p = self.data.size()[0];
        let mut column_to_word = [0i64; PANEL];
        for (word, &col) in WORD_TO_COLUMN.iter().enumerate() {
            column_to_word[col as usize] = word as i64;
        }
        self.data
            .index_select(2, &Tensor::from_slice(&column_to_word))
            .to_kind(Kind::Float)
            .transpose(1, 2)
            .reshape([p * PANEL as i64, self.inp as i64])
            .narrow(0, 0, self.out as i64)
    }
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
    // SAFETY: lengths checked above: x holds m rows of `in`, y m rows of `out`; w.data is
    // a contiguous [panels, in, PANEL] bf16 tensor alive for the call; `enabled()` checked
    // AVX-512F and AVX-512BW.
    unsafe {
        let wp = w.data.data_ptr() as *const u16;
        let mut r = 0;
        while r < m {
            let rows = (m - r).min(8);
            let (xr, yr) = (x.as_ptr().add(r * w.inp), y.as_mut_ptr().add(r * w.out));
            match rows {
                1 => panels_one(xr, wp, yr, w.inp, w.out),
                2 => panels::<2>(xr, wp, yr, w.inp, w.out),
                3 => panels::<3>(xr, wp, yr, w.inp, w.out),
                4 => panels::<4>(xr, wp, yr, w.inp, w.out),
                5 => panels::<5>(xr, wp, yr, w.inp, w.out),
                6 => panels::<6>(xr, wp, yr, w.inp, w.out),
                7 => panels::<7>(xr, wp, yr, w.inp, w.out),
                _ => panels::<8>(xr, wp, yr, w.inp, w.out),
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

/// M rows of x against every panel: 2·M accumulators live for a whole panel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
#[allow(clippy::needless_range_loop)] // r indexes x, y and the accumulators together
unsafe fn panels<const M: usize>(x: *const f32, w: *const u16, y: *mut f32, k: usize, n: usize) {
    use std::arch::x86_64::*;
    unsafe {
        let zero = _mm512_setzero_si512();
        let mut j = 0;
        let mut panel = w;
        while j < n {
            let mut lo = [_mm512_setzero_ps(); M];
            let mut hi = [_mm512_setzero_ps(); M];
            for kk in 0..k {
                let p = panel.add(kk * PANEL);
                // 16 rows (1 KiB) ahead: the stream is sequential, this only hides latency.
                _mm_prefetch::<_MM_HINT_T0>((p as *const i8).add(1024));
                // bf16 is the top half of an f32: interleave each word above a zero word.
                let v = _mm512_loadu_si512(p as *const __m512i);
                let w0 = _mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, v));
                let w1 = _mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, v));
                for r in 0..M {
                    let xv = _mm512_set1_ps(*x.add(r * k + kk));
                    lo[r] = _mm512_fmadd_ps(xv, w0, lo[r]);
                    hi[r] = _mm512_fmadd_ps(xv, w1, hi[r]);
                }
            }
            let width = (n - j).min(PANEL);
            for r in 0..M {
                let yr = y.add(r * n + j);
                if width == PANEL {
                    _mm512_storeu_ps(yr, lo[r]);
                    _mm512_storeu_ps(yr.add(16), hi[r]);
                } else {
                    let mut buf = [0f32; PANEL];
                    _mm512_storeu_ps(buf.as_mut_ptr(), lo[r]);
                    _mm512_storeu_ps(buf.as_mut_ptr().add(16), hi[r]);
                    std::ptr::copy_nonoverlapping(buf.as_ptr(), yr, width);
                }
            }
            j += PANEL;
            panel = panel.add(k * PANEL);
        }
    }
}

/// One row: four interleaved pairs of accumulators, so consecutive FMAs do not wait on
/// each other (one chain of `in` dependent FMAs per panel would bound the speed instead of
/// memory).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn panels_one(x: *const f32, w: *const u16, y: *mut f32, k: usize, n: usize) {
    use std::arch::x86_64::*;
    unsafe {
        let zero = _mm512_setzero_si512();
        let mut j = 0;
        let mut panel = w;
        while j < n {
            let mut lo = [_mm512_setzero_ps(); 4];
            let mut hi = [_mm512_setzero_ps(); 4];
            let mut kk = 0;
            while kk < k {
                let u = (k - kk).min(4);
                for q in 0..u {
                    let p = panel.add((kk + q) * PANEL);
                    _mm_prefetch::<_MM_HINT_T0>((p as *const i8).add(1024));
                    let xv = _mm512_set1_ps(*x.add(kk + q));
                    let v = _mm512_loadu_si512(p as *const __m512i);
                    let w0 = _mm512_castsi512_ps(_mm512_unpacklo_epi16(zero, v));
                    let w1 = _mm512_castsi512_ps(_mm512_unpackhi_epi16(zero, v));
                    lo[q] = _mm512_fmadd_ps(xv, w0, lo[q]);
                    hi[q] = _mm512_fmadd_ps(xv, w1, hi[q]);
                }
                kk += u;
            }
            let l = _mm512_add_ps(_mm512_add_ps(lo[0], lo[1]), _mm512_add_ps(lo[2], lo[3]));
            let h = _mm512_add_ps(_mm512_add_ps(hi[0], hi[1]), _mm512_add_ps(hi[2], hi[3]));
            let width = (n - j).min(PANEL);
            if width == PANEL {
                _mm512_storeu_ps(y.add(j), l);
                _mm512_storeu_ps(y.add(j + 16), h);
            } else {
                let mut buf = [0f32; PANEL];
                _mm512_storeu_ps(buf.as_mut_ptr(), l);
                _mm512_storeu_ps(buf.as_mut_ptr().add(16), h);
                std::ptr::copy_nonoverlapping(buf.as_ptr(), y.add(j), width);
            }
            j += PANEL;
            panel = panel.add(k * PANEL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            if !enabled() {
                continue;
            }
            let x = Tensor::randn([m, k], (Kind::Float, Device::Cpu));
            let got = try_matmul(&x, &p).expect("kernel should apply");
            let want = x.matmul(&rounded.tr());
            let d = (&got - &want).abs().max().double_value(&[]);
            let scale = want.abs().max().double_value(&[]).max(1e-6);
            assert!(d <= 1e-5 * scale, "[{m},{k}]x[{k},{n}]: {d} vs max {scale}");
        }
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
    /// SmolLM2-135M's projections (30 layers and lm_head), packed bf16 against the f32 kernel
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
            let f = time(&|i| super::super::decode_matmul::try_matmul(&xs[i], &im32[i]).unwrap());
            eprintln!("rows {m}: packed bf16 {p:.1} ms, f32 {f:.1} ms");
        }
    }
}
