//! Every block of `docs/GUIDE.md` marked `guide-test` is run here, in
//! order, against the real binary started as the guide starts it (with
//! `--trace`), so the guide cannot rot. `localhost:8080` in a block becomes
//! this server's address. Afterwards the trace must show the reader's own
//! frames, as the guide promises.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// (language, code) of every block tagged `guide-test`.
fn tested_blocks(guide: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in guide.lines() {
        match &mut current {
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    let words: Vec<&str> = info.split_whitespace().collect();
                    if words.contains(&"guide-test") {
                        current = Some((words[0].to_owned(), String::new()));
                    }
                }
            }
            Some((_, code)) if line.starts_with("```") => {
                let _ = code;
                blocks.push(current.take().unwrap_or_default());
            }
            Some((_, code)) => {
                code.push_str(line);
                code.push('\n');
            }
        }
    }
    blocks
}

#[test]
fn every_tested_block_of_the_guide_runs() {
    let root = env!("CARGO_MANIFEST_DIR");
    let guide = std::fs::read_to_string(format!("{root}/docs/GUIDE.md")).unwrap();
    let blocks = tested_blocks(&guide);
    assert!(
        blocks.len() >= 8,
        "the guide's runnable blocks are tagged guide-test ({} found)",
        blocks.len()
    );

    let log_path =
        std::env::temp_dir().join(format!("switchboard-guide-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--listen", "127.0.0.1:0", "--trace", "--db", ":memory:"])
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(at) = text.find("listening on ") {
            break text[at + 13..]
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned();
        }
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let port = addr.rsplit(':').next().unwrap().to_owned();

    let mut failures = Vec::new();
    for (i, (lang, code)) in blocks.iter().enumerate() {
        let code = code
            .replace("localhost", "127.0.0.1")
            .replace("8080", &port);
        let (program, args): (&str, Vec<&str>) = match lang.as_str() {
            "python" => ("python3", vec!["-"]),
            "sh" => ("bash", vec!["-euo", "pipefail", "-s"]),
            other => panic!("block {i}: no runner for {other}"),
        };
        let mut child = Command::new(program)
            .args(&args)
            .current_dir(root)
            .env("SWITCHBOARD_PID", server.id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(code.as_bytes())
            .unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        eprintln!("guide block {i} ({lang}): {:?}", started.elapsed());
        if !out.status.success() {
            failures.push(format!(
                "block {i} ({lang}) failed:\n{code}\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let _ = server.wait();
    let trace = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // What the guide says the reader will see in the trace.
    for expected in [
        "tcp: accepted from 127.0.0.1:",
        "client -> server: GET /healthz HTTP/1.1",
        r#"= "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=""#,
        "client -> server: FIN=1 RSV=000 opcode=1 (text) MASK=1 len=5 key=37fa213d",
        r#"unmasked 48 65 6c 6c 6f  "Hello""#,
        "fragment 1 of a text message (FIN=0: more follow)",
        "a control frame between fragments (allowed, §5.4)",
        "protocol error: client frame is not masked; failing the connection with Close 1002",
        r#"\"kind\":\"multicast\""#,
    ] {
        assert!(trace.contains(expected), "the trace lacks {expected:?}");
    }
}
