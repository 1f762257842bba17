//! Which files a command reads and writes: one input to one output, several inputs (a shell glob)
//! into a directory, or (`-r`) a directory tree mirrored under an output directory, each output
//! named after its input with a suffix. Everything is planned, and every path checked, before
//! the first file is written.

use std::collections::HashSet;
use std::fs;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

/// Encrypting or decrypting: the default suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Encrypt,
    Decrypt,
}

impl Mode {
    /// aws-encryption-sdk-cli's default suffixes.
    fn default_suffix(self) -> &'static str {
        match self {
            Self::Encrypt => ".encrypted",
            Self::Decrypt => ".decrypted",
        }
    }
}

/// One input and where its output goes (`None`: standard input or output).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Job {
    pub(crate) input: Option<PathBuf>,
    pub(crate) output: Option<PathBuf>,
    /// The input's length, when it is a regular file.
    pub(crate) input_len: Option<u64>,
    /// The output's directory may not exist yet (a mirrored subdirectory): create it first.
    pub(crate) create_parent: bool,
}

/// What the user asked for.
pub(crate) struct Request<'a> {
    pub(crate) inputs: &'a [PathBuf],
    pub(crate) output: Option<&'a Path>,
    pub(crate) recursive: bool,
    pub(crate) suffix: Option<&'a str>,
    pub(crate) mode: Mode,
}

