//! `cargo +nightly fuzz run session`: see `switchboard::fuzzing::session`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzzing::session(data));
