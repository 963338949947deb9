//! Entity extraction on the tricky cases: sentence-initial capitals, titles, initialisms,
//! multi-word names, separators, dates, times, money, e-mails, URLs, handles, tags.
use stylerl::text::{entities, normalize_entity, EntityKind};

fn norms(text: &str, kind: EntityKind) -> Vec<String> {
    entities(text)
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.norm)
        .collect()
}

#[test]
fn sentence_initial_common_words_are_not_names() {
    assert!(norms(
        "The meeting moved. When is it? Please call.",
        EntityKind::Name
    )
    .is_empty());
    assert!(norms("Yesterday was long. Running is fun.", EntityKind::Name).is_empty());
    // A one-word name at a sentence start counts when it is capitalised elsewhere too.
    assert_eq!(
        norms(
            "Whiskers played. Everyone loved Whiskers.",
            EntityKind::Name
        ),
        vec!["whiskers", "whiskers"]
    );
}

#[test]
fn titles_are_dropped_and_do_not_start_sentences() {
    assert_eq!(
        norms("I met Dr. Smith and Ms. Jones.", EntityKind::Name),
        vec!["smith", "jones"]
    );
    assert_eq!(
        norms("Dr. Watson arrived.", EntityKind::Name),
        vec!["watson"]
    );
    // The pronoun I is never a name.
    assert!(norms("Then I left and I cried.", EntityKind::Name).is_empty());
}

#[test]
fn multi_word_names_and_connectors() {
    assert_eq!(
        norms("We flew to New York City on business.", EntityKind::Name),
        vec!["new york city"]
    );
    assert_eq!(
        norms("She is called Mary-Jane O'Neil.", EntityKind::Name),
        vec!["mary-jane o'neil"]
    );
    assert_eq!(
        norms("He works at Bank of America now.", EntityKind::Name),
        vec!["bank of america"]
    );
    assert_eq!(
        norms("New York City is huge.", EntityKind::Name),
        vec!["new york city"]
    );
    // "and" separates two names; a possessive is stripped.
    assert_eq!(
        norms("I saw Alice and Bob's dog.", EntityKind::Name),
        vec!["alice", "bob"]
    );
}

#[test]
fn initialisms_and_caps_words() {
    assert_eq!(
        norms("He served in the U.S. Army for years.", EntityKind::Name),
        vec!["u.s. army"]
    );
    assert_eq!(
        norms("She joined NASA in spring.", EntityKind::Name),
        vec!["nasa"]
    );
    assert!(norms("Reply ASAP, it is URGENT.", EntityKind::Name).is_empty());
    assert!(norms("THIS IS ALL CAPS SHOUTING TODAY", EntityKind::Name).is_empty());
}

#[test]
fn quoted_sentence_starts() {
    assert!(norms("He said, \"Hello there.\"", EntityKind::Name).is_empty());
}

#[test]
fn numbers_with_separators() {
    assert_eq!(
        norms("We sold 1,234.56 units and 1 000 more.", EntityKind::Number),
        vec!["1234.56", "1000"]
    );
    assert_eq!(
        norms(
            "Up 12% from 3,50 and 1.234,5; about 007.",
            EntityKind::Number
        ),
        vec!["12%", "3.5", "1234.5", "7"]
    );
    // Ordinals and decades are their number.
    assert_eq!(
        norms("The 3rd floor, the 1990s.", EntityKind::Number),
        vec!["3", "1990"]
    );
}

#[test]
fn dates_in_several_formats_share_a_canonical_form() {
    assert_eq!(
        norms("Due 2024-03-01.", EntityKind::Date),
        vec!["2024-03-01"]
    );
    assert_eq!(norms("Due 3/1/2024.", EntityKind::Date), vec!["2024-03-01"]);
    assert_eq!(
        norms("Due 25/12/2023.", EntityKind::Date),
        vec!["2023-12-25"]
    );
    assert_eq!(norms("Due March 1st.", EntityKind::Date), vec!["03-01"]);
    assert_eq!(
        norms("Due 1 March 2024.", EntityKind::Date),
        vec!["2024-03-01"]
    );
    assert_eq!(
        norms("Due Mar. 1, 2024 or in April 2025.", EntityKind::Date),
        vec!["2024-03-01", "2025-04"]
    );
    assert_eq!(norms("See you Friday.", EntityKind::Date), vec!["friday"]);
    // "May I" is not a date; a date's digits are not also numbers.
    assert!(norms("May I come?", EntityKind::Date).is_empty());
    assert!(norms("Due 2024-03-01.", EntityKind::Number).is_empty());
}

