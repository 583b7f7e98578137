//! The lease tables in PostgreSQL and every statement on them. Times are the server's (`now()`), never this
//! machine's, so instances with skewed clocks agree on who holds what.
//!
//! ```text
//!  ctwatch_instances   instance_id PK, hostname, pid, api_addr, started_at, heartbeat_at, expires_at
//!  ctwatch_log_leases  log_id PK (bytea, 32), owner (instance_id), epoch (bumped at each takeover),
//!                      acquired_at, expires_at
//! ```
//!
//! A lease is held by `owner` while `expires_at > now()`. Taking one is a single `INSERT … ON CONFLICT DO UPDATE
//! … WHERE expired` statement, so two instances racing for a free log cannot both win. The batch transaction
//! fences with [`LEASE_HELD_SQL`] (`FOR SHARE`): a takeover of that log waits until the batch committed or
//! rolled back, and a batch whose lease is gone fails.

use std::time::Duration;

use tokio_postgres::GenericClient;

use super::{LeaseError, LogId};

/// Creates the lease tables if missing. Run under a transaction-scoped advisory lock, so that instances starting
/// together do not race on `CREATE TABLE` (PostgreSQL's catalog would refuse the second).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ctwatch_instances (
    instance_id  TEXT PRIMARY KEY,
    hostname     TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    api_addr     TEXT,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS ctwatch_log_leases (
    log_id      BYTEA PRIMARY KEY CHECK (length(log_id) = 32),
    owner       TEXT NOT NULL,
    epoch       BIGINT NOT NULL DEFAULT 1,
    acquired_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS ctwatch_log_leases_owner ON ctwatch_log_leases (owner);
";

/// Key of the advisory lock that serialises [`SCHEMA`] (ASCII "ctwlease").
const SCHEMA_LOCK_KEY: i64 = 0x6374_776c_6561_7365;

/// The fencing check, for the batch transaction: one row when instance `$2` holds the lease of log `$1` now.
/// `FOR SHARE` keeps a takeover of this lease waiting until the transaction ends.
pub const LEASE_HELD_SQL: &str = "SELECT 1 FROM ctwatch_log_leases
     WHERE log_id = $1 AND owner = $2 AND expires_at > now() FOR SHARE";

/// A live instance, as the heartbeat table shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceRow {
    pub instance_id: String,
    pub hostname: String,
    pub pid: i64,
    pub api_addr: Option<String>,
    /// Seconds since its last heartbeat.
    pub heartbeat_age_secs: f64,
    pub live: bool,
}

/// Who holds a log's lease.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaseRow {
    pub log_id: LogId,
    pub owner: String,
    pub epoch: i64,
    /// Seconds until it expires (negative: expired, free to take).
    pub expires_in_secs: f64,
}

impl LeaseRow {
    pub fn held(&self) -> bool {
        self.expires_in_secs > 0.0
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Create the lease tables if missing.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), LeaseError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK_KEY])
        .await?;
    tx.batch_execute(SCHEMA).await?;
    tx.commit().await?;
    Ok(())
}

/// Connect to `url` (no TLS: PostgreSQL on a private network or a Unix socket) and drive the connection on a
/// task; the client fails once the connection is gone.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, LeaseError> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|source| LeaseError::Connect {
            url: redact(url),
            source,
        })?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!("PostgreSQL connection (leases) ended: {e}");
        }
    });
    Ok(client)
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

/// Write this instance's heartbeat (creating its row), and return how many instances are live.
pub async fn heartbeat(
    db: &impl GenericClient,
    instance: &str,
    api_addr: Option<&str>,
    ttl: Duration,
) -> Result<usize, LeaseError> {
    let host = super::hostname().unwrap_or_default();
    let pid = i64::from(std::process::id());
    db.execute(
        "INSERT INTO ctwatch_instances (instance_id, hostname, pid, api_addr, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
         ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = now(), expires_at = EXCLUDED.expires_at,
             api_addr = COALESCE(EXCLUDED.api_addr, ctwatch_instances.api_addr)",
        &[&instance, &host, &pid, &api_addr, &secs(ttl)],
    )
    .await?;
    // Rows of instances dead for a day only clutter `ctwatch logs`.
    db.execute(
        "DELETE FROM ctwatch_instances WHERE expires_at < now() - interval '1 day'",
        &[],
    )
    .await?;
    let live: i64 = db
        .query_one(
            "SELECT count(*) FROM ctwatch_instances WHERE expires_at > now()",
            &[],
        )
        .await?
        .get(0);
    Ok(live as usize)
}

/// Extend the leases of `logs` that `instance` still holds; returns those (a lease that expired meanwhile is lost,
/// even if nobody took it yet: its tailer may have been fenced out).
pub async fn renew(
    db: &impl GenericClient,
    instance: &str,
    logs: &[LogId],
    ttl: Duration,
) -> Result<Vec<LogId>, LeaseError> {
    if logs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&[u8]> = logs.iter().map(|l| &l[..]).collect();
    let rows = db
        .query(
            "UPDATE ctwatch_log_leases SET expires_at = now() + make_interval(secs => $3)
             WHERE owner = $1 AND log_id = ANY($2) AND expires_at > now()
             RETURNING log_id",
            &[&instance, &ids, &secs(ttl)],
        )
        .await?;
    Ok(rows.iter().filter_map(|r| log_id(r.get(0))).collect())
}

