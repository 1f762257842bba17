//! Interop with aws-encryption-sdk-cli 4.3.0 (the Python CLI) over moto's AWS KMS: files encrypted
//! by one decrypt in the other, both ways, and the two write the same metadata.
//!
//! Needs `ENVELOPE_PYTHON_CLI` (the `aws-encryption-cli` executable), `ENVELOPE_PYTHON` (a Python
//! with boto3, to create the KMS key) and `ENVELOPE_KMS_ENDPOINT` (moto), as scripts/test.sh sets
//! them. Without them the test says so and passes, unless `ENVELOPE_REQUIRE_PYTHON_CLI` is set.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod support;
use support::{Args, BIN, REGION, create_kms_keys, says, stderr};

struct Peer {
    cli: PathBuf,
    endpoint: String,
    key_arn: String,
}

fn peer() -> Option<Peer> {
    let cli = std::env::var_os("ENVELOPE_PYTHON_CLI");
    let python = std::env::var_os("ENVELOPE_PYTHON");
    let endpoint = std::env::var("ENVELOPE_KMS_ENDPOINT").ok();
    let (Some(cli), Some(python), Some(endpoint)) = (cli, python, endpoint) else {
        assert!(
            std::env::var_os("ENVELOPE_REQUIRE_PYTHON_CLI").is_none(),
            "ENVELOPE_REQUIRE_PYTHON_CLI is set but ENVELOPE_PYTHON_CLI, ENVELOPE_PYTHON or \
             ENVELOPE_KMS_ENDPOINT is not"
        );
        eprintln!("skipped: set ENVELOPE_PYTHON_CLI, ENVELOPE_PYTHON and ENVELOPE_KMS_ENDPOINT");
        return None;
    };
    let key_arn = create_kms_keys(&python, &endpoint, 1, None).remove(0);
    Some(Peer {
        cli: PathBuf::from(cli),
        endpoint,
        key_arn,
    })
}

/// The peer, and an empty directory for the test's files.
fn peer_in_a_new_dir() -> Option<(Peer, tempfile::TempDir)> {
    Some((peer()?, tempfile::tempdir().unwrap()))
}

impl Peer {
    /// The `-w` argument naming the test's KMS key.
    fn key(&self) -> String {
        format!("key={}", self.key_arn)
    }

    fn run(&self, program: &Path, dir: &Path, args: &(impl Args + ?Sized)) -> Output {
        Command::new(program)
            .current_dir(dir)
            .args(args.to_args())
            .env("AWS_ENDPOINT_URL_KMS", &self.endpoint)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", REGION)
            .env("AWS_DEFAULT_REGION", REGION)
            .output()
            .unwrap()
    }

    fn ok(&self, program: &Path, dir: &Path, args: &(impl Args + ?Sized)) -> Output {
        let out = self.run(program, dir, args);
        assert!(
            out.status.success(),
            "{} {:?}: {}",
            program.display(),
            args.to_args(),
            stderr(&out)
        );
        out
    }

    fn python(&self, dir: &Path, args: &(impl Args + ?Sized)) -> Output {
        self.ok(&self.cli, dir, args)
    }

    fn envelope(&self, dir: &Path, args: &(impl Args + ?Sized)) -> Output {
        self.ok(Path::new(BIN), dir, args)
    }

    fn cli(&self, cli: Cli, dir: &Path, args: &(impl Args + ?Sized)) -> Output {
        match cli {
            Cli::Python => self.python(dir, args),
            Cli::Envelope => self.envelope(dir, args),
        }
    }
}

/// Which CLI runs a step.
#[derive(Clone, Copy, Debug)]
enum Cli {
    Python,
    Envelope,
}

impl Cli {
    fn encrypt(self) -> &'static str {
        match self {
            Self::Python => "-e",
            Self::Envelope => "encrypt",
        }
    }

    fn decrypt(self) -> &'static str {
        match self {
            Self::Python => "-d",
            Self::Envelope => "decrypt",
        }
    }
}

fn last_line(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

/// Sizes around the 4 KiB default frame and a multi-frame one, and suites both CLIs name alike.
const SIZES: [usize; 5] = [0, 1, 4096, 4097, 200_000];

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3).to_le_bytes()[0]).collect()
}

