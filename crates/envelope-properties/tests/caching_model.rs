//! Property test: random sequences of encrypts (random sizes, contexts, suites), decrypts and clock
//! advances through a caching CMM, checked step by step against the reference model of the caching
//! rules in `envelope_properties::caching_cmm_matches_the_model` (the property the
//! `caching_cmm_model` fuzz target checks): the keyring calls must match the model exactly, and no
//! data key may ever serve more than the limits allow.

use envelope_properties::caching_cmm_matches_the_model;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn caching_matches_the_model(input in proptest::collection::vec(any::<u8>(), 4..400)) {
        if let Err(violation) = caching_cmm_matches_the_model(&input) {
            return Err(TestCaseError::fail(violation.to_string()));
        }
    }
}
