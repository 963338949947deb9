//! One type for every linear projection of the model (q, k, v, o, gate, up, down, lm_head;
//! GPT-2's Conv1D layers c_attn, c_proj, c_fc too, held transposed to the same [out, in]).
//!
//! The base weight is frozen (a plain tensor without grad). Adapters such as LoRA attach
//! through [`LinearAdapter`]: each adds its own term to the frozen projection's output,
//! so several adapters compose by summation and can be switched off together.
use tch::{Kind, Tensor};

/// Something that adds a learned term to a frozen projection: y = x Wᵀ + b + Σ delta(x).
pub trait LinearAdapter: Send {
    /// The term added to the base output for input `x` ([.., in] → [.., out]).
    fn delta(&self, x: &Tensor) -> Tensor;
    /// The same term in `x_low`'s narrower kind, for a layer whose base matmul runs there
    /// ([`Linear::matmul_weight`]); `x_low` is `x` rounded to that kind. By default the
    /// full-precision term, rounded.
    fn delta_low(&self, x: &Tensor, x_low: &Tensor) -> Tensor {
        self.delta(x).to_kind(x_low.kind())
    }
    /// The same term as a weight [out, in] (f32) added to W, when the adapter is linear in x
    /// without randomness at inference; None keeps the layer unmerged.
    fn delta_weight(&self) -> Option<Tensor> {
        None
    }
    /// For downcasting to the concrete adapter type (e.g. to reach LoRA's A and B).
    fn as_any(&self) -> &dyn std::any::Any;
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
}

/// The one merge, W + Σ dᵢ: the deltas (f32 [out, in], each already wᵢ·sᵢ·Bᵢ Aᵢ) are summed
/// in order, added to W in f32 and rounded once to W's kind, on W's device. None when there
/// is no delta. Every path that folds adapters into weights (merge command, SFT's merged
/// model, inference folding, the cached merged weight of a layer) goes through here.
pub fn merge(w: &Tensor, deltas: impl IntoIterator<Item = Tensor>) -> Option<Tensor> {
    let sum = sum_deltas(deltas)?;
    Some((w.to_kind(tch::Kind::Float) + sum.to_device(w.device())).to_kind(w.kind()))
}

/// Σ dᵢ in order; None when there is none.
pub fn sum_deltas(deltas: impl IntoIterator<Item = Tensor>) -> Option<Tensor> {
    deltas.into_iter().reduce(|acc, d| acc + d)
}

pub struct Linear {
    /// Hugging Face module path, e.g. `model.layers.3.self_attn.q_proj` or `lm_head`.
    pub path: String,
    /// [out_features, in_features], requires_grad false. In f32 on CPU its storage is [in, out]
    /// (see [`input_major`]): call `.contiguous()` before writing it to a file.
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    /// The files store the weight as [in, out] (GPT-2's Conv1D, PEFT's `fan_in_fan_out`); in
    /// memory it is [out, in] like every other layer, transposed back when written.
    pub fan_in_fan_out: bool,
    /// Attached adapters, applied in order and summed.
    pub adapters: Vec<Box<dyn LinearAdapter>>,
    /// When false the layer is the plain base projection (e.g. a reference policy).
    pub adapters_enabled: bool,
    /// W + Σ adapter weights, set by [`Linear::prepare_sampling`] for inference passes: one
    /// matmul instead of one plus two per adapter. Stale once the adapters change.
    pub merged: Option<Tensor>,
    /// W in a narrower kind (bf16) for the training matmuls of an f32 model, set by
    /// [`Linear::set_matmul_kind`]: x is rounded to it once, the product and the adapters'
    /// terms ([`LinearAdapter::delta_low`]) are computed and summed there, and the sum widened
    /// back, so everything around the layer stays f32. `weight` keeps the exact values for
    /// merges, saves and exports.
    pub matmul_weight: Option<Tensor>,
    /// W + Σ adapter weights as bf16 or int8 panels for decode steps, set by
    /// [`Linear::prepare_sampling`] with bf16 or int8; passes the packed kernel cannot serve
    /// (prefill, gradients) use `weight` and the adapters as usual.
    pub packed: Option<super::decode_packed::Packed>,
}

/// The same [out, in] weight stored input-major ([in, out] in memory, seen through a
/// transposed view) for f32 on CPU: MKL's sgemm for x·Wᵀ runs about 1.5× faster on this
/// layout at decode shapes. bf16 (oneDNN) and CUDA keep the usual layout.
pub fn input_major(weight: &Tensor) -> Tensor {
    if weight.device() == tch::Device::Cpu && weight.kind() == tch::Kind::Float && weight.dim() == 2
    {
        weight.tr().contiguous().tr()
    } else {
        weight.shallow_clone()
    }
}

