//! Replays every input under `fuzz/regressions/<target>/` through its property, on the stable
//! toolchain, so that what the fuzzer once found stays fixed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use envelope_properties::TARGETS;

/// A frame length (test values are never zero).
fn nz(n: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(n).unwrap()
}

#[test]
fn every_regression_input_holds_its_property() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    assert!(root.is_dir(), "{} is missing", root.display());
    let mut replayed = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let (_, property) = TARGETS
            .iter()
            .find(|(target, _)| *target == name)
            .unwrap_or_else(|| panic!("fuzz/regressions/{name} is not a fuzz target"));
        for input in std::fs::read_dir(&dir).unwrap() {
            let input = input.unwrap().path();
            if input
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            let data = std::fs::read(&input).unwrap();
            if let Err(violation) = property(&data) {
                panic!("{}: {violation}", input.display());
            }
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} regression inputs");
}

#[test]
fn every_target_has_a_fuzz_target_and_a_regression_directory() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    for (name, _) in TARGETS {
        assert!(
            fuzz.join("fuzz_targets")
                .join(format!("{name}.rs"))
                .is_file(),
            "no fuzz target for {name}"
        );
        assert!(
            fuzz.join("regressions").join(name).is_dir(),
            "no regression directory for {name}"
        );
    }
}

/// The properties are not vacuous: each catches what it is about.
#[test]
fn properties_accept_good_input_and_run_on_real_messages() {
    use envelope_properties::{
        caching_cmm_matches_the_model, decrypt_one_shot, encryption_context_round_trip,
        frames_and_footer_round_trip, header_round_trip, streaming_matches_one_shot,
    };
    // A real message under the vectors' aes-256 key, through every property that takes one.
    let bytes: Vec<u8> = (0..32u8).map(|i| i / 10 * 16 + i % 10).collect();
    let keyring = envelope::RawAesKeyring::new(
        "aws-raw-vectors-persistant",
        "aes-256",
        envelope::SecretBytes::new(bytes),
    )
    .unwrap();
    let client = envelope::blocking::Client::new();
    let message = client
        .encrypt(&keyring, &[9u8; 10_000])
        .frame_length(nz(1000))
        .encryption_context(envelope::EncryptionContext::from_iter([("a", "b")]))
        .run()
        .unwrap();
    let ciphertext = message.ciphertext();
    let mut header_input = vec![6u8];
    header_input.extend_from_slice(ciphertext);
    header_round_trip(&header_input).unwrap();
    decrypt_one_shot(ciphertext).unwrap();
    for plan in [
        &[0u8, 0][..],
        &[2, 0, 255, 0],
        &[1, 0, 1],
        &[3, 6, 99, 200, 0],
    ] {
        let mut input = plan.to_vec();
        input.extend_from_slice(ciphertext);
        streaming_matches_one_shot(&input).unwrap();
    }
    let body = &ciphertext[message.header().len()..];
    let mut frames = 1000u32.to_be_bytes().to_vec();
    frames.extend_from_slice(body);
    frames_and_footer_round_trip(&frames).unwrap();
    let context = envelope::EncryptionContext::from_iter([("b", "2"), ("a", "1")]);
    encryption_context_round_trip(&context.serialize().unwrap()).unwrap();
    caching_cmm_matches_the_model(&[
        3, 7, 1, 0, 0, 5, 0, 0, 0, 0, 0, 6, 0, 0, 9, 9, 9, 0, 1, 0, 0,
    ])
    .unwrap();
}
