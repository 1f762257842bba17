//! The `envelope-bench` binary refuses arguments that make no sense with a clear message and a
//! non-zero exit, before any run starts: never a panic, a hang or an allocation it cannot make.
#![allow(clippy::expect_used)]

use std::process::Command;

fn bench(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_envelope-bench"))
        .args(args)
        .output()
        .expect("run envelope-bench");
    assert!(out.stdout.is_empty(), "{args:?} printed a report");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn nonsense_numbers_are_refused_by_name_with_the_range() {
    // The arguments, and what clap prints after "invalid value '<value>' for".
    let rate = "must be between 0.001 and 1000000000 per second";
    let cases = [
        (
            "cache --size 18446744073709551615",
            "'--size <SIZE>': must be between 0 and 268435456",
        ),
        (
            "cache --rate-limit 1e-300",
            &format!("'--rate-limit <RATE_LIMIT>': {rate}"),
        ),
        (
            "cache --threads 0",
            "'--threads <THREADS>': must be between 1 and 4096",
        ),
        (
            "cache --tasks 1000000",
            "'--tasks <TASKS>': must be between 1 and 4096",
        ),
        (
            "cache --contexts 0",
            "'--contexts <CONTEXTS>': must be between 1 and",
        ),
        (
            "cache --max-age=-1",
            "'--max-age <MAX_AGE>': must be more than 0",
        ),
        (
            "cache --latency-ms inf",
            "'--latency-ms <LATENCY_MS>': 'inf' is not a finite number",
        ),
        (
            "cache --messages ten",
            "'--messages <MESSAGES>': 'ten' is not a number",
        ),
        ("plan --rate 0", &format!("'--rate <RATE>': {rate}")),
        (
            "plan --rate nan",
            "'--rate <RATE>': 'nan' is not a finite number",
        ),
        (
            "plan --rate 100 --budget 0",
            "'--budget <BUDGET>': must be more than 0",
        ),
        (
            "fleet --hosts 10,0",
            "'--hosts <HOSTS>': must be between 1 and 100000",
        ),
        ("fleet --rate=-5", &format!("'--rate <RATE>': {rate}")),
        ("large --mib 0", "'--mib <MIB>': must be between 1 and 1024"),
        (
            "floor --seconds 0",
            "'--seconds <SECONDS>': must be more than 0",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.split(' ').collect();
        let (code, stderr) = bench(&args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: invalid value '"),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("' for {expected}")),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_sweep_value_is_checked_like_the_flag_it_sets() {
    for (param, value, expected) in [
        (
            "threads",
            "1,0",
            "envelope-bench: --values 0 for --param threads: must be between 1 and 4096",
        ),
        (
            "size",
            "18446744073709551615",
            "envelope-bench: --values 18446744073709551615 for --param size: must be between 0 and 268435456",
        ),
        (
            "max-messages",
            "0",
            "envelope-bench: --values 0 for --param max-messages: must be between 1 and",
        ),
    ] {
        let out =
            std::env::temp_dir().join(format!("envelope-bench-bad-sweep-{}", std::process::id()));
        let out = out.to_string_lossy().into_owned();
        let args = [
            "sweep",
            "--param",
            param,
            "--values",
            value,
            "--duration",
            "0.1",
            "--out",
            &out,
        ];
        let (code, stderr) = bench(&args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
        assert!(!std::path::Path::new(&out).exists(), "{args:?} wrote {out}");
    }
}
