//! x·Wᵀ for the few rows of a decode step (x f32, weight f32 or bf16, CPU, AVX-512).
//!
//! Why: at batch ≤ 8 a decode step is bound by streaming the weights from memory, and MKL's
//! sgemm is far from that bound at those shapes (a sweep over SmolLM2's projections with
//! 8 rows: 91 ms, against 42 ms for 1 row). This kernel walks the input-major weight
//! [in, out] in blocks of 8 input rows (8 sequential streams, the next block prefetched),
//! keeping up to 8 output rows × 32 columns in registers: the same sweep takes about 45 ms
//! (1 row: 34 ms). A bf16 weight halves the bytes streamed: each bf16 is widened to the f32
//! it stands for (a 16-bit shift) and multiplied in f32, so the only rounding is the
//! weight's own. It serves only tensors that need no gradient; the rest goes to torch.
use tch::{Device, Kind, Tensor};

/// Rows (batch × time) up to which the kernel is used for f32 weights; above it MKL is as
/// fast or faster.
pub const MAX_ROWS: i64 = 8;
/// The same for bf16 weights: torch has no fast path for an f32 input against bf16 weights,
/// so the kernel serves larger decode batches too (one weight pass per 8 rows).
pub const MAX_ROWS_BF16: i64 = 32;

/// x [.., in] · weight [out, in]ᵀ when the kernel applies, else None. `weight` (f32 or bf16)
/// must be stored input-major (strides [1, out], as `linear::input_major` makes it).
pub fn try_matmul(x: &Tensor, weight: &Tensor) -> Option<Tensor> {
    let bf16 = match weight.kind() {
        Kind::Float => false,
        Kind::BFloat16 => true,
        _ => return None,
    };
    if !enabled()
        || x.device() != Device::Cpu
        || x.kind() != Kind::Float
        || x.requires_grad()
        || weight.requires_grad()
        || weight.dim() != 2
    {
        return None;
    }
    let (n, k) = (weight.size()[0], weight.size()[1]);
    if weight.stride() != [1, n] || x.size().last() != Some(&k) {
        return None;
    }
    let m = x.numel() as i64 / k.max(1);
    if m == 0 || m > if bf16 { MAX_ROWS_BF16 } else { MAX_ROWS } {
        return None;
    }
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    let x2 = x.reshape([m, k]).contiguous();
    let y = Tensor::empty([m, n], (Kind::Float, Device::Cpu));
    #[cfg(target_arch = "x86_64")]
    // SAFETY: x2 is a contiguous [m, k] f32 tensor, the weight's storage is a contiguous
    // [k, n] block of f32 or bf16 (kind and strides checked above), y is a fresh [m, n] f32
    // tensor; all three stay alive for the call, and `enabled()` checked AVX-512F.
    unsafe {
        let (xp, yp) = (x2.data_ptr() as *const f32, y.data_ptr() as *mut f32);
        let (m, k, n) = (m as usize, k as usize, n as usize);
        if bf16 {
            matmul_rows::<Bf16>(xp, m, k, weight.data_ptr() as *const u16, n, yp);
        } else {
            matmul_rows::<F32>(xp, m, k, weight.data_ptr() as *const f32, n, yp);
        }
    }
    let mut shape = x.size();
    *shape.last_mut().unwrap() = n;
    Some(y.view(shape.as_slice()))
}

/// Whether the kernel runs: AVX-512F, one torch thread, not switched off with
/// STYLERL_DECODE_KERNEL=0. With several threads MKL's parallel sgemm is used: splitting
/// this kernel's columns over rayon tasks measured slower (127.8 against 140.4 tok/s, 2 threads,
/// batch 8), as the tasks compete with torch's OpenMP threads.
pub fn enabled() -> bool {
    use std::sync::OnceLock;
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        let cpu = std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        let cpu = false;
        std::env::var("STYLERL_DECODE_KERNEL").map_or(true, |v| v != "0") && cpu
    }) && tch::get_num_threads() == 1
}

/// How the kernel reads one weight element type: 32 columns into two f32 vectors, and one
/// column as f32 for the tail.
#[cfg(target_arch = "x86_64")]
trait Weight {
    type Elem;
    /// Columns j..j+32 of a row starting at `p`.
    unsafe fn load32(
        p: *const Self::Elem,
    ) -> (std::arch::x86_64::__m512, std::arch::x86_64::__m512);
    unsafe fn at(p: *const Self::Elem) -> f32;
}

