//! The GGUF reader on good and bad files: every value type, nested arrays, alignment, and
//! truncated / corrupt / unsupported files, which must give one error line, never a panic.
#[path = "gguf_common/mod.rs"]
mod common;
use common::*;
use std::process::Command;
use stylerl::gguf::reader::{parse_bytes, GgufFile, Value};

fn one_tensor_file(ty: u32, data: Vec<u8>, dims: Vec<u64>) -> Vec<u8> {
    let kvs = [("general.architecture", V::s("llama"))];
    gguf_bytes(
        3,
        &kvs,
        &[T {
            name: "token_embd.weight".into(),
            dims,
            ty,
            data,
        }],
    )
}

fn small_valid() -> Vec<u8> {
    one_tensor_file(
        0,
        f32_bytes(&(0..64).map(|i| i as f32).collect::<Vec<_>>()),
        vec![32, 2],
    )
}

/// Runs `stylerl import-gguf` on `bytes` (or on a missing file when None).
fn import_err(bytes: Option<&[u8]>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.gguf");
    if let Some(b) = bytes {
        std::fs::write(&file, b).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_stylerl"))
        .arg("import-gguf")
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("hf"))
        .env("STYLERL_PROGRESS", "0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("error: ") && err.contains("bad.gguf"),
        "{err}"
    );
    err
}

#[test]
fn every_value_type_and_nested_arrays_round_trip() {
    let nested = V::Arr(
        9,
        vec![
            V::Arr(4, vec![V::U32(1), V::U32(2)]),
            V::Arr(4, vec![]),
            V::Arr(4, vec![V::U32(7)]),
        ],
    );
    let kvs = vec![
        ("a.u8", V::U8(200)),
        ("a.i8", V::I8(-5)),
        ("a.u16", V::U16(65535)),
        ("a.i16", V::I16(-300)),
        ("a.u32", V::U32(4_000_000_000)),
        ("a.i32", V::I32(-70000)),
        ("a.f32", V::F32(1.5)),
        ("a.bool", V::Bool(true)),
        ("a.str", V::s("héllo")),
        ("a.u64", V::U64(u64::MAX)),
        ("a.i64", V::I64(i64::MIN)),
        ("a.f64", V::F64(-2.25)),
        ("a.strs", V::strs(&["x", "", "ü"])),
        ("a.nested", nested),
        ("a.empty", V::Arr(6, vec![])),
    ];
    for version in [2, 3] {
        let (v, meta, tensors, align, data_offset) =
            parse_bytes(&gguf_bytes(version, &kvs, &[])).unwrap();
        assert_eq!((v, tensors.len(), align), (version, 0, 32));
        assert_eq!(data_offset % 32, 0);
        let get = |k: &str| {
            meta.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("a.u8"), Value::U8(200));
        assert_eq!(get("a.i8"), Value::I8(-5));
        assert_eq!(get("a.u16"), Value::U16(65535));
        assert_eq!(get("a.i16"), Value::I16(-300));
        assert_eq!(get("a.u32"), Value::U32(4_000_000_000));
        assert_eq!(get("a.i32"), Value::I32(-70000));
        assert_eq!(get("a.f32"), Value::F32(1.5));
        assert_eq!(get("a.bool"), Value::Bool(true));
        assert_eq!(get("a.str"), Value::Str("héllo".into()));
        assert_eq!(get("a.u64"), Value::U64(u64::MAX));
        assert_eq!(get("a.i64"), Value::I64(i64::MIN));
        assert_eq!(get("a.f64"), Value::F64(-2.25));
        let strs = get("a.strs");
        let strs: Vec<&str> = strs
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(strs, ["x", "", "ü"]);
        let n = get("a.nested");
        let n = n.as_array().unwrap();
        assert_eq!(n.len(), 3);
        assert_eq!(n[0], Value::Array(vec![Value::U32(1), Value::U32(2)]));
        assert_eq!(n[1], Value::Array(vec![]));
        assert_eq!(get("a.empty"), Value::Array(vec![]));
        assert_eq!(meta.len(), kvs.len());
    }
}

