//! Fuzz target `encryption_context`: see `envelope_properties::encryption_context_round_trip`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = envelope_properties::encryption_context_round_trip(data) {
        panic!("{violation}");
    }
});
