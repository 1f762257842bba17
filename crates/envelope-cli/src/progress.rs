//! The progress bar on standard error: bytes read of the input, rate and time left, for large
//! inputs (or pipes, whose length is unknown) when standard error is a terminal. Never drawn
//! with `-q` or `--no-progress`, and cleared when the input is done.

use std::io::{self, IsTerminal, Read};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::jobs::Job;

/// Inputs shorter than this finish before a bar would tell anything.
const MIN_LEN: u64 = 8 << 20;

/// Whether a bar is drawn for an input of `len` bytes (`None`: unknown).
fn wanted(len: Option<u64>, allowed: bool, terminal: bool) -> bool {
    allowed && terminal && len.is_none_or(|len| len >= MIN_LEN)
}

/// `source`, counted into a progress bar when one is `allowed` (not `-q`, not `--no-progress`)
/// and wanted.
pub(crate) fn wrap(source: Box<dyn Read>, job: &Job, allowed: bool) -> Box<dyn Read> {
    if !wanted(job.input_len, allowed, io::stderr().is_terminal()) {
        return source;
    }
    let name = job
        .input
        .as_deref()
        .map_or_else(|| "<stdin>".to_string(), |p| p.display().to_string());
    let bar = match job.input_len {
        Some(len) => ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
            .with_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{msg} {spinner} {bytes} {binary_bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(name);
    Box::new(Counted { inner: source, bar })
}

/// Advances the bar by what is read; clears it at the end of the input or when dropped.
struct Counted {
    inner: Box<dyn Read>,
    bar: ProgressBar,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.bar.finish_and_clear();
        } else {
            self.bar.inc(n as u64);
        }
        Ok(n)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_only_for_large_or_unknown_inputs_on_a_terminal_when_allowed() {
        assert!(wanted(Some(MIN_LEN), true, true));
        assert!(wanted(None, true, true));
        assert!(!wanted(Some(MIN_LEN - 1), true, true));
        assert!(!wanted(Some(MIN_LEN), true, false));
        assert!(!wanted(Some(MIN_LEN), false, true));
        assert!(!wanted(None, false, true));
    }
}
