//! Length-sorted batching puts results back in input order.
use stylerl::encoder::batching::{length_sorted_batches, run_sorted};

#[test]
fn batches_are_longest_first_and_cover_every_index_once() {
    let lengths = [3, 10, 1, 7, 7, 2, 9];
    let batches = length_sorted_batches(&lengths, 3);
    assert_eq!(batches, vec![vec![1, 6, 3], vec![4, 0, 5], vec![2]]);
    let mut all: Vec<usize> = batches.concat();
    all.sort();
    assert_eq!(all, (0..lengths.len()).collect::<Vec<_>>());
}

#[test]
fn order_is_restored() {
    let lengths = [3, 10, 1, 7, 7, 2, 9, 4];
    for bs in [1, 2, 3, 5, 8, 100] {
        let mut calls = 0;
        let out = run_sorted(&lengths, bs, |batch| {
            calls += 1;
            assert!(batch.len() <= bs);
            // Each row records which input it came from and that input's length.
            Ok(batch.iter().map(|&i| (i, lengths[i])).collect())
        })
        .unwrap();
        assert_eq!(calls, lengths.len().div_ceil(bs));
        let expect: Vec<(usize, usize)> = lengths.iter().copied().enumerate().collect();
        assert_eq!(out, expect, "batch size {bs}");
    }
}

#[test]
fn wrong_row_count_is_an_error() {
    let err = run_sorted(&[1, 2, 3], 2, |batch| Ok(vec![0u8; batch.len() + 1])).unwrap_err();
    assert!(err.to_string().contains("gave"), "{err}");
}

#[test]
fn empty_input_gives_nothing() {
    let out: Vec<u8> = run_sorted(&[], 4, |_| panic!("no batch expected")).unwrap();
    assert!(out.is_empty());
}
