//! Which precision a pass's weights use on this CPU, chosen by name ("f32", "bf16", "int8"
//! for sampling only, "auto").
//!
//! Two independent choices: the weights a sampling pass streams (decode is bound by reading
//! them, so bf16 halves the time) and the weights the training matmuls multiply (compute
//! bound: bf16 matmuls ran about twice as fast on an AMD Zen 4 with AVX512-BF16, and slower on an
//! Intel Xeon that has the same instructions). In both
//! the activations, norms, adapters, optimizer and loss stay f32; only the weights round.
//! Whether bf16 training matmuls are faster is measured, not assumed from the instruction set.
//! int8 (a scale per 32 inputs of a column) quarters a sampling pass's bytes; it rounds
//! about four times as far as bf16, so it is never chosen by `auto`.
use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

/// A weight precision as named in configs and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    Bf16,
    /// int8 with bf16 scales per column and 32 inputs; sampling weights only.
    Int8,
    /// bf16 where this machine runs it faster, f32 elsewhere.
    Auto,
}

impl Precision {
    pub fn parse(s: &str) -> Result<Precision> {
        Ok(match s {
            "f32" | "float32" => Precision::F32,
            "bf16" | "bfloat16" => Precision::Bf16,
            "int8" => Precision::Int8,
            "auto" => Precision::Auto,
            _ => bail!(
                "unknown precision '{s}': use f32, bf16, int8 (sampling weights only) or auto"
            ),
        })
    }

    /// A training-matmul setting: as [`Precision::parse_setting`], without int8 (the packed
    /// int8 kernel only serves decode steps).
    pub fn parse_matmul_setting(key: &str, v: &str) -> Result<Precision> {
        match Precision::parse(v) {
            Ok(Precision::Int8) => {
                bail!("{key} = {v}: int8 is for sampling weights only; use f32, bf16 or auto")
            }
            Ok(p) => Ok(p),
            Err(_) => bail!("{key} = {v}: unknown precision; use f32, bf16 or auto"),
        }
    }

    /// A config key's or flag's value, naming both on failure (`key = value: …`, as the
    /// other range checks word it).
    pub fn parse_setting(key: &str, v: &str) -> Result<Precision> {
        Precision::parse(v).map_err(|e| anyhow::anyhow!("{key} = {v}: {e}"))
    }

    /// The kind of the cached sampling weights. `Auto` is bf16 where the decode kernel
    /// runs (AVX-512F, one torch thread), the only place bf16 weights stream faster; int8
    /// packs where asked (where the kernel cannot run, passes use the f32 weights); None
    /// leaves the model's own weights in use (f32, or a model that is not f32 to begin with).
    pub fn for_sampling(self, device: Device, model_kind: Kind) -> Option<Kind> {
        if device != Device::Cpu || model_kind != Kind::Float {
            return None;
        }
        match self {
            Precision::F32 => None,
            Precision::Bf16 => Some(Kind::BFloat16),
            Precision::Int8 => Some(Kind::Int8),
            Precision::Auto => super::decode_matmul::enabled().then_some(Kind::BFloat16),
        }
    }

    /// The kind of the training matmuls' weights. `Auto` is bf16 where this CPU has
    /// AVX512-BF16 *and* a bf16 matmul measures faster than the f32 one
    /// ([`bf16_matmul_is_faster`]), f32 elsewhere; None keeps the model's own weights.
    pub fn for_matmul(self, device: Device, model_kind: Kind) -> Option<Kind> {
        if device != Device::Cpu || model_kind != Kind::Float {
            return None;
        }
        match self {
            Precision::F32 | Precision::Int8 => None,
            Precision::Bf16 => Some(Kind::BFloat16),
            Precision::Auto => bf16_matmul_is_faster().then_some(Kind::BFloat16),
        }
    }
}

/// Whether a bf16 matmul of a training shape runs clearly faster here than the f32 one.
/// Having AVX512-BF16 is not enough: on an AMD Zen 4 oneDNN's bf16 matmuls ran ~2× the f32
/// ones, on an Intel Xeon (AVX512-BF16, no AMX) ~0.6× (MKL's f32 is the faster path there).
/// Measured once per process at the current thread count (~0.2 s), best of three a side.
pub fn bf16_matmul_is_faster() -> bool {
    static FASTER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FASTER.get_or_init(|| cpu_has_bf16_matmul() && bf16_speedup() > BF16_MARGIN)
}

/// bf16 must beat f32 by this factor for `auto` to take it: the bf16 path also rounds the
/// inputs and widens the outputs, which the bare matmul does not time.
pub const BF16_MARGIN: f64 = 1.15;