#[cfg(target_arch = "x86_64")]
struct F32;
#[cfg(target_arch = "x86_64")]
impl Weight for F32 {
    type Elem = f32;
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load32(p: *const f32) -> (std::arch::x86_64::__m512, std::arch::x86_64::__m512) {
        use std::arch::x86_64::*;
        unsafe { (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16))) }
    }
    #[inline(always)]
    unsafe fn at(p: *const f32) -> f32 {
        unsafe { *p }
    }
}

#[cfg(target_arch = "x86_64")]
struct Bf16;
#[cfg(target_arch = "x86_64")]
impl Weight for Bf16 {
    type Elem = u16;
    /// bf16 is the top half of an f32: widen each 16-bit lane to 32 bits and shift it up.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load32(p: *const u16) -> (std::arch::x86_64::__m512, std::arch::x86_64::__m512) {
        use std::arch::x86_64::*;
        unsafe {
            let lo = _mm256_loadu_si256(p as *const __m256i);
            let hi = _mm256_loadu_si256(p.add(16) as *const __m256i);
            (
                _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(lo))),
                _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(hi))),
            )
        }
    }
    #[inline(always)]
    unsafe fn at(p: *const u16) -> f32 {
        unsafe { f32::from_bits((*p as u32) << 16) }
    }
}

/// y[m, n] = x[m, k] · w[k, n], all row-major, 8 rows at a time; callers guarantee
/// AVX-512F and valid pointers.
#[cfg(target_arch = "x86_64")]
unsafe fn matmul_rows<W: Weight>(
    x: *const f32,
    m: usize,
    k: usize,
    w: *const W::Elem,
    n: usize,
    y: *mut f32,
) {
    let mut r = 0;
    while r < m {
        let rows = (m - r).min(8);
        // SAFETY: rows r..r+rows of x and y are in bounds.
        let (xp, yp) = unsafe { (x.add(r * k), y.add(r * n)) };
        unsafe {
            match rows {
                1 => kernel::<W, 1>(xp, k, w, n, yp),
                2 => kernel::<W, 2>(xp, k, w, n, yp),
                3 => kernel::<W, 3>(xp, k, w, n, yp),
                4 => kernel::<W, 4>(xp, k, w, n, yp),
                5 => kernel::<W, 5>(xp, k, w, n, yp),
                6 => kernel::<W, 6>(xp, k, w, n, yp),
                7 => kernel::<W, 7>(xp, k, w, n, yp),
                _ => kernel::<W, 8>(xp, k, w, n, yp),
            }
        }
        r += rows;
    }
}

