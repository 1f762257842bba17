//! `envelope-vectors decrypt MANIFEST...`: run test-vector manifests and print one line per failure
//! and a closing `N passed, N failed, N skipped`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use envelope_vectors::{EncryptOptions, Method, Summary, decrypt_file_with, encrypt_manifest_with};

const USAGE: &str = "usage:
  envelope-vectors decrypt [--stream N | --async-stream N] PATH [PATH...]
                                                 run awses-decrypt manifests or known-answer files,
                                                 one-shot or streaming (input in N-byte chunks)
  envelope-vectors encrypt MANIFEST --out DIR [--cache MAX_MESSAGES] [--stream N]
                                                 write the messages an awses-encrypt manifest describes,
                                                 with an awses-decrypt manifest for any ESDK to replay;
                                                 --cache encrypts through caching CMMs,
                                                 --stream through the streaming API in N-byte writes";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("decrypt") if args.len() > 1 => {
            let (method, paths) = match (args[1].as_str(), args.get(2).and_then(|n| n.parse().ok()))
            {
                ("--stream", Some(n)) => (Method::Stream(n), &args[3..]),
                ("--async-stream", Some(n)) => (Method::AsyncStream(n), &args[3..]),
                _ => (Method::OneShot, &args[1..]),
            };
            if paths.is_empty() {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
            decrypt(paths.iter().map(PathBuf::from).collect(), method)
        }
        Some("encrypt") if args.len() >= 4 && args[2] == "--out" => {
            let mut options = EncryptOptions::default();
            let mut flags = args[4..].chunks(2);
            let parsed = flags.all(|pair| match pair {
                [flag, n] if flag == "--cache" => n
                    .parse()
                    .map(|n| options.cache_max_messages = Some(n))
                    .is_ok(),
                [flag, n] if flag == "--stream" => {
                    n.parse().map(|n| options.stream_chunk = Some(n)).is_ok()
                }
                _ => false,
            });
            if !parsed {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
            encrypt(&PathBuf::from(&args[1]), &PathBuf::from(&args[3]), options)
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn decrypt(paths: Vec<PathBuf>, method: Method) -> ExitCode {
    let mut total = Summary::default();
    for path in paths {
        match decrypt_file_with(&path, method) {
            Ok(summary) => {
                for failure in &summary.failures {
                    println!("FAIL {}: {failure}", path.display());
                }
                for (reason, n) in &summary.skip_reasons {
                    println!("skip {}: {n} test(s): {reason}", path.display());
                }
                total.merge(summary);
            }
            Err(e) => {
                println!("FAIL {}: {e}", path.display());
                total.failed += 1;
            }
        }
    }
    println!("{total}");
    if total.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn encrypt(manifest: &std::path::Path, out: &std::path::Path, options: EncryptOptions) -> ExitCode {
    match encrypt_manifest_with(manifest, out, options) {
        Ok(summary) => {
            for failure in &summary.failures {
                println!("FAIL {failure}");
            }
            for skipped in &summary.skipped {
                println!("skip {skipped}");
            }
            println!(
                "{summary}; decrypt manifest: {}",
                out.join("manifest.json").display()
            );
            if summary.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            println!("FAIL {}: {e}", manifest.display());
            ExitCode::FAILURE
        }
    }
}
