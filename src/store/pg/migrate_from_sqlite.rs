//! `ctwatch db migrate-to postgres://...`: copy a SQLite database into PostgreSQL, resumably.
//!
//! Every table is copied in primary-key order, in chunks. Each chunk is written in ONE PostgreSQL transaction
//! together with its progress row in `sqlite_import` (the last key copied), so a copy killed at any point resumes
//! after the last committed chunk, and a finished table is skipped. Rows are inserted with `ON CONFLICT DO
//! NOTHING`, so running the command again is harmless. Ids are copied as they are (events, certificates, probe
//! results keep their numbers; references between tables stay valid), and the identity sequences are moved past
//! them at the end.
//!
//! Stop the daemon writing to the SQLite file first: rows it adds behind a table's copy are not picked up.

use std::path::Path;

use rusqlite::types::Value;
use tokio_postgres::types::ToSql;

use super::PgStore;
use crate::store::StoreError;

/// The tables, parents before children, each with its primary key (the copy order).
const TABLES: &[(&str, &[&str])] = &[
    ("logs", &["log_id"]),
    ("certificates", &["id"]),
    ("fingerprints", &["cert_sha256"]),
    ("sightings", &["log_id", "entry_index"]),
    ("cert_names", &["rname", "cert_id"]),
    ("names", &["name"]),
    ("matches", &["id"]),
    ("malformed", &["log_id", "entry_index"]),
    ("events", &["id"]),
    ("deliveries", &["sink", "event_id"]),
    ("issuers", &["sha256"]),
    ("runs", &["id"]),
    ("probe_targets", &["domain", "port"]),
    ("probe_results", &["id"]),
    ("facts", &["key"]),
    ("expiry_findings", &["id"]),
    ("caa_checks", &["cert_id"]),
    ("sink_pauses", &["sink"]),
    ("stream_positions", &["log_id"]),
];

/// Tables whose `id` is an identity column (their sequences are moved past the copied ids).
const IDENTITY_TABLES: &[&str] = &[
    "certificates",
    "matches",
    "events",
    "runs",
    "probe_results",
    "expiry_findings",
];

/// PostgreSQL's limit on parameters per statement.
const MAX_PARAMS: usize = 65_535;

/// Where a copy stands, reported after every chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrateProgress {
    pub table: &'static str,
    /// Rows of this table copied so far (over every run).
    pub rows: u64,
    /// Rows of this table in the SQLite file.
    pub total: u64,
    pub done: bool,
}

/// Copy the SQLite database at `sqlite` into `pg` (see the module doc), `chunk_rows` rows per transaction,
/// calling `progress` after each chunk. The SQLite file is only read.
pub fn migrate_sqlite(
    sqlite: &Path,
    pg: &PgStore,
    chunk_rows: usize,
    mut progress: impl FnMut(&MigrateProgress),
) -> Result<(), StoreError> {
    // Refuses a file of another schema version (with what to do), never changes it.
    drop(crate::store::Store::open_read_only(sqlite)?);
    let conn = rusqlite::Connection::open_with_flags(
        sqlite,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let source = std::fs::canonicalize(sqlite)
        .unwrap_or_else(|_| sqlite.to_path_buf())
        .display()
        .to_string();
    pg.refuse_foreign_data(&source)?;
    for &(table, key) in TABLES {
        copy_table(
            &conn,
            pg,
            &source,
            table,
            key,
            chunk_rows.max(1),
            &mut progress,
        )?;
    }
    pg.with_client(async |c| {
        for t in IDENTITY_TABLES {
            c.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM {t}),
                                   false)"
                ),
                &[],
            )
            .await?;
        }
        Ok(())
    })
}

impl PgStore {
    /// A copy goes into an empty database (or one this source already started to fill): copied ids would
    /// collide with rows written by something else, and `ON CONFLICT DO NOTHING` would drop them silently.
    fn refuse_foreign_data(&self, source: &str) -> Result<(), StoreError> {
        self.with_client(async |c| {
            let started: bool = c
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_import WHERE source = $1)",
                    &[&source],
                )
                .await?
                .get(0);
            let other: bool = c
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM logs) OR EXISTS (SELECT 1 FROM events)",
                    &[],
                )
                .await?
                .get(0);
            if other && !started {
                return Err(StoreError::Inconsistent(format!(
                    "{} already holds ctwatch data that did not come from {source}: migrate into an empty \
                     database",
                    self.url()
                )));
            }
            Ok(())
        })
    }
}

