//! A real `redis-server` for a test, on a unix socket in a folder of its
//! own (never a shared one), with nothing saved to disk; stopped when
//! dropped. Without `redis-server` installed the test is skipped with a
//! message, unless `SWITCHBOARD_REQUIRE_ALL=1` (CI installs it).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;

pub struct Redis {
    child: Child,
    pub socket: PathBuf,
    pub dir: TempDir,
    extra: Vec<String>,
}

/// `redis-server` on `socket` in `dir`, saving nothing unless `extra` says.
fn spawn(socket: &std::path::Path, dir: &TempDir, extra: &[String]) -> Child {
    Command::new("redis-server")
        .args(["--port", "0", "--unixsocketperm", "700", "--save", ""])
        .args(if extra.is_empty() {
            vec!["--appendonly".to_owned(), "no".to_owned()]
        } else {
            extra.to_vec()
        })
        .arg("--unixsocket")
        .arg(socket)
        .arg("--dir")
        .arg(&dir.0)
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts")
}

fn wait_for_socket(socket: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "redis-server did not open its socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Redis {
    /// A new server, or None when there is none to run here.
    pub fn start() -> Option<Redis> {
        Redis::start_with(&[])
    }

    /// A new server that keeps an append-only file, synced at every write
    /// (docs/SCALING.md), so a restart loses nothing acknowledged.
    #[allow(dead_code)]
    pub fn start_durable() -> Option<Redis> {
        Redis::start_with(&["--appendonly", "yes", "--appendfsync", "always"])
    }

    /// Stop it (SIGKILL: no goodbye).
    #[allow(dead_code)]
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Start it again on the same folder and socket, with the same
    /// settings (after [`Redis::stop`]).
    #[allow(dead_code)]
    pub fn start_again(&mut self) {
        self.child = spawn(&self.socket, &self.dir, &self.extra);
        wait_for_socket(&self.socket);
    }

    fn start_with(extra: &[&str]) -> Option<Redis> {
        let found = Command::new("redis-server").arg("--version").output();
        if found.is_err() {
            assert!(
                std::env::var_os("SWITCHBOARD_REQUIRE_ALL").is_none(),
                "redis-server is needed (.ci/run installs it: apt-get install redis-server)"
            );
            eprintln!("skipped: redis-server is not installed");
            return None;
        }
        let dir = TempDir::new("redis");
        let socket = dir.join("redis.sock");
        let extra: Vec<String> = extra.iter().map(|e| e.to_string()).collect();
        let child = spawn(&socket, &dir, &extra);
        wait_for_socket(&socket);
        let redis = Redis {
            child,
            socket,
            dir,
            extra,
        };
        Some(redis)
    }

    /// Its address for `--redis` and `cluster::Address::parse`.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    /// Send it a signal: `STOP` pauses it, `CONT` resumes it.
    pub fn signal(&self, name: &str) {
        super::signal(self.child.id(), name);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
