//! `cargo +nightly fuzz run chat_json`: see `switchboard::fuzzing::chat_json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzzing::chat_json(data));
