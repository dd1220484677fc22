//! A TCP proxy between a pool and the test PostgreSQL that can cut one
//! connection at its next `COMMIT`: before PostgreSQL gets it (the
//! transaction rolls back), or after PostgreSQL answered it (the
//! transaction committed, but its client never learns so). Both leave the
//! client with a commit whose outcome it cannot know. It can also take
//! PostgreSQL away altogether ([`PgProxy::set_down`]): every connection is
//! closed and new ones are dropped at once, until it is brought back.
//!
//! It reads the frontend protocol's message framing (the untyped startup
//! packets, then `type + length + body`) only to find a simple-query
//! `COMMIT`; everything else passes through unchanged. Hand-written: no
//! crate offers a PostgreSQL proxy with a cut at one message.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Where the next cut happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Close the connection instead of passing on its `COMMIT`.
    BeforeCommit,
    /// Pass the `COMMIT` on, wait for PostgreSQL's `CommandComplete`, and
    /// close the connection without passing that on.
    AfterCommit,
}

#[derive(Default)]
struct State {
    armed: Option<Cut>,
    fired: usize,
}

/// The proxy, listening on `127.0.0.1:<port>` until dropped.
pub struct PgProxy {
    /// Where it listens.
    pub port: u16,
    state: Arc<Mutex<State>>,
    /// Whether PostgreSQL is "away" (see [`PgProxy::set_down`]).
    down: tokio::sync::watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

/// A simple-query `COMMIT` (`Q`, length, `COMMIT\0`).
const COMMIT: &[u8] = b"Q\0\0\0\x0bCOMMIT\0";
/// Its `CommandComplete` answer (`C`, length, `COMMIT\0`).
const COMMITTED: &[u8] = b"C\0\0\0\x0bCOMMIT\0";
/// The codes of the startup packets after which another startup packet
/// follows (SSL and GSS encryption requests).
const ENCRYPTION_REQUESTS: [u32; 2] = [80_877_103, 80_877_104];

impl PgProxy {
    /// Starts a proxy to the test PostgreSQL (`host:port` of
    /// [`crate::admin_url`]).
    pub async fn start() -> PgProxy {
        let upstream = upstream_address(&crate::admin_url());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let (down, is_down) = tokio::sync::watch::channel(false);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *is_down.borrow() {
                    drop(client);
                    continue;
                }
                let (state, upstream, is_down) = (shared.clone(), upstream.clone(), is_down.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        relay(client, server, state, is_down).await;
                    }
                });
            }
        });
        PgProxy { port, state, down, accept }
    }

    /// The URL of database `name` through the proxy.
    pub fn url(&self, name: &str) -> String {
        let admin = crate::admin_url();
        let (scheme, rest) = admin.split_once("://").expect("scheme://");
        let user = rest.split_once('@').map(|(user, _)| format!("{user}@")).unwrap_or_default();
        // Plain text: the proxy reads the protocol (the default `sslmode`
        // would take TLS through it).
        format!("{scheme}://{user}127.0.0.1:{}/{name}?sslmode=disable", self.port)
    }

    /// Cuts the next connection that sends `COMMIT`, once.
    pub fn arm(&self, cut: Cut) {
        self.lock().armed = Some(cut);
    }

    /// Takes PostgreSQL away (`true`: every relayed connection is closed,
    /// new ones are closed as soon as they are accepted) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }

    /// How many cuts happened.
    pub fn fired(&self) -> usize {
        self.lock().fired
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// `host:port` of a `postgres://[user@]host[:port]/db` URL.
fn upstream_address(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, rest)| rest);
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

/// Relays one connection; returns when either side closes or the cut
/// happened (dropping both sockets closes them).
async fn relay(
    mut client: TcpStream,
    mut server: TcpStream,
    state: Arc<Mutex<State>>,
    mut is_down: tokio::sync::watch::Receiver<bool>,
) {
    let (mut from_client, mut to_client) = client.split();
    let (mut from_server, mut to_server) = server.split();
    let mut pending: Vec<u8> = Vec::new();
    let mut startup = true;
    // After an `AfterCommit` cut passed the `COMMIT` on: what PostgreSQL
    // answered, held back.
    let mut withheld: Option<Vec<u8>> = None;
    let (mut up, mut down) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    loop {
        tokio::select! {
            // (The borrow `wait_for` returns is not `Send`: drop it inside.)
            () = async { drop(is_down.wait_for(|down| *down).await) } => return,
            n = from_client.read(&mut up), if withheld.is_none() => {
                let Ok(n @ 1..) = n else { return };
                pending.extend_from_slice(&up[..n]);
                while let Some(len) = next_message(&pending, startup) {
                    let message: Vec<u8> = pending.drain(..len).collect();
                    if startup {
                        let code = u32::from_be_bytes([message[4], message[5], message[6], message[7]]);
                        startup = ENCRYPTION_REQUESTS.contains(&code);
                    } else if message == COMMIT {
                        let cut = {
                            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                            let cut = state.armed.take();
                            if cut == Some(Cut::BeforeCommit) {
                                state.fired += 1;
                            }
                            cut
                        };
                        match cut {
                            Some(Cut::BeforeCommit) => return,
                            Some(Cut::AfterCommit) => {
                                // Hold back answers from here on, then pass
                                // the `COMMIT` on; nothing more from the client.
                                withheld = Some(Vec::new());
                                if to_server.write_all(&message).await.is_err() {
                                    return;
                                }
                                break;
                            }
                            None => {}
                        }
                    }
                    if to_server.write_all(&message).await.is_err() {
                        return;
                    }
                }
            }
            n = from_server.read(&mut down) => {
                let Ok(n @ 1..) = n else { return };
                match withheld.as_mut() {
                    Some(held) => {
                        held.extend_from_slice(&down[..n]);
                        if held.windows(COMMITTED.len()).any(|w| w == COMMITTED) {
                            state.lock().unwrap_or_else(|e| e.into_inner()).fired += 1;
                            return;
                        }
                    }
                    None => {
                        if to_client.write_all(&down[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// The length of the first complete message in `buf`, if there is one: a
/// startup packet (`length` first) or a typed message (`type`, `length`).
fn next_message(buf: &[u8], startup: bool) -> Option<usize> {
    let at = usize::from(!startup);
    let len = buf.get(at..at + 4)?;
    let len = at + u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    (buf.len() >= len).then_some(len)
}
