//! GGUF v3 writer: metadata of every value type (arrays included), tensor infos, aligned
//! data, and the encodings export needs: f32, f16, bf16 and q8_0.
//!
//! The file is streamed: the header is computed from the tensor specs alone (each size
//! follows from its dims and type), then each tensor's values are asked for, encoded and
//! written one at a time, so a model is never held twice in memory.
use super::dequant::GgmlType;
use super::reader::Value;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;

/// The alignment llama.cpp assumes when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// One tensor to write: its name, ggml dims (`dims[0]` is the row length) and type.
#[derive(Debug, Clone)]
pub struct TensorSpec {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: GgmlType,
}

impl TensorSpec {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Encoded size in bytes; fails when the row length does not fit the type's block.
    pub fn n_bytes(&self) -> Result<u64> {
        let (block, size) = self.ty.block();
        if self.dims.first().copied().unwrap_or(0) % block as u64 != 0 {
            bail!(
                "tensor '{}': row length {} is not a multiple of the {:?} block size {block}",
                self.name,
                self.dims[0],
                self.ty
            );
        }
        Ok(self.n_elements() / block as u64 * size as u64)
    }
}

/// The types this writer can encode.
pub const WRITABLE: &[GgmlType] = &[GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0];

fn type_id(v: &Value) -> u32 {
    match v {
        Value::U8(_) => 0,
        Value::I8(_) => 1,
        Value::U16(_) => 2,
        Value::I16(_) => 3,
        Value::U32(_) => 4,
        Value::I32(_) => 5,
        Value::F32(_) => 6,
        Value::Bool(_) => 7,
        Value::Str(_) => 8,
        Value::Array(_) => 9,
        Value::U64(_) => 10,
        Value::I64(_) => 11,
        Value::F64(_) => 12,
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Appends a value's payload (its type id is written by the caller).
fn put_value(out: &mut Vec<u8>, v: &Value) -> Result<()> {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::Str(s) => put_str(out, s),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Array(items) => {
            // GGUF arrays are homogeneous: one element type for all; an empty one says u8.
            let elem = items.first().map_or(0, type_id);
            if let Some(bad) = items.iter().find(|i| type_id(i) != elem) {
                bail!("array mixes element types ({:?} after type {elem})", bad);
            }
            out.extend_from_slice(&elem.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for i in items {
                put_value(out, i)?;
            }
        }
    }
    Ok(())
}

fn align_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// The alignment the metadata asks for (`general.alignment`), or 32.
fn alignment_of(metadata: &[(String, Value)]) -> Result<u64> {
    match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => Ok(DEFAULT_ALIGNMENT),
        Some((_, v)) => match (v, v.as_u64()) {
            (Value::U32(_), Some(a)) if a > 0 && a.is_power_of_two() => Ok(a),
            _ => bail!("general.alignment must be a u32 power of two, got {v:?}"),
        },
    }
}

/// Header bytes (magic to the padding before the data) and each tensor's data offset.
fn header(metadata: &[(String, Value)], specs: &[TensorSpec]) -> Result<(Vec<u8>, Vec<u64>)> {
    let alignment = alignment_of(metadata)?;
    let mut h = Vec::new();
    h.extend_from_slice(b"GGUF");
    h.extend_from_slice(&3u32.to_le_bytes());
    h.extend_from_slice(&(specs.len() as u64).to_le_bytes());
    h.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (i, (k, v)) in metadata.iter().enumerate() {
        if metadata[..i].iter().any(|(k2, _)| k2 == k) {
            bail!("metadata key '{k}' appears twice");
        }
        put_str(&mut h, k);
        h.extend_from_slice(&type_id(v).to_le_bytes());
        put_value(&mut h, v).with_context(|| format!("metadata '{k}'"))?;
    }
    let mut offsets = Vec::with_capacity(specs.len());
    let mut off = 0u64;
    for (i, t) in specs.iter().enumerate() {
        if specs[..i].iter().any(|t2| t2.name == t.name) {
            bail!("tensor '{}' appears twice", t.name);
        }
        if t.dims.is_empty() || t.dims.len() > 4 {
            bail!(
                "tensor '{}' has {} dims (ggml allows 1 to 4)",
                t.name,
                t.dims.len()
            );
        }
        if !WRITABLE.contains(&t.ty) {
            bail!("tensor '{}': cannot encode type {:?}", t.name, t.ty);
        }
        put_str(&mut h, &t.name);
        h.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            h.extend_from_slice(&d.to_le_bytes());
        }
        h.extend_from_slice(&t.ty.id().to_le_bytes());
        h.extend_from_slice(&off.to_le_bytes());
        offsets.push(off);
        off = align_up(off + t.n_bytes()?, alignment);
    }
    h.resize(align_up(h.len() as u64, alignment) as usize, 0);
    Ok((h, offsets))
}

