//! Schema migrations. Each entry of [`MIGRATIONS`] moves the database from version `i` to `i + 1`; the current
//! version lives in `PRAGMA user_version`. Migrations only ever get appended: a released one is never edited.

use rusqlite::Connection;

use super::StoreError;

/// Ordered migrations; index `i` upgrades version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // v1: the core pipeline.
    r#"
    -- One row per CT log we have ever followed. The verified position (size, root, collapsed tree) only moves
    -- in the same transaction that stores the entries up to it.
    CREATE TABLE logs (
        log_id            BLOB PRIMARY KEY,
        url               TEXT NOT NULL,
        kind              TEXT NOT NULL,            -- 'rfc6962' | 'tiled'
        description       TEXT NOT NULL DEFAULT '',
        operator          TEXT NOT NULL DEFAULT '',
        state             TEXT NOT NULL DEFAULT '',
        verified_size     INTEGER NOT NULL DEFAULT 0,
        verified_root     BLOB,
        verified_sth_timestamp INTEGER,
        collapsed_tree    BLOB,
        head_size         INTEGER,
        head_root         BLOB,
        head_timestamp    INTEGER,
        last_success_at   INTEGER,
        last_error        TEXT,
        last_error_at     INTEGER,
        entries_processed INTEGER NOT NULL DEFAULT 0,
        added_at          INTEGER NOT NULL
    ) STRICT;

    -- Certificates, deduplicated by tbs_sha256: a precert and its final certificate, in any number of logs,
    -- are one row.
    CREATE TABLE certificates (
        id           INTEGER PRIMARY KEY,
        tbs_sha256   BLOB NOT NULL UNIQUE,
        cert_sha256  BLOB NOT NULL,                 -- fingerprint of the first sighting's DER
        entry_type   TEXT NOT NULL,                 -- of the first sighting
        subject      TEXT NOT NULL,
        issuer       TEXT NOT NULL,
        serial       TEXT NOT NULL,
        not_before   INTEGER NOT NULL,
        not_after    INTEGER NOT NULL,
        dns_names    TEXT NOT NULL,                 -- JSON array
        ip_addresses TEXT NOT NULL,                 -- JSON array
        pubkey_sha256 BLOB NOT NULL,
        der          BLOB,
        first_seen   INTEGER NOT NULL
    ) STRICT;

    -- Every DER fingerprint of a certificate (precert and final cert differ).
    CREATE TABLE fingerprints (
        cert_sha256 BLOB PRIMARY KEY,
        cert_id     INTEGER NOT NULL REFERENCES certificates(id),
        entry_type  TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;

    -- Every (log, index) where a stored certificate was seen.
    CREATE TABLE sightings (
        log_id       BLOB NOT NULL,
        entry_index  INTEGER NOT NULL,
        cert_id      INTEGER NOT NULL REFERENCES certificates(id),
        entry_type   TEXT NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        cert_sha256  BLOB NOT NULL,
        PRIMARY KEY (log_id, entry_index)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX sightings_cert ON sightings(cert_id);

    -- Names of stored certificates, reversed label order ("com.example.www") so that "a name and everything
    -- under it" is one index range.
    CREATE TABLE cert_names (
        rname   TEXT NOT NULL,
        cert_id INTEGER NOT NULL REFERENCES certificates(id),
        PRIMARY KEY (rname, cert_id)
    ) STRICT, WITHOUT ROWID;

    -- First time each DNS name was seen in a stored certificate (feeds the expiry probe).
    CREATE TABLE names (
        name        TEXT PRIMARY KEY,
        first_seen  INTEGER NOT NULL,
        cert_id     INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;

    -- Watchlist matches, one row per (certificate, matched item, name).
    CREATE TABLE matches (
        id         INTEGER PRIMARY KEY,
        cert_id    INTEGER NOT NULL REFERENCES certificates(id),
        kind       TEXT NOT NULL,
        item       TEXT NOT NULL,
        source     TEXT NOT NULL,
        name       TEXT NOT NULL,
        tags       TEXT NOT NULL,                   -- JSON array
        created_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX matches_cert ON matches(cert_id);

    -- Leaves that did not decode: kept with their bytes so they can be inspected and re-processed.
    CREATE TABLE malformed (
        log_id      BLOB NOT NULL,
        entry_index INTEGER NOT NULL,
        reason      TEXT NOT NULL,
        leaf_input  BLOB NOT NULL,
        extra_data  BLOB NOT NULL,
        seen_at     INTEGER NOT NULL,
        PRIMARY KEY (log_id, entry_index)
    ) STRICT, WITHOUT ROWID;

    -- The outbox: events are written in the transaction that records what caused them; one delivery row per
    -- (event, sink) is marked delivered only after the sink accepted it.
    CREATE TABLE events (
        id         INTEGER PRIMARY KEY,
        kind       TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        group_key  TEXT NOT NULL,
        tags       TEXT NOT NULL,                   -- JSON array
        payload    TEXT NOT NULL                    -- JSON object
    ) STRICT;
    CREATE TABLE deliveries (
        event_id        INTEGER NOT NULL REFERENCES events(id),
        sink            TEXT NOT NULL,
        status          TEXT NOT NULL,              -- 'pending' | 'delivered' | 'failed'
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error      TEXT,
        delivered_at    INTEGER,
        PRIMARY KEY (sink, event_id)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX deliveries_pending ON deliveries(status, sink, next_attempt_at);
    "#,
    // v2: issuer certificates of tiled logs (immutable, fetched once per fingerprint).
    r#"
    CREATE TABLE issuers (
        sha256     BLOB PRIMARY KEY,
        der        BLOB NOT NULL,
        fetched_at INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    "#,
    // v3: one row per `ctwatch run` process, to tell a crash from a clean exit at the next start.
    r#"
    CREATE TABLE runs (
        id           INTEGER PRIMARY KEY,
        pid          INTEGER NOT NULL,
        version      TEXT NOT NULL,
        started_at   INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,              -- refreshed by the health monitor while running
        ended_at     INTEGER,
        status       TEXT NOT NULL                  -- 'running' | 'clean' | 'crashed'
    ) STRICT;
    "#,
    // v4 (probe): hosts the expiry probe visits on a schedule, and the history of what they served.
    r#"
    -- One row per (domain, port) to probe. `snapshot` is the last result that counted for alerting (a first
    -- network failure does not replace it); `consecutive_failures` counts network failures in a row.
    CREATE TABLE probe_targets (
        domain               TEXT NOT NULL,
        port                 INTEGER NOT NULL,
        tags                 TEXT NOT NULL,          -- JSON array, union of the matching watchlist items' tags
        source               TEXT NOT NULL,          -- 'ct' (a matching certificate) | 'manual'
        added_at             INTEGER NOT NULL,
        next_probe_at        INTEGER NOT NULL,
        last_probed_at       INTEGER,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        snapshot             TEXT,                   -- JSON ProbeSnapshot
        PRIMARY KEY (domain, port)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX probe_targets_due ON probe_targets(next_probe_at);

    -- Every probe result, newest last.
    CREATE TABLE probe_results (
        id          INTEGER PRIMARY KEY,
        domain      TEXT NOT NULL,
        port        INTEGER NOT NULL,
        probed_at   INTEGER NOT NULL,
        status      TEXT NOT NULL,
        level       TEXT NOT NULL,
        days_left   INTEGER,
        not_after   TEXT,
        cert_sha256 TEXT,
        issuer      TEXT,
        seen_in_ct  INTEGER,                         -- 0 | 1 | NULL (not looked up)
        report      TEXT NOT NULL                    -- JSON HostReport
    ) STRICT;
    CREATE INDEX probe_results_target ON probe_results(domain, port, id);
    "#,
    // v5 (first hour: rewind, log list age): a requested restart position per log (`ctwatch logs rewind`,
    // `run --restart-at`), applied by the next run; and small facts about the last run (the log list used).
    r#"
    ALTER TABLE logs ADD COLUMN rewind_to INTEGER;
    CREATE TABLE facts (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;
    "#,
    // v6 (expiry intelligence): what a probed host serves compared with CT — renewed but not deployed
    // (`stale_deployment`), renewal missing (`renewal_missing`). One row per finding about one served
    // certificate; `resolved_at` is set when a later probe no longer finds it (history for `report --since`).
    r#"
    CREATE TABLE expiry_findings (
        id          INTEGER PRIMARY KEY,
        domain      TEXT NOT NULL,
        port        INTEGER NOT NULL,
        kind        TEXT NOT NULL,                   -- 'stale_deployment' | 'renewal_missing'
        cert_sha256 TEXT NOT NULL,                   -- the served certificate the finding is about
        detail      TEXT NOT NULL,                   -- JSON probe::renewal::Finding
        raised_at   INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        resolved_at INTEGER
    ) STRICT;
    CREATE INDEX expiry_findings_target ON expiry_findings(domain, port, resolved_at);
    "#,
    // v7 (CAA checks): one row per checked certificate; `unknown` verdicts (DNS failure) are retried at
    // `next_check_at` while the certificate is young enough, `allowed` / `mismatch` are final.
    r#"
    CREATE TABLE caa_checks (
        cert_id       INTEGER PRIMARY KEY REFERENCES certificates(id),
        verdict       TEXT NOT NULL,                 -- 'allowed' | 'mismatch' | 'unknown'
        detail        TEXT NOT NULL,                 -- JSON: issuer identifiers and per-name verdicts
        checked_at    INTEGER NOT NULL,
        attempts      INTEGER NOT NULL,
        next_check_at INTEGER                        -- NULL: final
    ) STRICT;
    "#,
    // v8 (ops, sink pauses): sinks whose target is gone (404/410) stay paused across runs until resumed.
    r#"
    CREATE TABLE sink_pauses (
        sink      TEXT PRIMARY KEY,
        paused_at INTEGER NOT NULL,
        reason    TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    "#,
    // v9 (web console): a certificate's fingerprints by certificate (the console's search folds precert and cert
    // into one row, and the certificate page lists them; without this each lookup scanned the whole table).
    r#"
    CREATE INDEX IF NOT EXISTS fingerprints_cert ON fingerprints(cert_id);
    "#,
    // v10 (NATS stream): per log, the position up to which every committed entry was published and acknowledged
    // by JetStream (the collapsed tree at it, so that a restart re-reads and re-verifies from there).
    r#"
    CREATE TABLE stream_positions (
        log_id          BLOB PRIMARY KEY,
        published_size  INTEGER NOT NULL,
        collapsed_tree  BLOB NOT NULL,
        updated_at      INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Bring the database up to [`SCHEMA_VERSION`], one transaction per migration. A database written by a newer
/// ctwatch is refused rather than misread.
///
/// Safe against other processes migrating the same file at the same moment (several cron runs starting together
/// on a fresh database): each step takes the write lock first (`BEGIN IMMEDIATE`, waiting up to the busy timeout)
/// and re-reads `user_version` inside the transaction, so a migration another process finished meanwhile is
/// skipped instead of failing with `table ... already exists`.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    loop {
        let current = version(conn)?;
        if current >= SCHEMA_VERSION {
            return Ok(());
        }
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current = version(&tx)?;
        if current >= SCHEMA_VERSION {
            return Ok(());
        }
        tx.execute_batch(MIGRATIONS[current as usize])?;
        tx.pragma_update(None, "user_version", current + 1)?;
        tx.commit()?;
    }
}

/// `PRAGMA user_version`, refusing a database newer than this build.
fn version(conn: &Connection) -> Result<i64, StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(current)
}
