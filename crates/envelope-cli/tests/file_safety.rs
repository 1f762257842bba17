//! The built `envelope` binary never leaves plaintext on disk, never writes through a file it did
//! not create, and never panics on a closed or full standard output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{Args, BIN, fails_saying, files, stderr};

fn envelope(dir: &Path, args: &(impl Args + ?Sized)) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args.to_args())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn partials(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|f| f.contains("envelope-partial"))
        .collect()
}

/// A directory with `plain` (some text) and `ct` (it, encrypted under the demo key).
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("plain"),
        "the secret plaintext\n".repeat(1000),
    )
    .unwrap();
    let out = envelope(dir.path(), "encrypt --demo-key -i plain -o ct");
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

fn decrypts_to_plain(dir: &Path, message: &str) {
    let out = envelope(dir, &format!("decrypt --demo-key -i {message}"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, fs::read(dir.join("plain")).unwrap());
}

/// Defect: `decrypt -o DIR` (and `-o .`) failed at the final rename and left
/// `DIR.envelope-partial` holding the whole plaintext. Now, as in aws-encryption-sdk-cli, the
/// output goes into the directory as INPUT_NAME.decrypted, and nothing else is written.
#[test]
fn output_to_a_directory_writes_the_named_file_in_it_and_nothing_else() {
    let dir = setup();
    fs::create_dir(dir.path().join("sub")).unwrap();
    let plain = fs::read(dir.path().join("plain")).unwrap();
    for (target, written) in [
        ("sub", "sub/ct.decrypted"),
        (".", "ct.decrypted"),
        ("sub/", "sub/ct.decrypted"),
    ] {
        let before = files(dir.path());
        let out = envelope(dir.path(), &format!("decrypt --demo-key -i ct -o {target}"));
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            fs::read(dir.path().join(written)).unwrap(),
            plain,
            "-o {target}"
        );
        let mut expected = before.clone();
        if !expected.contains(&written.to_string()) {
            expected.push(written.to_string());
            expected.sort();
        }
        assert_eq!(files(dir.path()), expected, "-o {target}");
        fs::remove_file(dir.path().join(written)).unwrap();
    }
    // Standard input has no name to give the file.
    let out = envelope(dir.path(), "decrypt --demo-key -o sub");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains("sub: is a directory; name the file to write the standard input's output to"),
        "{}",
        stderr(&out)
    );
}

