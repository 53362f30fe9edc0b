//! Starting and stopping: connect the database, run migrations, bind the port, serve, and shut
//! down gracefully on SIGTERM / SIGINT / SIGUSR2 with the contract's log lines.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

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
        let rates = crate::rates::Rates::new(&settings)?;
        let state = AppState::new(Inner {
            settings,
            db,
            redis,
            jwt,
            rates,
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
        // Rate refreshes run while the server does and stop with it (also when this future is dropped).
        let rate_tasks = crate::rates::Rates::spawn_background(self.state.clone());
        let app = crate::http::router(self.state.clone());
        axum::serve(self.listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await
            .context("server error")?;
        drop(rate_tasks);
        tracing::info!("📡 HTTP server closed");
        db.close().await;
        tracing::info!("🗄️ Database connection closed");
        Ok(())
    }
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

/// Completes on the first of SIGTERM, SIGINT or SIGUSR2, logging which one, and arms the
/// forced exit after [`SHUTDOWN_GRACE`].
pub async fn shutdown_signal() {
    let name = wait_for_signal().await;
    tracing::info!("🛑 Received {name}. Starting graceful shutdown...");
    tokio::spawn(async {
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        tracing::error!("⏰ Could not close connections in time, forcefully shutting down");
        std::process::exit(1);
    });
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut usr2 = signal(SignalKind::user_defined2()).expect("SIGUSR2 handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        _ = usr2.recv() => "SIGUSR2",
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "SIGINT"
}
