//! Fuzz target `frames_and_footer`: see `envelope_properties::frames_and_footer_round_trip`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = envelope_properties::frames_and_footer_round_trip(data) {
        panic!("{violation}");
    }
});
