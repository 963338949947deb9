//! A weight-free style vector per sentence, so rewards work with no model at all.
//!
//! Each sentence becomes [`FEATURES`].len() hand-picked surface measurements (length,
//! punctuation by kind, casing, word shapes, pronoun persons, digits, emoji, hedges, voice,
//! chat words, and the presence of each marked habit). Every raw value x is standardised as
//! z = (x − centre) / scale with the fixed constants in [`FEATURES`] (hand-set, not fitted to
//! any data set), clipped to ±[`CLIP`] so that one extreme rate in a one-word sentence cannot
//! dominate, multiplied by the feature's weight, and the vector is L2-normalised. Cosine then
//! compares style profiles; content words play no part, and features that follow content
//! (length, word shapes, names) are down-weighted so that two texts saying the same thing
//! in different styles are not held together by what they say.
use anyhow::Result;

/// z-scores are clipped to ±CLIP before weighting and normalisation.
pub const CLIP: f32 = 4.0;

/// Weight of features that move with *content* as much as with style (sentence length, word
/// length, function-word and article rates, capitalised names, digits, …). Two texts with the
/// same content share them, so at full weight they drown the one habit that differs.
const CONTENT_BOUND: f32 = 0.1;

/// Person and voice are habits too, but they also follow what a sentence is about (who
/// acts, who is addressed) more than punctuation or casing do, so they weigh less.
/// (name, centre, scale, weight) of each feature, in vector order. Rates are per word unless
/// noted. Habits a writer chooses (marks, contractions, emoji, hedges, person, casing, …) have
/// weight 1 and centres at their absence, so a text without a habit sits near the origin on
/// it; the `constant` feature gives every text the same component, so texts without any
/// marked habit are close to each other rather than scattered by noise.
pub const FEATURES: &[(&str, f32, f32, f32)] = &[
    ("constant", 0.0, 1.0, 1.5),                    // always 1
    ("log_words", 2.4, 0.8, CONTENT_BOUND),         // ln(1 + words)
    ("mean_word_len", 4.6, 1.2, CONTENT_BOUND),     // letters per word
    ("commas", 0.06, 0.07, 0.7),                    // ',' per word
    ("end_period", 0.6, 0.5, 0.5),                  // ends with '.' (0/1)
    ("end_question", 0.0, 0.35, 1.0),               // ends with '?' (0/1)
    ("end_exclaim", 0.0, 0.35, 1.0),                // ends with '!' (0/1)
    ("end_none", 0.0, 0.5, 1.0),                    // ends without . ? ! … or closing quote (0/1)
    ("ellipsis", 0.0, 0.35, 1.0),                   // contains "..." or '…' (0/1)
    ("colons_semis", 0.0, 0.04, 1.0),               // ':' ';' per word
    ("dashes", 0.0, 0.04, 1.0),                     // '—' '–' or a spaced '-' per word
    ("quotes", 0.0, 0.07, 0.7),                     // quotation marks per word
    ("brackets", 0.0, 0.04, 0.7),                   // '(' ')' '[' ']' per word
    ("upper_letters", 0.04, 0.06, CONTENT_BOUND),   // upper-case share of letters
    ("titlecase_words", 0.08, 0.12, CONTENT_BOUND), // capitalised words after the first
    ("allcaps_words", 0.0, 0.06, 1.0),              // words of 2+ letters all in capitals
    ("function_words", 0.45, 0.15, CONTENT_BOUND),  // closed-class words
    ("contractions", 0.0, 0.06, 1.0),               // words with an inner apostrophe
    ("first_person", 0.0, 0.06, 0.4),               // I, me, we, our, …
    ("second_person", 0.0, 0.05, 0.4),              // you, your, …
    ("third_person", 0.05, 0.07, CONTENT_BOUND),    // he, she, they, it, …
    ("digits", 0.01, 0.04, CONTENT_BOUND),          // digit share of non-space chars
    ("emoji", 0.0, 0.05, 1.0),                      // emoji per word
    ("long_words", 0.2, 0.12, CONTENT_BOUND),       // words of 7+ letters
    ("ly_words", 0.02, 0.04, CONTENT_BOUND),        // words ending in -ly
    ("ing_words", 0.03, 0.05, CONTENT_BOUND),       // words ending in -ing
    ("articles", 0.08, 0.06, CONTENT_BOUND),        // a, an, the
    ("repeated_marks", 0.0, 0.35, 1.0),             // "!!", "?!", "??" (0/1)
    ("punct_per_word", 0.15, 0.12, CONTENT_BOUND),  // all Unicode punctuation per word
    ("starts_conj", 0.0, 0.35, 0.7),                // starts with and/but/or/so (0/1)
    ("starts_lower", 0.0, 0.35, 1.0),               // first letter is lower case (0/1)
    ("words_per_sentence", 2.4, 0.8, 0.7),          // ln(1 + words / inner sentences)
    ("hedges", 0.0, 0.04, 1.0),                     // hedge words and phrases per word
    ("passive", 0.0, 0.05, 0.6),                    // be/get + participle per word
    ("informal", 0.0, 0.05, 1.0),                   // chat words (lol, gonna, yeah, …) per word
    ("latinate", 0.05, 0.07, 0.7), // long words with -tion, -ity, -ment, -ous, … per word
    ("any_contraction", 0.0, 0.35, 1.0), // presence (0/1) of each marked habit: one
    ("any_emoji", 0.0, 0.35, 1.0), // occurrence in a long text counts as much as in a
    ("any_hedge", 0.0, 0.35, 1.0), // short one
    ("any_passive", 0.0, 0.35, 0.6),
    ("any_informal", 0.0, 0.35, 1.0),
    ("any_first_person", 0.0, 0.35, 0.4),
    ("any_second_person", 0.0, 0.35, 0.4),
    ("any_exclaim", 0.0, 0.35, 1.0),
    ("any_question", 0.0, 0.35, 1.0),
    ("no_capitals", 0.0, 0.35, 1.0), // has letters, none upper-case (0/1)
    ("many_sentences", 0.0, 0.35, 0.7), // 3 or more inner sentences (0/1)
    ("formal", 0.0, 0.05, 1.0),      // formal-register markers (kindly, shall, upon, …) per word
    ("any_formal", 0.0, 0.35, 0.7),
];