#[test]
fn files_encrypted_by_either_cli_decrypt_in_the_other_with_the_same_metadata() {
    let Some((peer, dir)) = peer_in_a_new_dir() else {
        return;
    };
    let (d, key) = (dir.path(), peer.key());
    let mut cases = 0;
    for (i, len) in SIZES.into_iter().enumerate() {
        let suite = if i % 2 == 0 {
            "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"
        } else {
            "AES_256_GCM_HKDF_SHA512_COMMIT_KEY"
        };
        let frame = if i == 4 { "1024" } else { "4096" };
        let plain = format!("plain{i}");
        fs::write(d.join(&plain), plaintext(len)).unwrap();
        // The Python CLI takes `-c` once with every pair; Envelope takes that form too. A value
        // holds a space, so the pairs are added after the line is split.
        let with_context = |line: String| {
            let mut args = line.to_args();
            args.extend(["-c", "purpose=interop", "ünïcode=𝄞 value"].map(String::from));
            args
        };

        // `from` encrypts and `to` decrypts: the plaintext comes back, and the two metadata lines
        // name the same header.
        let one_way = |from: Cli, to: Cli| {
            let (ct, out) = (format!("{from:?}{i}.ct"), format!("{from:?}{i}.out"));
            peer.cli(from, d, &with_context(format!("{} -w {key} --algorithm {suite} --frame-length {frame} -i {plain} -o {ct} --metadata-output encrypt.jsonl", from.encrypt())));
            let encrypted = last_line(&d.join("encrypt.jsonl"));
            peer.cli(
                to,
                d,
                &with_context(format!(
                    "{} -w {key} -i {ct} -o {out} --metadata-output decrypt.jsonl",
                    to.decrypt()
                )),
            );
            assert_eq!(fs::read(d.join(&out)).unwrap(), plaintext(len), "{i}");
            let decrypted = last_line(&d.join("decrypt.jsonl"));
            assert_eq!(decrypted["header"], encrypted["header"], "{i}");
            (ct, decrypted)
        };

        // Python encrypts, Envelope decrypts (a strict key, then discovery).
        let (py_ct, our_decrypted) = one_way(Cli::Python, Cli::Envelope);
        let discovered = peer.envelope(d, &format!("decrypt -w discovery=true -i {py_ct}"));
        assert_eq!(discovered.stdout, plaintext(len), "{i}");

        // The Python CLI's own decrypt metadata of its message: the same line as ours but for
        // the output path.
        let py_out = format!("py{i}.out");
        peer.python(
            d,
            &format!("-d -i {py_ct} -o {py_out} -w {key} --metadata-output py.jsonl"),
        );
        let mut py_decrypted = last_line(&d.join("py.jsonl"));
        let mut ours_line = our_decrypted;
        py_decrypted.as_object_mut().unwrap().remove("output");
        ours_line.as_object_mut().unwrap().remove("output");
        assert_eq!(ours_line, py_decrypted, "{i}");

        // Envelope encrypts, Python decrypts.
        one_way(Cli::Envelope, Cli::Python);
        cases += 1;
    }
    assert_eq!(cases, SIZES.len());
}

