//! Database access: one connection pool for PostgreSQL or embedded SQLite behind sqlx's `Any`
//! driver, the portable migrations, and write transactions. Queries per aggregate live in submodules.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Transaction};

use crate::config::Settings;

pub type Tx = Transaction<'static, Any>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// The connection pool and which database it talks to.
#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a request waits for a pooled connection before answering 503.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

impl Db {
    /// Builds the pool. PostgreSQL connects lazily (the server starts and reports not-ready while
    /// the database is away); SQLite opens (and creates) its file at once.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let url = settings.database_url.as_str();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let options = AnyConnectOptions::from_str(url).context("DATABASE_URL is not a valid database URL")?;
        let mut pool_options = AnyPoolOptions::new()
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .max_connections(settings.db_max_connections)
            .idle_timeout(Some(Duration::from_secs(600)));
        let pool = match backend {
            Backend::Sqlite => {
                let in_memory = url.contains(":memory:");
                if in_memory {
                    // Every connection to `:memory:` would be its own empty database.
                    pool_options = pool_options.max_connections(1).idle_timeout(None).max_lifetime(None);
                }
                pool_options
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await
                    .with_context(|| format!("cannot open the SQLite database {url}"))?
            }
            Backend::Postgres => pool_options
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute("SET statement_timeout = '15s'").await?;
                        Ok(())
                    })
                })
                .connect_lazy_with(options),
        };
        Ok(Db { pool, backend })
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR.run(&self.pool).await.context("database migration failed")?;
        Ok(())
    }

    /// Whether the database answers a trivial query within two seconds.
    pub async fn ping(&self) -> bool {
        matches!(
            tokio::time::timeout(Duration::from_secs(2), sqlx::query("SELECT 1").execute(&self.pool)).await,
            Ok(Ok(_))
        )
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`) so concurrent writers queue on the busy timeout instead of failing
    /// with a lock-upgrade deadlock.
    pub async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

pub mod accounts;
pub mod categories;
pub mod debts;
pub mod rates;
pub mod read_cache;
pub mod refresh_tokens;
pub mod sync;
pub mod tombstones;
pub mod transaction_reads;
pub mod transactions;
pub mod user_data;
pub mod user_rates;
pub mod users;

/// Takes the user's change clock for a write transaction and answers the stamp for the rows
/// it changes (`server_updated_at`): max(now, previous + 1), so stamps strictly increase per
/// user. The UPDATE holds the user's row lock until commit, so a user's writes commit in stamp
/// order — which is what makes an incremental pull up to the clock lossless. Answers `None`
/// when the user no longer exists.
pub async fn take_change_stamp(tx: &mut Tx, user_id: &str) -> Result<Option<i64>, sqlx::Error> {
    let now = crate::domain::time::now_ms();
    let row: Option<(i64,)> = sqlx::query_as(
        "UPDATE users SET change_clock = CASE WHEN change_clock >= $1 THEN change_clock + 1 ELSE $1 END \
         WHERE id = $2 RETURNING change_clock",
    )
    .bind(now)
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| r.0))
}

/// Whether a row of `table` with this id belongs to ANOTHER user (ids are global, so a
/// client-supplied id may collide with someone else's record, which must never be touched).
/// `table` must be a constant of the code.
pub async fn id_taken_by_other<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    db: E,
    table: &'static str,
    user_id: &str,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT 1 FROM {table} WHERE id = $1 AND user_id <> $2"))
        .bind(id)
        .bind(user_id)
        .fetch_optional(db)
        .await?;
    Ok(row.is_some())
}

/// Reads a BIGINT 0/1 column as a bool.
pub fn flag(row: &sqlx::any::AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    use sqlx::Row;
    Ok(row.try_get::<i64, _>(column)? != 0)
}