#[rustfmt::skip]
pub const FUNCTION_WORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "nor", "so", "yet", "if", "then", "than", "because", "as", "of", "in",
    "on", "at", "to", "for", "with", "by", "from", "up", "down", "into", "onto", "over", "under", "about",
    "after", "before", "through", "between", "without", "within", "i", "me", "my", "we", "us", "our", "you",
    "your", "he", "him", "his", "she", "her", "it", "its", "they", "them", "their", "this", "that", "these",
    "those", "is", "am", "are", "was", "were", "be", "been", "being", "have", "has", "had", "do", "does", "did",
    "will", "would", "shall", "should", "can", "could", "may", "might", "must", "not", "no", "who", "whom",
    "which", "what", "when", "where", "why", "how", "there", "here", "all", "some", "any", "each", "every",
    "very", "just", "too", "also",
];
#[rustfmt::skip]
const FIRST: &[&str] = &[
    "i", "me", "my", "mine", "myself", "we", "us", "our", "ours", "ourselves",
];
const SECOND: &[&str] = &["you", "your", "yours", "yourself", "yourselves", "ya", "u"];
#[rustfmt::skip]
const THIRD: &[&str] = &[
    "he", "him", "his", "himself", "she", "her", "hers", "herself", "it", "its", "itself", "they", "them",
    "their", "theirs", "themselves",
];

