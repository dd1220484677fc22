//! The processes under test: the Rust example server (`taskboard` on
//! actix-web and `taskboard-axum`, release builds), the Node reference (`bench/reference/server.mjs`), and a private
//! `redis-server` for the two-node runs. Each is started by the harness,
//! watched by its pid, and killed by that pid when its phase ends.

use crate::BoxError;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// Which implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `taskboard` (actix-web adapter).
    Rust,
    /// `taskboard-axum`: the same app through the axum adapter.
    Axum,
    Reference,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Rust => "rust",
            Kind::Axum => "rust-axum",
            Kind::Reference => "reference",
        }
    }
}

/// How to start each kind.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub taskboard: PathBuf,
    /// `taskboard-axum` (by default next to `taskboard`).
    pub taskboard_axum: PathBuf,
    pub reference_dir: PathBuf,
    pub node: String,
    pub log_dir: PathBuf,
}

/// A running server.
pub(crate) struct Server {
    pub port: u16,
    pub pid: u32,
    child: Child,
    log: PathBuf,
}

impl Server {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn ws_base(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// Resident memory now (VmRSS), in bytes.
    pub fn rss(&self) -> Option<u64> {
        proc_status_kb(self.pid, "VmRSS:").map(|kb| kb * 1024)
    }

    /// Peak resident memory since start (VmHWM), in bytes.
    pub fn hwm(&self) -> Option<u64> {
        proc_status_kb(self.pid, "VmHWM:").map(|kb| kb * 1024)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines of its log (for error messages).
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// Kills it (by its pid) and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// A command for a child process that the kernel kills if this harness
/// dies (through `setpriv --pdeathsig KILL` when available), so an
/// interrupted run leaves no servers behind. `setpriv` execs the program:
/// the child's pid is the program's.
fn guarded(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].into_iter().find(|p| Path::new(p).exists());
    match setpriv {
        Some(sp) => {
            let mut c = Command::new(sp);
            c.args(["--pdeathsig", "KILL", "--"]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// A free TCP port on 127.0.0.1 (the OS picks; it is released at once).
pub(crate) fn free_port() -> Result<u16, BoxError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Starts a server of `kind` on `database_url`, optionally with Redis
/// fan-out, and waits until `GET /health` answers 200.
pub(crate) async fn start(
    launch: &Launch,
    kind: Kind,
    name: &str,
    database_url: &str,
    redis_url: Option<&str>,
) -> Result<Server, BoxError> {
    start_with_env(launch, kind, name, database_url, redis_url, &[]).await
}

/// [`start`] with extra environment variables (e.g. `SYNC_HOT_TAIL_BYTES`).
pub(crate) async fn start_with_env(
    launch: &Launch,
    kind: Kind,
    name: &str,
    database_url: &str,
    redis_url: Option<&str>,
    env: &[(&str, &str)],
) -> Result<Server, BoxError> {
    let port = free_port()?;
    let log = launch.log_dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log)?;
    let err = out.try_clone()?;
    let mut cmd = match kind {
        Kind::Rust | Kind::Axum => {
            let program = if kind == Kind::Rust { &launch.taskboard } else { &launch.taskboard_axum };
            let mut c = guarded(program);
            // Request logging (actix Logger, at info) off: it is not part of
            // the sync work and the reference logs nothing either.
            c.env("RUST_LOG", "warn");
            c
        }
        Kind::Reference => {
            let mut c = guarded(&launch.node);
            c.arg("server.mjs").current_dir(&launch.reference_dir).env("NODE_ENV", "production");
            c
        }
    };
    // Both servers talk to PostgreSQL without TLS: the reference's client
    // does not use it unless asked, while taskboard's default (`prefer`,
    // as libpq) would encrypt against a PostgreSQL that offers TLS.
    let database_url = match kind {
        Kind::Rust | Kind::Axum => without_tls(database_url),
        Kind::Reference => database_url.to_owned(),
    };
    cmd.env("DATABASE_URL", database_url)
        .env("PORT", port.to_string())
        .env("BIND", "127.0.0.1")
        .env_remove("REDIS_URL")
        .env_remove("TASKBOARD_TOKENS")
        .env_remove("WORKERS")
        // The harness seeds its own data (the reference ignores this).
        .env("TASKBOARD_NO_DEMO", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .kill_on_drop(true);
    if let Some(url) = redis_url {
        cmd.env("REDIS_URL", url);
    }
    for (key, value) in env {
        cmd.env(key, value);
    }
    let child = cmd.spawn().map_err(|e| format!("cannot start {name}: {e}"))?;
    let pid = child.id().ok_or("no pid")?;
    let mut server = Server { port, pid, child, log };
    let client = reqwest::Client::builder().no_proxy().build()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if !server.alive() {
            return Err(format!("{name} exited during start-up:\n{}", server.log_tail()).into());
        }
        if let Ok(r) = client.get(format!("{}/health", server.base())).send().await {
            if r.status().is_success() {
                return Ok(server);
            }
        }
        if Instant::now() > deadline {
            let tail = server.log_tail();
            server.stop().await;
            return Err(format!("{name} did not answer /health within 60 s:\n{tail}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `database_url` with `sslmode=disable` unless it names a mode (for
/// `taskboard`, whose default `prefer` would encrypt).
pub(crate) fn without_tls(database_url: &str) -> String {
    if database_url.contains("sslmode=") {
        return database_url.to_owned();
    }
    let separator = if database_url.contains('?') { '&' } else { '?' };
    format!("{database_url}{separator}sslmode=disable")
}

/// A private `redis-server` (no persistence) on a free port.
pub(crate) struct Redis {
    pub url: String,
    child: Child,
}

impl Redis {
    pub async fn start(log_dir: &Path) -> Result<Redis, BoxError> {
        let port = free_port()?;
        let log = std::fs::File::create(log_dir.join("redis.log"))?;
        let child = guarded("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").await.is_ok() {
                    if let Ok(n) = s.read(&mut buf).await {
                        if buf[..n].starts_with(b"+PONG") {
                            break;
                        }
                    }
                }
            }
            if Instant::now() > deadline {
                return Err("redis-server did not answer PING within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Redis { url: format!("redis://127.0.0.1:{port}"), child })
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Builds the release `taskboard` and `taskboard-axum` next to this
/// harness's own target directory and returns the path of `taskboard`
/// (`taskboard-axum` is beside it).
pub(crate) fn build_taskboard() -> Result<PathBuf, BoxError> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("no workspace root")?.to_path_buf();
    let exe = std::env::current_exe()?;
    let exe_dir = exe.parent().ok_or("no exe dir")?;
    let target_dir = if exe_dir.ends_with("release") || exe_dir.ends_with("debug") {
        exe_dir.parent().ok_or("no target dir")?.to_path_buf()
    } else {
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace.join("target"))
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    phase!("building the release taskboard servers (cargo build --release -p taskboard)");
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "-p", "taskboard", "--bins", "--target-dir"])
        .arg(&target_dir)
        .current_dir(&workspace)
        .status()?;
    if !status.success() {
        return Err("building taskboard failed".into());
    }
    Ok(target_dir.join("release").join("taskboard"))
}

/// `npm install` in the reference folder; returns the Node version.
pub(crate) fn install_reference(dir: &Path, node: &str) -> Result<String, BoxError> {
    let version =
        std::process::Command::new(node).arg("--version").output().map_err(|e| format!("node not found ({e})"))?;
    if !version.status.success() {
        return Err("`node --version` failed".into());
    }
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    phase!("npm install --no-audit --no-fund (bench/reference, node {version})");
    let out = std::process::Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .output()
        .map_err(|e| format!("npm not found ({e})"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // The first error line that says what failed (npm starts with the
        // error code and ends with where its log is).
        let lines = || err.lines().map(str::trim).filter(|l| !l.is_empty());
        let reason = lines()
            .find(|l| l.starts_with("npm error") && !l.starts_with("npm error code") && !l.contains("complete log"))
            .or_else(|| lines().next_back())
            .unwrap_or("")
            .to_owned();
        return Err(format!("npm install failed: {reason}").into());
    }
    Ok(version)
}
