//! Hand-built blocks: bytes packed by hand from chosen quants, expected values from ggml's formulas.
use super::*;

fn h(x: f32) -> [u8; 2] {
    f16::from_f32(x).to_le_bytes()
}

#[test]
fn scalar_types() {
    let f32s: Vec<u8> = [1.5f32, -2.25, 0.0, 3e-8]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(
        dequantize(GgmlType::F32, &f32s, 4).unwrap(),
        vec![1.5, -2.25, 0.0, 3e-8]
    );
    // f16 0x3C00 = 1.0, 0xC000 = -2.0, 0x3555 ≈ 0.33325195, 0x7BFF = 65504.
    let f16s = [0x00, 0x3C, 0x00, 0xC0, 0x55, 0x35, 0xFF, 0x7B];
    assert_eq!(
        dequantize(GgmlType::F16, &f16s, 4).unwrap(),
        vec![1.0, -2.0, 0.333_251_95, 65504.0]
    );
    // bf16 is the top half of an f32: 0x3F80 = 1.0, 0xC040 = -3.0, 0x3E20 = 0.15625.
    let bf16s = [0x80, 0x3F, 0x40, 0xC0, 0x20, 0x3E];
    assert_eq!(
        dequantize(GgmlType::BF16, &bf16s, 3).unwrap(),
        vec![1.0, -3.0, 0.15625]
    );
}

#[test]
fn q8_0_block() {
    let mut b = h(0.5).to_vec();
    let qs: Vec<i8> = (0..32).map(|i| (i as i8 - 16) * 8).collect(); // -128 .. 120
    b.extend(qs.iter().map(|&q| q as u8));
    let y = dequantize(GgmlType::Q8_0, &b, 32).unwrap();
    assert_eq!(y[0], -64.0);
    assert_eq!(y[16], 0.0);
    assert_eq!(y[31], 60.0);
    for i in 0..32 {
        assert_eq!(y[i], qs[i] as f32 * 0.5);
    }
}

#[test]
fn q4_0_block() {
    let mut b = h(2.0).to_vec();
    // byte j: low nibble j (value j), high nibble 15 - j (value j + 16).
    b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let y = dequantize(GgmlType::Q4_0, &b, 32).unwrap();
    assert_eq!(y[0], -16.0); // (0 - 8) * 2
    assert_eq!(y[15], 14.0); // (15 - 8) * 2
    assert_eq!(y[16], 14.0); // high nibble of byte 0 is 15
    assert_eq!(y[31], -16.0);
    for j in 0..16 {
        assert_eq!(y[j], (j as f32 - 8.0) * 2.0);
        assert_eq!(y[j + 16], (7.0 - j as f32) * 2.0);
    }
}

#[test]
fn q4_1_block() {
    let mut b = h(0.25).to_vec();
    b.extend(h(-1.0));
    b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let y = dequantize(GgmlType::Q4_1, &b, 32).unwrap();
    assert_eq!(y[0], -1.0);
    assert_eq!(y[15], 2.75); // 15 * 0.25 - 1
    assert_eq!(y[16], 2.75);
    assert_eq!(y[31], -1.0);
    for j in 0..16 {
        assert_eq!(y[j], j as f32 * 0.25 - 1.0);
        assert_eq!(y[j + 16], (15 - j) as f32 * 0.25 - 1.0);
    }
}

