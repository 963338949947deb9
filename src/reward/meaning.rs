//! Meaning kept (docs/method.md#meaning-kept): cos(E_c(input), E_c(output)) with a *content*
//! encoder E_c on whole texts. all-MiniLM-L6-v2 is a poor style encoder but a good content
//! one, so it can tell when a policy buys style with meaning. Used by `evaluate` as a metric
//! and by the reward as the optional `meaning` component.
use crate::encoder::{cosine, SentenceEncoder};
use anyhow::{ensure, Result};

/// One cosine per (input, output) pair, in order. Texts are encoded whole (not split into
/// sentences): meaning lives across sentences. Inputs and outputs go through the encoder in
/// one call so a transformer encoder batches them.
pub fn meaning_kept(enc: &dyn SentenceEncoder, pairs: &[(&str, &str)]) -> Result<Vec<f64>> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let mut texts: Vec<String> = Vec::with_capacity(2 * pairs.len());
    texts.extend(pairs.iter().map(|(i, _)| i.trim().to_string()));
    texts.extend(pairs.iter().map(|(_, o)| o.trim().to_string()));
    let v = enc.encode(&texts)?;
    ensure!(
        v.len() == texts.len(),
        "content encoder {} returned {} vectors for {} texts",
        enc.name(),
        v.len(),
        texts.len()
    );
    let n = pairs.len();
    Ok((0..n)
        .map(|k| {
            // An empty output keeps no meaning, whatever the encoder makes of "".
            if texts[n + k].is_empty() {
                0.0
            } else {
                cosine(&v[k], &v[n + k]) as f64
            }
        })
        .collect())
}
