//! Dataset loading: JSONL, CSV, Parquet, plain text.
