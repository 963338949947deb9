//! Dataset loaders: JSONL, JSON, CSV, Parquet (written here with the parquet crate), plain
//! text in both modes, and the errors for missing files, fields and empty datasets.
use std::sync::Arc;
use stylerl::data::{load_texts, split_plain, DataSpec, TextMode};

fn write(dir: &tempfile::TempDir, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn jsonl_default_and_dotted_fields() {
    let d = tempfile::tempdir().unwrap();
    let p = write(&d, "a.jsonl", "{\"text\": \"one\", \"meta\": {\"body\": \"x\"}}\n\n\"bare string\"\n{\"text\": null}\n{\"text\": \"  \"}\n{\"text\": \"two\", \"meta\": {\"body\": \"y\"}}\n");
    assert_eq!(
        load_texts(&p, None).unwrap(),
        vec!["one", "bare string", "two"]
    );
    // Line 4 has no meta: the error names the line and the fields it has.
    let e = format!("{:#}", load_texts(&p, Some("meta.body")).unwrap_err());
    assert!(
        e.contains("line 4") && e.contains("no field 'meta.body'"),
        "{e}"
    );
    let p2 = write(&d, "b.jsonl", "{\"m\": [{\"c\": \"hi\"}]}\n");
    assert_eq!(load_texts(&p2, Some("m.0.c")).unwrap(), vec!["hi"]);
}

#[test]
fn missing_field_error_lists_fields() {
    let d = tempfile::tempdir().unwrap();
    let p = write(&d, "a.jsonl", "{\"body\": \"one\"}\n");
    let e = format!("{:#}", load_texts(&p, None).unwrap_err());
    assert!(e.contains("no field 'text'") && e.contains("body"), "{e}");
    let p = write(&d, "bad.jsonl", "{not json\n");
    assert!(format!("{:#}", load_texts(&p, None).unwrap_err()).contains("line 1"));
}

#[test]
fn json_array() {
    let d = tempfile::tempdir().unwrap();
    let p = write(&d, "a.json", "[{\"t\": \"x\"}, {\"t\": \"y\"}]");
    assert_eq!(load_texts(&p, Some("t")).unwrap(), vec!["x", "y"]);
    let p = write(&d, "o.json", "{\"t\": \"x\"}");
    assert!(format!("{:#}", load_texts(&p, Some("t")).unwrap_err()).contains("array"));
}

#[test]
fn csv_and_tsv_columns() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        &d,
        "a.csv",
        "id,body\n1,\"Hello, world\"\n2,\n3,\"multi\nline\"\n",
    );
    assert_eq!(
        load_texts(&p, Some("body")).unwrap(),
        vec!["Hello, world", "multi\nline"]
    );
    let e = format!("{:#}", load_texts(&p, None).unwrap_err());
    assert!(
        e.contains("no column 'text'") && e.contains("id, body"),
        "{e}"
    );
    let p = write(&d, "a.tsv", "text\tx\nfoo bar\t1\n");
    assert_eq!(load_texts(&p, None).unwrap(), vec!["foo bar"]);
}

#[test]
fn parquet_string_column() {
    use arrow::array::{ArrayRef, Int32Array, StringArray};
    use arrow::record_batch::RecordBatch;
    use parquet::arrow::ArrowWriter;
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a.parquet");
    let text: ArrayRef = Arc::new(StringArray::from(vec![
        Some("first text"),
        None,
        Some(""),
        Some("second text"),
    ]));
    let ids: ArrayRef = Arc::new(Int32Array::from(vec![1, 2, 3, 4]));
    let batch = RecordBatch::try_from_iter(vec![("id", ids), ("content", text)]).unwrap();
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(&p).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    assert_eq!(
        load_texts(&p, Some("content")).unwrap(),
        vec!["first text", "second text"]
    );
    let e = format!("{:#}", load_texts(&p, None).unwrap_err());
    assert!(
        e.contains("no column 'text'") && e.contains("id, content"),
        "{e}"
    );
    let e = format!("{:#}", load_texts(&p, Some("id")).unwrap_err());
    assert!(e.contains("not a string column"), "{e}");
    let bad = write(&d, "bad.parquet", "not parquet");
    assert!(format!("{:#}", load_texts(&bad, None).unwrap_err()).contains("Parquet"));
}

