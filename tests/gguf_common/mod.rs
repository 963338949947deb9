//! A tiny GGUF writer for tests: metadata of every type, tensors with raw bytes.
#![allow(dead_code)]

/// A metadata value to write (type id chosen by the variant).
#[derive(Clone, Debug)]
pub enum V {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    /// Element type id and elements (all of that type).
    Arr(u32, Vec<V>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl V {
    pub fn type_id(&self) -> u32 {
        match self {
            V::U8(_) => 0,
            V::I8(_) => 1,
            V::U16(_) => 2,
            V::I16(_) => 3,
            V::U32(_) => 4,
            V::I32(_) => 5,
            V::F32(_) => 6,
            V::Bool(_) => 7,
            V::Str(_) => 8,
            V::Arr(..) => 9,
            V::U64(_) => 10,
            V::I64(_) => 11,
            V::F64(_) => 12,
        }
    }
    pub fn s(x: &str) -> V {
        V::Str(x.to_string())
    }
    pub fn strs<S: AsRef<str>>(xs: &[S]) -> V {
        V::Arr(8, xs.iter().map(|x| V::s(x.as_ref())).collect())
    }
}

pub fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend((s.len() as u64).to_le_bytes());
    b.extend(s.as_bytes());
}

pub fn put_value(b: &mut Vec<u8>, v: &V) {
    match v {
        V::U8(x) => b.push(*x),
        V::I8(x) => b.push(*x as u8),
        V::U16(x) => b.extend(x.to_le_bytes()),
        V::I16(x) => b.extend(x.to_le_bytes()),
        V::U32(x) => b.extend(x.to_le_bytes()),
        V::I32(x) => b.extend(x.to_le_bytes()),
        V::F32(x) => b.extend(x.to_le_bytes()),
        V::Bool(x) => b.push(*x as u8),
        V::Str(s) => put_str(b, s),
        V::Arr(t, items) => {
            b.extend(t.to_le_bytes());
            b.extend((items.len() as u64).to_le_bytes());
            for it in items {
                put_value(b, it);
            }
        }
        V::U64(x) => b.extend(x.to_le_bytes()),
        V::I64(x) => b.extend(x.to_le_bytes()),
        V::F64(x) => b.extend(x.to_le_bytes()),
    }
}

/// One tensor: name, ggml dims (fastest first), ggml type id, raw bytes.
pub struct T {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: u32,
    pub data: Vec<u8>,
}

/// Serialises a GGUF file: header, metadata, tensor infos, padding, aligned tensor data.
pub fn gguf_bytes(version: u32, kvs: &[(&str, V)], tensors: &[T]) -> Vec<u8> {
    let align = kvs
        .iter()
        .find(|(k, _)| *k == "general.alignment")
        .map(|(_, v)| match v {
            V::U32(a) => *a as usize,
            _ => 32,
        })
        .unwrap_or(32);
    let mut b = b"GGUF".to_vec();
    b.extend(version.to_le_bytes());
    b.extend((tensors.len() as u64).to_le_bytes());
    b.extend((kvs.len() as u64).to_le_bytes());
    for (k, v) in kvs {
        put_str(&mut b, k);
        b.extend(v.type_id().to_le_bytes());
        put_value(&mut b, v);
    }
    let mut offset = 0usize;
    let mut offsets = Vec::new();
    for t in tensors {
        offsets.push(offset);
        put_str(&mut b, &t.name);
        b.extend((t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            b.extend(d.to_le_bytes());
        }
        b.extend(t.ty.to_le_bytes());
        b.extend((offset as u64).to_le_bytes());
        offset += t.data.len().div_ceil(align) * align;
    }
    b.resize(b.len().div_ceil(align) * align, 0);
    let start = b.len();
    for (t, off) in tensors.iter().zip(offsets) {
        b.resize(start + off, 0);
        b.extend(&t.data);
    }
    b
}

pub fn f32_bytes(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Q8_0 blocks for values that are exactly `d * q` with d = 2^-k (so they round-trip).
pub fn q8_0_bytes(qs: &[i8], d: f32) -> Vec<u8> {
    let mut b = Vec::new();
    for block in qs.chunks(32) {
        b.extend(half::f16::from_f32(d).to_le_bytes());
        b.extend(block.iter().map(|&q| q as u8));
    }
    b
}

/// GPT-2's byte alphabet, in byte order (for a minimal byte-level vocabulary).
pub fn byte_alphabet() -> Vec<String> {
    let mut n = 256u32;
    (0..=255u32)
        .map(|b| {
            let keep = (0x21..=0x7E).contains(&b)
                || (0xA1..=0xAC).contains(&b)
                || (0xAE..=0xFF).contains(&b);
            let c = if keep {
                b
            } else {
                n += 1;
                n - 1
            };
            char::from_u32(c).unwrap().to_string()
        })
        .collect()
}

/// Metadata for a tiny byte-level Llama (hidden 64, 4 heads, 2 kv heads, 2 layers).
pub fn tiny_llama_kvs(vocab: &[String]) -> Vec<(&'static str, V)> {
    let mut types = vec![V::I32(1); vocab.len()];
    *types.last_mut().unwrap() = V::I32(3);
    vec![
        ("general.architecture", V::s("llama")),
        ("llama.context_length", V::U32(256)),
        ("llama.embedding_length", V::U32(64)),
        ("llama.block_count", V::U32(2)),
        ("llama.feed_forward_length", V::U32(96)),
        ("llama.attention.head_count", V::U32(4)),
        ("llama.attention.head_count_kv", V::U32(2)),
        ("llama.rope.freq_base", V::F32(10000.0)),
        ("llama.attention.layer_norm_rms_epsilon", V::F32(1e-6)),
        ("tokenizer.ggml.model", V::s("gpt2")),
        ("tokenizer.ggml.pre", V::s("smollm")),
        ("tokenizer.ggml.tokens", V::strs(vocab)),
        ("tokenizer.ggml.token_type", V::Arr(5, types)),
        ("tokenizer.ggml.merges", V::strs(&["h i"])),
        (
            "tokenizer.ggml.bos_token_id",
            V::U32(vocab.len() as u32 - 1),
        ),
        (
            "tokenizer.ggml.eos_token_id",
            V::U32(vocab.len() as u32 - 1),
        ),
    ]
}
