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
}

impl Redis {
    /// A new server, or None when there is none to run here.
    pub fn start() -> Option<Redis> {
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
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--dir")
            .arg(&dir.0)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let redis = Redis { child, socket, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !redis.socket.exists() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not open its socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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
