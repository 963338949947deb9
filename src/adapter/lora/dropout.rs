//! Inverted dropout for LoRA inputs on the CPU, with the mask drawn by SplitMix64.
//!
//! Why not torch's dropout: its CPU mask costs a Mersenne-Twister draw per element, about
//! 13 ms for a [600, 1536] input on one thread — a quarter of an SFT step on SmolLM2,
//! where every one of 210 adapters draws its own mask. SplitMix64 gives two 32-bit draws
//! per call at a fraction of that. The seed comes from torch's generator, so a run seeded
//! with `tch::manual_seed` draws the same masks again.
use crate::rng::SplitMix64;
use tch::{Device, Kind, Tensor};

/// x with each element zeroed with probability `p` and the rest scaled by 1/(1−p).
/// f32 CPU inputs take the fast mask; anything else goes to torch's dropout.
pub fn dropout(x: &Tensor, p: f64) -> Tensor {
    if p.is_nan() || p <= 0.0 {
        return x.shallow_clone();
    }
    if x.device() != Device::Cpu || x.kind() != Kind::Float || p >= 1.0 {
        return x.dropout(p, true);
    }
    let seed = Tensor::randint(i64::MAX, [1], (Kind::Int64, Device::Cpu)).int64_value(&[0]);
    x * crate::util::new_f32(&x.size(), |m| fill_mask(m, p, seed as u64))
}

/// Fills `m` with 0 (probability p, to 2⁻³² resolution) or 1/(1−p), from `seed`.
pub fn fill_mask(m: &mut [f32], p: f64, seed: u64) {
    fill_with(m, p, seed, (1.0 / (1.0 - p)) as f32, 0.0);
}

/// x (bf16, CPU) with each element zeroed with probability `p`, *not* rescaled: the caller
/// multiplies by the returned factor 1/(1−p) where it is cheapest (the rank-r intermediate),
/// since 1/(1−p) itself is not exact in bf16 (1/0.95 would round up by 0.2 %). The mask is the
/// one [`dropout`] draws from the same seed. Other kinds and devices: torch's dropout, factor 1.
pub fn dropout_unscaled(x: &Tensor, p: f64) -> (Tensor, f64) {
    if p.is_nan() || p <= 0.0 {
        return (x.shallow_clone(), 1.0);
    }
    if x.device() != Device::Cpu || x.kind() != Kind::BFloat16 || p >= 1.0 {
        return (x.dropout(p, true), 1.0);
    }
    let seed = Tensor::randint(i64::MAX, [1], (Kind::Int64, Device::Cpu)).int64_value(&[0]);
    const ONE_BF16: u16 = 0x3f80;
    let mask = crate::util::new_bf16_bits(&x.size(), |m| fill_with(m, p, seed as u64, ONE_BF16, 0));
    (x * mask, 1.0 / (1.0 - p))
}

/// Fills `m` with `drop` (probability p, to 2⁻³² resolution) or `keep`, from `seed`: two
/// 32-bit draws per SplitMix64 call, an element dropped when its draw is below p·2³².
fn fill_with<T: Copy>(m: &mut [T], p: f64, seed: u64, keep: T, drop: T) {
    let cut = (p * 4294967296.0).min(4294967295.0) as u64;
    let mut rng = SplitMix64::new(seed);
    let value = |draw: u64| if draw < cut { drop } else { keep };
    let mut pairs = m.chunks_exact_mut(2);
    for pair in &mut pairs {
        let r = rng.next();
        pair[0] = value(r & 0xffff_ffff);
        pair[1] = value(r >> 32);
    }
    if let [last] = pairs.into_remainder() {
        *last = value(rng.next() & 0xffff_ffff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_about_p_and_keeps_the_mean() {
        for &p in &[0.05, 0.1, 0.5] {
            let mut m = vec![0f32; 200_001];
            fill_mask(&mut m, p, 7);
            let dropped = m.iter().filter(|&&v| v == 0.0).count() as f64 / m.len() as f64;
            // Binomial standard error at n = 200k is ≤ 0.0012; 5 of them.
            assert!((dropped - p).abs() < 0.006, "p {p}: dropped {dropped}");
            let mean = m.iter().map(|&v| v as f64).sum::<f64>() / m.len() as f64;
            assert!((mean - 1.0).abs() < 0.02, "p {p}: mean {mean}");
            let kept = (1.0 / (1.0 - p)) as f32;
            assert!(m.iter().all(|&v| v == 0.0 || v == kept));
        }
    }

    #[test]
    fn torch_seed_reproduces_the_mask_and_gradients_pass_through() {
        let x = Tensor::ones([3, 50], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        tch::manual_seed(3);
        let a = dropout(&x, 0.3);
        tch::manual_seed(3);
        let b = dropout(&x, 0.3);
        assert!(a.equal(&b));
        let c = dropout(&x, 0.3);
        assert!(!a.equal(&c), "a new draw gives a new mask");
        a.sum(Kind::Float).backward();
        // d(sum)/dx is the mask itself.
        assert!(x.grad().equal(&a.detach()));
    }

    #[test]
    fn the_bf16_mask_is_the_f32_mask_unscaled() {
        // Same seed, same draws: the f32 mask's zeros are the bf16 mask's, its 1/(1−p) a 1.
        // (Seeds given directly: torch's global generator is shared with parallel tests.)
        let mut f = vec![0f32; 1001];
        let mut h = vec![0u16; 1001];
        fill_mask(&mut f, 0.1, 42);
        fill_with(&mut h, 0.1, 42, 0x3f80u16, 0);
        assert!(f.iter().zip(&h).all(|(&a, &b)| (a == 0.0) == (b == 0)));
        assert!(h.iter().all(|&b| b == 0 || b == 0x3f80));
        let dropped = h.iter().filter(|&&b| b == 0).count();
        assert!(
            dropped > 50 && dropped < 160,
            "{dropped} of 1001 dropped at p 0.1"
        );
        // The tensor path: bf16 out, elements zeroed or kept exactly, and the factor to apply.
        let x = Tensor::randn([4, 301], (Kind::Float, Device::Cpu)).to_kind(Kind::BFloat16);
        let (y, factor) = dropout_unscaled(&x, 0.1);
        assert_eq!(y.kind(), Kind::BFloat16);
        assert!((factor - 1.0 / 0.9).abs() < 1e-12);
        let kept_or_zero = y.eq_tensor(&x).logical_or(&y.eq(0.0));
        assert!(kept_or_zero.all().int64_value(&[]) == 1);
        assert!(y.eq(0.0).sum(Kind::Int64).int64_value(&[]) > 50);
    }
}
