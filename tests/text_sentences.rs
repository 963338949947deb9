//! Sentence splitting and punctuation counting (docs/method.md#sentences).
use stylerl::text::{count_punctuation, sentences};

#[test]
fn splits_on_uax29_boundaries_and_trims() {
    let s = sentences("  Hello there.  How are you?   Fine!  ");
    assert_eq!(s, vec!["Hello there.", "How are you?", "Fine!"]);
}

#[test]
fn newlines_always_separate() {
    let s = sentences("first line without stop\nsecond line\n\n\nthird");
    assert_eq!(s, vec!["first line without stop", "second line", "third"]);
    assert_eq!(sentences("a\r\nb"), vec!["a", "b"]);
}

#[test]
fn empty_and_blank_texts_have_no_sentences() {
    assert!(sentences("").is_empty());
    assert!(sentences("   \n\t  \n").is_empty());
}

#[test]
fn text_without_boundary_is_one_sentence() {
    assert_eq!(
        sentences("no full stop at all"),
        vec!["no full stop at all"]
    );
    assert_eq!(sentences("!!!"), vec!["!!!"]);
    assert_eq!(sentences("🙂🙂"), vec!["🙂🙂"]);
}

#[test]
fn titles_do_not_end_sentences_but_lower_case_continuations_never_split() {
    let s = sentences("I met Dr. Smith today. He said e.g. apples. Mrs. O'Neil agreed.");
    assert_eq!(
        s,
        vec![
            "I met Dr. Smith today.",
            "He said e.g. apples.",
            "Mrs. O'Neil agreed."
        ]
    );
    // UAX #29 itself keeps "3.5" and "etc. and" together.
    assert_eq!(
        sentences("Pi is 3.14 roughly. Yes."),
        vec!["Pi is 3.14 roughly.", "Yes."]
    );
}

#[test]
fn quotes_and_ellipses() {
    let s = sentences("\"Really?\" she asked. Wait... no!");
    assert_eq!(s.len(), 3, "{s:?}");
    assert_eq!(s[0], "\"Really?\"");
}

#[test]
fn punctuation_counts_unicode_categories_only() {
    assert_eq!(count_punctuation("Hello, world!"), 2);
    // $ + = are symbols, not punctuation; the em dash, guillemets and ellipsis are.
    assert_eq!(count_punctuation("$5 + 3 = 8"), 0);
    assert_eq!(count_punctuation("«Oui» — dit-il…"), 5);
    assert_eq!(count_punctuation("emoji 🙂 only"), 0);
    assert_eq!(count_punctuation(""), 0);
}
