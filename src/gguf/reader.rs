//! GGUF v2/v3 container reader over a memory map.
//!
//! Layout (little-endian): magic `GGUF`, u32 version, u64 tensor count, u64 metadata count,
//! the metadata key/value pairs, the tensor infos, padding to `general.alignment` (32 when
//! absent), then the tensor data. Every length and offset read from the file is checked
//! against the bytes that remain before it is used, so a corrupt count fails with an error
//! instead of a huge allocation or a panic.
use super::dequant::GgmlType;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Nested arrays deeper than this are rejected (guards the recursion).
const MAX_ARRAY_DEPTH: usize = 8;
/// ggml tensors have at most four dimensions.
const MAX_DIMS: u32 = 4;

/// One metadata value; arrays may nest.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    Array(Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    /// The value as an unsigned integer, for any non-negative integer type.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v as u64),
            Value::U16(v) => Some(v as u64),
            Value::U32(v) => Some(v as u64),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
    /// The value as a signed integer, for any integer type that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v as i64),
            Value::I16(v) => Some(v as i64),
            Value::I32(v) => Some(v as i64),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }
    /// The value as a float, for float types (and integers, which convert exactly enough).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v as f64),
            Value::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// One tensor's description; `offset` is relative to the start of the data section.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the fastest-varying (row length).
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    pub offset: u64,
    /// Bytes the tensor occupies in the file.
    pub n_bytes: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// An opened GGUF file: metadata in file order, tensor infos, and the mapped bytes.
pub struct GgufFile {
    pub path: PathBuf,
    pub version: u32,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    pub data_offset: u64,
    map: memmap2::Mmap,
}

impl GgufFile {
    /// Maps and parses `path`. Errors name the file and what is wrong with it.
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open GGUF file {}", path.display()))?;
        if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
            bail!(
                "{} is not a regular file (expected a .gguf file)",
                path.display()
            );
        }
        // SAFETY: the map is read-only; the file is not expected to change while we read it.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("cannot map {}", path.display()))?;
        Self::parse(path, map)
            .with_context(|| format!("{} is not a valid GGUF file", path.display()))
    }

    fn parse(path: &Path, map: memmap2::Mmap) -> Result<Self> {
        let (version, metadata, tensors, alignment, data_offset) = parse_bytes(&map)?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            version,
            metadata,
            tensors,
            alignment,
            data_offset,
            map,
        })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The raw bytes of one tensor (bounds were checked at open).
    pub fn tensor_bytes(&self, t: &TensorInfo) -> &[u8] {
        let start = (self.data_offset + t.offset) as usize;
        &self.map[start..start + t.n_bytes as usize]
    }
}

type Parsed = (u32, Vec<(String, Value)>, Vec<TensorInfo>, u64, u64);

/// Parses a whole GGUF image held in memory (the file's bytes).
pub fn parse_bytes(bytes: &[u8]) -> Result<Parsed> {
    let mut c = Cursor { b: bytes, pos: 0 };
    let magic = c.take(4).context("file too short for the GGUF magic")?;
    if magic != b"GGUF" {
        bail!(
            "wrong magic {:?} (expected \"GGUF\"); not a GGUF file",
            String::from_utf8_lossy(magic)
        );
    }
    let version = c.u32().context("file too short for the version")?;
    if version.swap_bytes() == 2 || version.swap_bytes() == 3 {
        bail!(
            "big-endian GGUF (version {}) is not supported",
            version.swap_bytes()
        );
    }
    if version != 2 && version != 3 {
        bail!("unsupported GGUF version {version} (supported: 2 and 3)");
    }
    let n_tensors = c.u64().context("truncated header")?;
    let n_kv = c.u64().context("truncated header")?;
    // Each key/value needs at least 8 (key length) + 4 (type) bytes; each tensor info 8+4+4+8.
    c.check_count(n_kv, 12, "metadata entries")?;
    c.check_count(n_tensors, 24, "tensor infos")?;

    let mut metadata = Vec::with_capacity(n_kv as usize);
    for i in 0..n_kv {
        let key = c
            .string()
            .with_context(|| format!("metadata entry {i}: bad key"))?;
        let ty = c
            .u32()
            .with_context(|| format!("metadata '{key}': truncated type"))?;
        let v = c
            .value(ty, 0)
            .with_context(|| format!("metadata '{key}'"))?;
        metadata.push((key, v));
    }
    let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => 32,
        Some((_, v)) => match v.as_u64() {
            Some(a) if a > 0 && a.is_power_of_two() => a,
            _ => bail!("general.alignment {v:?} is not a positive power of two"),
        },
    };

    let mut tensors = Vec::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        let name = c
            .string()
            .with_context(|| format!("tensor info {i}: bad name"))?;
        tensors.push(c.tensor_info(name)?);
    }
    let data_offset = align_up(c.pos as u64, alignment).context("data offset overflows")?;
    let data_len = (bytes.len() as u64).saturating_sub(data_offset);
    for t in &tensors {
        if t.offset % alignment != 0 {
            bail!(
                "tensor '{}' offset {} is not aligned to {alignment}",
                t.name,
                t.offset
            );
        }
        let end = t
            .offset
            .checked_add(t.n_bytes)
            .context("tensor end overflows")?;
        if end > data_len {
            bail!(
                "tensor '{}' data ({} bytes at offset {}) runs past the end of the file (truncated?)",
                t.name,
                t.n_bytes,
                t.offset
            );
        }
    }
    Ok((version, metadata, tensors, alignment, data_offset))
}

