//! Named tensors to and from safetensors bytes, written atomically.
//!
//! tch's own `write_safetensors` writes in place; adapters, optimizer state and
//! checkpoints must never be torn by a crash, so we serialise to bytes here and hand
//! them to `util::write_atomic`. Tensors are moved to the CPU and made contiguous first.
use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn dtype_of(kind: Kind) -> Result<Dtype> {
    Ok(match kind {
        Kind::Uint8 => Dtype::U8,
        Kind::Int8 => Dtype::I8,
        Kind::Int => Dtype::I32,
        Kind::Int64 => Dtype::I64,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Half => Dtype::F16,
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Bool => Dtype::BOOL,
        k => bail!("cannot store a tensor of kind {k:?} in safetensors"),
    })
}

fn kind_of(dtype: Dtype) -> Result<Kind> {
    Ok(match dtype {
        Dtype::U8 => Kind::Uint8,
        Dtype::I8 => Kind::Int8,
        Dtype::I32 => Kind::Int,
        Dtype::I64 => Kind::Int64,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F16 => Kind::Half,
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::BOOL => Kind::Bool,
        d => bail!("unsupported safetensors dtype {d:?}"),
    })
}

/// Raw little-endian bytes of a tensor (CPU, contiguous copy).
pub fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    let t = t.detach().to_device(Device::Cpu).contiguous();
    let n = t.numel();
    let mut buf = vec![0u8; n * t.kind().elt_size_in_bytes()];
    if n > 0 {
        t.copy_data_u8(&mut buf, n);
    }
    buf
}

/// Serialises named tensors (names must be unique) with optional string metadata.
pub fn to_bytes(
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let mut owned = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let dtype = dtype_of(t.kind()).with_context(|| format!("tensor {name}"))?;
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        owned.push((name.clone(), dtype, shape, tensor_bytes(t)));
    }
    let mut views = Vec::with_capacity(owned.len());
    for (name, dtype, shape, data) in &owned {
        let v = TensorView::new(*dtype, shape.clone(), data)
            .map_err(|e| anyhow::anyhow!("tensor {name}: {e}"))?;
        views.push((name.clone(), v));
    }
    safetensors::tensor::serialize(views, &metadata)
        .map_err(|e| anyhow::anyhow!("safetensors serialise: {e}"))
}

/// Writes named tensors atomically to `path`.
pub fn write(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let bytes =
        to_bytes(tensors, metadata).with_context(|| format!("cannot write {}", path.display()))?;
    crate::util::write_atomic(path, &bytes)
}

/// Named tensors (CPU, file dtype, file order) and the metadata of a safetensors file.
pub struct TensorFile {
    pub tensors: Vec<(String, Tensor)>,
    pub metadata: HashMap<String, String>,
}

impl TensorFile {
    /// The tensor called `name`, or an error naming the file and the key.
    pub fn get(&self, name: &str, file: &Path) -> Result<&Tensor> {
        self.tensors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .with_context(|| format!("{}: missing tensor '{name}'", file.display()))
    }
}

/// Reads every tensor of a safetensors file.
pub fn read(path: &Path) -> Result<TensorFile> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read {}: check the path", path.display()))?;
    from_bytes(&bytes)
        .with_context(|| format!("{} is not a valid safetensors file", path.display()))
}

/// Parses safetensors bytes.
pub fn from_bytes(bytes: &[u8]) -> Result<TensorFile> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let st = SafeTensors::deserialize(bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut names: Vec<(usize, String)> = st
        .names()
        .into_iter()
        .map(|n| {
            (
                meta.info(n).map(|i| i.data_offsets.0).unwrap_or(0),
                n.clone(),
            )
        })
        .collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for (_, name) in names {
        let view = st
            .tensor(&name)
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let info = meta
            .info(&name)
            .with_context(|| format!("tensor {name}: no header entry"))?;
        let kind = kind_of(info.dtype).with_context(|| format!("tensor {name}"))?;
        let shape: Vec<i64> = info.shape.iter().map(|&d| d as i64).collect();
        let t = if view.data().is_empty() {
            Tensor::zeros(shape.as_slice(), (kind, Device::Cpu))
        } else {
            Tensor::f_from_data_size(view.data(), &shape, kind)
                .with_context(|| format!("tensor {name}"))?
        };
        tensors.push((name, t));
    }
    Ok(TensorFile { tensors, metadata })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_values_kinds_and_metadata() {
        let a = Tensor::from_slice(&[1.5f32, -2.0, 3.25, 0.0]).reshape([2, 2]);
        let b = Tensor::from_slice(&[7u8, 0, 255]);
        let c = Tensor::from_slice(&[-5i64]);
        let meta = HashMap::from([("k".to_string(), "v".to_string())]);
        let bytes = to_bytes(
            &[
                ("a".into(), a.shallow_clone()),
                ("b".into(), b.shallow_clone()),
                ("c".into(), c.shallow_clone()),
            ],
            Some(meta),
        )
        .unwrap();
        let f = from_bytes(&bytes).unwrap();
        assert_eq!(f.metadata.get("k").map(String::as_str), Some("v"));
        let p = Path::new("x");
        assert!(f.get("a", p).unwrap().equal(&a));
        assert!(f.get("b", p).unwrap().equal(&b));
        assert_eq!(f.get("b", p).unwrap().kind(), Kind::Uint8);
        assert!(f.get("c", p).unwrap().equal(&c));
        assert!(f.get("zz", p).unwrap_err().to_string().contains("zz"));
    }
}
