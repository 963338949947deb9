//! Length-sorted batching: inputs of similar length share a batch so little compute is spent
//! on padding; results go back to input order.
use anyhow::{ensure, Result};

/// Input indices grouped into batches of at most `batch_size`, longest inputs first.
/// Equal lengths keep their input order (stable sort).
pub fn length_sorted_batches(lengths: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by(|a, b| lengths[*b].cmp(&lengths[*a]));
    order
        .chunks(batch_size.max(1))
        .map(|c| c.to_vec())
        .collect()
}

/// Runs `f` on each length-sorted batch of indices and returns its rows in input order.
/// `f` must return one row per index it was given, in the order given.
pub fn run_sorted<T, F>(lengths: &[usize], batch_size: usize, mut f: F) -> Result<Vec<T>>
where
    F: FnMut(&[usize]) -> Result<Vec<T>>,
{
    let mut out: Vec<Option<T>> = (0..lengths.len()).map(|_| None).collect();
    for batch in length_sorted_batches(lengths, batch_size) {
        let rows = f(&batch)?;
        ensure!(
            rows.len() == batch.len(),
            "batch of {} inputs gave {} rows",
            batch.len(),
            rows.len()
        );
        for (i, row) in batch.into_iter().zip(rows) {
            out[i] = Some(row);
        }
    }
    Ok(out
        .into_iter()
        .map(|r| r.expect("every index is in exactly one batch"))
        .collect())
}