#[test]
fn times_are_24h() {
    assert_eq!(
        norms("At 5pm or 17:30 or 5:30 a.m. or 12 AM.", EntityKind::Time),
        vec!["17:00", "17:30", "05:30", "00:00"]
    );
    assert!(norms("I have 5 apples.", EntityKind::Time).is_empty());
}

#[test]
fn money_prefix_and_suffix() {
    assert_eq!(
        norms("It costs $12.50, or €3, or 10 USD.", EntityKind::Money),
        vec!["usd 12.5", "eur 3", "usd 10"]
    );
    assert_eq!(
        norms("A $1,200 fee and $5 million.", EntityKind::Money),
        vec!["usd 1200", "usd 5m"]
    );
    assert_eq!(
        norms("Pay 1200 dollars.", EntityKind::Money),
        norms("Pay $1,200.", EntityKind::Money)
    );
    assert!(norms("It costs $12.50.", EntityKind::Number).is_empty());
}

#[test]
fn emails_urls_handles_tags() {
    let t = "Mail Bob.Smith@Example.com, see https://example.org/a?b=1. or www.test.io! Ping @jane_doe #Launch2024 #1";
    assert_eq!(norms(t, EntityKind::Email), vec!["bob.smith@example.com"]);
    assert_eq!(
        norms(t, EntityKind::Url),
        vec!["example.org/a?b=1", "test.io"]
    );
    assert_eq!(norms(t, EntityKind::Handle), vec!["@jane_doe"]);
    assert_eq!(norms(t, EntityKind::Hashtag), vec!["#launch2024"]);
    // The e-mail's parts are not a handle, URL or name; "#1" is a number.
    assert_eq!(norms(t, EntityKind::Number), vec!["1"]);
    assert!(!norms(t, EntityKind::Name)
        .iter()
        .any(|n| n.contains("example")));
}

#[test]
fn normalisation_case_folds_and_trims() {
    assert_eq!(normalize_entity("  “Acme   Corp.”  "), "acme corp");
    assert_eq!(normalize_entity("O’Neil’s"), "o'neil");
    assert_eq!(normalize_entity("..."), "");
}

#[test]
fn entities_come_in_text_order_with_their_text() {
    let e = entities("On 2024-03-01 Alice paid $5 to Bob.");
    let kinds: Vec<EntityKind> = e.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EntityKind::Date,
            EntityKind::Name,
            EntityKind::Money,
            EntityKind::Name
        ]
    );
    assert_eq!(e[2].text, "$5");
}

#[test]
fn sentence_initial_verbs_adjectives_and_possessives() {
    assert_eq!(
        norms("Tell Sophie thanks.", EntityKind::Name),
        vec!["sophie"]
    );
    assert_eq!(
        norms("Blue Corolla, hazards on.", EntityKind::Name),
        vec!["corolla"]
    );
    assert_eq!(
        norms("Bring your ID to Kai's BBQ.", EntityKind::Name),
        vec!["id", "kai", "bbq"]
    );
    assert_eq!(
        norms("See the Ashbury Chess Club AGM notes.", EntityKind::Name),
        vec!["ashbury chess club", "agm"]
    );
    // Emphasis capitals of common words are not names; a dot after a domain ends a sentence.
    assert!(norms("It was NOT the gym AND the park.", EntityKind::Name).is_empty());
    assert!(norms("Write to maria@example.com. Could you?", EntityKind::Name).is_empty());
    // A first name after the full name is the same entity; a leading "the" is dropped.
    assert_eq!(
        norms(
            "We hired Nadia Flores. Nadia starts at The Lantern.",
            EntityKind::Name
        ),
        vec!["nadia flores", "nadia flores", "lantern"]
    );
}

#[test]
fn pair_shares_name_evidence_between_input_and_output() {
    use stylerl::text::entity_pair;
    let (a, b) = entity_pair("Bob met Alice.", "Then Bob met Alice.");
    let n = |v: &[stylerl::text::Entity]| v.iter().map(|e| e.norm.clone()).collect::<Vec<_>>();
    assert_eq!(n(&a), vec!["bob", "alice"]);
    assert_eq!(n(&b), vec!["bob", "alice"]);
    // Without evidence a sentence-initial common word stays out on both sides.
    let (a, b) = entity_pair("Cats are great.", "Cats are lovely, says Alice.");
    assert_eq!(n(&a), Vec::<String>::new());
    assert_eq!(n(&b), vec!["alice"]);
}

#[test]
fn time_keeps_its_own_dots_but_not_the_full_stop() {
    let e = entities("Meet at 5pm. Or at 6 a.m. tomorrow.");
    let t: Vec<&str> = e
        .iter()
        .filter(|e| e.kind == EntityKind::Time)
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(t, vec!["5pm", "6 a.m."]);
}
