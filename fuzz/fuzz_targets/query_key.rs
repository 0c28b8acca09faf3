//! A query string, as a client sends it: finding `key` never panics, a key found is
//! within the limit, and encoding it for a node decodes back to the same key.
#![no_main]
use libfuzzer_sys::fuzz_target;
use storage::http::{decode_component, encode_component, query_key, query_param, MAX_KEY_BYTES};

fuzz_target!(|query: &str| {
    if let Ok(key) = query_key(Some(query)) {
        assert!(!key.is_empty() && key.len() <= MAX_KEY_BYTES);
        assert_eq!(decode_component(&encode_component(&key)).as_deref(), Some(key.as_str()));
    }
    let _ = query_param(Some(query), "filter");
    let _ = decode_component(query);
});
