//! The built binary over many files: `-r` trees mirrored under `-o DIR`, several inputs into a
//! directory, `--suffix`, `--no-overwrite`, `--interactive`, `--caching` (data keys reused across
//! the files of one command), shell completions and the progress bar.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

mod support;
use support::{Args, BIN, envelope, fails_saying, files, says, stderr, succeeded};

fn ok(dir: &Path, args: &(impl Args + ?Sized)) -> Output {
    succeeded(envelope(dir, args, b""), args)
}

/// A tree `in/` with files at three depths.
fn tree(d: &Path) {
    fs::create_dir_all(d.join("in/a/b")).unwrap();
    for (file, text) in [("in/top", "t"), ("in/a/mid", "mm"), ("in/a/b/deep", "ddd")] {
        fs::write(d.join(file), text).unwrap();
    }
}

#[test]
fn a_tree_is_encrypted_and_decrypted_into_mirrored_directories() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tree(d);
    let out = ok(
        d,
        "encrypt --demo-key -q -r -i in -o ct --metadata-output meta.jsonl",
    );
    assert!(out.stdout.is_empty());
    assert_eq!(
        files(&d.join("ct")),
        ["a/b/deep.encrypted", "a/mid.encrypted", "top.encrypted"]
    );
    // One metadata line per file, in the order they were processed.
    let meta = fs::read_to_string(d.join("meta.jsonl")).unwrap();
    assert_eq!(meta.lines().count(), 3);
    assert!(meta.lines().all(|l| l.contains("\"mode\":\"encrypt\"")));
    // Decrypt the tree with no suffix: the original names come back.
    ok(d, "decrypt --demo-key -q -r -i ct -o back --suffix");
    assert_eq!(
        files(&d.join("back")),
        ["a/b/deep.encrypted", "a/mid.encrypted", "top.encrypted"]
    );
    ok(d, "decrypt --demo-key -q -R -i ct -o plain --suffix .txt");
    assert_eq!(
        fs::read_to_string(d.join("plain/a/b/deep.encrypted.txt")).unwrap(),
        "ddd"
    );
    assert_eq!(
        fs::read_to_string(d.join("plain/top.encrypted.txt")).unwrap(),
        "t"
    );

    // Without -r a directory is refused, and a tree needs somewhere to go; nothing is written.
    let before = files(d);
    let out = envelope(d, "encrypt --demo-key -i in -o x", b"");
    fails_saying(&out, "in: is a directory; -r processes the files under it");
    let out = envelope(d, "encrypt --demo-key -r -i in", b"");
    fails_saying(&out, "several inputs or a directory need -o DIR");
    assert_eq!(files(d), before);
}

#[test]
fn several_inputs_go_into_a_directory_and_a_failure_names_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in ["a.txt", "b.txt", "c.txt"] {
        fs::write(d.join(name), name).unwrap();
    }
    fs::create_dir(d.join("out")).unwrap();
    // What a shell makes of `-i *.txt`.
    ok(d, "encrypt --demo-key -q -i a.txt b.txt c.txt -o out");
    assert_eq!(
        files(&d.join("out")),
        ["a.txt.encrypted", "b.txt.encrypted", "c.txt.encrypted"]
    );
    // A file that is not a message stops the run at that file, named; earlier ones are done.
    fs::write(d.join("out/b.txt.encrypted"), b"not a message").unwrap();
    let out = envelope(
        d,
        "decrypt --demo-key -q -i out/a.txt.encrypted out/b.txt.encrypted out/c.txt.encrypted -o .",
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("envelope: out/b.txt.encrypted: "),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        fs::read_to_string(d.join("a.txt.encrypted.decrypted")).unwrap(),
        "a.txt"
    );
    assert!(
        !d.join("b.txt.encrypted.decrypted").exists()
            && !d.join("c.txt.encrypted.decrypted").exists()
    );
    // Several inputs need a directory; one output may not be written twice or replace an input.
    let out = envelope(d, "encrypt --demo-key -i a.txt b.txt -o single", b"");
    assert!(
        stderr(&out)
            .contains("single: is not a directory; several inputs or a directory need -o DIR"),
        "{}",
        stderr(&out)
    );
    let out = envelope(d, "encrypt --demo-key -i a.txt a.txt -o out", b"");
    says(&out, "out/a.txt.encrypted: would be written twice");
    let out = envelope(d, "encrypt --demo-key -i a.txt -o . --suffix", b"");
    says(
        &out,
        "is both an input and an output; choose another -o or --suffix",
    );
    assert_eq!(fs::read_to_string(d.join("a.txt")).unwrap(), "a.txt");
}

