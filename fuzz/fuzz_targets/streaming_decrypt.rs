//! Fuzz target `streaming_decrypt`: see `envelope_properties::streaming_matches_one_shot`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = envelope_properties::streaming_matches_one_shot(data) {
        panic!("{violation}");
    }
});
