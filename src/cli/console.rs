//! The terminal side of [`Report`]: results to stdout, notes and progress bars to stderr.
use crate::report::{Progress, Report};

pub struct Console;

impl Report for Console {
    fn result(&self, line: &str) {
        println!("{line}");
    }
    fn note(&self, line: &str) {
        eprintln!("{line}");
    }
    fn progress(&self, len: u64, what: &str) -> Box<dyn Progress> {
        Box::new(Bar(crate::util::progress_bar(len, what)))
    }
}

struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn set_position(&self, pos: u64) {
        self.0.set_position(pos);
    }
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn set_message(&self, msg: String) {
        self.0.set_message(msg);
    }
    fn println(&self, line: String) {
        self.0.println(line);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
