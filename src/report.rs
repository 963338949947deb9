//! What long-running library code has to tell a person, without printing it itself.
//!
//! Training and import report through a [`Report`] the caller passes in: the command line
//! (`cli::console`) prints results to stdout and notes and progress to stderr; tests and
//! other callers may pass [`Silent`].

/// Receives the lines and progress of one run.
pub trait Report {
    /// A result of the run (the command line prints it to stdout).
    fn result(&self, line: &str);
    /// A note or warning about the run (the command line prints it to stderr).
    fn note(&self, line: &str);
    /// A counter over `len` steps, labelled `what`.
    fn progress(&self, len: u64, what: &str) -> Box<dyn Progress>;
}

/// A counter of finished steps with a short status message.
pub trait Progress {
    fn set_position(&self, pos: u64);
    fn inc(&self, n: u64);
    fn set_message(&self, msg: String);
    /// A line shown with the counter (lost where the counter is not shown).
    fn println(&self, line: String);
    fn finish(&self);
}

/// Drops everything.
pub struct Silent;

impl Report for Silent {
    fn result(&self, _: &str) {}
    fn note(&self, _: &str) {}
    fn progress(&self, _: u64, _: &str) -> Box<dyn Progress> {
        Box::new(Silent)
    }
}

impl Progress for Silent {
    fn set_position(&self, _: u64) {}
    fn inc(&self, _: u64) {}
    fn set_message(&self, _: String) {}
    fn println(&self, _: String) {}
    fn finish(&self) {}
}
