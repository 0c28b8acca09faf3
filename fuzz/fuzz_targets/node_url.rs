//! A join URL, as a student (or an attacker) sends it: parsing never panics, a URL
//! accepted has a host and no query or fragment, and it is the same node as itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use proxy::address::NodeUrl;

fuzz_target!(|url: &str| {
    if let Ok(u) = NodeUrl::parse(url) {
        assert!(!u.host.is_empty() && u.port != 0);
        assert!(!url.contains('#') && !url.contains('?'));
        assert!(u.same_node(&u));
        let _ = proxy::config::check_node("n", url);
    }
});
