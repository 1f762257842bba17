//! The built `envelope` binary does what aws-encryption-sdk-cli users expect of its flags:
//! required encryption context on decrypt, Base64 in and out, buffered output, metadata lines in
//! the Python CLI's fields, its suite names, and errors that say what to do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;
use std::process::Output;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

mod support;
use support::{Args, envelope, fails_with, says, stderr};

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

/// A directory with two raw AES keys, `k.bin` and `other.bin`, and `plain`, that commands run in.
struct Dir(tempfile::TempDir);

impl Dir {
    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Run the CLI here with `args`, feeding it `stdin`.
    fn run(&self, args: &(impl Args + ?Sized), stdin: &[u8]) -> Output {
        envelope(self.path(), args, stdin)
    }

    /// What a command that must succeed writes to stdout.
    fn stdout_of(&self, args: &(impl Args + ?Sized), stdin: &[u8]) -> Vec<u8> {
        ok(self.run(args, stdin)).stdout
    }
}

fn setup() -> Dir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("k.bin"), [0x81u8; 32]).unwrap();
    fs::write(dir.path().join("other.bin"), [0x92u8; 32]).unwrap();
    fs::write(dir.path().join("plain"), "plaintext\n".repeat(3000)).unwrap();
    Dir(dir)
}

fn encrypt_with_context(dir: &Path) {
    ok(envelope(
        dir,
        "encrypt --aes-key k.bin -c a=1 -c b=2 -i plain -o ct",
        b"",
    ));
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn decrypt_requires_each_context_pair_and_key_and_writes_nothing_when_one_is_missing() {
    let dir = setup();
    encrypt_with_context(dir.path());
    let before = names(dir.path());
    for (args, reason) in [
        (
            "-c a=1 -c c",
            "the message's encryption context has no key \"c\"",
        ),
        (
            "-c b=3",
            "the message's encryption context has \"b\" = \"2\", not \"3\"",
        ),
        (
            "-c c=1 -c a=2",
            "the message's encryption context has no key \"c\"; the message's encryption \
             context has \"a\" = \"1\", not \"2\"",
        ),
    ] {
        let out = dir.run(&format!("decrypt --aes-key k.bin -i ct -o out {args}"), b"");
        fails_with(&out, &format!("envelope: not decrypted: {reason}\n"));
        assert_eq!(
            names(dir.path()),
            before,
            "{args}: no output, no partial file"
        );
    }
    for args in ["-c a=1 -c b", "-c a -c b=2", ""] {
        let command = format!("decrypt --aes-key k.bin -i ct {args}");
        let out = ok(dir.run(&command, b""));
        assert_eq!(out.stdout, fs::read(dir.path().join("plain")).unwrap());
    }
}

#[test]
fn encrypt_refuses_a_context_key_without_a_value() {
    let dir = setup();
    let out = dir.run("encrypt --demo-key -c a", b"x");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).lines().last().unwrap(),
        "envelope: context \"a\" is not KEY=VALUE (KEY alone is for decrypt, to require the key)"
    );
}

