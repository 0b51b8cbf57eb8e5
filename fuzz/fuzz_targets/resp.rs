//! `cargo +nightly fuzz run resp`: see `switchboard::fuzzing::resp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzzing::resp(data));
