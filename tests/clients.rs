//! The clients' own test suites, run by `cargo test` against the binary
//! cargo just built: the Python client (`unittest`), the Node client and
//! shared protocol module (`node --test`), and the browser page in headless
//! Chromium (`node --test` + playwright-core).
//!
//! The npm packages are installed into `clients/node_modules` on first use
//! (`npm ci`). Without Chromium the browser test is skipped with a message;
//! with `SWITCHBOARD_REQUIRE_ALL=1` (as in CI) it fails instead.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::npm_packages;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run a command in the repo root with the server binary in
/// SWITCHBOARD_BIN; fail with its whole output if it fails.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(root())
        .env("SWITCHBOARD_BIN", env!("CARGO_BIN_EXE_switchboard"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (is it installed?): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{text}"
    );
    text
}

/// The closing counts of node's test runner: (pass, fail, skipped).
fn node_counts(output: &str) -> (u32, u32, u32) {
    let count = |key: &str| {
        output
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# {key} ")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    (count("pass"), count("fail"), count("skipped"))
}

#[test]
fn python_client() {
    let out = run(
        "python3",
        &["-m", "unittest", "discover", "-s", "clients/python", "-v"],
    );
    let ran = out.lines().filter(|l| l.ends_with("... ok")).count();
    assert!(ran >= 10, "expected the Python tests to run, got:\n{out}");
    eprintln!("python client: {ran} tests ok");
}

#[test]
fn node_client() {
    npm_packages();
    // A test that hangs fails after two minutes, named, instead of
    // holding the whole run.
    let out = run(
        "node",
        &["--test", "--test-timeout=120000", "clients/node/test/"],
    );
    let (pass, fail, skipped) = node_counts(&out);
    assert!(
        pass >= 5 && fail == 0 && skipped == 0,
        "node tests: {pass} passed, {fail} failed, {skipped} skipped\n{out}"
    );
    eprintln!("node client: {pass} tests ok");
}

#[test]
fn browser_client() {
    npm_packages();
    let out = run(
        "node",
        &["--test", "--test-timeout=120000", "clients/web/test/"],
    );
    let (pass, fail, skipped) = node_counts(&out);
    assert_eq!(fail, 0, "{out}");
    if skipped > 0 {
        // Only possible without SWITCHBOARD_REQUIRE_ALL=1: say so loudly.
        eprintln!("\n*** browser test SKIPPED: Chromium not found (apt-get install chromium); CI requires it ***\n");
    } else {
        assert!(pass >= 1, "{out}");
        let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-output/browser/chat.png");
        assert!(
            shot.is_file(),
            "the browser test leaves a screenshot at {}",
            shot.display()
        );
        eprintln!("browser client: ok, screenshot in {}", shot.display());
    }
}