fn align_up(x: u64, a: u64) -> Option<u64> {
    Some(x.checked_add(a - 1)? / a * a)
}

/// A bounds-checked little-endian cursor.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            bail!(
                "truncated: needs {n} bytes at offset {}, only {} left",
                self.pos,
                self.remaining()
            );
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }

    /// Fails unless `count` items of at least `min_size` bytes could fit in what remains.
    fn check_count(&self, count: u64, min_size: u64, what: &str) -> Result<()> {
        let need = count.checked_mul(min_size);
        if need.map_or(true, |n| n > self.remaining() as u64) {
            bail!(
                "truncated or corrupt: {count} {what} cannot fit in the {} bytes left at offset {}",
                self.remaining(),
                self.pos
            );
        }
        Ok(())
    }

    fn string(&mut self) -> Result<String> {
        let len = self.u64()?;
        self.check_count(len, 1, "string bytes")?;
        let raw = self.take(len as usize)?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| anyhow::anyhow!("string at offset {} is not UTF-8", self.pos))
    }

    fn value(&mut self, ty: u32, depth: usize) -> Result<Value> {
        Ok(match ty {
            0 => Value::U8(self.arr::<1>()?[0]),
            1 => Value::I8(self.arr::<1>()?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.arr()?)),
            3 => Value::I16(i16::from_le_bytes(self.arr()?)),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(i32::from_le_bytes(self.arr()?)),
            6 => Value::F32(f32::from_le_bytes(self.arr()?)),
            7 => match self.arr::<1>()?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => bail!("bool byte {b} is neither 0 nor 1"),
            },
            8 => Value::Str(self.string()?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    bail!("arrays nested deeper than {MAX_ARRAY_DEPTH}");
                }
                let elem = self.u32()?;
                let n = self.u64()?;
                self.check_count(n, min_value_size(elem)?, "array elements")?;
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value(elem, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.arr()?)),
            12 => Value::F64(f64::from_le_bytes(self.arr()?)),
            t => bail!("unknown metadata value type {t}"),
        })
    }

    fn tensor_info(&mut self, name: String) -> Result<TensorInfo> {
        let n_dims = self
            .u32()
            .with_context(|| format!("tensor '{name}': truncated"))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            bail!("tensor '{name}' has {n_dims} dimensions (ggml allows 1 to {MAX_DIMS})");
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(
                self.u64()
                    .with_context(|| format!("tensor '{name}': truncated"))?,
            );
        }
        let raw_ty = self
            .u32()
            .with_context(|| format!("tensor '{name}': truncated"))?;
        let offset = self
            .u64()
            .with_context(|| format!("tensor '{name}': truncated"))?;
        let ty = GgmlType::from_id(raw_ty).with_context(|| format!("tensor '{name}'"))?;
        let n: u64 = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .with_context(|| format!("tensor '{name}' dims {dims:?} overflow"))?;
        let (block, size) = ty.block();
        if dims[0] % block as u64 != 0 {
            bail!(
                "tensor '{name}' row length {} is not a multiple of the {ty:?} block size {block}",
                dims[0]
            );
        }
        let n_bytes = (n / block as u64)
            .checked_mul(size as u64)
            .with_context(|| format!("tensor '{name}' size overflows"))?;
        Ok(TensorInfo {
            name,
            dims,
            ty,
            offset,
            n_bytes,
        })
    }
}

/// Smallest encoded size of a value of type `ty` (for array count checks).
fn min_value_size(ty: u32) -> Result<u64> {
    Ok(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4 | 5 | 6 => 4,
        8 => 8,
        9 => 12,
        10..=12 => 8,
        t => bail!("unknown array element type {t}"),
    })
}
