//! Helpers for the tests that read `shared/vectors`.

use std::path::PathBuf;

const REQUIRED: &str = "ENVELOPE_REQUIRE_VECTORS is set but no vectors were found \
                        (set ENVELOPE_VECTORS or put shared/ beside the checkout)";

/// The vectors directory, or `None` after saying why the caller should skip. With
/// `ENVELOPE_REQUIRE_VECTORS` set (as `.ci/run` sets it) a missing directory is a failure instead.
pub fn vectors_or_skip(test: &str) -> Option<PathBuf> {
    match crate::vectors_dir() {
        Some(dir) => Some(dir),
        None if std::env::var_os("ENVELOPE_REQUIRE_VECTORS").is_some() => {
            #[allow(clippy::panic)]
            let missing = || -> ! { panic!("{test}: {REQUIRED}") }; // safe: a test helper; panicking fails the test
            missing()
        }
        None => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!(
                    "{test}: skipped: shared vectors not found (set ENVELOPE_VECTORS or put ../shared beside the checkout)"
                );
            }
            None
        }
    }
}
