//! `cargo +nightly fuzz run http_head`: see `switchboard::fuzzing::http_head`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzzing::http_head(data));
