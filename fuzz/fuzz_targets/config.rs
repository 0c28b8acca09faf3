//! A config file, as a teacher (or a broken editor) writes it: parsing never panics,
//! and a config that loads writes back (without its tokens) as YAML that loads again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use proxy::config::Config;

fuzz_target!(|text: &str| {
    if let Ok(config) = Config::parse(text) {
        let again = Config::parse(&config.to_yaml_without_token());
        assert!(again.is_ok(), "{text:?} loaded but its YAML did not: {again:?}");
    }
});