#[test]
fn a_skipped_decrypt_writes_the_python_clis_skipped_metadata_line() {
    let dir = setup();
    encrypt_with_context(dir.path());
    let out = dir.run(
        "decrypt --aes-key k.bin -i ct -o out -c c -c b=3 --metadata-output meta",
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    let line: Value = serde_json::from_slice(&fs::read(dir.path().join("meta")).unwrap()).unwrap();
    assert_eq!(line["skipped"], true);
    assert_eq!(line["reason"], "Missing encryption context key or value");
    assert_eq!(
        line["missing_encryption_context_keys"],
        serde_json::json!(["c"])
    );
    assert_eq!(
        line["missing_encryption_context_pairs"],
        serde_json::json!([["b", "3"]])
    );
    assert_eq!(line["mode"], "decrypt");
    assert_eq!(line["header"]["encryption_context"]["b"], "2");
}

#[test]
fn no_matching_key_lists_the_messages_keys_and_hints_at_key_name() {
    let dir = setup();
    ok(dir.run("encrypt --aes-key k.bin -i plain -o ct", b""));
    let out = dir.run("decrypt --aes-key other.bin -i ct", b"");
    fails_with(
        &out,
        "envelope: could not get materials: no encrypted data key in the message matches raw AES \
         keyring \"envelope-cli\"/\"other.bin\"\n\
         the message's data keys are for:\n  raw AES key \"envelope-cli\" / \"k.bin\"\n\
         the keys given are named \"other.bin\" in namespace \"envelope-cli\"\n\
         hint: a key file's key name defaults to its file name; give the name the message was \
         encrypted under with --key-name (and --key-namespace)\n",
    );
    assert!(out.stdout.is_empty());
    // Named explicitly, there is no hint about defaults, and the right name decrypts.
    let out = dir.run("decrypt --aes-key other.bin --key-name x -i ct", b"");
    assert!(!stderr(&out).contains("hint:"), "{}", stderr(&out));
    says(&out, "named \"x\"");
    ok(dir.run("decrypt --aes-key k.bin -i ct", b""));
}

#[test]
fn a_failed_output_names_the_users_path_not_the_temporary_one() {
    let dir = setup();
    let out = dir.run("encrypt --demo-key -q -o /proc/envelope-out", b"x");
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(
        text.starts_with("envelope: /proc/envelope-out: cannot create a file in /proc: "),
        "{text}"
    );
    assert!(
        !text.contains("envelope-partial") && !text.contains(" at path "),
        "{text}"
    );
}

#[test]
fn encode_and_decode_round_trip_base64_text_and_bad_text_is_refused() {
    let dir = setup();
    let plain = fs::read(dir.path().join("plain")).unwrap();
    let out = ok(dir.run("encrypt --demo-key -q --encode -i plain", b""));
    let text = String::from_utf8(out.stdout).unwrap();
    let message = STANDARD.decode(&text).unwrap();
    assert_eq!(message[0], 2, "a version 2 message, encoded");
    // Wrapped at 76 columns, as base64(1) writes it: still read.
    let wrapped: String = text
        .as_bytes()
        .chunks(76)
        .map(|line| format!("{}\n", std::str::from_utf8(line).unwrap()))
        .collect();
    for input in [text.as_bytes(), wrapped.as_bytes()] {
        let out = ok(dir.run("decrypt --demo-key -q --decode", input));
        assert_eq!(out.stdout, plain);
    }
    // Decrypt can encode its output too.
    let out = ok(dir.run("decrypt --demo-key -q --decode --encode", text.as_bytes()));
    assert_eq!(STANDARD.decode(&out.stdout).unwrap(), plain);
    let bad = format!("{}!", &text[..40]);
    let out = dir.run("decrypt --demo-key -q --decode", bad.as_bytes());
    fails_with(
        &out,
        "envelope: I/O error: the input is not Base64 (--decode)\n",
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn buffer_releases_nothing_from_a_message_whose_signature_fails() {
    let dir = setup();
    ok(dir.run("encrypt --demo-key -q -i plain -o ct", b""));
    let mut message = fs::read(dir.path().join("ct")).unwrap();
    let last = message.len() - 1;
    message[last] ^= 1; // inside the footer's signature
    let streamed = dir.run("decrypt --demo-key -q", &message);
    assert_eq!(streamed.status.code(), Some(1));
    assert!(
        !streamed.stdout.is_empty(),
        "streaming releases authenticated frames before the signature"
    );
    let buffered = dir.run("decrypt --demo-key -q --buffer", &message);
    assert_eq!(buffered.status.code(), Some(1));
    assert_eq!(stderr(&buffered), "envelope: authentication failed\n");
    assert!(buffered.stdout.is_empty(), "--buffer released plaintext");
}

fn suite_of(dir: &Path, message: &[u8]) -> String {
    let out = ok(envelope(dir, &["info"], message));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn algorithm_takes_the_python_esdk_suite_names() {
    let dir = setup();
    let forbid = "forbid-encrypt-allow-decrypt";
    let require = "require-encrypt-require-decrypt";
    for (name, policy, shown) in [
        (
            "AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
            require,
            "0x0478 (ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY)",
        ),
        (
            "AES_128_GCM_IV12_TAG16",
            forbid,
            "0x0014 (ALG_AES_128_GCM_IV12_TAG16_NO_KDF)",
        ),
        (
            "aes_256_gcm_iv12_tag16_hkdf_sha384_ecdsa_p384",
            forbid,
            "0x0378 (ALG_AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384)",
        ),
        (
            "0578",
            require,
            "0x0578 (ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384)",
        ),
    ] {
        let out = ok(dir.run(
            &format!("encrypt --demo-key -q --commitment-policy {policy} --algorithm {name}"),
            b"x",
        ));
        assert_eq!(
            suite_of(dir.path(), &out.stdout),
            format!("suite:              {shown}")
        );
    }
    let out = dir.run("encrypt --demo-key --algorithm AES_999", b"x");
    assert_eq!(out.status.code(), Some(2));
    says(&out, "or a Python ESDK name");
}

#[test]
fn max_encrypted_data_keys_refuses_a_message_with_more_and_zero_is_not_a_limit() {
    let dir = setup();
    ok(dir.run(
        "encrypt --demo-key -q --aes-key k.bin --aes-key other.bin -i plain -o ct",
        b"",
    ));
    let out = dir.run(
        "decrypt --demo-key -q --max-encrypted-data-keys 2 -i ct",
        b"",
    );
    fails_with(
        &out,
        "envelope: 3 encrypted data keys exceed the configured maximum of 2\n",
    );
    ok(dir.run(
        "decrypt --demo-key -q --max-encrypted-data-keys 3 -i ct",
        b"",
    ));
    let out = dir.run("decrypt --demo-key --max-encrypted-data-keys 0", b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

fn metadata_lines(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn metadata_lines_carry_the_python_clis_fields_and_append_unless_told_to_overwrite() {
    let dir = setup();
    let encrypt = [
        "encrypt",
        "--aes-key",
        "k.bin",
        "-c",
        "team=α",
        "-i",
        "plain",
        "-o",
        "ct",
        "--metadata-output",
        "meta",
    ];
    ok(dir.run(&encrypt, b""));
    ok(dir.run(&encrypt, b""));
    assert_eq!(
        metadata_lines(&dir.path().join("meta")).len(),
        2,
        "appended"
    );
    let mut overwrite = encrypt.to_vec();
    overwrite.push("--overwrite-metadata");
    ok(dir.run(&overwrite, b""));
    let lines = metadata_lines(&dir.path().join("meta"));
    assert_eq!(lines.len(), 1, "overwritten");
    let line = &lines[0];
    let root = fs::canonicalize(dir.path()).unwrap();
    assert_eq!(line["mode"], "encrypt");
    assert_eq!(line["input"], root.join("plain").display().to_string());
    assert_eq!(line["output"], root.join("ct").display().to_string());
    let header = &line["header"];
    assert_eq!(
        header["algorithm"],
        "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"
    );
    assert_eq!(header["version"], "2.0");
    assert_eq!(header["content_type"], 2);
    assert_eq!(header["frame_length"], 4096);
    assert_eq!(header["type"], Value::Null);
    assert_eq!(header["header_iv_length"], Value::Null);
    assert_eq!(header["encryption_context"]["team"], "α");
    assert_eq!(
        STANDARD
            .decode(header["message_id"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    assert_eq!(
        STANDARD
            .decode(header["commitment_key"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    let edk = &header["encrypted_data_keys"][0];
    assert_eq!(
        edk["key_provider"]["provider_id"],
        STANDARD.encode("envelope-cli")
    );
    let info = STANDARD
        .decode(edk["key_provider"]["key_info"].as_str().unwrap())
        .unwrap();
    assert_eq!(&info[..5], b"k.bin");
    assert_eq!(info.len(), 5 + 20);
    let mut keys: Vec<&String> = line.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["header", "input", "mode", "output"]);

    // Decrypt: the same header, and header authentication; `-` writes the line to stdout.
    let out = ok(dir.run(
        "decrypt --aes-key k.bin -i ct -o back --metadata-output -",
        b"",
    ));
    let decrypted: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decrypted["mode"], "decrypt");
    assert_eq!(decrypted["header"], line["header"]);
    assert_eq!(decrypted["header_auth"]["iv"], STANDARD.encode([0u8; 12]));
    assert_eq!(
        STANDARD
            .decode(decrypted["header_auth"]["tag"].as_str().unwrap())
            .unwrap()
            .len(),
        16
    );
    assert_eq!(
        fs::read(dir.path().join("back")).unwrap(),
        fs::read(dir.path().join("plain")).unwrap()
    );
}

#[test]
fn metadata_and_output_cannot_both_be_standard_output() {
    let dir = setup();
    let out = dir.run("encrypt --demo-key -q --metadata-output -", b"x");
    fails_with(
        &out,
        "envelope: --metadata-output - and the output would both be standard output; name a \
         file for one\n",
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn quiet_silences_the_demo_key_warning_and_verbose_says_what_was_done() {
    let dir = setup();
    let loud = ok(dir.run(&["encrypt", "--demo-key"], b"x"));
    assert_eq!(
        stderr(&loud),
        "envelope: using the public demo key: never protect real data with it\n"
    );
    let quiet = ok(dir.run("encrypt --demo-key -q", b"x"));
    assert_eq!(stderr(&quiet), "");
    let verbose = ok(dir.run("decrypt --demo-key -q -vv", &quiet.stdout));
    assert_eq!(verbose.stdout, b"x");
    let text = stderr(&verbose);
    assert!(
        text.starts_with(
            "envelope: decrypted <stdin> to <stdout> (1 bytes of plaintext): suite 0x0578"
        ),
        "{text}"
    );
    assert!(
        text.contains("\nenvelope:   raw AES key \"envelope-cli\" / \"demo-key\", IV "),
        "{text}"
    );
    let encrypted = ok(dir.run("encrypt --demo-key -v", b"xy"));
    let text = stderr(&encrypted);
    assert!(
        text.starts_with(
            "envelope: using the public demo key: never protect real data with it\n\
             envelope: encrypted <stdin> to <stdout> (2 bytes of plaintext): suite 0x0578"
        ),
        "{text}"
    );
    assert!(!text.contains("IV"), "-v names no keys: {text}");
}

#[test]
fn info_json_decodes_each_data_keys_owner() {
    let dir = setup();
    let message = dir.stdout_of("encrypt --demo-key -q --aes-key k.bin", b"x");
    let out = ok(dir.run(&["info", "--json"], &message));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["authenticated"], false);
    let keys = info["data_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["kind"], "raw-aes");
    assert_eq!(keys[0]["key_name"], "demo-key");
    assert_eq!(keys[1]["key_name"], "k.bin");
    assert_eq!(keys[0]["iv"].as_str().unwrap().len(), 24);
    assert_eq!(keys[0]["ciphertext_length"], 48);
    assert_eq!(
        info["header"]["algorithm"],
        "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"
    );
    assert!(info["header_length"].as_u64().unwrap() + 64 < message.len() as u64);
    // The text form names the same owners.
    let text = String::from_utf8(dir.stdout_of(&["info"], &message)).unwrap();
    assert!(
        text.contains("encrypted data key: raw AES key \"envelope-cli\" / \"k.bin\", IV "),
        "{text}"
    );
    // And Base64 input is read with --decode.
    let encoded = STANDARD.encode(&message);
    let out = ok(dir.run("info --json --decode", encoded.as_bytes()));
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again, info);
}

#[test]
fn python_cli_flag_names_are_accepted() {
    let dir = setup();
    let message = dir.stdout_of(
        "encrypt --demo-key -q --encryption-context a=1 --max-length 4096",
        b"x",
    );
    let out = dir.run("decrypt --demo-key -q --decrypt-unsigned", &message);
    fails_with(
        &out,
        "envelope: the message uses signed suite 0x0578 \
         (ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384), but this decryption accepts only \
         unsigned messages\n",
    );
    let out = ok(dir.run("decrypt --demo-key -q --encryption-context a -S", &message));
    assert_eq!(out.stdout, b"x");
}

/// `--version` says which crypto backend this build has and whether it is a FIPS module in
/// approved mode.
#[test]
fn version_names_the_backend_and_the_fips_status() {
    let dir = setup();
    let out = ok(dir.run("--version", b""));
    let line = String::from_utf8(out.stdout).unwrap();
    let expected = if cfg!(feature = "fips") {
        "(backend: aws-lc-rs (FIPS module); FIPS: FIPS module in approved mode)"
    } else if cfg!(feature = "aws-lc") {
        "(backend: aws-lc-rs; FIPS: this build has no FIPS module (build with the `fips` feature))"
    } else {
        "(backend: RustCrypto; FIPS: this build has no FIPS module (build with the `fips` feature))"
    };
    assert_eq!(
        line,
        format!("envelope {} {expected}\n", env!("CARGO_PKG_VERSION"))
    );
}