/// Packs 8 six-bit scales and mins the way Q4_K stores them.
fn pack_q4k_scales(sc: [u8; 8], m: [u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..4 {
        s[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        s[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
        s[j + 8] = (sc[j + 4] & 0x0F) | ((m[j + 4] & 0x0F) << 4);
    }
    s
}

#[test]
fn q4_k_scale_unpacking() {
    let sc = [1, 2, 3, 63, 17, 40, 5, 63];
    let m = [0, 9, 33, 62, 48, 1, 63, 20];
    let s = pack_q4k_scales(sc, m);
    for j in 0..8 {
        assert_eq!(q4k_scale_min(j, &s), (sc[j], m[j]), "sub-block {j}");
    }
}

#[test]
fn q4_k_block() {
    let sc = [1, 2, 3, 63, 17, 40, 5, 10];
    let m = [0, 9, 33, 62, 48, 1, 63, 20];
    let nib = |i: usize| ((i * 5 + 3) % 16) as u8;
    let mut b = h(0.5).to_vec();
    b.extend(h(0.25));
    b.extend(pack_q4k_scales(sc, m));
    // Values 64g..64g+32 are low nibbles of bytes 32g..32g+32, the next 32 their high nibbles.
    let mut qs = [0u8; 128];
    for i in 0..256 {
        let (g, r) = (i / 64, i % 64);
        let byte = 32 * g + r % 32;
        qs[byte] |= if r < 32 { nib(i) } else { nib(i) << 4 };
    }
    b.extend(qs);
    assert_eq!(b.len(), 144);
    let y = dequantize(GgmlType::Q4_K, &b, 256).unwrap();
    // value 0: sub-block 0 (sc 1, m 0), nibble 3 → 0.5 * 1 * 3 - 0 = 1.5
    assert_eq!(y[0], 1.5);
    // value 255: sub-block 7 (sc 10, m 20), nibble (255*5+3)%16 = 14 → 0.5*10*14 - 0.25*20 = 65
    assert_eq!(y[255], 65.0);
    for i in 0..256 {
        let s = i / 32;
        let want = 0.5 * sc[s] as f32 * nib(i) as f32 - 0.25 * m[s] as f32;
        assert_eq!(y[i], want, "value {i}");
    }
}

#[test]
fn q6_k_block() {
    let q6 = |i: usize| ((i * 7 + 1) % 64) as u8;
    let scales: [i8; 16] = [
        1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12, 13, -14, 15, -128,
    ];
    let (mut ql, mut qh) = ([0u8; 128], [0u8; 64]);
    // Value i: half h, row r; quarter k = r / 32 and lane l = r % 32.
    for i in 0..256 {
        let (hf, r) = (i / 128, i % 128);
        let (k, l) = (r / 32, r % 32);
        let lo = q6(i) & 0x0F;
        let byte = 64 * hf + l + if k % 2 == 1 { 32 } else { 0 };
        ql[byte] |= if k < 2 { lo } else { lo << 4 };
        qh[32 * hf + l] |= (q6(i) >> 4) << (2 * k);
    }
    let mut b = ql.to_vec();
    b.extend(qh);
    b.extend(scales.iter().map(|&s| s as u8));
    b.extend(h(0.125));
    assert_eq!(b.len(), 210);
    let y = dequantize(GgmlType::Q6_K, &b, 256).unwrap();
    // value 0: q 1, scale 1 → 0.125 * 1 * (1 - 32) = -3.875
    assert_eq!(y[0], -3.875);
    // value 255: q (255*7+1)%64 = 58, scale index 8 + 31/16 + 2*3 = 15 → -128 → 0.125*-128*26
    assert_eq!(y[255], -416.0);
    for i in 0..256 {
        let (hf, r) = (i / 128, i % 128);
        let s = scales[8 * hf + (r % 32) / 16 + 2 * (r / 32)];
        let want = 0.125 * s as f32 * (q6(i) as f32 - 32.0);
        assert_eq!(y[i], want, "value {i}");
    }
}

#[test]
fn many_blocks_in_parallel_keep_order() {
    // 1000 Q8_0 blocks, block k scaled by d = k: checks chunking keeps blocks in place.
    let n_blocks = 1000;
    let mut b = Vec::new();
    for k in 0..n_blocks {
        b.extend(h(k as f32));
        b.extend((0..32).map(|i| i as u8));
    }
    let y = dequantize(GgmlType::Q8_0, &b, 32 * n_blocks).unwrap();
    for k in [0, 1, 511, 512, 999] {
        for i in 0..32 {
            assert_eq!(y[32 * k + i], (k * i) as f32);
        }
    }
}

#[test]
fn bad_sizes_and_types_are_errors() {
    assert!(dequantize(GgmlType::Q8_0, &[0u8; 33], 32).is_err());
    assert!(dequantize(GgmlType::Q4_0, &[0u8; 18], 31).is_err());
    let e = dequantize(GgmlType::Q5_K, &[0u8; 176], 256)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unsupported tensor type Q5_K"), "{e}");
    assert!(GgmlType::from_id(99).is_err());
    assert_eq!(GgmlType::from_id(14).unwrap(), GgmlType::Q6_K);
    assert_eq!(GgmlType::BF16.id(), 30);
}
