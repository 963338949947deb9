//! The crate's one seeded RNG, SplitMix64, and the seeds derived from it.
//!
//! Its whole state is one u64, so a checkpoint can store it and a resumed run draws the same
//! numbers (rand's StdRng cannot be serialised); it never changes with a crate version, so
//! sampled outputs stay reproducible. Used for the data order and per-step torch seeds
//! (training), the per-sequence sampling streams (generation) and the dropout batch seed
//! (reward).
//!
//! SplitMix64 (Steele, Lea & Flood 2014): state += 0x9E3779B97F4A7C15, then a mixing
//! function ([`mix`]). It implements `rand::RngCore`, so rand samplers accept it.
use serde::{Deserialize, Serialize};

/// SplitMix64's state increment, 2^64 / φ.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective mix of one u64.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitMix64 {
    pub state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n) without modulo bias (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.next();
            if x < zone {
                return x % n;
            }
        }
    }

    /// Fisher–Yates shuffle (our own, so the order never depends on a crate version).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }

    /// A permutation of 0..n.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        self.shuffle(&mut v);
        v
    }
}

/// The independent stream of one generated sequence, keyed by (seed, prompt index, sample
/// index), so a sample does not depend on the batch it was generated in.
pub fn sequence_rng(seed: u64, prompt: u64, sample: u64) -> SplitMix64 {
    let a = SplitMix64::new(seed ^ 0x5851_F42D_4C95_7F2D).next() ^ prompt.wrapping_mul(GOLDEN);
    let b = SplitMix64::new(a).next() ^ sample.wrapping_mul(0xD1B5_4A32_D192_ED03);
    SplitMix64::new(b)
}

/// The seed of one reward batch: the mix of the config seed and the step, so every step
/// draws a different, reproducible stream.
pub fn batch_seed(seed: u64, step: u64) -> u64 {
    mix(seed ^ step.wrapping_mul(GOLDEN))
}

/// The visiting order of epoch `epoch` over n examples: a permutation seeded by
/// (order_seed, epoch) alone, so a resumed run rebuilds it from the checkpoint's
/// DataPosition without replaying earlier epochs.
pub fn epoch_order(order_seed: u64, epoch: u64, n: usize) -> Vec<usize> {
    SplitMix64::new(order_seed ^ epoch.wrapping_mul(GOLDEN).rotate_left(17)).permutation(n)
}

/// A per-step torch seed derived from the run seed, so torch's global RNG (dropout,
/// sampling) can be reseeded at each step and a resumed run repeats it exactly.
pub fn step_seed(seed: u64, step: u64) -> i64 {
    let mut r = SplitMix64::new(seed ^ step.wrapping_mul(0xD1B5_4A32_D192_ED03));
    (r.next() >> 1) as i64
}

impl rand::RngCore for SplitMix64 {
    fn next_u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.next()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let b = self.next().to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values_and_resume() {
        // Published SplitMix64 outputs for seed 1234567.
        let mut r = SplitMix64::new(1234567);
        let want = [
            6457827717110365317u64,
            3203168211198807973,
            9817491932198370423,
        ];
        for w in want {
            assert_eq!(r.next(), w);
        }
        // Resuming from a saved state continues the same stream.
        let saved: SplitMix64 = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        let mut r2 = saved;
        assert_eq!(r.next(), r2.next());
    }

    #[test]
    fn shuffle_is_a_permutation_and_uniformish() {
        let mut r = SplitMix64::new(7);
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            let p = r.permutation(4);
            let mut s = p.clone();
            s.sort();
            assert_eq!(s, vec![0, 1, 2, 3]);
            counts[p[0]] += 1;
        }
        assert!(
            counts.iter().all(|&c| (850..1150).contains(&c)),
            "{counts:?}"
        );
        let f = r.next_f64();
        assert!((0.0..1.0).contains(&f));
        assert_ne!(step_seed(1, 2), step_seed(1, 3));
        assert_eq!(epoch_order(5, 2, 10), epoch_order(5, 2, 10));
        assert_ne!(epoch_order(5, 2, 10), epoch_order(5, 3, 10));
    }
}