const HEDGES: &[&str] = &[
    "perhaps",
    "maybe",
    "might",
    "possibly",
    "probably",
    "apparently",
    "seemingly",
    "somewhat",
    "arguably",
    "presumably",
    "likely",
    "unlikely",
    "guess",
    "suppose",
    "seems",
    "seem",
    "appears",
    "kinda",
    "sorta",
];
/// Two-word hedges ("i think", "sort of"), matched on consecutive lower-cased words.
const HEDGE_PAIRS: &[(&str, &str)] = &[
    ("i", "think"),
    ("i", "believe"),
    ("i", "feel"),
    ("sort", "of"),
    ("kind", "of"),
    ("a", "bit"),
    ("more", "or"),
    ("could", "be"),
    ("may", "be"),
    ("not", "sure"),
];
const BE_FORMS: &[&str] = &[
    "am", "is", "are", "was", "were", "be", "been", "being", "get", "gets", "got", "gotten",
    "getting",
];
#[rustfmt::skip]
const IRREGULAR_PARTICIPLES: &[&str] = &[
    "done", "made", "seen", "given", "taken", "written", "known", "shown", "held", "told", "sent",
    "built", "paid", "kept", "left", "found", "brought", "bought", "caught", "taught", "sold",
    "run", "won", "put", "set", "cut", "hit", "read", "led", "met", "lost", "thrown", "drawn",
    "driven", "eaten", "broken", "chosen", "spoken", "stolen", "frozen", "forgotten", "hidden",
];
#[rustfmt::skip]
const INFORMAL: &[&str] = &[
    "lol", "lmao", "omg", "gonna", "wanna", "gotta", "yeah", "yep", "yup", "nope", "nah", "hey",
    "hiya", "ok", "okay", "btw", "tbh", "idk", "imo", "kinda", "sorta", "haha", "hahaha", "ya",
    "u", "ur", "cuz", "coz", "thx", "pls", "plz", "cool", "awesome", "totally", "guys", "stuff",
    "super", "literally", "dude", "wow", "ugh", "yay", "oops", "hmm", "ain't", "y'all",
    "rn", "asap", "fyi", "xx", "xoxo", "bro", "mate", "cheers", "folks", "dunno", "lemme",
    "gimme", "yo", "whoa", "yikes", "geez", "jeez", "meh", "huh", "um", "uh", "nah", "bummer",
    "freaking", "damn", "heck", "crap", "sucks", "legit", "vibe", "vibes", "whatever", "anyway", "anyways", "buddy", "pal", "kiddo", "knackered", "bloody", "gutted", "fab", "mega",
    "slaps", "sus", "ok'd", "bday", "tho", "stupid", "dumb", "crazy", "insane", "wild", "nuts", "epic", "chill", "cos", "gotcha", "ya'll", "y'know",
];
/// Words that mark a formal, polite or official register whatever the topic: formulaic
/// politeness, connectives of written argument, and officialese verbs.
#[rustfmt::skip]
const FORMAL: &[&str] = &[
    "kindly", "regret", "regrettably", "sincerely", "respectfully", "hereby", "thus", "therefore",
    "hence", "furthermore", "moreover", "nevertheless", "nonetheless", "consequently",
    "accordingly", "whereas", "whom", "upon", "regarding", "concerning", "pursuant", "prior",
    "subsequent", "subsequently", "approximately", "ensure", "require", "required", "requires",
    "request", "requested", "inform", "informed", "assist", "assistance", "commence", "commenced",
    "terminate", "obtain", "obtained", "purchase", "purchased", "reside", "attend", "attendance",
    "advise", "advised", "grateful", "additionally", "thereby", "whilst", "amongst",
    "notwithstanding", "sufficient", "numerous", "individuals", "utilise", "utilize", "facilitate",
    "endeavour", "endeavor", "owing", "shall", "permit", "permitted", "proceed",
    "appreciate", "appreciated", "convey", "acknowledge", "acknowledged", "ascertain",
    "rescheduled", "postpone", "postponed", "henceforth", "herewith", "furnish", "furnished",
    "enquire", "inquire", "enquiries", "inquiries", "submit", "submitted", "therein", "aforementioned", "regards", "madam", "sir", "cordially",
    "esteemed", ];
const LATINATE_SUFFIXES: &[&str] = &[
    "tion", "sion", "ment", "ity", "ence", "ance", "ous", "ive", "ize", "ise", "ate", "ible",
    "able", "ary", "ory", "ial", "ency", "ancy", "al", "ic", "ent", "ant", "ure", "ify", "ism",
    "ude",
];

/// The weight-free stylometric encoder.
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

/// Emoji and pictographs by code block (shared with `charstyle`).
pub fn is_emoji(c: char) -> bool {
    matches!(c as u32, 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF)
}

/// The pronoun stem of a word: "I'm" → "i", "you’ll" → "you".
fn stem(w: &str) -> &str {
    w.split(['\'', '’']).next().unwrap_or(w)
}

/// Words whose "'s" is "is"/"has"/"us" rather than a possessive.
#[rustfmt::skip]
const S_CONTRACTORS: &[&str] = &[
    "it", "he", "she", "that", "there", "here", "what", "who", "where", "when", "why", "how", "let",
    "this", "everyone", "everybody", "someone", "somebody", "nobody", "nothing", "something",
    "everything", "one",
];

