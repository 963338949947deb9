//! JSONL, JSON, CSV and Parquet readers: one text per record from a named field/column.
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::path::Path;

use super::FieldError;

/// Fails with a [`FieldError`]: the file is fine, the field or column chosen is not.
macro_rules! field_bail {
    ($($arg:tt)*) => {
        return Err(FieldError(format!($($arg)*)).into())
    };
}

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
        Some(other) => field_bail!("field '{field}' is {}, not a string", kind(other)),
        None => {
            let keys = match v {
                Value::Object(m) => m.keys().cloned().collect::<Vec<_>>().join(", "),
                _ => kind(v).to_string(),
            };
            field_bail!("no field '{field}' (record has: {keys}); pick one with PATH:FIELD")
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
        field_bail!(
            "dataset {}: no column '{column}' (columns: {}); pick one with PATH:COLUMN",
            path.display(),
            headers.iter().collect::<Vec<_>>().join(", ")
        );
    };
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| csv_error(path, &e))?;
        let line = rec.position().map_or(0, |p| p.line());
        // A whitespace-only line is a blank line, not a one-field record.
        if rec.len() == 1 && rec[0].trim().is_empty() && headers.len() > 1 {
            continue;
        }
        // The reader is flexible so that this check, not the csv crate, words the error.
        if rec.len() != headers.len() {
            bail!(
                "dataset {} line {line}: {} fields, but the header has {}; quote fields that \
                 contain the delimiter",
                path.display(),
                rec.len(),
                headers.len()
            );
        }
        keep(&mut out, rec.get(idx).map(String::from));
    }
    // The csv reader ends an unterminated quoted field at the end of the file without an
    // error, swallowing every later row into one field.
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read dataset {}", path.display()))?;
    if let Some(line) = unterminated_quote(&bytes, delimiter) {
        bail!(
            "dataset {} line {line}: a quoted field opened here is never closed; close it \
             with \" (a quote inside a quoted field is written \"\")",
            path.display()
        );
    }
    Ok(out)
}

fn csv_error(path: &Path, e: &csv::Error) -> anyhow::Error {
    match e.position() {
        Some(p) => anyhow!("dataset {} line {}: {e}", path.display(), p.line()),
        None => anyhow!("dataset {}: {e}", path.display()),
    }
}

/// The line where a quoted field opens that the file never closes, scanning as RFC 4180
/// (and the csv crate's defaults) read it: a quote opens a field only at its start, and
/// `""` inside a quoted field is a literal quote.
fn unterminated_quote(bytes: &[u8], delimiter: u8) -> Option<u64> {
    let (mut line, mut opened_at) = (1u64, None);
    let mut field_start = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if opened_at.is_some() {
            if b == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    opened_at = None;
                }
            }
        } else if b == b'"' && field_start {
            opened_at = Some(line);
        }
        if b == b'\n' {
            line += 1;
        }
        field_start = opened_at.is_none() && (b == delimiter || b == b'\n' || b == b'\r');
        i += 1;
    }
    opened_at
}

/// A Parquet file; `column` is a top-level string column (Utf8, LargeUtf8 or Utf8View).
pub fn load_parquet(path: &Path, column: &str) -> Result<Vec<String>> {
    // The parquet crate panics (`unimplemented!`) on some corrupt metadata instead of
    // returning an error (found by tests/fuzz.rs); a bad file must still be one error line.
    match quietly_catch_panic(|| read_parquet(path, column)) {
        Ok(r) => r,
        Err(msg) => bail!(
            "dataset {}: not a readable Parquet file (the reader failed: {msg}); check or \
             re-export the file",
            path.display()
        ),
    }
}

thread_local! {
    static QUIET_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic into its message without the default hook's stderr report
/// (only on this thread, and only while `f` runs; other panics are reported as before).
fn quietly_catch_panic<R>(f: impl FnOnce() -> R) -> std::result::Result<R, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET_PANICS.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
    QUIET_PANICS.with(|q| q.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET_PANICS.with(|q| q.set(false));
    r.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string())
    })
}

fn read_parquet(path: &Path, column: &str) -> Result<Vec<String>> {
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
        field_bail!(
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
        field_bail!(
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