impl Linear {
    pub fn new(path: impl Into<String>, weight: Tensor, bias: Option<Tensor>) -> Self {
        Self {
            path: path.into(),
            weight,
            bias,
            fan_in_fan_out: false,
            adapters: Vec::new(),
            adapters_enabled: true,
            merged: None,
            matmul_weight: None,
            packed: None,
        }
    }

    /// Caches the weight sampling passes use, W + Σ delta weights, or drops it (None).
    /// `kind` is W's own kind — an input-major copy for the decode kernel, made only for a
    /// layer whose adapters all merge — or bf16 / int8 on the CPU: packed panels for
    /// `decode_packed`, made for every layer (W alone where there is no adapter). Call again
    /// after the adapters change; training passes must run without it.
    pub fn prepare_sampling(&mut self, kind: Option<Kind>) {
        self.merged = None;
        self.packed = None;
        let Some(kind) = kind else { return };
        let _g = tch::no_grad_guard();
        if kind == self.weight.kind() {
            self.merged = self.merged_weight().map(|w| input_major(&w));
            return;
        }
        let w = match self.adapters.is_empty() {
            true => Some(self.weight.shallow_clone()),
            false => self.merged_weight(),
        };
        self.packed = w.map(|w| match kind {
            Kind::Int8 => super::decode_packed::Packed::new_int8(&w),
            _ => super::decode_packed::Packed::new(&w),
        });
    }

    /// Keeps a copy of W in `kind` for the training matmuls (None drops it); see
    /// [`Linear::matmul_weight`].
    pub fn set_matmul_kind(&mut self, kind: Option<Kind>) {
        let _g = tch::no_grad_guard();
        self.matmul_weight = kind
            .filter(|&k| k != self.weight.kind())
            .map(|k| self.weight.to_kind(k).contiguous());
    }

    /// W + Σ adapter delta weights, summed in f32 and returned in W's kind (a new tensor);
    /// None when the layer has no adapter or one that cannot be merged.
    pub fn merged_weight(&self) -> Option<Tensor> {
        if self.adapters.is_empty() {
            return None;
        }
        let _g = tch::no_grad_guard();
        let deltas = self
            .adapters
            .iter()
            .map(|a| a.delta_weight())
            .collect::<Option<Vec<_>>>()?;
        merge(&self.weight, deltas)
    }

    pub fn in_features(&self) -> i64 {
        self.weight.size()[1]
    }

    pub fn out_features(&self) -> i64 {
        self.weight.size()[0]
    }

    /// x [.., in] → [.., out]: the frozen projection plus every enabled adapter's term.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        // The packed sampling weights already hold the adapters; a layer without adapters
        // uses them even with adapters "off".
        if let Some(p) = self
            .packed
            .as_ref()
            .filter(|_| self.adapters_enabled || self.adapters.is_empty())
        {
            if let Some(y) = super::decode_packed::try_matmul(x, p) {
                return self.add_bias(y);
            }
        }
        let merged = self.merged.as_ref().filter(|_| self.adapters_enabled);
        let weight = merged.unwrap_or(&self.weight);
        let mut y = if let Some(y) = super::decode_matmul::try_matmul(x, weight) {
            self.add_bias(y)
        } else if let Some(w) = self
            .matmul_weight
            .as_ref()
            .filter(|w| merged.is_none() && w.kind() != x.kind())
        {
            // Round x to the copy's kind once, multiply there (adapters too, on the same rounded
            // x), sum there, widen once: one conversion each way for the whole layer.
            let x_low = x.to_kind(w.kind());
            let mut y = x_low.linear::<&Tensor>(w, None);
            if self.adapters_enabled {
                for a in &self.adapters {
                    y = y + a.delta_low(x, &x_low);
                }
            }
            return self.add_bias(y.to_kind(x.kind()));
        } else {
            x.linear(weight, self.bias.as_ref())
        };
        if self.adapters_enabled && merged.is_none() {
            for a in &self.adapters {
                y = y + a.delta(x);
            }
        }
        y
    }

    fn add_bias(&self, y: Tensor) -> Tensor {
        match &self.bias {
            Some(b) => y + b,
            None => y,
        }
    }
}

impl std::fmt::Debug for Linear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Linear({}, {:?}, adapters={})",
            self.path,
            self.weight.size(),
            self.adapters.len()
        )
    }
}
