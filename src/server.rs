//! Starting and stopping: connect the database, run migrations, bind the port, serve, and shut
//! down gracefully on SIGTERM / SIGINT / SIGUSR2 with the contract's log lines.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::auth::tokens::JwtKeys;
use crate::config::Settings;
use crate::state::{AppState, Inner};
use crate::store::{Backend, Db};

/// How long a graceful shutdown may take before the process gives up.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A built application bound to its port, ready to serve.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("Port {0} is already in use. Stop the other process or choose another port with the PORT variable (e.g. PORT=3001).")]
    PortInUse(u16),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Application {
    /// Connects, migrates and binds `settings.host:settings.port` (port 0 picks a free one).
    pub async fn build(settings: Settings) -> Result<Application, StartError> {
        crate::metrics::init();
        let db = Db::connect(&settings).await?;
        let migrated = match db.migrate().await {
            Ok(()) => {
                tracing::info!("✅ Database connection has been established successfully.");
                true
            }
            Err(err) if db.backend == Backend::Postgres => {
                // Keep serving (health 200, ready 503) and retry until the database is back.
                tracing::error!(error = %format!("{err:#}"), "❌ Unable to connect to the database; retrying in the background");
                spawn_migration_retry(db.clone());
                false
            }
            Err(err) => return Err(err.into()),
        };
        let redis = match &settings.redis_url {
            Some(url) => Some(crate::cache::Redis::new(url)?),
            None => None,
        };
        let addr = format!("{}:{}", settings.host, settings.port);
        let listener = match TcpListener::bind(&addr).await {
            Ok(listener) => listener,
            Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(StartError::PortInUse(settings.port))
            }
            Err(err) => {
                return Err(anyhow::Error::new(err)
                    .context(format!("cannot listen on {addr}"))
                    .into())
            }
        };
        let jwt = JwtKeys::new(
            &settings.jwt_secret,
            settings.jwt_expires_in,
            settings.jwt_refresh_expires_in,
        );
        tokio::task::spawn_blocking(crate::auth::password::warm_up);
        let cipher = crate::crypto::FieldCipher::new(&settings.encryption_key);
        let rate_limiter =
            crate::http::rate_limit::RateLimiter::new(settings.rate_limit_max_requests, settings.rate_limit_window);
        let google = crate::auth::google::GoogleVerifier::new(
            settings.google_client_ids.clone(),
            settings.google_jwks_url.clone(),
        );
        let rates = crate::rates::Rates::new(&settings)?;
        let state = AppState::new(Inner {
            settings,
            db,
            redis,
            jwt,
            cipher,
            rate_limiter,
            google,
            rates,
            flow_cache: crate::store::read_cache::ReadCache::new(10_000),
        });
        // Serve the stored rates from the first request on (the refresh runs in the background).
        if migrated {
            if let Err(err) = state.rates.reload(&state.db).await {
                tracing::warn!(error = %err, "could not load the stored exchange rates; retrying in the background");
            }
        }
        Ok(Application { listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests and closes the pool.
    pub async fn serve_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let db = self.state.db.clone();
        let max_connections = self.state.settings.max_connections;
        // Rate refreshes run while the server does and stop with it (also when this future is dropped).
        let rate_tasks = crate::rates::Rates::spawn_background(self.state.clone());
        let app = crate::http::router(self.state.clone());
        serve_connections(self.listener, app, max_connections, shutdown).await;
        drop(rate_tasks);
        tracing::info!("📡 HTTP server closed");
        db.close().await;
        tracing::info!("🗄️ Database connection closed");
        Ok(())
    }
}

/// How long a client may take to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The accept loop: HTTP/1.1 with keep-alive and a header read timeout, at most
/// `max_connections` open connections (beyond it new ones are closed at once), and on
/// `shutdown` a graceful stop: the listener closes (new connections are refused), requests in
/// flight finish, idle keep-alive connections are closed.
async fn serve_connections(
    listener: TcpListener,
    app: axum::Router,
    max_connections: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::Service;

    let mut make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(max_connections, "connection limit reached; closing a new connection");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Ok(service) = make_service.call(peer).await;
        let service = hyper_util::service::TowerToHyperService::new(service);
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

fn spawn_migration_retry(db: Db) {
    tokio::spawn(async move {
        let mut delay = Duration::from_secs(1);
        loop {
            tokio::time::sleep(delay).await;
            match db.migrate().await {
                Ok(()) => {
                    tracing::info!("✅ Database connection has been established successfully.");
                    return;
                }
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "database still unreachable");
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    });
}

/// Registers the SIGTERM / SIGINT / SIGUSR2 handlers at once and answers a future that
/// completes on the first of them, logging which one, and arms the forced exit after
/// [`SHUTDOWN_GRACE`].
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    let signals = Signals::register();
    async move {
        let name = signals.first().await;
        tracing::info!("🛑 Received {name}. Starting graceful shutdown...");
        tokio::spawn(async {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
            tracing::error!("⏰ Could not close connections in time, forcefully shutting down");
            std::process::exit(1);
        });
    }
}

#[cfg(unix)]
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
    usr2: Option<tokio::signal::unix::Signal>,
}

#[cfg(unix)]
impl Signals {
    fn register() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
            usr2: signal(SignalKind::user_defined2()).ok(),
        }
    }

    async fn first(mut self) -> &'static str {
        async fn recv(signal: Option<&mut tokio::signal::unix::Signal>) {
            match signal {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            _ = recv(self.term.as_mut()) => "SIGTERM",
            _ = recv(self.int.as_mut()) => "SIGINT",
            _ = recv(self.usr2.as_mut()) => "SIGUSR2",
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn register() -> Signals {
        Signals
    }

    async fn first(self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