/// Writes a whole GGUF to `w`. `values(i)` returns tensor i's values in row-major order
/// (ggml order: `dims[0]` fastest); each is checked for count and finiteness, then encoded.
pub fn write_to(
    w: &mut dyn Write,
    metadata: &[(String, Value)],
    specs: &[TensorSpec],
    mut values: impl FnMut(usize) -> Result<Vec<f32>>,
) -> Result<()> {
    let alignment = alignment_of(metadata)?;
    let (h, offsets) = header(metadata, specs)?;
    w.write_all(&h)?;
    let mut pos = 0u64;
    for (i, t) in specs.iter().enumerate() {
        let v = values(i)?;
        if v.len() as u64 != t.n_elements() {
            bail!(
                "tensor '{}': {} values for dims {:?}",
                t.name,
                v.len(),
                t.dims
            );
        }
        if let Some(j) = v.iter().position(|x| !x.is_finite()) {
            bail!(
                "tensor '{}' holds a non-finite value ({} at element {j})",
                t.name,
                v[j]
            );
        }
        let bytes = encode(&v, t.ty)?;
        debug_assert_eq!(pos, offsets[i]);
        w.write_all(&bytes)?;
        pos += bytes.len() as u64;
        let padded = align_up(pos, alignment);
        w.write_all(&vec![0u8; (padded - pos) as usize])?;
        pos = padded;
    }
    Ok(())
}

/// [`write_to`] into a byte vector.
pub fn to_bytes(
    metadata: &[(String, Value)],
    specs: &[TensorSpec],
    values: impl FnMut(usize) -> Result<Vec<f32>>,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write_to(&mut out, metadata, specs, values)?;
    Ok(out)
}

/// [`write_to`] into `path` through a temp file renamed at the end, so a failure (a
/// non-finite weight, a full disk, Ctrl-C) leaves no partial file behind.
pub fn write_file(
    path: &Path,
    metadata: &[(String, Value)],
    specs: &[TensorSpec],
    values: impl FnMut(usize) -> Result<Vec<f32>>,
) -> Result<()> {
    // Checked before the slow part, so bad specs fail before any data is asked for.
    header(metadata, specs)?;
    crate::util::write_atomic_with(path, |f| {
        let mut b = std::io::BufWriter::with_capacity(1 << 20, f);
        write_to(&mut b, metadata, specs, values)?;
        b.flush()?;
        Ok(())
    })
}

/// Little-endian encoding of `v` as `ty`.
pub fn encode(v: &[f32], ty: GgmlType) -> Result<Vec<u8>> {
    Ok(match ty {
        GgmlType::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        // Round to nearest even, as numpy's astype and ggml's converters do.
        GgmlType::F16 => v
            .iter()
            .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
            .collect(),
        GgmlType::BF16 => v
            .iter()
            .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
            .collect(),
        GgmlType::Q8_0 => quantize_q8_0(v)?,
        other => bail!("cannot encode {other:?}"),
    })
}

