//! Text utilities: sentence splitting, entity extraction, punctuation counting.
//!
//! Everything here is pure and model-free, so rewards and tests can call it directly.
pub mod candidate;
pub mod dates;
pub mod defects;
pub mod edit;
pub mod entities;
pub mod facts;
pub mod names;
pub mod punct;
pub mod sentences;

pub use edit::edit_similarity;
pub use entities::{entities, entity_pair, normalize_entity, Entity, EntityKind};
pub use punct::{count_punctuation, is_punctuation};
pub use sentences::sentences;
