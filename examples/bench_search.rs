//! Console search on a large database; see scripts/bench-search.sh.
//!
//! ```text
//! bench_search DB NAMES
//! ```
//! Creates DB (when it does not hold NAMES names yet) with NAMES names spread over NAMES/10 certificates
//! (10 names each, 200,000 registrable domains), then times the console's searches (median of 5 runs each).

use std::time::Instant;

use ctwatch::store::{NameMode, SearchQuery, Store, reverse_name};

fn fill(db: &std::path::Path, names: usize) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(db)?;
    let have: i64 = conn.query_row("SELECT COUNT(*) FROM cert_names", [], |r| r.get(0))?;
    if have as usize >= names {
        return Ok(());
    }
    conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA journal_mode = WAL; BEGIN;")?;
    let certs = names / 10;
    {
        let mut cert = conn.prepare(
            "INSERT INTO certificates (id, tbs_sha256, cert_sha256, entry_type, subject, issuer, serial, not_before,
                 not_after, dns_names, ip_addresses, pubkey_sha256, der, first_seen)
             VALUES (?1, ?2, ?2, 'precert', '', ?3, '01', ?4, ?5, ?6, '[]', ?2, NULL, ?4)",
        )?;
        let mut fp = conn.prepare("INSERT INTO fingerprints (cert_sha256, cert_id, entry_type) VALUES (?1, ?2, 'precert')")?;
        let mut name =
            conn.prepare("INSERT OR IGNORE INTO cert_names (rname, cert_id) VALUES (?1, ?2)")?;
        for i in 0..certs {
            let id = i as i64 + 1;
            let domain = format!("d{}.example{}.com", i % 200_000, i % 7);
            let list: Vec<String> = (0..10)
                .map(|j| format!("h{j}-{}.{domain}", i / 200_000))
                .collect();
            let tbs: Vec<u8> = ring::digest::digest(&ring::digest::SHA256, &id.to_be_bytes())
                .as_ref()
                .to_vec();
            let issuer = if i % 3 == 0 {
                "C=US, O=Let's Encrypt, CN=R11"
            } else {
                "C=US, O=Google Trust Services, CN=WR1"
            };
            let nb = 1_700_000_000 + (i as i64 % 40_000_000);
            cert.execute(rusqlite::params![
                id,
                tbs,
                issuer,
                nb,
                nb + 90 * 86400,
                serde_json::to_string(&list)?
            ])?;
            fp.execute(rusqlite::params![tbs, id])?;
            for n in &list {
                name.execute(rusqlite::params![reverse_name(n), id])?;
            }
            if i % 100_000 == 99_999 {
                conn.execute_batch("COMMIT; BEGIN;")?;
                eprintln!("  {} names", (i + 1) * 10);
            }
        }
    }
    conn.execute_batch("COMMIT; ANALYZE;")?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(a.len() == 3, "usage: bench_search DB NAMES");
    let db = std::path::PathBuf::from(&a[1]);
    let names: usize = a[2].parse()?;
    let store = Store::open(&db)?;
    let t = Instant::now();
    fill(&db, names)?;
    eprintln!("database ready in {:.0} s", t.elapsed().as_secs_f64());
    let total: i64 =
        rusqlite::Connection::open(&db)?
            .query_row("SELECT COUNT(*) FROM cert_names", [], |r| r.get(0))?;
    println!("{total} names in {} certificates", total / 10);
    println!(
        "{:<44} {:>8} {:>8} {:>10}",
        "search", "results", "partial", "median_ms"
    );
    let cases: &[(&str, &str, NameMode, bool, Option<&str>)] = &[
        (
            "subtree d4242.example0.com",
            "d4242.example0.com",
            NameMode::Subtree,
            false,
            None,
        ),
        (
            "exact h3-1.d4242.example0.com",
            "h3-1.d4242.example0.com",
            NameMode::Exact,
            false,
            None,
        ),
        (
            "pattern %.d4242.example0.com",
            "%.d4242.example0.com",
            NameMode::Pattern,
            false,
            None,
        ),
        (
            "pattern h1-%.d4242.example0.com",
            "h1-%.d4242.example0.com",
            NameMode::Pattern,
            false,
            None,
        ),
        (
            "subtree + current + issuer=Let's",
            "d4242.example0.com",
            NameMode::Subtree,
            true,
            Some("Let's"),
        ),
        (
            "subtree example3.com (large)",
            "example3.com",
            NameMode::Subtree,
            false,
            None,
        ),
        (
            "subtree com (everything)",
            "com",
            NameMode::Subtree,
            false,
            None,
        ),
        (
            "no match nothing.example.org",
            "nothing.example.org",
            NameMode::Subtree,
            false,
            None,
        ),
    ];
    for (label, name, mode, current, issuer) in cases {
        let q = SearchQuery {
            name: name.to_string(),
            mode: *mode,
            exclude_expired: *current,
            issuer: issuer.map(String::from),
            now: 1_730_000_000,
            limit: 50,
            offset: 0,
        };
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..5 {
            let t = Instant::now();
            last = Some(store.console_search(&q)?);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let r = last.unwrap();
        println!(
            "{label:<44} {:>8} {:>8} {:>10.1}",
            r.total, r.truncated, times[2]
        );
    }
    Ok(())
}