/// q8_0: blocks of 32 values as an f16 scale d = max|x| / 127 and 32 int8 q = round(x / d).
/// The steps follow ggml's reference quantizer (`quantize_row_q8_0_ref`): d in f32, q from
/// x · (1/d) rounded half away from zero, d stored as f16, so the bytes equal llama.cpp's.
pub fn quantize_q8_0(v: &[f32]) -> Result<Vec<u8>> {
    if v.len() % 32 != 0 {
        bail!("q8_0 needs a multiple of 32 values, got {}", v.len());
    }
    let mut out = Vec::with_capacity(v.len() / 32 * 34);
    for block in v.chunks_exact(32) {
        let amax = block.iter().fold(0f32, |m, x| m.max(x.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
        out.extend(block.iter().map(|&x| (x * id).round() as i8 as u8));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::dequant::dequantize;
    use crate::gguf::reader::parse_bytes;

    #[test]
    fn q8_0_by_hand() {
        // One block: max |x| = 127 gives d = 1, so q = round(x) with halves away from zero.
        let mut v = vec![0f32; 32];
        v[0] = 127.0;
        v[1] = -2.5;
        v[2] = 2.5;
        v[3] = -127.0;
        let b = quantize_q8_0(&v).unwrap();
        assert_eq!(b.len(), 34);
        assert_eq!(half::f16::from_le_bytes([b[0], b[1]]).to_f32(), 1.0);
        assert_eq!(&b[2..6], &[127u8, (-3i8) as u8, 3, (-127i8) as u8]);
        // An all-zero block has d = 0 and q = 0 (no division by zero).
        let z = quantize_q8_0(&[0.0; 32]).unwrap();
        assert!(z.iter().all(|&x| x == 0));
        assert!(quantize_q8_0(&[1.0; 31]).is_err());
    }

    #[test]
    fn q8_0_error_within_half_a_step() {
        let v: Vec<f32> = (0..256)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
            .collect();
        let back = dequantize(GgmlType::Q8_0, &quantize_q8_0(&v).unwrap(), v.len()).unwrap();
        for (blk, bb) in v.chunks(32).zip(back.chunks(32)) {
            let d = blk.iter().fold(0f32, |m, x| m.max(x.abs())) / 127.0;
            for (x, y) in blk.iter().zip(bb) {
                // Half a step, plus the f16 rounding of d spread over up to 127 steps.
                assert!((x - y).abs() <= 0.5 * d + 127.0 * d * 1e-3, "{x} vs {y}");
            }
        }
    }

    #[test]
    fn round_trip_through_the_reader() {
        let meta = vec![
            (
                "general.architecture".to_string(),
                Value::Str("llama".into()),
            ),
            ("general.alignment".to_string(), Value::U32(64)),
            ("k.u8".to_string(), Value::U8(7)),
            ("k.i8".to_string(), Value::I8(-7)),
            ("k.u16".to_string(), Value::U16(65535)),
            ("k.i16".to_string(), Value::I16(-300)),
            ("k.i32".to_string(), Value::I32(-70000)),
            ("k.f32".to_string(), Value::F32(1.5e-5)),
            ("k.bool".to_string(), Value::Bool(true)),
            ("k.u64".to_string(), Value::U64(u64::MAX)),
            ("k.i64".to_string(), Value::I64(i64::MIN)),
            ("k.f64".to_string(), Value::F64(-2.25)),
            (
                "k.strs".to_string(),
                Value::Array(vec![Value::Str("a b".into()), Value::Str("Ġ".into())]),
            ),
            (
                "k.nested".to_string(),
                Value::Array(vec![Value::Array(vec![Value::I32(1), Value::I32(2)])]),
            ),
            ("k.empty".to_string(), Value::Array(vec![])),
        ];
        let specs = vec![
            TensorSpec {
                name: "a".into(),
                dims: vec![3],
                ty: GgmlType::F32,
            },
            TensorSpec {
                name: "b".into(),
                dims: vec![32, 2],
                ty: GgmlType::F16,
            },
            TensorSpec {
                name: "c".into(),
                dims: vec![5, 1],
                ty: GgmlType::BF16,
            },
            TensorSpec {
                name: "d".into(),
                dims: vec![64, 2],
                ty: GgmlType::Q8_0,
            },
        ];
        let data: Vec<Vec<f32>> = specs
            .iter()
            .map(|s| {
                (0..s.n_elements())
                    .map(|i| (i as f32 - 20.0) * 0.25)
                    .collect()
            })
            .collect();
        let bytes = to_bytes(&meta, &specs, |i| Ok(data[i].clone())).unwrap();
        let (version, m, tensors, alignment, data_offset) = parse_bytes(&bytes).unwrap();
        assert_eq!((version, alignment), (3, 64));
        assert_eq!(m, meta);
        for (i, t) in tensors.iter().enumerate() {
            assert_eq!(
                (&t.name, &t.dims, t.ty),
                (&specs[i].name, &specs[i].dims, specs[i].ty)
            );
            assert_eq!(t.offset % 64, 0);
            let start = (data_offset + t.offset) as usize;
            let raw = &bytes[start..start + t.n_bytes as usize];
            let back = dequantize(t.ty, raw, data[i].len()).unwrap();
            // Every value here is a multiple of 0.25 within ±64: exact in f16, bf16 and q8_0
            // (d = 64/127 would not be, so tensor d is checked against its own quantization).
            if t.ty == GgmlType::Q8_0 {
                let again = dequantize(t.ty, &quantize_q8_0(&data[i]).unwrap(), data[i].len());
                assert_eq!(back, again.unwrap());
            } else {
                assert_eq!(back, data[i], "tensor {}", t.name);
            }
        }
    }

    #[test]
    fn bad_input_is_refused() {
        let spec = |name: &str, dims: Vec<u64>, ty| TensorSpec {
            name: name.into(),
            dims,
            ty,
        };
        let ok = vec![spec("a", vec![2], GgmlType::F32)];
        // A non-finite value names the tensor.
        let e = to_bytes(&[], &ok, |_| Ok(vec![1.0, f32::NAN])).unwrap_err();
        assert!(
            e.to_string().contains("tensor 'a' holds a non-finite"),
            "{e}"
        );
        // Wrong count, q8_0 row not a multiple of 32, duplicate names, mixed arrays, bad alignment.
        assert!(to_bytes(&[], &ok, |_| Ok(vec![1.0])).is_err());
        assert!(
            to_bytes(&[], &[spec("q", vec![16], GgmlType::Q8_0)], |_| Ok(vec![
                0.0;
                16
            ]))
            .is_err()
        );
        let dup = vec![
            spec("a", vec![1], GgmlType::F32),
            spec("a", vec![1], GgmlType::F32),
        ];
        assert!(to_bytes(&[], &dup, |_| Ok(vec![0.0])).is_err());
        let mixed = vec![(
            "m".to_string(),
            Value::Array(vec![Value::U8(1), Value::I8(1)]),
        )];
        assert!(to_bytes(&mixed, &[], |_| Ok(vec![])).is_err());
        let align = vec![("general.alignment".to_string(), Value::U32(24))];
        assert!(to_bytes(&align, &[], |_| Ok(vec![])).is_err());
    }
}
