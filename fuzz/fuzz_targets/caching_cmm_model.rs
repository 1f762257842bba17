//! Fuzz target `caching_cmm_model`: see `envelope_properties::caching_cmm_matches_the_model`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = envelope_properties::caching_cmm_matches_the_model(data) {
        panic!("{violation}");
    }
});