/// Defect: the temporary file had a fixed name and was opened with `File::create`: a pre-created
/// symbolic link there was written through, and a pre-created world-readable file was reused.
#[test]
fn a_planted_symlink_or_file_at_the_old_temporary_name_is_never_used() {
    let dir = setup();
    let victim = dir.path().join("victim");
    fs::write(&victim, "do not touch").unwrap();
    symlink(&victim, dir.path().join("out.envelope-partial")).unwrap();
    let planted = dir.path().join("out2.envelope-partial");
    fs::write(&planted, "").unwrap();
    fs::set_permissions(&planted, fs::Permissions::from_mode(0o666)).unwrap();
    for out_name in ["out", "out2"] {
        let out = envelope(
            dir.path(),
            &format!("decrypt --demo-key -i ct -o {out_name}"),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            fs::read(dir.path().join(out_name)).unwrap(),
            fs::read(dir.path().join("plain")).unwrap()
        );
    }
    assert_eq!(fs::read_to_string(&victim).unwrap(), "do not touch");
    assert_eq!(fs::read(&planted).unwrap(), b"");
    assert!(
        fs::symlink_metadata(dir.path().join("out.envelope-partial"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

/// Defect: `-i X.envelope-partial -o X` truncated its own input.
#[test]
fn input_named_like_the_old_temporary_file_is_read_intact() {
    let dir = setup();
    fs::copy(dir.path().join("ct"), dir.path().join("x.envelope-partial")).unwrap();
    let out = envelope(dir.path(), "decrypt --demo-key -i x.envelope-partial -o x");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read(dir.path().join("x")).unwrap(),
        fs::read(dir.path().join("plain")).unwrap()
    );
    // In place, too: the output replaces the input only once it is complete.
    let out = envelope(dir.path(), "encrypt --demo-key -i x -o x");
    assert!(out.status.success(), "{}", stderr(&out));
    decrypts_to_plain(dir.path(), "x");
}

/// Defect: two runs to one `-o` shared one temporary file.
#[test]
fn concurrent_runs_to_one_output_each_write_a_whole_file() {
    let dir = setup();
    let children: Vec<Child> = (0..4)
        .map(|_| {
            Command::new(BIN)
                .current_dir(dir.path())
                .args(["encrypt", "--demo-key", "-i", "plain", "-o", "shared"])
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    decrypts_to_plain(dir.path(), "shared");
    assert!(partials(dir.path()).is_empty());
}

/// Defect: `-o` at a FIFO or device node replaced it with a regular file.
#[test]
fn special_files_are_written_directly() {
    let dir = setup();
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read(fifo).unwrap())
    };
    let out = envelope(dir.path(), "encrypt --demo-key -i plain -o fifo");
    assert!(out.status.success(), "{}", stderr(&out));
    // Checked before joining: had the FIFO been replaced, the reader would wait forever.
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    let through_fifo = reader.join().unwrap();
    fs::write(dir.path().join("via-fifo"), through_fifo).unwrap();
    decrypts_to_plain(dir.path(), "via-fifo");

    let out = envelope(dir.path(), "decrypt --demo-key -i ct -o /dev/null");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    let out = envelope(dir.path(), "decrypt --demo-key -i ct -o /dev/stdout");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, fs::read(dir.path().join("plain")).unwrap());
    let out = envelope(dir.path(), "decrypt --demo-key -i ct -o -");
    assert_eq!(out.stdout, fs::read(dir.path().join("plain")).unwrap());
    assert!(partials(dir.path()).is_empty());
}

#[test]
fn replacing_a_file_keeps_its_permissions_and_a_new_file_is_owner_only_until_done() {
    let dir = setup();
    let existing = dir.path().join("existing");
    fs::write(&existing, "old").unwrap();
    fs::set_permissions(&existing, fs::Permissions::from_mode(0o640)).unwrap();
    let out = envelope(dir.path(), "decrypt --demo-key -i ct -o existing");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::metadata(&existing).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert_eq!(
        fs::read(&existing).unwrap(),
        fs::read(dir.path().join("plain")).unwrap()
    );

    // A link to a file: the file it names is replaced, the link stays.
    symlink("existing", dir.path().join("link")).unwrap();
    let out = envelope(dir.path(), "encrypt --demo-key -i plain -o link");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        fs::symlink_metadata(dir.path().join("link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    decrypts_to_plain(dir.path(), "existing");
}

/// While a decryption is under way its plaintext sits in an owner-only file with a random name;
/// a failure (here: the message is cut short) removes it and leaves the destination untouched.
#[test]
fn a_failed_decryption_leaves_no_plaintext_behind() {
    let dir = setup();
    fs::write(dir.path().join("out"), "previous contents").unwrap();
    let message = fs::read(dir.path().join("ct")).unwrap();
    let (child, stdin, temp) = decrypt_half_of(dir.path(), &message, Stdio::piped());
    let meta = fs::metadata(dir.path().join(&temp)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{temp}");
    assert!(
        temp.starts_with(".out.") && temp.len() > ".out..envelope-partial".len(),
        "{temp}"
    );
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    fails_saying(&out, "truncated");
    assert!(
        !stderr(&out).contains("envelope-partial"),
        "errors name the user's path: {}",
        stderr(&out)
    );
    assert!(partials(dir.path()).is_empty());
    assert_eq!(
        fs::read_to_string(dir.path().join("out")).unwrap(),
        "previous contents"
    );

    // Tampered instead of truncated: the same.
    let mut tampered = message.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    fs::write(dir.path().join("tampered"), tampered).unwrap();
    let out = envelope(dir.path(), "decrypt --demo-key -i tampered -o out");
    assert_eq!(out.status.code(), Some(1));
    assert!(partials(dir.path()).is_empty());
    assert_eq!(
        fs::read_to_string(dir.path().join("out")).unwrap(),
        "previous contents"
    );
}

#[test]
fn an_interrupted_decryption_leaves_no_plaintext_behind() {
    let dir = setup();
    let message = fs::read(dir.path().join("ct")).unwrap();
    for signal in ["INT", "TERM", "HUP"] {
        let (mut child, stdin, _) = decrypt_half_of(dir.path(), &message, Stdio::null());
        let killed = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        assert!(!status.success(), "{signal}");
        drop(stdin);
        assert!(
            partials(dir.path()).is_empty(),
            "SIG{signal} left {:?}",
            partials(dir.path())
        );
        assert!(!dir.path().join("out").exists());
    }
}

/// Start `decrypt -o out` in `dir`, feed it the first half of `message` and wait until its
/// temporary file exists: returns the process, its (open) standard input and the file's name.
fn decrypt_half_of(
    dir: &Path,
    message: &[u8],
    stderr: Stdio,
) -> (Child, std::process::ChildStdin, String) {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(["decrypt", "--demo-key", "-o", "out"])
        .stdin(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&message[..message.len() / 2]).unwrap();
    stdin.flush().unwrap();
    let temp = wait_for_partial(dir);
    (child, stdin, temp)
}

fn wait_for_partial(dir: &Path) -> String {
    let started = Instant::now();
    loop {
        if let Some(found) = partials(dir).into_iter().next() {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no temporary file appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Defect: `-c novalue` or `--suite zz` left an empty partial file behind.
#[test]
fn every_argument_is_checked_before_any_file_is_created() {
    let dir = setup();
    let before = files(dir.path());
    for command in [
        "encrypt --demo-key -c novalue -i plain -o new",
        "encrypt --demo-key --suite zz -i plain -o new",
        "encrypt --demo-key --suite 0579 -i plain -o new",
        "encrypt --demo-key --commitment-policy sometimes -i plain -o new",
        "encrypt --aes-key missing-key-file -i plain -o new",
        "encrypt --demo-key -i missing-input -o new",
        "encrypt -i plain -o new",
        "decrypt --demo-key -c novalue -i ct -o new",
        "decrypt --demo-key -i ct -o no-such-dir/new",
    ] {
        let args: Vec<&str> = command.split(' ').collect();
        let out = envelope(dir.path(), &args);
        // 2: clap's usage errors (a value it parses itself); 1: everything else.
        assert!(
            matches!(out.status.code(), Some(1 | 2)),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(
            !stderr(&out).contains("panicked"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_eq!(files(dir.path()), before, "{args:?}");
    }
}

/// A message whose header lists thousands of encrypted data keys, so `info` prints many lines.
fn many_key_message(dir: &Path) -> PathBuf {
    // 2,000 keys in one header, written by the vectors' own format: build it with the library.
    let path = dir.join("many");
    let mut header = vec![0x02, 0x04, 0x78];
    header.extend_from_slice(&[0x11; 32]);
    header.extend_from_slice(&[0, 0]);
    header.extend_from_slice(&2000u16.to_be_bytes());
    for i in 0..2000u32 {
        let info = format!("key-{i}");
        header.extend_from_slice(&3u16.to_be_bytes());
        header.extend_from_slice(b"raw");
        header.extend_from_slice(&u16::try_from(info.len()).unwrap().to_be_bytes());
        header.extend_from_slice(info.as_bytes());
        header.extend_from_slice(&4u16.to_be_bytes());
        header.extend_from_slice(&[0; 4]);
    }
    header.push(0x02);
    header.extend_from_slice(&4096u32.to_be_bytes());
    header.extend_from_slice(&[0x22; 32]);
    header.extend_from_slice(&[0x33; 16]);
    fs::write(&path, header).unwrap();
    path
}

/// Defect: `envelope info | head -2` and `envelope info > /dev/full` panicked (exit 101).
#[test]
fn info_survives_a_closed_or_full_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let message = many_key_message(dir.path());
    let out = envelope(dir.path(), "info -i many");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() > 2000);

    let mut child = Command::new(BIN)
        .args(["info", "-i"])
        .arg(&message)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));

    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(BIN)
        .args(["info", "-i"])
        .arg(&message)
        .stdout(full)
        .output()
        .unwrap();
    fails_saying(&out, "No space left on device");
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn decrypt_to_a_closed_standard_output_is_a_clear_failure() {
    let dir = setup();
    // Far more than a pipe holds, so the command is still writing when the reader goes away.
    fs::write(dir.path().join("big"), vec![b'x'; 4 << 20]).unwrap();
    let out = envelope(dir.path(), "encrypt --demo-key -i big -o big.ct");
    assert!(out.status.success(), "{}", stderr(&out));
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .args(["decrypt", "--demo-key", "-i", "big.ct"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    fails_saying(&out, "standard output was closed");
}
