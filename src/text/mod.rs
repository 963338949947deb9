//! Text utilities: sentence splitting, entity extraction, punctuation counting.