#[test]
fn alignment_and_tensor_bytes() {
    let kvs = [("general.alignment", V::U32(64))];
    let t = |name: &str, n: usize| T {
        name: name.into(),
        dims: vec![n as u64],
        ty: 0,
        data: f32_bytes(&vec![n as f32; n]),
    };
    let bytes = gguf_bytes(3, &kvs, &[t("a", 3), t("b", 5)]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.gguf");
    std::fs::write(&path, &bytes).unwrap();
    let g = GgufFile::open(&path).unwrap();
    assert_eq!(g.alignment, 64);
    assert_eq!(g.data_offset % 64, 0);
    let b = g.tensor("b").unwrap();
    assert_eq!(b.offset, 64);
    assert_eq!(g.tensor_bytes(b), f32_bytes(&[5.0; 5]).as_slice());
    // A non-power-of-two alignment is refused.
    let bad = gguf_bytes(3, &[("general.alignment", V::U32(48))], &[]);
    assert!(parse_bytes(&bad)
        .unwrap_err()
        .to_string()
        .contains("power of two"));
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let mut v = byte_alphabet();
    v.push("<|s|>".into());
    let full = gguf_bytes(
        3,
        &tiny_llama_kvs(&v),
        &[T {
            name: "t".into(),
            dims: vec![32],
            ty: 8,
            data: vec![1; 34],
        }],
    );
    assert!(parse_bytes(&full).is_ok());
    for cut in (0..full.len() - 1).step_by(7).chain([full.len() - 1]) {
        assert!(parse_bytes(&full[..cut]).is_err(), "cut at {cut} parsed");
    }
}

#[test]
fn corrupt_bytes_never_panic() {
    let base = gguf_bytes(3, &tiny_llama_kvs(&byte_alphabet()), &[]);
    let mut x = 12345u64;
    for _ in 0..3000 {
        let mut b = base.clone();
        for _ in 0..3 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x as usize) % 600.min(b.len());
            b[i] = (x >> 32) as u8;
        }
        let _ = parse_bytes(&b); // error or success, but it must return
    }
}

#[test]
fn huge_lengths_are_refused_before_allocating() {
    // A string claiming 2^60 bytes, and an array claiming 2^62 elements.
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    let mut s = b.clone();
    s.extend((1u64 << 60).to_le_bytes());
    s.extend(b"key");
    assert!(parse_bytes(&s)
        .unwrap_err()
        .to_string()
        .contains("cannot fit"));
    let mut a = b.clone();
    put_str(&mut a, "k");
    a.extend(9u32.to_le_bytes());
    a.extend(4u32.to_le_bytes());
    a.extend((1u64 << 62).to_le_bytes());
    let e = format!("{:#}", parse_bytes(&a).unwrap_err());
    assert!(
        e.contains("metadata 'k'") && e.contains("cannot fit"),
        "{e}"
    );
    // Too many tensors / keys for the file size.
    let mut t = b"GGUF".to_vec();
    t.extend(3u32.to_le_bytes());
    t.extend(u64::MAX.to_le_bytes());
    t.extend(0u64.to_le_bytes());
    assert!(parse_bytes(&t)
        .unwrap_err()
        .to_string()
        .contains("cannot fit"));
    // Arrays nested past the depth limit.
    let mut deep = V::Arr(4, vec![]);
    for _ in 0..20 {
        deep = V::Arr(9, vec![deep]);
    }
    let e = format!(
        "{:#}",
        parse_bytes(&gguf_bytes(3, &[("d", deep)], &[])).unwrap_err()
    );
    assert!(e.contains("nested deeper"), "{e}");
}

#[test]
fn missing_file() {
    let e = import_err(None);
    assert!(e.contains("cannot open GGUF file"), "{e}");
}

#[test]
fn wrong_magic() {
    let mut b = small_valid();
    b[..4].copy_from_slice(b"GGML");
    let e = import_err(Some(&b));
    assert!(e.contains("wrong magic"), "{e}");
}

#[test]
fn truncated_file() {
    let b = small_valid();
    let e = import_err(Some(&b[..b.len() - 10]));
    assert!(e.contains("runs past the end of the file"), "{e}");
    let e = import_err(Some(&b[..30]));
    assert!(e.contains("truncated"), "{e}");
    let e = import_err(Some(&b[..2]));
    assert!(e.contains("too short"), "{e}");
}

#[test]
fn unsupported_version_and_endianness() {
    let mut b = small_valid();
    b[4..8].copy_from_slice(&1u32.to_le_bytes());
    assert!(import_err(Some(&b)).contains("unsupported GGUF version 1"));
    b[4..8].copy_from_slice(&3u32.to_be_bytes());
    assert!(import_err(Some(&b)).contains("big-endian"));
}

#[test]
fn unsupported_quant_type() {
    // Q5_K (type 13): a known ggml type the importer cannot dequantize.
    let b = one_tensor_file(13, vec![0; 176], vec![256]);
    let e = import_err(Some(&b));
    assert!(e.contains("unsupported tensor type Q5_K"), "{e}");
    // An id ggml does not know at all.
    let b = one_tensor_file(99, vec![0; 4], vec![1]);
    assert!(import_err(Some(&b)).contains("unknown ggml tensor type id 99"));
}

#[test]
fn corrupt_metadata_length() {
    let mut b = small_valid();
    // The first key's length field sits right after the 24-byte header.
    b[24..32].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
    let e = import_err(Some(&b));
    assert!(e.contains("cannot fit"), "{e}");
}

#[test]
fn directory_instead_of_file() {
    let dir = tempfile::tempdir().unwrap();
    let e = format!("{:#}", GgufFile::open(dir.path()).err().unwrap());
    assert!(e.contains("is not a regular file"), "{e}");
}
