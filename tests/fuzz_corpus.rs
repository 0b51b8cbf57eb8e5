//! Every input in `fuzz/corpus/NAME/` (the seeds, and what `cargo fuzz`
//! kept for new coverage) through the same target body as the fuzzer,
//! on the stable toolchain: CI replays the whole corpus on every run, and
//! an input that once crashed a target stays here as a regression test.

use std::path::Path;

/// Run `target` on every file of `fuzz/corpus/NAME`; how many ran.
fn replay(name: &str, target: fn(&[u8])) -> usize {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let entries = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e} (run fuzz/seeds.py)", folder.display()));
    let mut ran = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| target(&data));
        assert!(outcome.is_ok(), "{name}: {} panics", path.display());
        ran += 1;
    }
    ran
}

/// A target's name (its corpus folder) and body.
type Target = (&'static str, fn(&[u8]));

#[test]
fn the_whole_corpus_of_every_target_runs_clean() {
    use switchboard::fuzzing as f;
    let targets: [Target; 6] = [
        ("frame_header", f::frame_header),
        ("session", f::session),
        ("http_head", f::http_head),
        ("chat_json", f::chat_json),
        ("token", f::token),
        ("resp", f::resp),
    ];
    for (name, target) in targets {
        let ran = replay(name, target);
        println!("{name}: {ran} inputs");
        assert!(ran >= 5, "{name}: only {ran} inputs");
    }
}
