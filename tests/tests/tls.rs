//! TLS to PostgreSQL (`sslmode`, `sslrootcert`) and to Redis (`rediss://`).
//!
//! `sslmode=require` runs against the local PostgreSQL (TLS on, with a
//! self-signed certificate). Certificate checks (`verify-ca`,
//! `verify-full`) run against a throwaway cluster started here (`initdb`
//! into a temporary directory, a free port, trust auth) whose certificate
//! for `localhost` and 127.0.0.1 is signed by a CA generated in the test;
//! `rediss://` against a `redis-server` started here with the same
//! certificate.

use diesel::sql_types::{BigInt, Bool};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use stratasync_core::engine::BootstrapParams;
use stratasync_core::realtime::HubConfig;
use stratasync_core::storage::{self, Conn, PoolConfig};
use stratasync_tests::http_support::Adapter;
use stratasync_tests::ws_support::*;
use stratasync_tests::*;

#[derive(diesel::QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    v: bool,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Whether this session's connection is encrypted (PostgreSQL's own view).
async fn encrypted(conn: &mut Conn) -> bool {
    let row: Flag = diesel::sql_query("SELECT ssl AS v FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(conn)
        .await
        .expect("pg_stat_ssl");
    row.v
}

/// The error of connecting to `url` (the test fails if it connects).
async fn refused(url: &str) -> String {
    match storage::establish(url).await {
        Ok(_) => panic!("{url} connected"),
        Err(e) => e.to_string(),
    }
}

/// A throwaway directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("stratasync-{what}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA and a certificate it signed for `localhost` and 127.0.0.1, as PEM.
struct Certs {
    ca: String,
    server_cert: String,
    server_key: String,
}

fn certs(ca_name: &str) -> Certs {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    server.distinguished_name.push(DnType::CommonName, "localhost");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = server.signed_by(&key, &ca).unwrap();
    Certs { ca: ca.pem(), server_cert: cert.pem(), server_key: key.serialize_pem() }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The directory of PostgreSQL's server programs (`initdb`, `postgres`):
/// `STRATASYNC_PG_BIN`, else the newest `/usr/lib/postgresql/<v>/bin`.
fn pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("STRATASYNC_PG_BIN") {
        return dir.into();
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server programs under /usr/lib/postgresql (or set STRATASYNC_PG_BIN)")
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb under /usr/lib/postgresql/<version>/bin").1
}

/// PostgreSQL refuses to run as root: as root, run its programs as the
/// `postgres` user (and hand it the files they need).
fn as_server_user(program: &Path) -> Command {
    let root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
    if !root {
        return Command::new(program);
    }
    let mut command = Command::new("setpriv");
    command.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--pdeathsig=KILL", "--"]).arg(program);
    command
}

fn give_to_server_user(path: &Path) {
    let root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
    if root {
        let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(path).status().expect("chown");
        assert!(status.success(), "chown {}", path.display());
    }
}

/// A PostgreSQL cluster of its own, with TLS on, stopped on drop.
struct ThrowawayPostgres {
    port: u16,
    child: Child,
    _dir: TempDir,
}

impl ThrowawayPostgres {
    async fn start(certs: &Certs) -> ThrowawayPostgres {
        let dir = TempDir::new("pg");
        let cert = dir.write("server.crt", &certs.server_cert);
        let key = dir.write("server.key", &certs.server_key);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod key");
        let data = dir.0.join("data");
        give_to_server_user(&dir.0);
        let bin = pg_bin();
        let out = as_server_user(&bin.join("initdb"))
            .args(["--auth=trust", "--username=postgres", "--no-sync", "--encoding=UTF8", "-D"])
            .arg(&data)
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        // In the configuration file rather than on the command line, so
        // that `ALTER SYSTEM` can turn TLS off later.
        let settings = format!(
            "\nlisten_addresses = '127.0.0.1'\nfsync = off\nssl = on\nssl_cert_file = '{}'\n\
             ssl_key_file = '{}'\nunix_socket_directories = '{}'\n",
            cert.display(),
            key.display(),
            dir.0.display()
        );
        let mut conf = std::fs::OpenOptions::new().append(true).open(data.join("postgresql.conf")).expect("conf");
        std::io::Write::write_all(&mut conf, settings.as_bytes()).expect("write conf");
        let port = free_port();
        let child = as_server_user(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        let server = ThrowawayPostgres { port, child, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while storage::establish(&server.url("sslmode=disable")).await.is_err() {
            assert!(Instant::now() < deadline, "the throwaway PostgreSQL did not start on port {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    /// The URL of its `postgres` database on `localhost`, with `query`.
    fn url(&self, query: &str) -> String {
        format!("postgres://postgres@localhost:{}/postgres?{query}", self.port)
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        // SIGQUIT: immediate shutdown, backends included.
        let _ = Command::new("kill").args(["-QUIT", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

/// A `redis-server` that speaks only TLS, stopped on drop.
struct TlsRedis {
    port: u16,
    child: Child,
    _dir: TempDir,
}

impl TlsRedis {
    async fn start(certs: &Certs) -> TlsRedis {
        let dir = TempDir::new("redis");
        let cert = dir.write("server.crt", &certs.server_cert);
        let key = dir.write("server.key", &certs.server_key);
        let ca = dir.write("ca.crt", &certs.ca);
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&ca)
            .args(["--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let server = TlsRedis { port, child, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "redis-server (TLS) did not start on port {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sslmode_require_encrypts_migrations_pool_mutations_and_bootstrap() {
    // The migrations run over this URL too (`TestDb` migrates with it).
    let db = TestDb::with_params("sslmode=require").await;
    assert!(db.url.ends_with("?sslmode=require"), "{}", db.url);
    let engine = db.engine();
    let ws = workspace(&db, &["alice"]).await;
    let id = insert_task(&engine, "alice", &ws, "over TLS").await;
    assert!(id > 0);
    let lines = collect_lines(engine.bootstrap(&user("alice", &[&ws]), BootstrapParams::default())).await;
    assert_eq!(lines[0]["lastSyncId"], id.to_string());
    assert!(lines.iter().any(|l| l["__class"] == "Task" && l["title"] == "over TLS"), "{lines:?}");

    // Every connection the pool opened is encrypted.
    let mut conn = db.pool.get().await.unwrap();
    assert!(encrypted(&mut conn).await);
    let plain: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.datname = current_database() AND NOT s.ssl",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(plain.n, 0);

    // `disable` stays plain; no sslmode means `prefer`, which takes the TLS
    // this server offers.
    let base = db.url.trim_end_matches("?sslmode=require");
    let mut plain = storage::establish(&format!("{base}?sslmode=disable")).await.unwrap();
    assert!(!encrypted(&mut plain).await);
    let mut preferred = storage::establish(base).await.unwrap();
    assert!(encrypted(&mut preferred).await);
    let pool = storage::connect(&format!("{base}?sslmode=disable"), &PoolConfig::default()).unwrap();
    assert!(!encrypted(&mut pool.get().await.unwrap()).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_checks_the_chain_and_the_host_name() {
    let certs = certs("stratasync test CA");
    let other = certs_ca_only("another CA");
    let pg = ThrowawayPostgres::start(&certs).await;
    let dir = TempDir::new("roots");
    let ca = dir.write("ca.pem", &certs.ca);
    let wrong_ca = dir.write("wrong.pem", &other);
    let root = |path: &Path| format!("sslrootcert={}", path.display());

    // With the CA: connects, encrypted, by name and by IP address.
    let full = pg.url(&format!("sslmode=verify-full&{}", root(&ca)));
    let mut conn = storage::establish(&full).await.expect("verify-full with the CA");
    assert!(encrypted(&mut conn).await);
    let by_ip = format!("postgres://postgres@127.0.0.1:{}/postgres?sslmode=verify-full&{}", pg.port, root(&ca));
    assert!(encrypted(&mut storage::establish(&by_ip).await.expect("verify-full by IP")).await);

    // The migrations and the pool take the same path.
    taskboard::migrate(&full).await.expect("migrations over verify-full");
    let pool = storage::connect(&full, &PoolConfig::default()).unwrap();
    let mut conn = pool.get().await.expect("a pooled verify-full connection");
    assert!(encrypted(&mut conn).await);
    conn.batch_execute("SELECT 1 FROM sync_actions LIMIT 1").await.expect("the migrated tables");

    // Without the CA (system roots), or with another CA: refused, saying why.
    let err = refused(&pg.url("sslmode=verify-full")).await;
    assert!(err.contains("error performing TLS handshake") && err.contains("UnknownIssuer"), "{err}");
    let err = refused(&pg.url(&format!("sslmode=verify-full&{}", root(&wrong_ca)))).await;
    assert!(err.contains("UnknownIssuer"), "{err}");
    let err =
        match storage::connect(&pg.url(&format!("sslmode=verify-full&{}", root(&wrong_ca))), &PoolConfig::default())
            .unwrap()
            .get()
            .await
        {
            Ok(_) => panic!("the pool connected with the wrong CA"),
            Err(e) => format!("{e:?}"),
        };
    assert!(err.contains("UnknownIssuer"), "{err}");

    // A host name the certificate does not carry (the address is still the
    // cluster's): verify-full refuses, verify-ca (chain only) accepts.
    let misnamed = |mode: &str| {
        format!(
            "postgres://postgres@db.example.invalid:{}/postgres?hostaddr=127.0.0.1&sslmode={mode}&{}",
            pg.port,
            root(&ca)
        )
    };
    let err = refused(&misnamed("verify-full")).await;
    assert!(err.contains("certificate not valid for name \"db.example.invalid\""), "{err}");
    assert!(encrypted(&mut storage::establish(&misnamed("verify-ca")).await.expect("verify-ca")).await);
    let err = refused(&pg.url(&format!("sslmode=verify-ca&{}", root(&wrong_ca)))).await;
    assert!(err.contains("UnknownIssuer"), "{err}");

    // `require` checks nothing unless given a root certificate.
    assert!(encrypted(&mut storage::establish(&pg.url("sslmode=require")).await.expect("require")).await);
    let err = refused(&pg.url(&format!("sslmode=require&{}", root(&wrong_ca)))).await;
    assert!(err.contains("UnknownIssuer"), "{err}");

    // A server without TLS: `prefer` (the default) falls back to plain,
    // `require` refuses.
    let mut admin = storage::establish(&pg.url("sslmode=disable")).await.unwrap();
    admin.batch_execute("ALTER SYSTEM SET ssl = off").await.unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut conn = storage::establish(&pg.url("sslmode=prefer")).await.expect("prefer without TLS");
        if !encrypted(&mut conn).await {
            break;
        }
        assert!(Instant::now() < deadline, "ssl = off was not picked up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let no_query = format!("postgres://postgres@localhost:{}/postgres", pg.port);
    assert!(!encrypted(&mut storage::establish(&no_query).await.expect("default sslmode")).await);
    let err = refused(&pg.url("sslmode=require")).await;
    assert!(err.contains("server does not support TLS"), "{err}");
}

/// A CA certificate alone (to trust the wrong root).
fn certs_ca_only(name: &str) -> String {
    certs(name).ca
}

async fn rediss_fan_out_reaches_the_other_node(adapter: Adapter) {
    let certs = certs("stratasync test CA");
    let redis = TlsRedis::start(&certs).await;
    let dir = TempDir::new("redis-roots");
    let ca = dir.write("ca.pem", &certs.ca);

    // The example's client with the CA answers; with the system roots it
    // is refused for the unknown issuer.
    let client = taskboard::server::redis_client(&redis.url(), Some(&ca)).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.expect("rediss with the CA");
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");
    let system = taskboard::server::redis_client(&redis.url(), None).unwrap();
    let Err(err) = system.get_multiplexed_async_connection().await else { panic!("rediss without the CA connected") };
    assert!(format!("{err:?}").contains("UnknownIssuer"), "{err:?}");
    let missing = taskboard::server::redis_client(&redis.url(), Some(&dir.0.join("missing.pem"))).unwrap_err();
    assert!(missing.to_string().starts_with("cannot read REDIS_CA_CERT"), "{missing}");

    // Two nodes polling the log once a minute: a delivery within seconds
    // came through the TLS Redis.
    let db = TestDb::new().await;
    let node = |db: &TestDb| {
        db.engine_builder()
            .hub_config(HubConfig { poll_interval: Duration::from_secs(60), ..HubConfig::default() })
            .redis_client(taskboard::server::redis_client(&redis.url(), Some(&ca)).unwrap())
            .start()
            .expect("the engine starts")
    };
    let (one, two) = (node(&db), node(&db));
    let server_two = WsServer::with_engine_on(adapter, &db, two).await;
    let ws = workspace(&db, &["alice"]).await;
    let mut socket = server_two.connect("alice").await;
    socket.subscribe_ok("alice", 0, None).await;
    // The first writes may go out before node two's subscriber is in.
    for attempt in 0..40 {
        let id = insert_task(&one, "alice", &ws, &format!("write {attempt}")).await;
        if let Ok(ids) = socket.try_deltas_until(id, Duration::from_millis(250)).await {
            assert_eq!(ids.last(), Some(&id));
            return;
        }
    }
    panic!("no write on node one reached node two through rediss");
}

on_both_adapters!(rediss_fan_out_reaches_the_other_node,);
