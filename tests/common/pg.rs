//! A private PostgreSQL database per test: `CREATE DATABASE ctwatch_test_<random>` on the server named by
//! `CTWATCH_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped when the guard drops.
//! A server that cannot be reached fails the test with what to do — never a silent skip.

use std::sync::atomic::{AtomicU64, Ordering};

/// The admin connection URL of the test server.
pub fn admin_url() -> String {
    std::env::var("CTWATCH_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A fresh, empty database; dropped (with its connections) on drop.
pub struct TestDb {
    pub url: String,
    name: String,
    admin: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "ctwatch_test_{}_{}_{nanos}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let admin = admin_url();
        if let Err(e) = admin_sql(&admin, &format!("CREATE DATABASE {name}")) {
            panic!(
                "this test needs PostgreSQL at {admin} (set CTWATCH_TEST_PG_URL to another server; Debian: \
                 `apt-get install postgresql && pg_ctlcluster 15 main start`, trust auth on 127.0.0.1): {e}"
            );
        }
        let mut url = url::Url::parse(&admin).expect("CTWATCH_TEST_PG_URL is a URL");
        url.set_path(&format!("/{name}"));
        TestDb {
            url: url.to_string(),
            name,
            admin,
        }
    }
}

impl Default for TestDb {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Err(e) = admin_sql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        ) {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// The first column (text, NULL skipped) of every row `sql` returns on `url`.
pub fn query_strings(url: &str, sql: &str) -> Vec<String> {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .query(&sql, &[])
                .await
                .unwrap()
                .iter()
                .filter_map(|r| r.get::<_, Option<String>>(0))
                .collect()
        })
    })
    .join()
    .unwrap()
}

/// Run `sql` on `url` from a thread of its own (callable from sync tests and from inside a runtime).
pub fn admin_sql(url: &str, sql: &str) -> Result<(), String> {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("{e} ({:?})", std::error::Error::source(&e)))?;
            let task = tokio::spawn(conn);
            let result = client
                .batch_execute(&sql)
                .await
                .map_err(|e| match e.as_db_error() {
                    Some(db) => db.message().to_string(),
                    None => e.to_string(),
                });
            drop(client);
            let _ = task.await;
            result
        })
    })
    .join()
    .map_err(|_| "admin thread panicked".to_string())?
}
