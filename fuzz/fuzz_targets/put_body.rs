//! A put's body, as anyone on the internet sends it: parsing never panics, and a value
//! accepted is JSON text a reader can parse.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(value) = storage::routes::parse_value(body) {
        assert!(serde_json::from_str::<serde_json::Value>(value).is_ok(), "{value:?}");
    }
});