/// f32 time / bf16 time of one [512, 576] × [576, 1536] matmul (SmolLM2's MLP width), best of
/// three after one warm-up each.
pub fn bf16_speedup() -> f64 {
    let _g = tch::no_grad_guard();
    let time = |kind: Kind| {
        let a = Tensor::ones([512, 576], (kind, Device::Cpu));
        let b = Tensor::ones([576, 1536], (kind, Device::Cpu));
        let _ = a.matmul(&b);
        (0..3)
            .map(|_| {
                let t = std::time::Instant::now();
                let _ = a.matmul(&b);
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let (f, h) = (time(Kind::Float), time(Kind::BFloat16));
    if h > 0.0 {
        f / h
    } else {
        0.0
    }
}

/// Whether this CPU multiplies bf16 natively (AVX512-BF16; AMX machines have it too).
pub fn cpu_has_bf16_matmul() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The line a training command prints about its choices ("matmul" and "sampling" name
/// the kinds in use, `asked` what the config said).
pub fn choice_line(what: &str, asked: &str, kind: Option<Kind>) -> String {
    let why = match (asked, kind) {
        ("auto", Some(_)) => " (auto: this CPU has the faster bf16 path)",
        ("auto", None) if what != "sampling" && cpu_has_bf16_matmul() => {
            " (auto: this CPU has AVX512-BF16, but its bf16 matmuls measured no faster than f32)"
        }
        ("auto", None) => {
            " (auto: no faster bf16 path here; matmuls need AVX512-BF16, sampling AVX-512 and one thread)"
        }
        // Packed sampling weights serve only the decode kernel; without it every pass runs
        // on the f32 weights, and the line should say so.
        (_, Some(_)) if what == "sampling" && !super::decode_packed::enabled() => {
            " asked, but decode steps use the f32 weights here (the packed kernel needs AVX-512F/BW and one thread)"
        }
        _ => "",
    };
    format!("{what} weights: {}{why}", name(kind))
}

/// "bf16", "int8" or "f32", for the line a command prints about its choice.
pub fn name(kind: Option<Kind>) -> &'static str {
    match kind {
        Some(Kind::BFloat16) => "bf16",
        Some(Kind::Half) => "f16",
        Some(Kind::Int8) => "int8",
        _ => "f32",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_explicit_choices_hold() {
        assert_eq!(Precision::parse("bf16").unwrap(), Precision::Bf16);
        assert_eq!(Precision::parse("auto").unwrap(), Precision::Auto);
        assert!(Precision::parse("int4").is_err());
        // An explicit packed kind says when the kernel that would use it cannot run here.
        let line = choice_line("sampling", "int8", Some(Kind::Int8));
        assert!(line.starts_with("sampling weights: int8"), "{line}");
        assert_eq!(
            line.contains("use the f32 weights"),
            !super::super::decode_packed::enabled(),
            "{line}"
        );
        assert_eq!(
            choice_line("training matmul", "bf16", Some(Kind::BFloat16)),
            "training matmul weights: bf16"
        );
        assert_eq!(Precision::parse("int8").unwrap(), Precision::Int8);
        assert!(Precision::parse_matmul_setting("model.matmul", "int8").is_err());
        assert_eq!(
            Precision::parse_matmul_setting("model.matmul", "bf16").unwrap(),
            Precision::Bf16
        );
        assert_eq!(
            Precision::Int8.for_sampling(Device::Cpu, Kind::Float),
            Some(Kind::Int8)
        );
        let cpu = Device::Cpu;
        assert_eq!(Precision::F32.for_sampling(cpu, Kind::Float), None);
        assert_eq!(
            Precision::Bf16.for_sampling(cpu, Kind::Float),
            Some(Kind::BFloat16)
        );
        assert_eq!(
            Precision::Bf16.for_matmul(cpu, Kind::Float),
            Some(Kind::BFloat16)
        );
        // A model already in bf16 (or on CUDA) keeps its own weights.
        assert_eq!(Precision::Bf16.for_matmul(cpu, Kind::BFloat16), None);
        assert_eq!(
            Precision::Bf16.for_sampling(Device::Cuda(0), Kind::Float),
            None
        );
        assert_eq!(
            Precision::Auto.for_matmul(cpu, Kind::Float).is_some(),
            bf16_matmul_is_faster()
        );
        // Measured once: the same answer every time, and never bf16 without the instructions.
        assert_eq!(bf16_matmul_is_faster(), bf16_matmul_is_faster());
        assert!(!bf16_matmul_is_faster() || cpu_has_bf16_matmul());
        let line = choice_line("training matmul", "auto", None);
        assert_eq!(
            line.contains("measured no faster"),
            cpu_has_bf16_matmul(),
            "{line}"
        );
    }

    #[test]
    fn the_bf16_speedup_is_a_finite_positive_ratio() {
        tch::set_num_threads(1);
        let r = bf16_speedup();
        assert!(r.is_finite() && r > 0.0, "{r}");
    }
}
