//! The optional Redis connection (`REDIS_URL`): shared rate-limit counters and rate snapshots.
//! Redis going away only degrades the features that use it; callers get `None` and carry on.

use std::time::{Duration, Instant};

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

/// How long to wait before trying again after Redis could not be reached.
const RETRY_AFTER: Duration = Duration::from_secs(5);

pub struct Redis {
    client: redis::Client,
    state: Mutex<State>,
}

struct State {
    manager: Option<ConnectionManager>,
    last_failure: Option<Instant>,
}

impl Redis {
    pub fn new(url: &str) -> anyhow::Result<Redis> {
        let client = redis::Client::open(url).context("REDIS_URL is not a valid Redis URL")?;
        Ok(Redis {
            client,
            state: Mutex::new(State {
                manager: None,
                last_failure: None,
            }),
        })
    }

    /// A connection, or `None` while Redis is unreachable (not retried more than every 5 s).
    pub async fn connection(&self) -> Option<ConnectionManager> {
        let mut state = self.state.lock().await;
        if let Some(manager) = &state.manager {
            return Some(manager.clone());
        }
        if state.last_failure.is_some_and(|t| t.elapsed() < RETRY_AFTER) {
            return None;
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(1);
        match tokio::time::timeout(
            Duration::from_secs(3),
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        {
            Ok(Ok(manager)) => {
                state.manager = Some(manager.clone());
                state.last_failure = None;
                Some(manager)
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "Redis is unreachable");
                state.last_failure = Some(Instant::now());
                None
            }
            Err(_) => {
                tracing::warn!("Redis did not answer in time");
                state.last_failure = Some(Instant::now());
                None
            }
        }
    }

    /// Whether Redis answers PING within two seconds.
    pub async fn ping(&self) -> bool {
        let Some(mut conn) = self.connection().await else {
            return false;
        };
        let cmd = redis::cmd("PING");
        let ping = tokio::time::timeout(Duration::from_secs(2), cmd.query_async::<String>(&mut conn));
        matches!(ping.await, Ok(Ok(_)))
    }
}
