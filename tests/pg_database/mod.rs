//! A fresh PostgreSQL database per test, created on the server named by `CTWATCH_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`: trust auth, as on the development and CI machines) through its
//! `postgres` database, and dropped at the end. A missing server fails the test loudly, naming the URL and how
//! to provide one: never a silent skip.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The server's administrative URL (its `postgres` database).
pub fn admin_url() -> String {
    std::env::var("CTWATCH_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

/// A database created for one test; dropped (with its connections) when this value is.
pub struct FreshDb {
    pub name: String,
    pub url: String,
    admin: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl FreshDb {
    /// Create `ctwatch_test_<pid>_<n>_<label>` on the server.
    pub async fn create(label: &str) -> FreshDb {
        let admin = admin_url();
        let name = format!(
            "ctwatch_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Relaxed),
            label
        );
        let client = connect(&admin).await;
        let _ = client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
        // Concurrent CREATE DATABASE calls copy template1 and may find it busy for a moment: retry those.
        let mut attempt = 0;
        loop {
            match client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
            {
                Ok(()) => break,
                Err(e)
                    if attempt < 50
                        && format!("{e:?}").contains("being accessed by other users") =>
                {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("creating test database {name} on {admin}: {e:?}"),
            }
        }
        let mut url = url::Url::parse(&admin).expect("CTWATCH_TEST_PG_URL is a URL");
        url.set_path(&format!("/{name}"));
        FreshDb {
            name,
            url: url.to_string(),
            admin,
        }
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        // Drop from a thread of its own: Drop may run inside a runtime, which cannot block on another.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((c, conn)) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = c
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Connect or fail loudly.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            client
        }
        Err(e) => panic!(
            "PostgreSQL is required for this test and is not reachable at {url}: {e}\n\
             Start one (Debian: apt-get install postgresql; trust auth for 127.0.0.1) or point \
             CTWATCH_TEST_PG_URL at a server whose user may create databases."
        ),
    }
}
