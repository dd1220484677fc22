//! The example server as a real process (the `taskboard` binary of this
//! target directory): started on a free port with the environment a test
//! gives it, its log captured, its memory read from `/proc`. Killed on
//! drop; a failing test prints the end of its log.
//!
//! Needs the binary built (`scripts/test.sh` builds it first).

use crate::http_support::Adapter;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `taskboard` binary next to the running test binary.
pub fn binary() -> PathBuf {
    binary_of(Adapter::Actix)
}

/// The example binary of `adapter` (`taskboard` or `taskboard-axum`) next
/// to the running test binary.
pub fn binary_of(adapter: Adapter) -> PathBuf {
    let name = match adapter {
        Adapter::Actix => "taskboard",
        Adapter::Axum => "taskboard-axum",
    };
    // target/<profile>/deps/<this test> → target/<profile>/<name>
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe.parent().and_then(|deps| deps.parent()).expect("target dir").join(name);
    assert!(path.exists(), "{} is missing: run `cargo build -p taskboard --bins` first", path.display());
    path
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A running `taskboard` process.
pub struct Taskboard {
    child: Child,
    /// Where it listens (on 127.0.0.1).
    pub port: u16,
    log: Arc<Mutex<String>>,
}

impl Taskboard {
    /// Starts the binary of `adapter` on `database_url` with `env` (on top
    /// of `PORT`, `BIND`, `WORKERS=1`, `NO_COLOR=1`) and waits until
    /// `/health` answers 200.
    pub async fn start_on(adapter: Adapter, database_url: &str, env: &[(&str, &str)]) -> Taskboard {
        let port = free_port();
        let mut command = Command::new(binary_of(adapter));
        command
            .env("DATABASE_URL", database_url)
            .env("PORT", port.to_string())
            .env("BIND", "127.0.0.1")
            .env("WORKERS", "1")
            .env("NO_COLOR", "1")
            // Tests create their own workspaces.
            .env("TASKBOARD_NO_DEMO", "1")
            .env_remove("REDIS_URL")
            .env_remove("TASKBOARD_TOKENS");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child =
            command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start the taskboard binary");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let process = Taskboard { child, port, log };
        let client = awc::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Ok(res)) =
                tokio::time::timeout(Duration::from_secs(1), client.get(process.url("/health")).send()).await
            {
                if res.status().is_success() {
                    return process;
                }
            }
            assert!(Instant::now() < deadline, "taskboard on port {port} did not come up:\n{}", process.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:<port>{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Its address.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits (bounded) until a line of its log satisfies `found`; returns
    /// that line.
    pub async fn wait_for_log_line(&self, what: &str, found: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(line) = self.log().lines().find(|l| found(l)) {
                return line.to_owned();
            }
            assert!(Instant::now() < deadline, "no log line {what} within 10 s; the log:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Its resident memory in bytes (`VmRSS` of `/proc/<pid>/status`).
    /// Panics when that cannot be read: a memory bound must never pass on a
    /// reading of 0.
    pub fn rss_bytes(&self) -> u64 {
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in {path}:\n{status}"));
        assert!(kib > 0, "{path} reports a VmRSS of 0");
        kib * 1024
    }
}

impl Drop for Taskboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!("--- the last {} lines of taskboard's log ---\n{}", tail.len(), tail.join("\n"));
        }
    }
}
