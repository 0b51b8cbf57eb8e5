//! The two command-line clients are one product (issue 17): the same help
//! text, and with `--json` the same output, line for line, for the same
//! session. Each runs the same script against its own new server, which
//! already holds two messages from someone else; only the times and the
//! history's epoch may differ.

mod support;

use serde_json::{json, Value};
use std::process::Command;
use support::binary::Binary;
use support::chat::User;
use support::TempDir;

/// Every command the CLIs share, in an order whose output cannot race:
/// a command that prints locally comes after one that waits for the server.
const SCRIPT: &str = "\
/sub news
hello everyone
/pub news breaking news
/multi ghost,tester both of us
/users
/topics
/history
/history news
/search hello
/search #news breaking
/msg ghost are you there
/nick renamed
/nosuch
/search
/with nobody
{\"type\":\"broadcast\",\"text\":\"raw json\",\"id\":\"raw-1\"}
/unsub news
/users
";

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The program and first arguments of each client.
fn client(which: &str) -> (&'static str, String) {
    match which {
        "python" => ("python3", format!("{ROOT}/clients/python/chat.py")),
        _ => ("node", format!("{ROOT}/clients/node/chat.mjs")),
    }
}

/// One run: a new server with two messages in it, the client in --json
/// with the script on stdin (as a guest, or signed in as an account made
/// beforehand). Its stdout, one JSON object per line.
fn session(which: &str, script_text: &str, account: bool) -> Vec<Value> {
    let tmp = TempDir::new(&format!("cli-{which}"));
    let password = tmp.join("password");
    std::fs::write(&password, "a long enough password\n").unwrap();
    let mut who = vec!["--name".to_owned(), "tester".to_owned()];
    if account {
        let made = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["user", "add", "tester", "--password-file"])
            .arg(&password)
            .arg("--db")
            .arg(tmp.join("cli.db"))
            .output()
            .unwrap();
        assert!(made.status.success(), "{made:?}");
        who = vec![
            "--user".to_owned(),
            "tester".to_owned(),
            "--password-file".to_owned(),
        ];
        who.push(password.display().to_string());
    }
    let server = Binary::start(&tmp.join("cli.db"), "", "");
    let mut early = User::join(server.addr, "early");
    for text in ["before you came", "and this"] {
        early.send(json!({"type": "broadcast", "text": text, "id": 1}));
        while early.recv()["type"] != "ack" {}
    }
    drop(early);
    let (program, script) = client(which);
    let url = format!("ws://{}/chat", server.addr);
    let out = support::with_stdin(
        Command::new(program)
            .args([&script, &url, "--json", "--linger", "1"])
            .args(&who),
        script_text,
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{which}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{which}: not a JSON line ({e}): {line}"));
            assert!(value.is_object(), "{which}: not an object: {line}");
            value
        })
        .collect()
}

/// The values that differ from run to run: times and the history's epoch.
fn steady(mut value: Value) -> Value {
    match &mut value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                *v = match key.as_str() {
                    "ts" | "epoch" => json!("*"),
                    _ => steady(v.take()),
                };
            }
        }
        Value::Array(items) => {
            for v in items.iter_mut() {
                *v = steady(v.take());
            }
        }
        _ => {}
    }
    value
}

/// Both clients' outputs for one script, which must be the same.
fn same_output(script: &str, account: bool) -> Vec<Value> {
    support::npm_packages();
    let run = |which: &str| -> Vec<Value> {
        session(which, script, account)
            .into_iter()
            .map(steady)
            .collect()
    };
    let (python, node) = (run("python"), run("node"));
    for (i, (p, n)) in python.iter().zip(&node).enumerate() {
        assert_eq!(p, n, "line {} differs (python, node)", i + 1);
    }
    assert_eq!(
        python.len(),
        node.len(),
        "python {python:#?}\nnode {node:#?}"
    );
    python
}

#[test]
fn signed_in_both_clients_print_the_same_json_too() {
    let out = same_output("/sub news\nhello as an account\n/users\n/history\n", true);
    assert_eq!(out[0]["type"], "welcome");
    assert_eq!(out[0]["guest"], false, "signed in: {:?}", out[0]);
    assert!(out.iter().any(|v| v["type"] == "ack" && v["id"] == 2));
    assert!(out.iter().all(|v| v["result"]["token"].is_null()));
}

#[test]
fn both_clients_print_the_same_json_for_the_same_session() {
    let python = same_output(SCRIPT, false);
    // And it is the session the script asked for.
    let kinds: Vec<&str> = python.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert_eq!(kinds[0], "welcome");
    let replayed: Vec<&Value> = python.iter().filter(|v| v["replayed"] == true).collect();
    assert_eq!(replayed.len(), 2, "the two earlier messages, marked");
    assert_eq!(replayed[0]["text"], "before you came");
    let responses = python.iter().filter(|v| v["type"] == "response").count();
    assert_eq!(
        responses, 9,
        "users, topics, 2 history, 2 search, rename, with, users"
    );
    let statuses: Vec<&Value> = python.iter().filter(|v| v["type"] == "status").collect();
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert_eq!(statuses[0]["event"], "error");
    assert!(statuses[1]["text"]
        .as_str()
        .unwrap()
        .starts_with("usage: /search"));
    assert!(python
        .iter()
        .any(|v| v["type"] == "error" && v["code"] == "unknown_user"));
    assert!(python
        .iter()
        .any(|v| v["type"] == "ack" && v["id"] == "raw-1"));
    assert!(
        python.iter().all(|v| v["result"]["token"].is_null()),
        "no token is ever printed"
    );
}

#[test]
fn both_clients_have_one_help_text() {
    let help = |which: &str| {
        let (program, script) = client(which);
        let out = Command::new(program)
            .args([&script, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let python = help("python");
    assert_eq!(python, help("node"));
    let shared = std::fs::read_to_string(format!("{ROOT}/clients/cli-help.txt")).unwrap();
    assert_eq!(python.trim_end(), shared.trim_end());
    // Every command and option of the help is in clients/README.md's table.
    let readme = std::fs::read_to_string(format!("{ROOT}/clients/README.md")).unwrap();
    let words = shared
        .split_whitespace()
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()));
    for word in words.filter(|w| (w.starts_with('/') && w.len() > 2) || w.starts_with("--")) {
        assert!(
            readme.contains(&format!("`{word}")),
            "clients/README.md does not document {word}"
        );
    }
}
