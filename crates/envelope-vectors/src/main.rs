//! `envelope-vectors decrypt MANIFEST...`: run test-vector manifests and print one line per failure
//! and a closing `N passed, N failed, N skipped`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use envelope_vectors::{EncryptOptions, Summary, decrypt_file, encrypt_manifest_with};

const USAGE: &str = "usage:
  envelope-vectors decrypt PATH [PATH...]        run awses-decrypt manifests or known-answer files
  envelope-vectors encrypt MANIFEST --out DIR [--cache MAX_MESSAGES]
                                                 write the messages an awses-encrypt manifest describes,
                                                 with an awses-decrypt manifest for any ESDK to replay;
                                                 --cache encrypts through caching CMMs";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("decrypt") if args.len() > 1 => decrypt(args[1..].iter().map(PathBuf::from).collect()),
        Some("encrypt") if args.len() >= 4 && args[2] == "--out" => {
            let options = match args.get(4..) {
                Some([]) | None => Some(EncryptOptions::default()),
                Some([flag, n]) if flag == "--cache" => n.parse().ok().map(|n| EncryptOptions {
                    cache_max_messages: Some(n),
                }),
                _ => None,
            };
            match options {
                Some(options) => {
                    encrypt(&PathBuf::from(&args[1]), &PathBuf::from(&args[3]), options)
                }
                None => {
                    eprintln!("{USAGE}");
                    ExitCode::from(2)
                }
            }
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn decrypt(paths: Vec<PathBuf>) -> ExitCode {
    let mut total = Summary::default();
    for path in paths {
        match decrypt_file(&path) {
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
