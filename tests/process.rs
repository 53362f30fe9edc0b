//! The real `cashcraft` binary as an operator runs it: startup lines, graceful shutdown on
//! SIGTERM / SIGINT / SIGUSR2, port already taken, production secrets, the default SQLite file,
//! and the `migrate` and `healthcheck` subcommands.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sqlx::Connection;

const BINARY: &str = env!("CARGO_BIN_EXE_cashcraft");
const STRONG_SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A port nothing listens on right now (the OS picks it; the listener is closed again).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// The binary with an empty environment but PATH and `vars`, run in `dir`.
fn command(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BINARY);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Collects a pipe's lines as they come.
fn collect_lines(pipe: impl std::io::Read + Send + 'static, lines: Arc<Mutex<Vec<String>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            match line {
                Ok(line) => lines.lock().unwrap().push(line),
                Err(_) => break,
            }
        }
    })
}

/// A running `cashcraft` process; killed when dropped (a failed test leaves nothing behind).
struct Process {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
    exit: Option<ExitStatus>,
}

impl Process {
    fn start(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Process {
        let mut child = command(dir, args, vars).spawn().expect("the binary starts");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect_lines(child.stdout.take().expect("stdout"), stdout.clone()),
            collect_lines(child.stderr.take().expect("stderr"), stderr.clone()),
        ];
        Process {
            child,
            stdout,
            stderr,
            readers,
            exit: None,
        }
    }

    /// Starts a server on `port` in development and waits until it says it is running.
    fn serve(dir: &Path, port: u16, extra: &[(&str, &str)]) -> Process {
        let port_text = port.to_string();
        let mut vars = vec![("HOST", "127.0.0.1"), ("PORT", port_text.as_str())];
        vars.extend_from_slice(extra);
        let mut process = Process::start(dir, &[], &vars);
        let running = format!("✅ Server is running on http://0.0.0.0:{port}");
        process.wait_for_line(&running, STARTUP_TIMEOUT);
        process
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout().join("\n"),
            self.stderr().join("\n")
        )
    }

    /// Waits for a stdout line containing `needle`; panics with the output after `timeout`
    /// or when the process ends first.
    fn wait_for_line(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stdout().iter().any(|l| l.contains(needle)) {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("process status") {
                self.finish_readers();
                if self.stdout().iter().any(|l| l.contains(needle)) {
                    return;
                }
                panic!(
                    "the process ended ({status}) before printing {needle:?}\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no line {needle:?} within {timeout:?}\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit; panics after `timeout`. All output is collected then.
    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("process status") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit within {timeout:?}\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        self.exit = Some(status);
        self.finish_readers();
        status
    }

    fn finish_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} {}", self.pid());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.exit.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Runs a command to completion (with a timeout); returns the exit status and all output.
fn run(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> (ExitStatus, Process) {
    let mut process = Process::start(dir, args, vars);
    let status = process.wait_exit(EXIT_TIMEOUT);
    (status, process)
}

async fn get_health(port: u16) -> reqwest::StatusCode {
    reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .expect("the server answers /health")
        .status()
}

/// Index of the first line containing `needle`, with the output on failure.
fn line_index(lines: &[String], needle: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line {needle:?} in:\n{}", lines.join("\n")))
}

/// Asserts every needle has a line, in this order.
fn assert_in_order(lines: &[String], needles: &[&str]) {
    let positions: Vec<usize> = needles.iter().map(|n| line_index(lines, n)).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "lines out of order {needles:?} at {positions:?}:\n{}",
        lines.join("\n")
    );
}

/// Starts a server, sends `signal`, and checks the graceful shutdown.
async fn shuts_down_gracefully_on(signal: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut server = Process::serve(dir.path(), port, &[]);
    assert_eq!(get_health(port).await, 200);

    server.signal(signal);
    let status = server.wait_exit(EXIT_TIMEOUT);
    assert_eq!(status.code(), Some(0), "exit status\n{}", server.output());
    assert_in_order(
        &server.stdout(),
        &[
            &format!("🛑 Received {signal}. Starting graceful shutdown..."),
            "📡 HTTP server closed",
            "🗄️ Database connection closed",
            "✅ Graceful shutdown completed",
        ],
    );
    assert!(
        !server.stdout().iter().any(|l| l.contains("forcefully")),
        "no forced exit\n{}",
        server.output()
    );
    // The port is free again.
    assert!(TcpListener::bind(("127.0.0.1", port)).is_ok(), "port {port} released");
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    shuts_down_gracefully_on("SIGTERM").await;
}

#[tokio::test]
async fn sigint_shuts_down_gracefully() {
    shuts_down_gracefully_on("SIGINT").await;
}

#[tokio::test]
async fn sigusr2_shuts_down_gracefully() {
    shuts_down_gracefully_on("SIGUSR2").await;
}

#[tokio::test]
async fn startup_lines_are_printed_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut server = Process::serve(dir.path(), port, &[("NODE_ENV", "development")]);
    server.wait_for_line("🌱 Environment: development", STARTUP_TIMEOUT);
    assert_in_order(
        &server.stdout(),
        &[
            "🚀 Starting CashCraft Backend...",
            "✅ Database connection has been established successfully.",
            &format!("✅ Server is running on http://0.0.0.0:{port}"),
            "🌱 Environment: development",
        ],
    );
    assert_eq!(get_health(port).await, 200);
    // Development without secrets works, and says so without printing them.
    let stdout = server.stdout().join("\n");
    assert!(
        stdout.contains("JWT_SECRET"),
        "a warning about the generated secret:\n{stdout}"
    );
    server.signal("SIGTERM");
    assert_eq!(server.wait_exit(EXIT_TIMEOUT).code(), Some(0));
}

#[tokio::test]
async fn a_taken_port_is_reported_in_one_line() {
    let first_dir = tempfile::tempdir().expect("temp dir");
    let second_dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let first = Process::serve(first_dir.path(), port, &[]);
    let port_text = port.to_string();

    let (status, second) = run(
        second_dir.path(),
        &[],
        &[("HOST", "127.0.0.1"), ("PORT", port_text.as_str())],
    );
    assert_eq!(status.code(), Some(1), "exit status\n{}", second.output());
    let errors: Vec<String> = second.stderr().into_iter().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(errors.len(), 1, "one line:\n{}", second.output());
    assert!(errors[0].contains(&port_text), "names the port: {}", errors[0]);
    assert!(errors[0].contains("PORT"), "says to set PORT: {}", errors[0]);

    // The first server is unaffected.
    assert_eq!(get_health(port).await, 200);
    drop(first);
}

/// Production refuses to start with a missing or weak secret and names it.
fn assert_refuses_production_secret(variable: &str, value: Option<&str>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port().to_string();
    let other = if variable == "JWT_SECRET" {
        "ENCRYPTION_KEY"
    } else {
        "JWT_SECRET"
    };
    let mut vars = vec![
        ("NODE_ENV", "production"),
        ("HOST", "127.0.0.1"),
        ("PORT", port.as_str()),
        ("DATABASE_URL", "sqlite::memory:"),
        (other, STRONG_SECRET),
    ];
    if let Some(value) = value {
        vars.push((variable, value));
    }
    let (status, process) = run(dir.path(), &[], &vars);
    assert_eq!(status.code(), Some(1), "{variable}={value:?}\n{}", process.output());
    let output = process.output();
    assert!(output.contains(variable), "names {variable}:\n{output}");
    assert!(!output.contains("Server is running"), "{output}");
    if let Some(value) = value {
        assert!(!output.contains(value), "the rejected secret is not printed:\n{output}");
    }
}

#[test]
fn production_refuses_a_missing_or_weak_jwt_secret() {
    assert_refuses_production_secret("JWT_SECRET", None);
    assert_refuses_production_secret("JWT_SECRET", Some("short-secret"));
    assert_refuses_production_secret("JWT_SECRET", Some("your-super-secret-jwt-key"));
}

#[test]
fn production_refuses_a_missing_or_weak_encryption_key() {
    assert_refuses_production_secret("ENCRYPTION_KEY", None);
    assert_refuses_production_secret("ENCRYPTION_KEY", Some("short-key"));
}

#[tokio::test]
async fn production_starts_with_strong_secrets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut server = Process::serve(
        dir.path(),
        port,
        &[
            ("NODE_ENV", "production"),
            ("JWT_SECRET", STRONG_SECRET),
            ("ENCRYPTION_KEY", STRONG_SECRET),
            ("CORS_ORIGIN", "https://app.example.com"),
        ],
    );
    assert_eq!(get_health(port).await, 200);
    let stdout = server.stdout().join("\n");
    assert!(
        !stdout.contains(STRONG_SECRET),
        "secrets never reach the log:\n{stdout}"
    );
    server.signal("SIGTERM");
    assert_eq!(server.wait_exit(EXIT_TIMEOUT).code(), Some(0), "{}", server.output());
}

