//! Storage: log positions, deduplicated certificates and their sightings, matches, malformed entries, the
//! notification outbox, and the expiry probe's targets and history.
//!
//! Contract: [`Store`] methods are synchronous and safe to call from several threads. Async code calls them
//! through `tokio::task::spawn_blocking`. The one rule that makes ctwatch kill-safe lives in
//! [`Store::commit_batch`]: a batch of entries and the log position after it are written in ONE transaction.
//!
//! # Backends
//! [`Store`] is the one facade every caller uses (tailer, outbox workers, probe scheduler, API, CLI); the engine
//! behind it is a [`Backend`]:
//! - SQLite (the default: one file, zero set-up): one connection behind a mutex, WAL mode so that other
//!   processes — `ctwatch search`, `ctwatch logs` — read while a daemon writes. Its code sits in place in the
//!   `impl Store` blocks of this module's files, reached through `self.conn()`.
//! - PostgreSQL (`--db postgres://user@host/db`): a pool driven by a runtime of its own, in [`pg`] (files named
//!   after the SQLite ones). Every public method starts with `if let Some(pg) = self.pg() { return pg.… }`.
//!
//! Adding a method: write it on `Store` as before (SQLite through `self.conn()`) and on [`pg::PgStore`] in the
//! file of the same name, dispatching as above; both must give the same observable behaviour, which
//! `tests/store_conformance.rs` checks by running the same test bodies against both.

mod batch;
mod caa;
mod console;
mod expiry;
mod facts;
mod inventory;
mod logs;
mod metrics;
mod outbox;
mod pauses;
pub mod pg;
mod probe;
mod probe_results;
mod query;
mod rewind;
mod runs;
mod schema;
mod stream_positions;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

pub use batch::{Batch, BatchOutcome, MalformedEntry, StoredEntry};
pub use caa::{CaaCandidate, CaaRecordRow};
pub use console::{
    CertDetail, ConsoleLog, EventFilter, EventRow, MatchRow, NameCondition, NameMode, NewestCert,
    SEARCH_SCAN_CAP, SearchPage, SearchQuery, SearchRow, name_condition,
};
pub use expiry::{FindingRecord, FindingRow, HostGauge};
pub use inventory::{ServedRow, ValidCertificate};
pub use logs::{LogMeta, LogPosition, LogRow};
pub use metrics::{ProbeSample, SinkFailure};
pub use outbox::{Delivery, OutboxItem, OutboxSummary, SinkRoute};
pub use pauses::SinkPause;
pub use probe::{ProbeRecord, ProbeTarget, TargetSource, probe_name};
pub use probe_results::{ProbeResultRow, ProbeStatusRow};
pub use query::{CertRecord, MalformedRow, Sighting};
pub use runs::{CrashedRun, process_alive};
pub use schema::SCHEMA_VERSION;

/// Errors from the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "database schema version {found} is newer than this ctwatch supports ({supported}); upgrade ctwatch"
    )]
    TooNew { found: i64, supported: i64 },
    #[error(
        "database schema version {found} is older than this ctwatch's ({supported}); run `ctwatch run --once` \
         (or restart the service) once to upgrade it"
    )]
    TooOld { found: i64, supported: i64 },
    #[error("stored collapsed tree for log {log} is corrupt: {reason}")]
    CorruptTree { log: String, reason: String },
    #[error("batch for log {log} starts at {batch_start} but the stored position is {stored:?}")]
    PositionMismatch {
        log: String,
        batch_start: u64,
        stored: Option<i64>,
    },
    #[error("postgres: {}", postgres_error_text(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("PostgreSQL URL {url} is not usable: {reason}")]
    PgUrl { url: String, reason: String },
    #[error("no PostgreSQL connection to {url}: {reason}")]
    PgPool { url: String, reason: String },
    #[error("inconsistent database: {0}")]
    Inconsistent(String),
    #[error("cannot start the PostgreSQL client runtime: {0}")]
    PgRuntime(std::io::Error),
    #[error(
        "batch for log {log} refused: instance {instance} no longer holds the log's lease (another instance took \
         it over; this batch will be fetched again by the new owner)"
    )]
    LeaseLost { log: String, instance: String },
    #[error("stored JSON in {what} is corrupt: {source}")]
    Json {
        what: &'static str,
        source: serde_json::Error,
    },
}

/// A PostgreSQL error with the server's message and detail (tokio-postgres' `Display` says only "db error").
fn postgres_error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {} ({detail})", db.code().code(), db.message()),
            None => format!("{}: {}", db.code().code(), db.message()),
        },
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// The ctwatch database.
pub struct Store {
    backend: Backend,
    path: PathBuf,
    routes: Mutex<Vec<SinkRoute>>,
    /// This instance's ID when several share a PostgreSQL database: batches are fenced by its log leases and
    /// outbox deliveries / probe targets are claimed in its name ([`Store::set_instance`]).
    instance: std::sync::OnceLock<String>,
}

/// The database engine behind a [`Store`].
enum Backend {
    /// One SQLite connection, serialised by the mutex.
    Sqlite(Mutex<Connection>),
    /// A PostgreSQL connection pool (boxed: it is large and the SQLite variant is the common one).
    Postgres(Box<pg::PgStore>),
}

