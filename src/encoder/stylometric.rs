//! A weight-free style vector per sentence, so rewards work with no model at all.
use anyhow::Result;

pub struct Stylometric;

impl Stylometric {
    pub fn new() -> Self {
        Stylometric
    }
}

impl Default for Stylometric {
    fn default() -> Self {
        Self::new()
    }
}

impl super::SentenceEncoder for Stylometric {
    fn encode(&self, _sentences: &[String]) -> Result<Vec<Vec<f32>>> {
        anyhow::bail!("stylometric encoder is not built yet")
    }
    fn dim(&self) -> usize {
        0
    }
    fn name(&self) -> String {
        "stylometric".into()
    }
}