#[tokio::test]
async fn without_database_url_an_embedded_sqlite_file_is_created() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(!dir.path().join("cashcraft.db").exists());
    let port = free_port();
    let mut server = Process::serve(dir.path(), port, &[]);
    assert_eq!(get_health(port).await, 200);
    let ready: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/ready"))
        .await
        .expect("ready answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(ready["database"], "ok", "{ready}");
    assert!(dir.path().join("cashcraft.db").is_file(), "./cashcraft.db created");
    server.signal("SIGTERM");
    assert_eq!(server.wait_exit(EXIT_TIMEOUT).code(), Some(0), "{}", server.output());
}

#[tokio::test]
async fn migrate_creates_the_schema_in_a_fresh_postgres_database() {
    let database = common::PgDatabase::create().await;
    let url = database.url();
    let dir = tempfile::tempdir().expect("temp dir");

    let (status, process) = run(dir.path(), &["migrate"], &[("DATABASE_URL", url.as_str())]);
    assert_eq!(status.code(), Some(0), "{}", process.output());

    let mut conn = sqlx::PgConnection::connect(&url)
        .await
        .expect("connect to the migrated database");
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("list tables");
    let tables: Vec<String> = tables.into_iter().map(|(t,)| t).collect();
    for table in ["users", "accounts", "transactions"] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
    conn.close().await.ok();

    // Running it again is harmless.
    let (status, process) = run(dir.path(), &["migrate"], &[("DATABASE_URL", url.as_str())]);
    assert_eq!(status.code(), Some(0), "{}", process.output());
}

#[tokio::test]
async fn healthcheck_reports_a_running_server_and_a_closed_port() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut server = Process::serve(dir.path(), port, &[]);

    let url = format!("http://127.0.0.1:{port}/health");
    let (status, process) = run(dir.path(), &["healthcheck", "--url", &url], &[]);
    assert_eq!(status.code(), Some(0), "{}", process.output());

    // Without --url it asks 127.0.0.1:$PORT.
    let port_text = port.to_string();
    let (status, process) = run(dir.path(), &["healthcheck"], &[("PORT", port_text.as_str())]);
    assert_eq!(status.code(), Some(0), "{}", process.output());

    let closed = free_port();
    let closed_url = format!("http://127.0.0.1:{closed}/health");
    let (status, process) = run(dir.path(), &["healthcheck", "--url", &closed_url], &[]);
    assert_eq!(status.code(), Some(1), "{}", process.output());

    server.signal("SIGTERM");
    assert_eq!(server.wait_exit(EXIT_TIMEOUT).code(), Some(0));
}