#[test]
fn plain_text_modes() {
    let raw = "Para one line a\nline b\n\n\nPara two\n";
    assert_eq!(
        split_plain(raw, TextMode::Auto),
        vec!["Para one line a\nline b", "Para two"]
    );
    assert_eq!(
        split_plain(raw, TextMode::Lines),
        vec!["Para one line a", "line b", "Para two"]
    );
    assert_eq!(split_plain("a\nb\n\n", TextMode::Auto), vec!["a", "b"]);
    assert_eq!(split_plain("\n\na\nb", TextMode::Paragraphs), vec!["a\nb"]);
    assert_eq!(split_plain("a\n\nb\n", TextMode::Document), vec!["a\n\nb"]);
    let d = tempfile::tempdir().unwrap();
    let p = write(&d, "t.txt", raw);
    assert_eq!(load_texts(&p, Some("lines")).unwrap().len(), 3);
    assert!(load_texts(&p, Some("bogus")).is_err());
}

#[test]
fn missing_and_empty_datasets_are_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let e = load_texts(&d.path().join("nope.jsonl"), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not found") && e.contains("nope.jsonl"), "{e}");
    let p = write(&d, "empty.txt", "\n  \n");
    assert!(load_texts(&p, None)
        .unwrap_err()
        .to_string()
        .contains("no non-empty texts"));
}

#[test]
fn spec_parsing() {
    assert_eq!(
        DataSpec::parse("a/b.jsonl:body"),
        DataSpec {
            path: "a/b.jsonl".into(),
            field: Some("body".into())
        }
    );
    assert_eq!(
        DataSpec::parse("a/b.jsonl"),
        DataSpec {
            path: "a/b.jsonl".into(),
            field: None
        }
    );
    assert_eq!(DataSpec::parse("a/b.jsonl:body").label(), "a/b:body");
    assert_eq!(DataSpec::parse("b.txt").label(), "b");
}

#[test]
fn ragged_csv_rows_are_errors_naming_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    // Line 3 has an unquoted comma: three fields under a two-column header.
    let p = write(&d, "r.csv", "id,body\n1,fine\n2,Hello, world\n3,last\n");
    let e = format!("{:#}", load_texts(&p, Some("body")).unwrap_err());
    assert!(
        e.contains("r.csv line 3") && e.contains("3 fields") && e.contains("header has 2"),
        "{e}"
    );
    // Too few fields is as wrong as too many.
    let p = write(&d, "s.csv", "id,body\n1,fine\n2\n");
    let e = format!("{:#}", load_texts(&p, Some("body")).unwrap_err());
    assert!(e.contains("s.csv line 3") && e.contains("1 fields"), "{e}");
    // Blank and whitespace-only lines are still skipped.
    let p = write(&d, "b.csv", "id,body\n1,a\n\n   \n2,b\n");
    assert_eq!(load_texts(&p, Some("body")).unwrap(), vec!["a", "b"]);
}

#[test]
fn unterminated_quote_is_an_error_naming_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    // The quote opened on line 3 swallows the rest of the file into one field.
    let p = write(&d, "q.csv", "id,body\n1,fine\n2,\"never closed\n3,more\n");
    let e = format!("{:#}", load_texts(&p, Some("body")).unwrap_err());
    assert!(
        e.contains("q.csv line 3") && e.contains("never closed"),
        "{e}"
    );
    // Escaped quotes and quoted delimiters/newlines are well-formed and stay accepted.
    let p = write(
        &d,
        "ok.tsv",
        "id\tbody\n1\t\"say \"\"hi\"\"\tthere\nnow\"\n2\tx\"y\n",
    );
    assert_eq!(
        load_texts(&p, Some("body")).unwrap(),
        vec!["say \"hi\"\tthere\nnow", "x\"y"]
    );
}

#[test]
fn a_broken_sft_jsonl_line_is_reported_before_any_field_hint() {
    use stylerl::train::sft_data::{load_conversations, SftDataConfig};
    let d = tempfile::tempdir().unwrap();
    let p = write(
        &d,
        "sft.jsonl",
        "{\"input\": \"a\", \"output\": \"b\"}\n{\"input\": \"c\", \"output\": }\n",
    );
    let cfg: SftDataConfig =
        toml::from_str(&format!("train = {:?}", p.display().to_string())).unwrap();
    let e = load_conversations(&cfg, &p).unwrap_err();
    let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    // What the binary prints: the first part names file:line and says it is not JSON.
    assert!(
        chain[0].contains("sft.jsonl line 2") && chain[0].contains("not JSON"),
        "{chain:?}"
    );
    assert!(!chain.join(": ").contains("input_field"), "{chain:?}");
    // A missing field still gets the hint about the setting.
    let p = write(&d, "f.jsonl", "{\"in\": \"a\", \"output\": \"b\"}\n");
    let cfg: SftDataConfig =
        toml::from_str(&format!("train = {:?}", p.display().to_string())).unwrap();
    let e = format!("{:#}", load_conversations(&cfg, &p).unwrap_err());
    assert!(
        e.starts_with("data.input_field = 'input'") && e.contains("no field 'input'"),
        "{e}"
    );
}
