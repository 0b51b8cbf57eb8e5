//! `cargo +nightly fuzz run token`: see `switchboard::fuzzing::token`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzzing::token(data));
