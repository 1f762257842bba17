//! Fuzz target `header_round_trip`: see `envelope_properties::header_round_trip`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = envelope_properties::header_round_trip(data) {
        panic!("{violation}");
    }
});
