//! What the tests of the built binary share: running it, and reading what it left behind.
// Each test file uses some of these.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_envelope");

/// A command line's arguments: a slice of them, or one string split at whitespace as a shell
/// would split it (for arguments with no spaces or quotes in them).
pub(crate) trait Args {
    fn to_args(&self) -> Vec<String>;
}

impl Args for str {
    fn to_args(&self) -> Vec<String> {
        self.split_whitespace().map(str::to_owned).collect()
    }
}

impl<S: AsRef<str>> Args for [S] {
    fn to_args(&self) -> Vec<String> {
        self.iter().map(|s| s.as_ref().to_owned()).collect()
    }
}

impl<S: AsRef<str>, const N: usize> Args for [S; N] {
    fn to_args(&self) -> Vec<String> {
        self.as_slice().to_args()
    }
}

impl Args for String {
    fn to_args(&self) -> Vec<String> {
        self.as_str().to_args()
    }
}

impl<S: AsRef<str>> Args for Vec<S> {
    fn to_args(&self) -> Vec<String> {
        self.as_slice().to_args()
    }
}

/// Run `envelope ARGS` in `dir` with `stdin` as its standard input.
pub(crate) fn envelope(dir: &Path, args: &(impl Args + ?Sized), stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(args.to_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may refuse its arguments before it reads any input.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file under `dir`, recursively, as sorted paths relative to it.
pub(crate) fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            out.extend(
                files(&entry.path())
                    .into_iter()
                    .map(|f| format!("{name}/{f}")),
            );
        } else {
            out.push(name);
        }
    }
    out.sort();
    out
}

/// The Region the KMS tests use on the emulator.
pub(crate) const REGION: &str = "us-west-2";

/// Create `count` keys on the KMS emulator at `endpoint` with `python` (which has boto3), and
/// `alias` for the last one; their ARNs, in order.
pub(crate) fn create_kms_keys(
    python: &OsStr,
    endpoint: &str,
    count: usize,
    alias: Option<&str>,
) -> Vec<String> {
    let created = Command::new(python)
        .args([
            "-c",
            "import boto3, sys\n\
             kms = boto3.client('kms', endpoint_url=sys.argv[1], region_name=sys.argv[2], \
             aws_access_key_id='test', aws_secret_access_key='test')\n\
             arns = [kms.create_key()['KeyMetadata']['Arn'] for _ in range(int(sys.argv[3]))]\n\
             if len(sys.argv) > 4: kms.create_alias(AliasName=sys.argv[4], TargetKeyId=arns[-1])\n\
             print('\\n'.join(arns))",
            endpoint,
            REGION,
            &count.to_string(),
        ])
        .args(alias)
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", stderr(&created));
    let arns: Vec<String> = String::from_utf8(created.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(arns.len(), count);
    arns
}

/// `out`, once the command is seen to have succeeded (else its arguments and standard error).
#[track_caller]
pub(crate) fn succeeded(out: Output, args: &(impl Args + ?Sized)) -> Output {
    assert!(
        out.status.success(),
        "{:?}: {}",
        args.to_args(),
        stderr(&out)
    );
    out
}

/// The command's standard error contains `needle`, whatever its status.
#[track_caller]
pub(crate) fn says(out: &Output, needle: &str) {
    let text = stderr(out);
    assert!(text.contains(needle), "{needle:?} not in: {text}");
}

/// The command exited with status 1 and its standard error contains `needle`.
#[track_caller]
pub(crate) fn fails_saying(out: &Output, needle: &str) {
    let text = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(needle), "{needle:?} not in: {text}");
}

/// The command exited with status 1 and its standard error is exactly `expected`.
#[track_caller]
pub(crate) fn fails_with(out: &Output, expected: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    assert_eq!(stderr(out), expected);
}