impl Store {
    /// Open (creating if needed) the database at `path` and bring its schema up to date. A `postgres://` URL
    /// opens that PostgreSQL database instead (its tables are created on first use).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(url) = postgres_url(path) {
            return Ok(Self::with_pg(pg::PgStore::open(url)?, path));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        Self::setup(conn, path.to_path_buf())
    }

    /// Open an existing database for reading only (`search`, `logs`, `outbox`, `report`): never creates a file
    /// or directory, never migrates, works on a read-only file and while a daemon writes (WAL). A database of
    /// another schema version is refused with the reason.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        if let Some(url) = postgres_url(path) {
            return Ok(Self::with_pg(pg::PgStore::open_read_only(url)?, path));
        }
        use rusqlite::OpenFlags;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Self::check_readable(Connection::open_with_flags(path, flags)?)?;
        Ok(Store {
            backend: Backend::Sqlite(Mutex::new(conn)),
            path: path.to_path_buf(),
            routes: Mutex::new(Vec::new()),
            instance: std::sync::OnceLock::new(),
        })
    }

    fn check_readable(conn: Connection) -> Result<Connection, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        match found {
            f if f > SCHEMA_VERSION => Err(StoreError::TooNew {
                found: f,
                supported: SCHEMA_VERSION,
            }),
            f if f < SCHEMA_VERSION => Err(StoreError::TooOld {
                found: f,
                supported: SCHEMA_VERSION,
            }),
            _ => Ok(conn),
        }
    }

    /// A private in-memory database (tests).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Self::setup(Connection::open_in_memory()?, PathBuf::from(":memory:"))
    }

    fn setup(mut conn: Connection, path: PathBuf) -> Result<Store, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Switching to WAL (and the migration's first read of a database another process is creating or
        // checkpointing right now) can answer SQLITE_BUSY without consulting the busy handler: retry those.
        retry_busy(|| conn.pragma_update(None, "journal_mode", "WAL"))?;
        // NORMAL is durable across process crashes in WAL mode (only an OS crash can lose the last commits).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        retry_busy(|| schema::migrate(&mut conn))?;
        Ok(Store {
            backend: Backend::Sqlite(Mutex::new(conn)),
            path,
            routes: Mutex::new(Vec::new()),
            instance: std::sync::OnceLock::new(),
        })
    }

    fn with_pg(pg: pg::PgStore, path: &Path) -> Store {
        Store {
            backend: Backend::Postgres(Box::new(pg)),
            path: path.to_path_buf(),
            routes: Mutex::new(Vec::new()),
            instance: std::sync::OnceLock::new(),
        }
    }

    /// Where the database lives: the SQLite file, or the PostgreSQL URL as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database for messages: the SQLite file, or the PostgreSQL URL without its password.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Postgres(pg) => pg.url(),
            Backend::Sqlite(_) => self.path.display().to_string(),
        }
    }

    /// The PostgreSQL backend, when this store is one (every public method dispatches on it first).
    pub fn pg(&self) -> Option<&pg::PgStore> {
        match &self.backend {
            Backend::Postgres(pg) => Some(pg),
            Backend::Sqlite(_) => None,
        }
    }

    /// Which engine: "sqlite" or "postgres" (logs, metrics).
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The SQLite connection. Only the SQLite code paths call this: every public method hands a PostgreSQL
    /// store to [`Store::pg`] first, so reaching here with one is a missing dispatch (a bug).
    fn conn(&self) -> MutexGuard<'_, Connection> {
        match &self.backend {
            // A panic while holding the lock leaves the connection usable (SQLite rolls back the open
            // transaction).
            Backend::Sqlite(conn) => conn.lock().unwrap_or_else(|e| e.into_inner()),
            Backend::Postgres(pg) => panic!(
                "a Store method without PostgreSQL dispatch was called on {}",
                pg.url()
            ),
        }
    }

    /// Share this database with other instances as `instance` (set once, before the run starts): every batch
    /// commit then checks, inside its transaction, that this instance holds the log's lease
    /// ([`crate::lease`]), and outbox deliveries and probe targets are claimed (`FOR UPDATE SKIP LOCKED`) so that
    /// no two instances deliver or probe the same thing. Only PostgreSQL databases are shared; SQLite ignores it.
    pub fn set_instance(&self, instance: &str) {
        let _ = self.instance.set(instance.to_string());
    }

    /// This instance's ID on a shared database (see [`Store::set_instance`]).
    pub fn instance(&self) -> Option<&str> {
        self.instance.get().map(String::as_str)
    }

    /// The sinks that new events are queued for. Set once at start-up (and on config reload).
    pub fn set_sink_routes(&self, routes: Vec<SinkRoute>) {
        *self.routes.lock().unwrap_or_else(|e| e.into_inner()) = routes;
    }

    fn sink_routes(&self) -> Vec<SinkRoute> {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The PostgreSQL URL `path` holds, if it is one (`--db postgres://...`).
pub fn postgres_url(path: &Path) -> Option<&str> {
    path.to_str().filter(|s| pg::is_postgres_url(s))
}

/// How long a connection waits for another process's lock before giving up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn is_busy(e: &StoreError) -> bool {
    matches!(e, StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
        if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

/// Run `f` again while SQLite answers "busy" without having waited (some paths skip the busy handler), up to
/// [`BUSY_TIMEOUT`].
fn retry_busy<T, E: Into<StoreError>>(
    mut f: impl FnMut() -> Result<T, E>,
) -> Result<T, StoreError> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match f().map_err(Into::into) {
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

/// Current time in unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// "www.example.com" -> "com.example.www": the index key that makes "NAME and everything under it" a range scan.
pub fn reverse_name(name: &str) -> String {
    let mut labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
    labels.reverse();
    labels.join(".").to_ascii_lowercase()
}
