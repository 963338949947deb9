//! Training loops: SFT and Dr.GRPO, loss math, checkpoints, metrics.
