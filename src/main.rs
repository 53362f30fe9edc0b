//! The `cashcraft` command: `serve` (default), `migrate`, `healthcheck`, and admin tasks
//! (`admin set-premium`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cashcraft::domain::time::{Precision, DAY_MS};
use cashcraft::server::{shutdown_signal, Application, StartError};
use cashcraft::store::Db;
use cashcraft::{telemetry, Settings};

#[derive(Parser)]
#[command(name = "cashcraft", version, about = "CashCraft personal-finance backend")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Ask a running server's /health; exit 0 when it answers ok, else 1.
    Healthcheck {
        /// URL to ask (default: http://127.0.0.1:$PORT/health).
        #[arg(long)]
        url: Option<String>,
    },
    /// Administrative tasks on the database of DATABASE_URL.
    Admin {
        #[command(subcommand)]
        task: AdminTask,
    },
}

#[derive(Subcommand)]
enum AdminTask {
    /// Grant (or with --off revoke) premium for the user with this email.
    SetPremium {
        /// The user's email (matched case-insensitively).
        email: String,
        /// Premium ends at this ISO-8601 date-time, or after this UTC day for a date (default: never).
        #[arg(long, conflicts_with = "off")]
        until: Option<String>,
        /// Revoke premium instead.
        #[arg(long)]
        off: bool,
    },
    /// Load exchange rates from a file (the ECB's eurofxref-daily.xml or an Open Exchange Rates
    /// latest.json) into the stored base rates, for installs without internet access.
    ImportRates {
        /// The XML or JSON file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("❌ Cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve().await,
            Command::Migrate => migrate().await,
            Command::Healthcheck { url } => healthcheck(url).await,
            Command::Admin { task } => admin(task).await,
        }
    })
}

fn load_settings() -> Result<Settings, ExitCode> {
    Settings::from_env().map_err(|err| {
        eprintln!("❌ Configuration error: {err:#}");
        ExitCode::FAILURE
    })
}

async fn serve() -> ExitCode {
    let settings = match load_settings() {
        Ok(s) => s,
        Err(code) => return code,
    };
    telemetry::init(settings.log_format);
    tracing::info!("🚀 Starting CashCraft Backend...");
    for warning in &settings.warnings {
        tracing::warn!("⚠️ {warning}");
    }
    let environment = settings.environment.as_str();
    let port = settings.port;
    // Handlers first, so a signal that arrives while starting is not lost.
    let shutdown = shutdown_signal();
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(StartError::PortInUse(port)) => {
            eprintln!("❌ Port {port} is already in use. Stop the other process or choose another port with the PORT variable (e.g. PORT=3001).");
            return ExitCode::FAILURE;
        }
        Err(err) => {
            tracing::error!("❌ Unable to start: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let shown_port = if port == 0 { app.local_addr().port() } else { port };
    tracing::info!("✅ Server is running on http://0.0.0.0:{shown_port}");
    tracing::info!("🌱 Environment: {environment}");
    match app.serve_until(shutdown).await {
        Ok(()) => {
            tracing::info!("✅ Graceful shutdown completed");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!("❌ Server error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate() -> ExitCode {
    let settings = match load_settings() {
        Ok(s) => s,
        Err(code) => return code,
    };
    telemetry::init(settings.log_format);
    let result = async {
        let db = Db::connect(&settings).await?;
        db.migrate().await?;
        db.close().await;
        anyhow::Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            tracing::info!("✅ Migrations applied");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!("❌ Migration failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn admin(task: AdminTask) -> ExitCode {
    let settings = match load_settings() {
        Ok(s) => s,
        Err(code) => return code,
    };
    match task {
        AdminTask::SetPremium { email, until, off } => set_premium(&settings, &email, until.as_deref(), off).await,
        AdminTask::ImportRates { file } => import_rates(&settings, file).await,
    }
}

async fn set_premium(settings: &Settings, email: &str, until: Option<&str>, off: bool) -> ExitCode {
    let email = email.trim().to_lowercase();
    let expires_at = match until {
        None => None,
        Some(text) => match cashcraft::domain::time::parse_iso(text) {
            // A date means through the end of that UTC day.
            Some((ms, Precision::Day)) => Some(ms + DAY_MS),
            Some((ms, Precision::Instant)) => Some(ms),
            None => {
                eprintln!("❌ --until must be an ISO-8601 date or date-time, e.g. 2026-12-31 (got {text:?})");
                return ExitCode::FAILURE;
            }
        },
    };
    let result = async {
        let db = Db::connect(settings).await?;
        db.migrate().await?;
        let found = cashcraft::store::users::set_premium_by_email(&db.pool, &email, !off, expires_at).await?;
        db.close().await;
        anyhow::Ok(found)
    }
    .await;
    match result {
        Ok(true) if off => {
            println!("{email}: premium off");
            ExitCode::SUCCESS
        }
        Ok(true) => {
            match expires_at {
                Some(ms) => println!("{email}: premium until {}", cashcraft::domain::time::to_iso(ms)),
                None => println!("{email}: premium (no expiry)"),
            }
            ExitCode::SUCCESS
        }
        Ok(false) => {
            eprintln!("❌ No user with email {email}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("❌ Cannot update the user: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn healthcheck(url: Option<String>) -> ExitCode {
    let url = url.unwrap_or_else(|| {
        let _ = dotenvy::dotenv();
        let port = std::env::var("PORT")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "3000".into());
        format!("http://127.0.0.1:{port}/health")
    });
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
    {
        Ok(c) => c,
        Err(_) => return ExitCode::FAILURE,
    };
    let healthy = match client.get(&url).send().await {
        Ok(response) if response.status().is_success() => response
            .json::<serde_json::Value>()
            .await
            .is_ok_and(|body| body.get("status").and_then(|s| s.as_str()) == Some("ok")),
        _ => false,
    };
    if healthy {
        println!("healthy: {url}");
        ExitCode::SUCCESS
    } else {
        eprintln!("unhealthy: {url}");
        ExitCode::FAILURE
    }
}

async fn import_rates(settings: &Settings, file: PathBuf) -> ExitCode {
    telemetry::init(settings.log_format);
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(err) => {
            eprintln!("❌ Cannot read {}: {err}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let (provider, rates) = match cashcraft::rates::provider::parse_file(&bytes) {
        Ok(parsed) => parsed,
        Err(err) => {
            eprintln!("❌ {}: {err}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let result = async {
        let db = Db::connect(settings).await?;
        db.migrate().await?;
        let redis = match &settings.redis_url {
            Some(url) => Some(cashcraft::cache::Redis::new(url)?),
            None => None,
        };
        let version = cashcraft::rates::Rates::import(&db, redis.as_ref(), &rates, provider).await?;
        db.close().await;
        anyhow::Ok(version)
    }
    .await;
    match result {
        Ok(version) => {
            println!(
                "✅ Imported {} exchange rates against {} ({provider}) from {}; last update {}",
                rates.rates.len(),
                rates.base,
                file.display(),
                cashcraft::domain::time::to_iso(version)
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("❌ Import failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}
