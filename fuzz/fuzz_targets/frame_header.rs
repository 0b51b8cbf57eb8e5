//! `cargo +nightly fuzz run frame_header`: see `switchboard::fuzzing::frame_header`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzzing::frame_header(data));