#[test]
fn base64_and_discovery_filters_and_context_checks_agree_with_the_python_cli() {
    let Some((peer, dir)) = peer_in_a_new_dir() else {
        return;
    };
    let (d, key) = (dir.path(), peer.key());
    let account = peer.key_arn.split(':').nth(4).unwrap().to_string();
    fs::write(d.join("plain"), plaintext(10_000)).unwrap();

    // --encode from each is read by the other's --decode.
    peer.python(
        d,
        &[
            "-e", "-i", "plain", "-o", "py.b64", "-w", &key, "--encode", "-S",
        ],
    );
    let out = peer.envelope(d, &format!("decrypt -w {key} --decode -i py.b64"));
    assert_eq!(out.stdout, plaintext(10_000));
    peer.envelope(
        d,
        &[
            "encrypt", "-w", &key, "--encode", "-i", "plain", "-o", "ours.b64",
        ],
    );
    peer.python(
        d,
        &[
            "-d", "-i", "ours.b64", "-o", "back", "-w", &key, "--decode", "-S",
        ],
    );
    assert_eq!(fs::read(d.join("back")).unwrap(), plaintext(10_000));

    // Discovery limited to the key's account decrypts in both; another account in neither.
    let accept = format!("discovery-account={account}");
    peer.python(
        d,
        &format!(
            "-d -i ours.b64 --decode -o back2 -S -w discovery=true discovery-partition=aws {accept}"
        ),
    );
    let out = peer.envelope(
        d,
        &format!("decrypt --decode -i py.b64 -w discovery=true discovery-partition=aws {accept}"),
    );
    assert_eq!(out.stdout, plaintext(10_000));
    let refused = peer.run(
        Path::new(BIN),
        d,
        "decrypt --decode -i py.b64 -w discovery=true discovery-partition=aws discovery-account=999999999999",
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(refused.stdout.is_empty());

    // Why `--final-frame empty` is the default: the Python CLI (on the Python ESDK 3.x) refuses
    // a full final frame, the form the specification recommends.
    fs::write(d.join("frame"), plaintext(4096)).unwrap();
    for (form, decrypts) in [("empty", true), ("full", false)] {
        let ct = format!("frame.{form}");
        peer.envelope(
            d,
            &format!("encrypt -w {key} --final-frame {form} -i frame -o {ct}"),
        );
        let out = peer.run(&peer.cli, d, &format!("-d -i {ct} -o - -w {key} -S"));
        assert_eq!(out.status.success(), decrypts, "{form}");
        if decrypts {
            assert_eq!(out.stdout, plaintext(4096));
        } else {
            says(&out, "Invalid final frame length");
        }
    }

    // Trees, with --caching on both sides: the same layout and names (the Python CLI wants the
    // output directory to exist; Envelope creates it).
    fs::create_dir_all(d.join("tree/a")).unwrap();
    fs::write(d.join("tree/x"), "one").unwrap();
    fs::write(d.join("tree/a/y"), "two").unwrap();
    fs::create_dir(d.join("py-tree")).unwrap();
    let caching = ["--caching", "capacity=10", "max_age=60"];
    let mut args = format!("-e -r -i tree -o py-tree -w {key} -S").to_args();
    args.extend(caching.map(String::from));
    peer.python(d, &args);
    let mut args = format!("decrypt -r -i py-tree -o ours-back -w {key} -v").to_args();
    args.extend(caching.map(String::from));
    let out = peer.envelope(d, &args);
    // The Python CLI's cache gave both files one data key; Envelope's cache decrypted it once.
    says(&out, "data-key cache: 1 hits, 1 misses");
    let mut args = format!("encrypt -r -i tree -o ours-tree -w {key}").to_args();
    args.extend(caching.map(String::from));
    peer.envelope(d, &args);
    fs::create_dir(d.join("py-back")).unwrap();
    let mut args = format!("-d -r -i ours-tree -o py-back -w {key} -S").to_args();
    args.extend(caching.map(String::from));
    peer.python(d, &args);
    for back in ["ours-back", "py-back"] {
        assert_eq!(
            fs::read_to_string(d.join(back).join("x.encrypted.decrypted")).unwrap(),
            "one"
        );
        assert_eq!(
            fs::read_to_string(d.join(back).join("a/y.encrypted.decrypted")).unwrap(),
            "two"
        );
    }

    // A required pair the message lacks: both skip it and write the same skipped line (the
    // Python CLI exits 0 after a skip; Envelope exits 1, so that scripts notice).
    peer.envelope(
        d,
        &[
            "encrypt", "-w", &key, "-c", "a=1", "-i", "plain", "-o", "ct",
        ],
    );
    let py = peer.run(
        &peer.cli,
        d,
        &format!("-d -i ct -o py.skip -w {key} -c a=2 b --metadata-output py.jsonl"),
    );
    assert_eq!(py.status.code(), Some(0));
    let ours = peer.run(
        Path::new(BIN),
        d,
        &format!("decrypt -i ct -o ours.skip -w {key} -c a=2 -c b --metadata-output ours.jsonl"),
    );
    assert_eq!(ours.status.code(), Some(1));
    assert!(!d.join("py.skip").exists() && !d.join("ours.skip").exists());
    let mut py_line = last_line(&d.join("py.jsonl"));
    let mut our_line = last_line(&d.join("ours.jsonl"));
    for line in [&mut py_line, &mut our_line] {
        line.as_object_mut().unwrap().remove("output");
    }
    assert_eq!(our_line, py_line);
    assert_eq!(our_line["skipped"], true);
}