fn is_dash(path: &Path) -> bool {
    path == Path::new("-")
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// The output file `dir/NAME+suffix` for `input`.
fn named_in(dir: &Path, input: &Path, suffix: &str) -> Result<PathBuf, String> {
    let name = input
        .file_name()
        .ok_or_else(|| format!("{}: names no file", shown(input)))?;
    let mut name = name.to_os_string();
    name.push(suffix);
    Ok(dir.join(name))
}

/// Every regular file under `root`, sorted, as paths relative to it. Symbolic links to files are
/// followed; symbolic links to directories are not (they could loop), and are reported.
fn walk(root: &Path, skipped: &mut Vec<PathBuf>) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let dir = root.join(&relative);
        let entries = fs::read_dir(&dir).map_err(|e| format!("{}: {e}", shown(&dir)))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", shown(&dir)))?;
            names.push(entry);
        }
        names.sort_by_key(fs::DirEntry::file_name);
        for entry in names {
            let path = entry.path();
            let kind = entry
                .file_type()
                .map_err(|e| format!("{}: {e}", shown(&path)))?;
            let relative = relative.join(entry.file_name());
            if kind.is_dir() {
                pending.push(relative);
            } else if kind.is_file() {
                found.push(relative);
            } else if kind.is_symlink() {
                match fs::metadata(&path) {
                    Ok(meta) if meta.is_file() => found.push(relative),
                    _ => skipped.push(path),
                }
            } else {
                skipped.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn regular_len(path: &Path) -> Option<u64> {
    fs::metadata(path)
        .ok()
        .filter(fs::Metadata::is_file)
        .map(|m| m.len())
}

/// Plan the jobs; `skipped` gets the entries of a walked tree that are neither files nor links to
/// files.
pub(crate) fn plan(request: &Request<'_>, skipped: &mut Vec<PathBuf>) -> Result<Vec<Job>, String> {
    let suffix = request
        .suffix
        .unwrap_or_else(|| request.mode.default_suffix());
    let output = request.output.filter(|p| !is_dash(p));
    let output_dir = output.filter(|p| p.is_dir());
    let inputs: Vec<&Path> = request.inputs.iter().map(PathBuf::as_path).collect();

    // Standard input: one job, to a file or standard output.
    if inputs.is_empty() || inputs.iter().any(|p| is_dash(p)) {
        if inputs.len() > 1 {
            return Err("standard input (-i -) cannot be combined with other inputs".into());
        }
        if let Some(dir) = output_dir {
            return Err(format!(
                "{}: is a directory; name the file to write the standard input's output to",
                shown(dir)
            ));
        }
        return Ok(vec![Job {
            input: None,
            output: output.map(Path::to_path_buf),
            input_len: None,
            create_parent: false,
        }]);
    }

    if let Some(dir) = inputs.iter().find(|p| p.is_dir() && !request.recursive) {
        return Err(format!(
            "{}: is a directory; -r processes the files under it",
            shown(dir)
        ));
    }
    let several = inputs.len() > 1 || inputs.iter().any(|p| p.is_dir());
    // With -r, an output directory that does not exist yet is created.
    let makes_dir = request.recursive && several && output.is_some_and(|p| !p.exists());
    let into_dir = output_dir.or(if makes_dir { output } else { None });
    if several && into_dir.is_none() {
        return Err(match output {
            None => "several inputs or a directory need -o DIR, the directory to write into".into(),
            Some(p) => format!(
                "{}: is not a directory; several inputs or a directory need -o DIR",
                shown(p)
            ),
        });
    }
    let mut jobs = Vec::new();
    for input in inputs {
        let meta = fs::metadata(input).map_err(|e| format!("{}: {e}", shown(input)))?;
        if meta.is_dir() {
            // `several` made sure there is an output directory (existing or to create).
            let Some(dir) = into_dir else {
                return Err("a directory needs -o DIR".into());
            };
            for relative in walk(input, skipped)? {
                let source = input.join(&relative);
                let parent = relative
                    .parent()
                    .map_or_else(PathBuf::new, Path::to_path_buf);
                jobs.push(Job {
                    output: Some(named_in(&dir.join(parent), &source, suffix)?),
                    input_len: regular_len(&source),
                    input: Some(source),
                    create_parent: true,
                });
            }
            continue;
        }
        let destination = match (into_dir, output) {
            (Some(dir), _) => Some(named_in(dir, input, suffix)?),
            (None, Some(file)) => Some(file.to_path_buf()),
            (None, None) => None,
        };
        jobs.push(Job {
            input: Some(input.to_path_buf()),
            output: destination,
            input_len: meta.is_file().then_some(meta.len()),
            create_parent: makes_dir,
        });
    }
    // No output may be an input (of this or another job), nor be written twice. `-i X -o X`, the
    // one file named twice, is encryption in place: the output replaces the input only once
    // complete.
    let in_place = jobs.len() == 1 && into_dir.is_none();
    let inputs: HashSet<PathBuf> = if in_place {
        HashSet::new()
    } else {
        jobs.iter()
            .filter_map(|job| job.input.as_deref())
            .filter_map(|input| fs::canonicalize(input).ok())
            .collect()
    };
    let mut seen: HashSet<PathBuf> = HashSet::new();
    for job in &jobs {
        let Some(out) = &job.output else { continue };
        let out_real = fs::canonicalize(out).ok();
        if out_real.as_ref().is_some_and(|real| inputs.contains(real)) {
            return Err(format!(
                "{}: is both an input and an output; choose another -o or --suffix",
                shown(out)
            ));
        }
        let key =
            out_real.unwrap_or_else(|| std::path::absolute(out).unwrap_or_else(|_| out.clone()));
        if !seen.insert(key) {
            return Err(format!("{}: would be written twice", shown(out)));
        }
    }
    Ok(jobs)
}

/// What to do when a job's output file exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Overwrite {
    /// Replace it (the default, as aws-encryption-sdk-cli does).
    Always,
    /// Leave it and skip the job (`--no-overwrite`).
    Never,
    /// Ask on the terminal (`--interactive`).
    Ask,
}

/// Whether the job may write its output; `Never` and a refused `Ask` say why on standard error.
pub(crate) fn may_write(job: &Job, overwrite: Overwrite, quiet: bool) -> io::Result<bool> {
    let Some(out) = &job.output else {
        return Ok(true);
    };
    if overwrite == Overwrite::Always || !fs::metadata(out).is_ok_and(|m| m.is_file()) {
        return Ok(true);
    }
    if overwrite == Overwrite::Never {
        if !quiet {
            let _ = writeln!(
                io::stderr(),
                "envelope: skipped {}: it exists (--no-overwrite)",
                shown(out)
            );
        }
        return Ok(false);
    }
    let mut stderr = io::stderr();
    write!(stderr, "envelope: overwrite {}? [y/N] ", shown(out))?;
    stderr.flush()?;
    let mut answer = String::new();
    io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(
        inputs: &'a [PathBuf],
        output: Option<&'a Path>,
        recursive: bool,
    ) -> Request<'a> {
        Request {
            inputs,
            output,
            recursive,
            suffix: None,
            mode: Mode::Encrypt,
        }
    }

    #[test]
    fn a_tree_is_mirrored_under_the_output_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("in/a/b")).unwrap();
        for file in ["in/x", "in/a/y", "in/a/b/z"] {
            fs::write(d.join(file), b"data").unwrap();
        }
        let inputs = [d.join("in")];
        let out = d.join("out");
        let mut skipped = Vec::new();
        let jobs = plan(&request(&inputs, Some(&out), true), &mut skipped).unwrap();
        let pairs: Vec<(PathBuf, PathBuf)> = jobs
            .iter()
            .map(|j| (j.input.clone().unwrap(), j.output.clone().unwrap()))
            .collect();
        assert_eq!(
            pairs,
            [
                (d.join("in/a/b/z"), d.join("out/a/b/z.encrypted")),
                (d.join("in/a/y"), d.join("out/a/y.encrypted")),
                (d.join("in/x"), d.join("out/x.encrypted")),
            ]
        );
        assert!(
            jobs.iter()
                .all(|j| j.input_len == Some(4) && j.create_parent)
        );
        assert!(skipped.is_empty());
        // Without -r a directory is refused; a tree needs -o.
        assert_eq!(
            plan(&request(&inputs, Some(&out), false), &mut skipped).unwrap_err(),
            format!(
                "{}: is a directory; -r processes the files under it",
                inputs[0].display()
            )
        );
        assert_eq!(
            plan(&request(&inputs, None, true), &mut skipped).unwrap_err(),
            "several inputs or a directory need -o DIR, the directory to write into"
        );
    }

    #[test]
    fn outputs_never_overwrite_inputs_or_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("a"), b"1").unwrap();
        fs::write(d.join("a.x"), b"2").unwrap();
        let inputs = [d.join("a"), d.join("a.x")];
        let mut r = request(&inputs, Some(d), false);
        r.suffix = Some(".x");
        let mut skipped = Vec::new();
        assert_eq!(
            plan(&r, &mut skipped).unwrap_err(),
            format!(
                "{}: is both an input and an output; choose another -o or --suffix",
                d.join("a.x").display()
            )
        );
        let twice = [d.join("a"), d.join("a")];
        assert_eq!(
            plan(&request(&twice, Some(d), false), &mut skipped).unwrap_err(),
            format!(
                "{}: would be written twice",
                d.join("a.encrypted").display()
            )
        );
        let file = d.join("a");
        assert_eq!(
            plan(&request(&inputs, Some(&file), false), &mut skipped).unwrap_err(),
            format!(
                "{}: is not a directory; several inputs or a directory need -o DIR",
                file.display()
            )
        );
    }
}
