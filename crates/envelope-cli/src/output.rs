//! Where output goes, so that a failed or interrupted command never leaves plaintext on disk.
//!
//! A regular file (new, or replaced) is written through an exclusively created, randomly named,
//! owner-only temporary file in the destination's directory and renamed into place only once the
//! command succeeded; every failure path removes it, and so do SIGINT, SIGTERM and SIGHUP. FIFOs,
//! character devices and sockets (`/dev/stdout`, `/dev/null`, a named pipe) are written directly,
//! as standard output is: they cannot hold a partial file.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, Once};

use tempfile::NamedTempFile;

/// Temporary files to remove if a termination signal arrives before they are renamed or removed.
static PARTIAL_FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn partial_files() -> MutexGuard<'static, Vec<PathBuf>> {
    PARTIAL_FILES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// On SIGINT, SIGTERM or SIGHUP: remove the temporary files, then exit as the signal would have.
fn install_signal_cleanup() -> io::Result<()> {
    static INSTALL: Once = Once::new();
    let mut result = Ok(());
    INSTALL.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        result =
            signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).map(|mut signals| {
                std::thread::spawn(move || {
                    if let Some(signal) = signals.forever().next() {
                        for path in partial_files().drain(..) {
                            let _ = fs::remove_file(path);
                        }
                        std::process::exit(128 + signal);
                    }
                });
            });
    });
    result
}

/// The destination of a command, checked before any file is created.
pub(crate) enum Destination {
    /// Standard output.
    Stdout,
    /// A FIFO, device or socket, written directly.
    Special(PathBuf),
    /// A regular file, new or replaced: written beside it and renamed into place on success.
    File {
        /// The path the user gave (for messages).
        shown: PathBuf,
        /// The file to create or replace (symbolic links followed).
        target: PathBuf,
        /// The permissions of the file being replaced, kept on the new one.
        keep: Option<Permissions>,
    },
}

impl Destination {
    /// Decide how to write to `path` (`None` or `-`: standard output) without creating anything.
    pub(crate) fn check(path: Option<&Path>) -> Result<Self, String> {
        let Some(path) = path.filter(|p| *p != Path::new("-")) else {
            return Ok(Self::Stdout);
        };
        let shown = path.to_path_buf();
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Err(format!(
                "{}: is a directory; name the file to write (-o DIR/NAME)",
                path.display()
            )),
            Ok(meta) if meta.is_file() => {
                let target =
                    fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
                Ok(Self::File {
                    shown,
                    target,
                    keep: Some(meta.permissions()),
                })
            }
            Ok(_) => Ok(Self::Special(shown)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let parent = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                if !parent.is_dir() {
                    return Err(format!(
                        "{}: the directory {} does not exist",
                        path.display(),
                        parent.display()
                    ));
                }
                Ok(Self::File {
                    shown,
                    target: path.to_path_buf(),
                    keep: None,
                })
            }
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Open the destination: returns the writer and the handle that commits or abandons it.
    pub(crate) fn open(self) -> Result<(Output, Box<dyn Write>), String> {
        match self {
            Self::Stdout => Ok((
                Output { pending: None },
                Box::new(BufWriter::with_capacity(64 << 10, io::stdout().lock())),
            )),
            Self::Special(path) => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Ok((
                    Output { pending: None },
                    Box::new(BufWriter::with_capacity(64 << 10, file)),
                ))
            }
            Self::File {
                shown,
                target,
                keep,
            } => {
                install_signal_cleanup().map_err(|e| format!("installing signal handlers: {e}"))?;
                let dir = match target.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let name = target
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // Registered under the lock, so a signal cannot slip in between creation and
                // registration.
                let mut partials = partial_files();
                // Created with O_EXCL and mode 0600 under a random name: never an existing file,
                // never through a symbolic link, never readable by others.
                let temp = tempfile::Builder::new()
                    .prefix(&format!(".{name}."))
                    .suffix(".envelope-partial")
                    .tempfile_in(&dir)
                    .map_err(|e| {
                        format!(
                            "{}: cannot create a file in {}: {}",
                            shown.display(),
                            dir.display(),
                            without_path(&e)
                        )
                    })?;
                partials.push(temp.path().to_path_buf());
                drop(partials);
                let file = temp
                    .as_file()
                    .try_clone()
                    .map_err(|e| format!("{}: {e}", shown.display()))?;
                Ok((
                    Output {
                        pending: Some(Pending {
                            temp,
                            shown,
                            target,
                            keep,
                        }),
                    },
                    Box::new(BufWriter::with_capacity(64 << 10, file)),
                ))
            }
        }
    }
}

/// An I/O error's message without the temporary file's path that `tempfile` appends to it
/// (` at path "..."`): messages name the user's path, never the temporary one.
fn without_path(error: &io::Error) -> String {
    // tempfile wraps the operating system's error; report that one.
    if let Some(inner) = error
        .get_ref()
        .and_then(|e| std::error::Error::source(e))
        .and_then(|e| e.downcast_ref::<io::Error>())
    {
        return inner.to_string();
    }
    let text = error.to_string();
    match text.find(" at path \"") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// An opened destination; [`Output::commit`] it once the command succeeded. Dropping it
/// uncommitted removes the temporary file.
pub(crate) struct Output {
    /// `None` for standard output and special files: nothing to commit.
    pending: Option<Pending>,
}

/// A temporary file to rename onto `target`.
struct Pending {
    temp: NamedTempFile,
    shown: PathBuf,
    target: PathBuf,
    keep: Option<Permissions>,
}

impl Output {
    /// Move the finished output into place (the writer must have been flushed and dropped).
    pub(crate) fn commit(mut self) -> Result<(), String> {
        let Some(Pending {
            temp,
            shown,
            target,
            keep,
        }) = self.pending.take()
        else {
            return Ok(());
        };
        let temp_path = temp.path().to_path_buf();
        let result = match keep {
            Some(permissions) => temp.as_file().set_permissions(permissions),
            None => Ok(()),
        };
        // On failure `persist` hands the temporary file back, and dropping it removes it.
        let result = result
            .map_err(|e| format!("{}: {e}", shown.display()))
            .and_then(|()| {
                temp.persist(&target)
                    .map(|_: File| ())
                    .map_err(|e| format!("{}: {}", shown.display(), e.error))
            });
        partial_files().retain(|p| *p != temp_path);
        result
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            // Removed before it leaves the list the signal handler cleans up.
            let path = pending.temp.path().to_path_buf();
            let _ = fs::remove_file(&path);
            partial_files().retain(|p| *p != path);
        }
    }
}
