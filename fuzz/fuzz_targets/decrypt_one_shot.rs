//! Fuzz target `decrypt_one_shot`: see `envelope_properties::decrypt_one_shot`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = envelope_properties::decrypt_one_shot(data) {
        panic!("{violation}");
    }
});