#[test]
fn existing_outputs_are_kept_with_no_overwrite_and_asked_about_with_interactive() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("plain"), "secret").unwrap();
    fs::write(d.join("keep"), "old").unwrap();
    let out = ok(d, "encrypt --demo-key --no-overwrite -i plain -o keep");
    says(&out, "skipped keep: it exists (--no-overwrite)");
    assert_eq!(fs::read_to_string(d.join("keep")).unwrap(), "old");
    let quiet = ok(d, "encrypt --demo-key -q --no-overwrite -i plain -o keep");
    assert!(quiet.stderr.is_empty());
    // --interactive: "n" keeps the file, "y" replaces it.
    let out = envelope(
        d,
        "encrypt --demo-key -q --interactive -i plain -o keep",
        b"n\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    says(&out, "overwrite keep? [y/N]");
    assert_eq!(fs::read_to_string(d.join("keep")).unwrap(), "old");
    let out = envelope(
        d,
        "encrypt --demo-key -q --interactive -i plain -o keep",
        b"y\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let back = ok(d, "decrypt --demo-key -q -i keep");
    assert_eq!(back.stdout, b"secret");
    // A new file is written without asking; the two flags exclude each other; answers cannot
    // come from standard input when it is the data.
    let out = envelope(
        d,
        "encrypt --demo-key -q --interactive -i plain -o new",
        b"",
    );
    assert!(
        out.status.success() && !stderr(&out).contains("overwrite"),
        "{}",
        stderr(&out)
    );
    let out = envelope(
        d,
        "encrypt --demo-key --interactive --no-overwrite -i plain -o x",
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    let out = envelope(d, "encrypt --demo-key --interactive -o x", b"data");
    fails_saying(&out, "--interactive reads its answers from standard input");
}

#[test]
fn caching_reuses_one_data_key_across_the_files_of_a_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(d.join("in")).unwrap();
    for i in 0..20 {
        fs::write(d.join(format!("in/f{i:02}")), format!("file {i}")).unwrap();
    }
    let cached = ok(
        d,
        "encrypt --demo-key -q -v -r -i in -o ct --caching capacity=10 max_age=60",
    );
    says(
        &cached,
        "data-key cache: 19 hits, 1 misses, 0 not cacheable",
    );
    // Every file carries the same encrypted data key, so decryption hits the cache too.
    let edk = |file: &str| {
        let out = ok(d, &format!("info --json -i {file}"));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["header"]["encrypted_data_keys"].clone()
    };
    assert_eq!(edk("ct/f00.encrypted"), edk("ct/f19.encrypted"));
    let back = ok(
        d,
        "decrypt --demo-key -q -v -r -i ct -o back --suffix --caching capacity=10 max_age=60",
    );
    says(&back, "data-key cache: 19 hits, 1 misses, 0 not cacheable");
    assert_eq!(
        fs::read_to_string(d.join("back/f07.encrypted")).unwrap(),
        "file 7"
    );
    // max_messages_encrypted bounds the reuse: 20 files at 5 messages a key take 4 keys.
    let limited = ok(
        d,
        "encrypt --demo-key -q -v -r -i in -o ct2 --caching capacity=10 max_age=60 max_messages_encrypted=5",
    );
    says(&limited, "data-key cache: 16 hits, 4 misses");
    // Without --caching every file has its own data key.
    ok(d, "encrypt --demo-key -q -r -i in -o ct3");
    assert_ne!(edk("ct3/f00.encrypted"), edk("ct3/f01.encrypted"));
    // A pipe's length is unknown: not cacheable, said so.
    let out = envelope(
        d,
        "encrypt --demo-key -q -v --caching capacity=1 max_age=1",
        b"data",
    );
    says(&out, "0 hits, 0 misses, 1 not cacheable");
    // Bad settings are refused before anything is written.
    let out = envelope(
        d,
        "encrypt --demo-key -i in/f00 -o never --caching capacity=10",
        b"",
    );
    fails_saying(&out, "--caching needs max_age=SECONDS");
    assert!(!d.join("never").exists());
}

#[test]
fn completions_are_printed_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "_envelope()"),
        ("zsh", "#compdef envelope"),
        ("fish", "complete -c envelope"),
        ("elvish", "envelope"),
        ("powershell", "envelope"),
    ] {
        let out = ok(dir.path(), &["completions", shell]);
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell}");
        assert!(script.contains("wrapping-keys"), "{shell}");
    }
}

