//! The PostgreSQL backend of [`Store`](super::Store): the same tables, the same guarantees (one transaction per
//! verified batch, deduplication by `tbs_sha256`, the log's position moved in that transaction), for a shared
//! index that outgrows one file and for several instances on one database.
//!
//! # How a synchronous `Store` talks to an async client
//! `Store` methods are synchronous (async callers reach them through `spawn_blocking`; the CLI calls them from its
//! async `main` too). The backend owns a small tokio runtime ([`PgStore::rt`], two threads named `ctwatch-pg`)
//! that drives every socket: deadpool's connections are created — and their connection tasks spawned — inside it.
//! A method builds its future on the calling thread and waits for it with [`futures::executor::block_on`] while
//! the backend's runtime is entered, so the I/O runs on the backend's threads whatever the caller is (a plain
//! thread, a `spawn_blocking` thread, or an async task that chose to block). `Handle::block_on` is never used,
//! so calling from inside another runtime cannot panic.
//!
//! ```text
//! caller thread ── block_on(future) ──► pooled Client ──(channel)──► connection task ──TCP──► PostgreSQL
//!                                                                   (backend runtime)
//! ```
//!
//! Files are named after the SQLite ones (`batch.rs`, `logs.rs`, ...); each implements the same methods on
//! [`PgStore`], and `Store` dispatches to them.

mod batch;
mod caa;
mod console;
mod expiry;
mod facts;
mod inventory;
mod logs;
mod metrics;
mod migrate_from_sqlite;
mod outbox;
mod pauses;
mod probe;
mod probe_results;
mod query;
mod rewind;
mod runs;
mod schema;
mod stream_positions;

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Transaction};
use tokio_postgres::NoTls;

pub use migrate_from_sqlite::{MigrateProgress, migrate_sqlite};
pub use schema::PG_SCHEMA_VERSION;

use super::StoreError;

/// Connections kept by one process: the tailer's writers, outbox workers, probe and API readers.
const POOL_SIZE: usize = 16;
/// How long a caller waits for a free connection, or for a new one to be established.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// Whether `db` (a `--db` value, `CTWATCH_DB`, the config's `db` or `[store] url`) names a PostgreSQL database
/// rather than a SQLite file.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// A PostgreSQL database: a connection pool and the runtime that drives it.
pub struct PgStore {
    /// Taken only in `Drop` (shut down without blocking, which is allowed in any context).
    rt: Option<tokio::runtime::Runtime>,
    pool: Pool,
    url: String,
}

impl PgStore {
    /// Connect to `url` and bring its schema up to date (creating the tables on an empty database).
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let store = Self::connect(url, false)?;
        store.block(async {
            let mut client = store.client().await?;
            schema::migrate(&mut client).await
        })?;
        Ok(store)
    }

    /// Connect to `url` for reading only: sessions are `default_transaction_read_only`, nothing is migrated, and
    /// a database of another schema version is refused with the reason.
    pub fn open_read_only(url: &str) -> Result<PgStore, StoreError> {
        let store = Self::connect(url, true)?;
        store.block(async {
            let client = store.client().await?;
            schema::check_current(&client).await
        })?;
        Ok(store)
    }

    fn connect(url: &str, read_only: bool) -> Result<PgStore, StoreError> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| StoreError::PgUrl {
            url: redact(url),
            reason: e.to_string(),
        })?;
        if config.get_application_name().is_none() {
            config.application_name("ctwatch");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if read_only {
            config.options("-c default_transaction_read_only=on");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ctwatch-pg")
            .enable_all()
            .build()
            .map_err(StoreError::PgRuntime)?;
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| StoreError::PgUrl {
                url: redact(url),
                reason: e.to_string(),
            })?;
        Ok(PgStore {
            rt: Some(rt),
            pool,
            url: url.to_string(),
        })
    }

    /// The URL this store was opened with (the password, if any, replaced by `***`).
    pub fn url(&self) -> String {
        redact(&self.url)
    }

    /// Wait for `f` on the calling thread while the backend's runtime drives the connections (see the module
    /// doc). Safe from any thread, async or not.
    pub fn block<F: Future>(&self, f: F) -> F::Output {
        let _entered = self
            .rt
            .as_ref()
            .expect("runtime present until drop")
            .enter();
        futures::executor::block_on(f)
    }

    /// A pooled connection.
    pub async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::PgPool {
            url: self.url(),
            reason: e.to_string(),
        })
    }

    /// Run `f` with a pooled connection, synchronously.
    pub fn with_client<T>(
        &self,
        f: impl AsyncFnOnce(&Object) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.block(async {
            let client = self.client().await?;
            f(&client).await
        })
    }

    /// Run `f` inside one transaction, synchronously: committed when `f` returns `Ok`, rolled back otherwise
    /// (and when the process dies meanwhile: PostgreSQL drops the open transaction with the connection).
    pub fn in_transaction<T>(
        &self,
        f: impl AsyncFnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let value = f(&tx).await?;
            tx.commit().await?;
            Ok(value)
        })
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // `Runtime::drop` blocks, which panics inside an async context: the last `Arc<Store>` may well be dropped
        // by a task. The pool's connections close with their tasks.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Unix seconds now (the same clock as the SQLite backend).
pub(super) fn now() -> i64 {
    super::unix_now()
}
