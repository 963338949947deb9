//! x·Wᵀ for the few rows of a decode step (f32, CPU, AVX-512).
//!
//! Why: at batch ≤ 8 a decode step is bound by streaming the weights from memory, and MKL's
//! sgemm is far from that bound at those shapes (a sweep over SmolLM2's projections with
//! 8 rows: 91 ms, against 42 ms for 1 row). This kernel walks the input-major weight
//! [in, out] in blocks of 8 input rows (8 sequential streams, the next block prefetched),
//! keeping up to 8 output rows × 32 columns in registers: the same sweep takes about 45 ms
//! (1 row: 34 ms). It serves only tensors that need no gradient; the rest goes to torch.
use tch::{Device, Kind, Tensor};

/// Rows (batch × time) up to which the kernel is used; above it MKL is as fast or faster.
pub const MAX_ROWS: i64 = 8;

/// x [.., in] · weight [out, in]ᵀ when the kernel applies, else None. `weight` must be
/// stored input-major (strides [1, out], as `linear::input_major` makes it).
pub fn try_matmul(x: &Tensor, weight: &Tensor) -> Option<Tensor> {
    if !enabled()
        || x.device() != Device::Cpu
        || x.kind() != Kind::Float
        || weight.kind() != Kind::Float
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
    if m == 0 || m > MAX_ROWS {
        return None;
    }
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    let x2 = x.reshape([m, k]).contiguous();
    let y = Tensor::empty([m, n], (Kind::Float, Device::Cpu));
    #[cfg(target_arch = "x86_64")]
    // SAFETY: x2 is a contiguous [m, k] f32 tensor, the weight's storage is a contiguous
    // [k, n] f32 block (strides checked above), y is a fresh [m, n] f32 tensor; all three
    // stay alive for the call, and `enabled()` checked that the CPU has AVX-512F.
    unsafe {
        matmul_rows(
            x2.data_ptr() as *const f32,
            m as usize,
            k as usize,
            weight.data_ptr() as *const f32,
            n as usize,
            y.data_ptr() as *mut f32,
        );
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

/// y[m, n] = x[m, k] · w[k, n], all row-major, 8 rows at a time; callers guarantee
/// AVX-512F and valid pointers.
#[cfg(target_arch = "x86_64")]
unsafe fn matmul_rows(x: *const f32, m: usize, k: usize, w: *const f32, n: usize, y: *mut f32) {
    let mut r = 0;
    while r < m {
        let rows = (m - r).min(8);
        // SAFETY: rows r..r+rows of x and y are in bounds.
        let (xp, yp) = unsafe { (x.add(r * k), y.add(r * n)) };
        unsafe {
            match rows {
                1 => kernel::<1>(xp, k, w, n, yp),
                2 => kernel::<2>(xp, k, w, n, yp),
                3 => kernel::<3>(xp, k, w, n, yp),
                4 => kernel::<4>(xp, k, w, n, yp),
                5 => kernel::<5>(xp, k, w, n, yp),
                6 => kernel::<6>(xp, k, w, n, yp),
                7 => kernel::<7>(xp, k, w, n, yp),
                _ => kernel::<8>(xp, k, w, n, yp),
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
unsafe fn kernel<const M: usize>(x: *const f32, k: usize, w: *const f32, n: usize, y: *mut f32) {
    use std::arch::x86_64::*;
    const KB: usize = 8;
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
                        let next = wp.add(KB * n) as *const i8;
                        _mm_prefetch::<_MM_HINT_T1>(next);
                        _mm_prefetch::<_MM_HINT_T1>(next.add(64));
                    }
                    let (w0, w1) = (_mm512_loadu_ps(wp), _mm512_loadu_ps(wp.add(16)));
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
            // Tail columns (n not a multiple of 32), 16 at a time under a mask.
            while j < n {
                let width = (n - j).min(16);
                let mask: __mmask16 = if width == 16 {
                    0xffff
                } else {
                    (1u16 << width) - 1
                };
                let mut acc = [_mm512_setzero_ps(); M];
                for r in 0..M {
                    acc[r] = _mm512_maskz_loadu_ps(mask, y.add(r * n + j));
                }
                for kk in 0..kb {
                    let w0 = _mm512_maskz_loadu_ps(mask, w.add((k0 + kk) * n + j));
                    for r in 0..M {
                        let xv = _mm512_set1_ps(*x.add(r * k + k0 + kk));
                        acc[r] = _mm512_fmadd_ps(xv, w0, acc[r]);
                    }
                }
                for r in 0..M {
                    _mm512_mask_storeu_ps(y.add(r * n + j), mask, acc[r]);
                }
                j += width;
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