/// A column's PostgreSQL type, as the copy binds it.
#[derive(Clone, Copy, Debug)]
enum PgType {
    Int,
    Text,
    Bytes,
}

fn copy_table(
    conn: &rusqlite::Connection,
    pg: &PgStore,
    source: &str,
    table: &'static str,
    key: &[&str],
    chunk_rows: usize,
    progress: &mut impl FnMut(&MigrateProgress),
) -> Result<(), StoreError> {
    let total: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
    let (mut last_key, mut rows, done) = pg.with_client(async |c| {
        Ok(c.query_opt(
            "SELECT last_key, rows, done FROM sqlite_import WHERE source = $1 AND tbl = $2",
            &[&source, &table],
        )
        .await?
        .map_or((None, 0, false), |r| {
            (r.get::<_, Option<String>>(0), r.get::<_, i64>(1), r.get(2))
        }))
    })?;
    let mut report = |rows: i64, done| {
        progress(&MigrateProgress {
            table,
            rows: rows as u64,
            total: total as u64,
            done,
        })
    };
    if done {
        report(rows, true);
        return Ok(());
    }
    let columns = columns(conn, pg, table)?;
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let key_at: Vec<usize> = key
        .iter()
        .map(|k| {
            names
                .iter()
                .position(|n| n == k)
                .expect("key columns are copied")
        })
        .collect();
    let order = key.join(", ");
    loop {
        let after: Vec<Value> = match &last_key {
            Some(k) => decode_key(k)?,
            None => Vec::new(),
        };
        let sql = if after.is_empty() {
            format!(
                "SELECT {} FROM {table} ORDER BY {order} LIMIT ?1",
                names.join(", ")
            )
        } else {
            let marks: Vec<String> = (0..key.len()).map(|i| format!("?{}", i + 2)).collect();
            format!(
                "SELECT {} FROM {table} WHERE ({order}) > ({}) ORDER BY {order} LIMIT ?1",
                names.join(", "),
                marks.join(", ")
            )
        };
        let mut args: Vec<Value> = vec![Value::Integer(chunk_rows as i64)];
        args.extend(after);
        let chunk: Vec<Vec<Value>> = {
            let mut stmt = conn.prepare(&sql)?;
            stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| {
                (0..names.len()).map(|i| r.get::<_, Value>(i)).collect()
            })?
            .collect::<Result<_, _>>()?
        };
        let finished = chunk.len() < chunk_rows;
        let new_key = chunk
            .last()
            .map(|row| encode_key(&key_at.iter().map(|&i| row[i].clone()).collect::<Vec<_>>()));
        let new_key = new_key.or(last_key.clone());
        rows += chunk.len() as i64;
        write_chunk(
            pg,
            source,
            table,
            &columns,
            &chunk,
            new_key.as_deref(),
            rows,
            finished,
        )?;
        last_key = new_key;
        report(rows, finished);
        if finished {
            return Ok(());
        }
    }
}

/// The columns of `table` present in both databases, with their PostgreSQL types.
fn columns(
    conn: &rusqlite::Connection,
    pg: &PgStore,
    table: &str,
) -> Result<Vec<(String, PgType)>, StoreError> {
    let sqlite: Vec<String> = conn
        .prepare(&format!(
            "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
        ))?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let pg_types: Vec<(String, String)> = pg.with_client(async |c| {
        Ok(c.query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1",
            &[&table],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
    })?;
    sqlite
        .into_iter()
        .map(|name| {
            let ty = pg_types
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t.as_str())
                .ok_or_else(|| {
                    StoreError::Inconsistent(format!(
                        "column {table}.{name} of the SQLite file has no PostgreSQL counterpart"
                    ))
                })?;
            let ty = match ty {
                "bigint" | "integer" => PgType::Int,
                "bytea" => PgType::Bytes,
                _ => PgType::Text,
            };
            Ok((name, ty))
        })
        .collect()
}