/// Of `logs`, those whose lease is free (never taken, or expired), in a random order (so that instances
/// starting together do not all go for the same log first).
pub async fn free(db: &impl GenericClient, logs: &[LogId]) -> Result<Vec<LogId>, LeaseError> {
    let ids: Vec<&[u8]> = logs.iter().map(|l| &l[..]).collect();
    let rows = db
        .query(
            "SELECT w.log_id FROM unnest($1::bytea[]) AS w(log_id)
             WHERE NOT EXISTS (SELECT 1 FROM ctwatch_log_leases l
                               WHERE l.log_id = w.log_id AND l.expires_at > now())
             ORDER BY random()",
            &[&ids],
        )
        .await?;
    Ok(rows.iter().filter_map(|r| log_id(r.get(0))).collect())
}

/// Take the lease of `log` if it is free; returns its new epoch when taken.
pub async fn try_acquire(
    db: &impl GenericClient,
    instance: &str,
    log: &LogId,
    ttl: Duration,
) -> Result<Option<i64>, LeaseError> {
    let row = db
        .query_opt(
            "INSERT INTO ctwatch_log_leases (log_id, owner, expires_at)
             VALUES ($1, $2, now() + make_interval(secs => $3))
             ON CONFLICT (log_id) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at,
                 acquired_at = now(), epoch = ctwatch_log_leases.epoch + 1
             WHERE ctwatch_log_leases.expires_at <= now()
             RETURNING epoch",
            &[&&log[..], &instance, &secs(ttl)],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Give the lease of `log` up (only if `instance` holds it), so that another instance may take it at once.
pub async fn release(
    db: &impl GenericClient,
    instance: &str,
    log: &LogId,
) -> Result<bool, LeaseError> {
    let n = db
        .execute(
            "DELETE FROM ctwatch_log_leases WHERE log_id = $1 AND owner = $2",
            &[&&log[..], &instance],
        )
        .await?;
    Ok(n == 1)
}

/// Give every lease of `instance` up and end its heartbeat (graceful shutdown).
pub async fn leave(db: &impl GenericClient, instance: &str) -> Result<u64, LeaseError> {
    let n = db
        .execute(
            "DELETE FROM ctwatch_log_leases WHERE owner = $1",
            &[&instance],
        )
        .await?;
    db.execute(
        "UPDATE ctwatch_instances SET expires_at = now() WHERE instance_id = $1",
        &[&instance],
    )
    .await?;
    Ok(n)
}

/// Every lease row (held or expired), for `ctwatch logs` and tests.
pub async fn leases(db: &impl GenericClient) -> Result<Vec<LeaseRow>, LeaseError> {
    let rows = db
        .query(
            "SELECT log_id, owner, epoch, EXTRACT(EPOCH FROM expires_at - now())::float8
             FROM ctwatch_log_leases ORDER BY log_id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(LeaseRow {
                log_id: log_id(r.get(0))?,
                owner: r.get(1),
                epoch: r.get(2),
                expires_in_secs: r.get(3),
            })
        })
        .collect())
}

/// Every instance row seen in the last day.
pub async fn instances(db: &impl GenericClient) -> Result<Vec<InstanceRow>, LeaseError> {
    let rows = db
        .query(
            "SELECT instance_id, hostname, pid, api_addr,
                    EXTRACT(EPOCH FROM now() - heartbeat_at)::float8, expires_at > now()
             FROM ctwatch_instances ORDER BY instance_id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| InstanceRow {
            instance_id: r.get(0),
            hostname: r.get(1),
            pid: r.get(2),
            api_addr: r.get(3),
            heartbeat_age_secs: r.get(4),
            live: r.get(5),
        })
        .collect())
}

/// Whether `instance` holds the lease of `log` now; in a transaction, keeps a takeover waiting until it ends
/// (see [`LEASE_HELD_SQL`]).
pub async fn holds(
    db: &impl GenericClient,
    instance: &str,
    log: &LogId,
) -> Result<bool, LeaseError> {
    Ok(db
        .query_opt(LEASE_HELD_SQL, &[&&log[..], &instance])
        .await?
        .is_some())
}

fn log_id(bytes: &[u8]) -> Option<LogId> {
    bytes.try_into().ok()
}

/// Who owns what, read on a thread of its own (for the synchronous CLI: `ctwatch logs`): the lease rows and the
/// instance rows. A database no instance ever joined (no lease tables yet) has none of either.
pub fn ownership_blocking(url: &str) -> Result<(Vec<LeaseRow>, Vec<InstanceRow>), LeaseError> {
    let url = url.to_string();
    let read = move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime builds");
        rt.block_on(async {
            let client = connect(&url).await?;
            let missing = |e: &LeaseError| {
                matches!(e, LeaseError::Postgres(p)
                    if p.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE))
            };
            match (leases(&client).await, instances(&client).await) {
                (Ok(l), Ok(i)) => Ok((l, i)),
                (Err(e), _) | (_, Err(e)) if missing(&e) => Ok((Vec::new(), Vec::new())),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        })
    };
    std::thread::spawn(read)
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}