/// The progress bar appears only when standard error is a terminal: run under `script`, which
/// gives the command a pseudo-terminal (skipped where util-linux's `script` is missing).
#[test]
fn a_progress_bar_is_drawn_on_a_terminal_only_and_never_with_q() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("big"), vec![7u8; 9 << 20]).unwrap();
    // Not a terminal: standard error holds only the demo-key warning.
    let out = ok(d, "encrypt --demo-key -i big -o ct");
    assert_eq!(
        stderr(&out),
        "envelope: using the public demo key: never protect real data with it\n"
    );
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped the terminal half: no `script` command");
        return;
    }
    let run = |extra: &str| {
        let command = format!("{BIN} decrypt --demo-key -i ct -o back {extra}");
        let out = Command::new("script")
            .current_dir(d)
            .args(["-qec", &command, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let with_bar = run("");
    assert_eq!(fs::read(d.join("back")).unwrap(), vec![7u8; 9 << 20]);
    assert!(with_bar.contains("MiB"), "{with_bar:?}");
    for flag in ["-q", "--no-progress"] {
        let without = run(flag);
        assert!(!without.contains("MiB"), "{flag}: {without:?}");
    }
}

/// `--frame-length` sets the header's frame length (0 is refused by the parser), and
/// `--final-frame` picks how an exact multiple of it ends: `empty` (the default, 32 bytes longer)
/// or `full`; both decrypt. `-b` is `--buffer`, as in the Python CLI.
#[test]
fn frame_length_and_final_frame_shape_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("plain"), vec![1u8; 2048]).unwrap();
    let mut lengths = Vec::new();
    for form in ["empty", "full"] {
        let ct = format!("ct.{form}");
        ok(
            d,
            &format!(
                "encrypt --demo-key -q --frame-length 1024 --algorithm AES_256_GCM_HKDF_SHA512_COMMIT_KEY --final-frame {form} -i plain -o {ct}"
            ),
        );
        let info = ok(d, &format!("info --json -i {ct}"));
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(info["header"]["frame_length"], 1024, "{form}");
        lengths.push(fs::metadata(d.join(&ct)).unwrap().len());
        let back = ok(d, &format!("decrypt --demo-key -q -b -i {ct}"));
        assert_eq!(back.stdout, vec![1u8; 2048], "{form}");
    }
    // A regular frame's sequence number, IV and tag: 32 bytes.
    assert_eq!(lengths[0], lengths[1] + 32, "{lengths:?}");
    let out = envelope(d, "encrypt --demo-key --frame-length 0 -i plain", b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