/// Insert one chunk and record the progress, in one transaction.
#[allow(clippy::too_many_arguments)]
fn write_chunk(
    pg: &PgStore,
    source: &str,
    table: &str,
    columns: &[(String, PgType)],
    chunk: &[Vec<Value>],
    last_key: Option<&str>,
    rows: i64,
    done: bool,
) -> Result<(), StoreError> {
    let mut values: Vec<Vec<Box<dyn ToSql + Sync + Send>>> = Vec::with_capacity(chunk.len());
    for row in chunk {
        let mut out = Vec::with_capacity(row.len());
        for (v, (name, ty)) in row.iter().zip(columns) {
            out.push(bind(v, *ty).ok_or_else(|| {
                StoreError::Inconsistent(format!(
                    "{table}.{name}: a SQLite {v:?} cannot go into {ty:?}"
                ))
            })?);
        }
        values.push(out);
    }
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let per_statement = (MAX_PARAMS / columns.len()).max(1);
    pg.in_transaction(async |tx| {
        for part in values.chunks(per_statement) {
            let mut sql = format!("INSERT INTO {table} ({}) VALUES ", names.join(", "));
            let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(part.len() * columns.len());
            for (r, row) in part.iter().enumerate() {
                let marks: Vec<String> = (0..row.len())
                    .map(|c| format!("${}", r * columns.len() + c + 1))
                    .collect();
                sql.push_str(if r == 0 { "(" } else { ", (" });
                sql.push_str(&marks.join(", "));
                sql.push(')');
                params.extend(row.iter().map(|b| &**b as &(dyn ToSql + Sync)));
            }
            sql.push_str(" ON CONFLICT DO NOTHING");
            tx.execute(sql.as_str(), &params).await?;
        }
        tx.execute(
            "INSERT INTO sqlite_import (source, tbl, last_key, rows, done) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (source, tbl) DO UPDATE SET last_key = $3, rows = $4, done = $5",
            &[&source, &table, &last_key, &rows, &done],
        )
        .await?;
        Ok(())
    })
}

/// A SQLite value as a parameter of the column's PostgreSQL type (None: it does not fit).
fn bind(v: &Value, ty: PgType) -> Option<Box<dyn ToSql + Sync + Send>> {
    Some(match (v, ty) {
        (Value::Null, PgType::Int) => Box::new(None::<i64>),
        (Value::Null, PgType::Text) => Box::new(None::<String>),
        (Value::Null, PgType::Bytes) => Box::new(None::<Vec<u8>>),
        (Value::Integer(i), PgType::Int) => Box::new(*i),
        (Value::Text(s), PgType::Text) => Box::new(s.clone()),
        (Value::Blob(b), PgType::Bytes) => Box::new(b.clone()),
        _ => return None,
    })
}

/// A row key as JSON (`[{"i":1},{"t":"a"},{"b":"00ff"}]`) for the progress record.
fn encode_key(values: &[Value]) -> String {
    let parts: Vec<serde_json::Value> = values
        .iter()
        .map(|v| match v {
            Value::Integer(i) => serde_json::json!({ "i": i }),
            Value::Text(s) => serde_json::json!({ "t": s }),
            Value::Blob(b) => serde_json::json!({ "b": hex::encode(b) }),
            Value::Real(f) => serde_json::json!({ "f": f }),
            Value::Null => serde_json::Value::Null,
        })
        .collect();
    serde_json::Value::Array(parts).to_string()
}

fn decode_key(text: &str) -> Result<Vec<Value>, StoreError> {
    let corrupt =
        |why: &str| StoreError::Inconsistent(format!("sqlite_import.last_key {text}: {why}"));
    let parts: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|source| StoreError::Json {
            what: "sqlite_import.last_key",
            source,
        })?;
    parts
        .iter()
        .map(|p| {
            if let Some(i) = p.get("i").and_then(|v| v.as_i64()) {
                Ok(Value::Integer(i))
            } else if let Some(s) = p.get("t").and_then(|v| v.as_str()) {
                Ok(Value::Text(s.to_string()))
            } else if let Some(b) = p.get("b").and_then(|v| v.as_str()) {
                hex::decode(b)
                    .map(Value::Blob)
                    .map_err(|_| corrupt("bad hex"))
            } else if let Some(f) = p.get("f").and_then(|v| v.as_f64()) {
                Ok(Value::Real(f))
            } else {
                Ok(Value::Null)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_the_progress_record() {
        let key = vec![
            Value::Blob(vec![0, 255, 7]),
            Value::Integer(-3),
            Value::Text("a\"b".into()),
        ];
        assert_eq!(decode_key(&encode_key(&key)).unwrap(), key);
    }
}