/// A lower-case word with an inner apostrophe between letters that is a contraction ("don't",
/// "we'll", "it's"), not a possessive ("Dad's", "the bank's"): the possessive is content, and
/// counting it made same-content pairs look alike on the contraction habit.
fn is_contraction(w: &str) -> bool {
    let cs: Vec<char> = w.chars().collect();
    (1..cs.len().saturating_sub(1)).any(|i| {
        let apostrophe = (cs[i] == '\'' || cs[i] == '’')
            && cs[i - 1].is_alphabetic()
            && cs[i + 1].is_alphabetic();
        let possessive = cs[i + 1..] == ['s'] && {
            let stem: String = cs[..i].iter().collect();
            !S_CONTRACTORS.contains(&stem.as_str())
        };
        apostrophe && !possessive
    })
}

/// Raw (unstandardised) feature values of one sentence, in [`FEATURES`] order.
pub fn raw_features(sentence: &str) -> Vec<f32> {
    let s = sentence.trim();
    let words: Vec<String> = s
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_string())
        .filter(|w| w.chars().any(|c| c.is_alphanumeric()))
        .collect();
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    let n = words.len().max(1) as f32;
    let count = |f: &dyn Fn(char) -> bool| s.chars().filter(|&c| f(c)).count() as f32;
    let words_where = |f: &dyn Fn(&str) -> bool| lower.iter().filter(|w| f(w)).count() as f32 / n;

    let letters = count(&|c| c.is_alphabetic());
    let uppers = count(&|c| c.is_uppercase());
    let nonspace = count(&|c| !c.is_whitespace()).max(1.0);
    let letter_words: Vec<usize> = words
        .iter()
        .map(|w| w.chars().filter(|c| c.is_alphabetic()).count())
        .collect();
    let mean_len = if letter_words.is_empty() {
        0.0
    } else {
        letter_words.iter().sum::<usize>() as f32 / n
    };

    let end = s.trim_end_matches(|c: char| "\"'”’»)".contains(c));
    let last = end.chars().last();
    let ends = |c: char| (last == Some(c)) as i32 as f32;
    let end_none = (!matches!(last, Some('.' | '?' | '!' | '…'))) as i32 as f32;

    let spaced_hyphens = s.matches(" - ").count() as f32;
    let dashes = count(&|c| c == '—' || c == '–') + spaced_hyphens;
    let quotes = count(&|c| "\"“”«»„".contains(c))
        + s.char_indices()
            .filter(|&(i, c)| {
                (c == '\'' || c == '‘' || c == '’') && {
                    let prev = s[..i].chars().last().is_some_and(|p| p.is_alphanumeric());
                    let next = s[i + c.len_utf8()..]
                        .chars()
                        .next()
                        .is_some_and(|p| p.is_alphanumeric());
                    !(prev && next)
                }
            })
            .count() as f32;
    let titlecase = words
        .iter()
        .skip(1)
        .filter(|w| w.chars().next().is_some_and(|c| c.is_uppercase()))
        .count() as f32
        / (n - 1.0).max(1.0);
    let allcaps = words
        .iter()
        .filter(|w| {
            let l: Vec<char> = w.chars().filter(|c| c.is_alphabetic()).collect();
            l.len() >= 2 && l.iter().all(|c| c.is_uppercase())
        })
        .count() as f32
        / n;
    let contraction = lower.iter().filter(|w| is_contraction(w)).count() as f32 / n;
    let first_word = lower.first().map(|w| w.as_str()).unwrap_or("");
    // Sentences inside the text (a "sentence" handed to the encoder may hold several):
    // runs of . ! ? … followed by white space or the end.
    let inner_sentences = {
        let cs: Vec<char> = s.chars().collect();
        let mut k = 0usize;
        for i in 0..cs.len() {
            let end = matches!(cs[i], '.' | '!' | '?' | '…');
            let next_is_break = cs.get(i + 1).map_or(true, |c| c.is_whitespace());
            if end && next_is_break {
                k += 1;
            }
        }
        k.max(1) as f32
    };
    let hedges = lower
        .iter()
        .filter(|w| HEDGES.contains(&w.as_str()))
        .count()
        + lower
            .windows(2)
            .filter(|p| HEDGE_PAIRS.contains(&(p[0].as_str(), p[1].as_str())))
            .count();
    let is_participle =
        |w: &str| (w.len() > 3 && w.ends_with("ed")) || IRREGULAR_PARTICIPLES.contains(&w);
    // be/get, optionally one adverb or "not", then a participle.
    let passive = (0..lower.len())
        .filter(|&i| BE_FORMS.contains(&lower[i].as_str()))
        .filter(|&i| {
            lower.get(i + 1).is_some_and(|w| is_participle(w))
                || (lower
                    .get(i + 1)
                    .is_some_and(|w| w.ends_with("ly") || w == "not")
                    && lower.get(i + 2).is_some_and(|w| is_participle(w)))
        })
        .count();
    let first_letter = s.chars().find(|c| c.is_alphabetic());

    let flag = |b: bool| b as i32 as f32;
    let emoji = count(&is_emoji);
    let informal = lower
        .iter()
        .filter(|w| INFORMAL.contains(&w.as_str()))
        .count() as f32;
    let formal = lower
        .iter()
        .filter(|w| FORMAL.contains(&w.as_str()))
        .count() as f32;
    let first = words_where(&|w| FIRST.contains(&stem(w)));
    let second = words_where(&|w| SECOND.contains(&stem(w)));
    vec![
        1.0,
        (1.0 + words.len() as f32).ln(),
        mean_len,
        count(&|c| c == ',') / n,
        ends('.'),
        ends('?'),
        ends('!'),
        end_none,
        (s.contains("...") || s.contains('…')) as i32 as f32,
        count(&|c| c == ':' || c == ';') / n,
        dashes / n,
        quotes / n,
        count(&|c| "()[]".contains(c)) / n,
        if letters > 0.0 { uppers / letters } else { 0.0 },
        titlecase,
        allcaps,
        words_where(&|w| FUNCTION_WORDS.contains(&w)),
        contraction,
        first,
        second,
        words_where(&|w| THIRD.contains(&stem(w))),
        count(&|c| c.is_ascii_digit()) / nonspace,
        emoji / n,
        words_where(&|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 7),
        words_where(&|w| w.len() > 4 && w.ends_with("ly")),
        words_where(&|w| w.len() > 5 && w.ends_with("ing")),
        words_where(&|w| matches!(w, "a" | "an" | "the")),
        (s.contains("!!") || s.contains("?!") || s.contains("!?") || s.contains("??")) as i32
            as f32,
        crate::text::count_punctuation(s) as f32 / n,
        matches!(first_word, "and" | "but" | "or" | "so") as i32 as f32,
        first_letter.is_some_and(|c| c.is_lowercase()) as i32 as f32,
        (1.0 + words.len() as f32 / inner_sentences).ln(),
        hedges as f32 / n,
        passive as f32 / n,
        informal / n,
        words_where(&|w| {
            w.chars().count() >= 7 && LATINATE_SUFFIXES.iter().any(|x| w.ends_with(x))
        }),
        flag(contraction > 0.0),
        flag(emoji > 0.0),
        flag(hedges > 0),
        flag(passive > 0),
        flag(informal > 0.0),
        flag(first > 0.0),
        flag(second > 0.0),
        flag(s.contains('!')),
        flag(s.contains('?')),
        flag(letters > 0.0 && uppers == 0.0),
        flag(inner_sentences >= 3.0),
        formal / n,
        flag(formal > 0.0),
    ]
}

/// The standardised, clipped, weighted, L2-normalised style vector of one sentence (never
/// zero: the `constant` feature is always set).
pub fn style_vector(sentence: &str) -> Vec<f32> {
    let mut v: Vec<f32> = raw_features(sentence)
        .iter()
        .zip(FEATURES)
        .map(|(x, (_, c, s, w))| w * ((x - c) / s).clamp(-CLIP, CLIP))
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

impl super::SentenceEncoder for Stylometric {
    fn encode(&self, sentences: &[String]) -> Result<Vec<Vec<f32>>> {
        Ok(sentences.iter().map(|s| style_vector(s)).collect())
    }
    fn dim(&self) -> usize {
        FEATURES.len()
    }
    fn name(&self) -> String {
        "stylometric".into()
    }
}
