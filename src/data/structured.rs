//! JSONL, JSON, CSV and Parquet readers: one text per record from a named field/column.
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::path::Path;

/// Follows a dotted path (`a.b.0.c`) into a JSON value.
fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, key| match cur {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// The text of one JSON record: the record itself when it is a string, else its field.
/// `Ok(None)` for null; an error naming the available fields when the field is missing.
fn record_text(v: &Value, field: &str) -> Result<Option<String>> {
    if let Value::String(s) = v {
        return Ok(Some(s.clone()));
    }
    match get_path(v, field) {
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Null) => Ok(None),
        Some(other) => bail!("field '{field}' is {}, not a string", kind(other)),
        None => {
            let keys = match v {
                Value::Object(m) => m.keys().cloned().collect::<Vec<_>>().join(", "),
                _ => kind(v).to_string(),
            };
            bail!("no field '{field}' (record has: {keys}); pick one with PATH:FIELD")
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn keep(out: &mut Vec<String>, t: Option<String>) {
    if let Some(t) = t {
        if !t.trim().is_empty() {
            out.push(t);
        }
    }
}

/// One JSON value a line; blank lines skipped.
pub fn load_jsonl(path: &Path, field: &str) -> Result<Vec<String>> {
    let raw = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read dataset {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in raw.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| anyhow!("dataset {} line {}: not JSON ({e})", path.display(), i + 1))?;
        let t = record_text(&v, field)
            .with_context(|| format!("dataset {} line {}", path.display(), i + 1))?;
        keep(&mut out, t);
    }
    Ok(out)
}

/// A JSON array of strings or objects.
pub fn load_json(path: &Path, field: &str) -> Result<Vec<String>> {
    let raw = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read dataset {}", path.display()))?;
    let v: Value = serde_json::from_str(&raw)
        .map_err(|e| anyhow!("dataset {}: not JSON ({e})", path.display()))?;
    let Value::Array(items) = v else {
        bail!(
            "dataset {}: expected a JSON array of records (use .jsonl for one record a line)",
            path.display()
        );
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let t = record_text(item, field)
            .with_context(|| format!("dataset {} record {}", path.display(), i))?;
        keep(&mut out, t);
    }
    Ok(out)
}

/// A CSV/TSV file with a header row; `column` is a header name.
pub fn load_csv(path: &Path, column: &str, delimiter: u8) -> Result<Vec<String>> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot read dataset {}", path.display()))?;
    let headers = rdr
        .headers()
        .with_context(|| format!("dataset {}: no header row", path.display()))?
        .clone();
    let Some(idx) = headers.iter().position(|h| h.trim() == column) else {
        bail!(
            "dataset {}: no column '{column}' (columns: {}); pick one with PATH:COLUMN",
            path.display(),
            headers.iter().collect::<Vec<_>>().join(", ")
        );
    };
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("dataset {} row {}", path.display(), i + 2))?;
        keep(&mut out, rec.get(idx).map(String::from));
    }
    Ok(out)
}

/// A Parquet file; `column` is a top-level string column (Utf8, LargeUtf8 or Utf8View).
pub fn load_parquet(path: &Path, column: &str) -> Result<Vec<String>> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::DataType;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ProjectionMask;

    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open dataset {}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
        anyhow!(
            "dataset {}: not a readable Parquet file ({e})",
            path.display()
        )
    })?;
    let fields = builder.schema().fields().clone();
    let Some(idx) = fields.iter().position(|f| f.name() == column) else {
        let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
        bail!(
            "dataset {}: no column '{column}' (columns: {}); pick one with PATH:COLUMN",
            path.display(),
            names.join(", ")
        );
    };
    let dtype = fields[idx].data_type().clone();
    if !matches!(
        dtype,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        bail!(
            "dataset {}: column '{column}' is {dtype}, not a string column",
            path.display()
        );
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), [idx]);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| anyhow!("dataset {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| anyhow!("dataset {}: {e}", path.display()))?;
        let col = batch.column(0);
        for i in 0..col.len() {
            if col.is_null(i) {
                continue;
            }
            let s = match col.data_type() {
                DataType::Utf8 => col.as_string::<i32>().value(i).to_string(),
                DataType::LargeUtf8 => col.as_string::<i64>().value(i).to_string(),
                _ => col.as_string_view().value(i).to_string(),
            };
            keep(&mut out, Some(s));
        }
    }
    Ok(out)
}