/// M rows at once. Outer loop: blocks of KB input rows of w (KB sequential memory streams);
/// inner: 32 output columns (two zmm) per row in registers, accumulated into y per block.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::needless_range_loop)] // r indexes x, y and the accumulators together
unsafe fn kernel<W: Weight, const M: usize>(
    x: *const f32,
    k: usize,
    w: *const W::Elem,
    n: usize,
    y: *mut f32,
) {
    use std::arch::x86_64::*;
    const KB: usize = 8;
    let row_bytes = n * std::mem::size_of::<W::Elem>();
    unsafe {
        for r in 0..M {
            std::ptr::write_bytes(y.add(r * n), 0, n);
        }
        let mut k0 = 0;
        while k0 < k {
            let kb = KB.min(k - k0);
            let mut j = 0;
            while j + 32 <= n {
                let mut lo = [_mm512_setzero_ps(); M];
                let mut hi = [_mm512_setzero_ps(); M];
                for r in 0..M {
                    lo[r] = _mm512_loadu_ps(y.add(r * n + j));
                    hi[r] = _mm512_loadu_ps(y.add(r * n + j + 16));
                }
                for kk in 0..kb {
                    let wp = w.add((k0 + kk) * n + j);
                    if k0 + KB + kk < k {
                        // The next block's rows are 8 strided streams the hardware prefetcher
                        // does not follow; asking for them now hides most of the latency.
                        let next = (wp as *const i8).add(KB * row_bytes);
                        _mm_prefetch::<_MM_HINT_T1>(next);
                        _mm_prefetch::<_MM_HINT_T1>(next.add(64));
                    }
                    let (w0, w1) = W::load32(wp);
                    for r in 0..M {
                        let xv = _mm512_set1_ps(*x.add(r * k + k0 + kk));
                        lo[r] = _mm512_fmadd_ps(xv, w0, lo[r]);
                        hi[r] = _mm512_fmadd_ps(xv, w1, hi[r]);
                    }
                }
                for r in 0..M {
                    _mm512_storeu_ps(y.add(r * n + j), lo[r]);
                    _mm512_storeu_ps(y.add(r * n + j + 16), hi[r]);
                }
                j += 32;
            }
            // Tail columns (n not a multiple of 32): plain scalar sums, rare in real models.
            for jj in j..n {
                for r in 0..M {
                    let mut acc = *y.add(r * n + jj);
                    for kk in 0..kb {
                        acc += *x.add(r * k + k0 + kk) * W::at(w.add((k0 + kk) * n + jj));
                    }
                    *y.add(r * n + jj) = acc;
                }
            }
            k0 += kb;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::linear::input_major;

    #[test]
    fn equals_torch_on_odd_shapes() {
        tch::set_num_threads(1);
        if !enabled() {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        tch::manual_seed(1);
        for &(m, k, n) in &[
            (1, 64, 32),
            (3, 37, 70),
            (8, 576, 1536),
            (5, 9, 15),
            (7, 130, 49),
        ] {
            let w = Tensor::randn([n, k], (Kind::Float, Device::Cpu));
            let x = Tensor::randn([m, k], (Kind::Float, Device::Cpu));
            let wi = input_major(&w);
            let got = try_matmul(&x, &wi).expect("kernel should apply");
            let want = x.matmul(&w.tr());
            let d = (&got - &want).abs().max().double_value(&[]);
            // Relative to the outputs' size: sums of up to 576 products in another order
            // than MKL's agree to about 1e-6 of it in float32.
            let scale = want.abs().max().double_value(&[]).max(1e-6);
            assert!(d <= 1e-5 * scale, "[{m},{k}]x[{k},{n}]: {d} vs max {scale}");
        }
    }

    #[test]
    fn bf16_weights_give_the_f32_product_of_the_rounded_weights() {
        tch::set_num_threads(1);
        if !enabled() {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        tch::manual_seed(2);
        // Up to MAX_ROWS_BF16 rows (several 8-row passes), odd widths (the scalar tail).
        for &(m, k, n) in &[
            (1, 576, 1536),
            (8, 64, 32),
            (13, 37, 70),
            (32, 130, 49),
            (2, 9, 15),
        ] {
            let w = Tensor::randn([n, k], (Kind::Float, Device::Cpu)).to_kind(Kind::BFloat16);
            let x = Tensor::randn([m, k], (Kind::Float, Device::Cpu));
            let got = try_matmul(&x, &input_major_any(&w)).expect("kernel should apply");
            // The reference: the same rounded weights, multiplied in f32.
            let want = x.matmul(&w.to_kind(Kind::Float).tr());
            let d = (&got - &want).abs().max().double_value(&[]);
            let scale = want.abs().max().double_value(&[]).max(1e-6);
            assert!(
                d <= 1e-5 * scale,
                "bf16 [{m},{k}]x[{k},{n}]: {d} vs max {scale}"
            );
        }
        // A row-major bf16 weight is torch's job, as is a batch past the bound.
        let w = Tensor::randn([48, 20], (Kind::Float, Device::Cpu)).to_kind(Kind::BFloat16);
        let x = Tensor::randn([3, 20], (Kind::Float, Device::Cpu));
        assert!(try_matmul(&x, &w).is_none());
        let big = Tensor::randn([MAX_ROWS_BF16 + 1, 20], (Kind::Float, Device::Cpu));
        assert!(try_matmul(&big, &input_major_any(&w)).is_none());
    }

    /// [out, in] seen through a transposed view of [in, out] storage, for any kind.
    fn input_major_any(w: &Tensor) -> Tensor {
        w.tr().contiguous().tr()
    }

    #[test]
    fn keeps_leading_dims_and_declines_what_it_cannot_serve() {
        tch::set_num_threads(1);
        if !enabled() {
            return;
        }
        let w = input_major(&Tensor::randn([48, 20], (Kind::Float, Device::Cpu)));
        let x = Tensor::randn([2, 3, 20], (Kind::Float, Device::Cpu));
        let y = try_matmul(&x, &w).unwrap();
        assert_eq!(y.size(), [2, 3, 48]);
        let want = x.matmul(&w.tr());
        let d = (&y - &want).abs().max().double_value(&[]);
        assert!(d <= 1e-5 * want.abs().max().double_value(&[]).max(1e-6));
        // Too many rows, a row-major weight, or an input that needs gradients: torch's job.
        assert!(try_matmul(&Tensor::randn([3, 3, 20], (Kind::Float, Device::Cpu)), &w).is_none());
        let row_major = Tensor::randn([48, 20], (Kind::Float, Device::Cpu));
        assert!(try_matmul(&x, &row_major).is_none());
        assert!(try_matmul(&x.set_requires_grad(true), &w).is_none());
    }
}
