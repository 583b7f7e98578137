//! Store ingest benchmark (`scripts/bench-store.sh` runs it on both backends): commits synthetic `--store-all`
//! batches — every entry a new, unique certificate with two names and a 1 KiB DER — through
//! `Store::commit_batch`, exactly as the tailer does, and prints the rate.
//!
//! ```text
//! cargo run --release --example bench_store -- DB [CERTS] [BATCH]
//! ```
//! DB is a SQLite file or a `postgres://` URL (an empty database: the log's position starts at 0).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use ctwatch::ct::cert::{CertInfo, ChainStatus};
use ctwatch::ct::leaf::EntryType;
use ctwatch::ct::merkle::CollapsedTree;
use ctwatch::ctlog::TreeHead;
use ctwatch::event::LogRef;
use ctwatch::store::{Batch, LogMeta, Store, StoredEntry};
use sha2::{Digest, Sha256};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let db = PathBuf::from(
        args.next()
            .context("usage: bench_store DB [CERTS] [BATCH]")?,
    );
    let certs: u64 = args.next().map_or(Ok(200_000), |s| s.parse())?;
    let batch_size: u64 = args.next().map_or(Ok(4096), |s| s.parse())?;
    let store = Store::open(&db).with_context(|| format!("opening {}", db.display()))?;
    let log_id = [7u8; 32];
    store.upsert_log(&LogMeta {
        log_id,
        url: "https://bench.example/".into(),
        kind: "rfc6962",
        description: "bench".into(),
        operator: "bench".into(),
        state: "usable".into(),
    })?;
    store.init_log_position(&log_id, &CollapsedTree::new(), None)?;
    let start_at = store.log_position(&log_id)?.map_or(0, |p| p.tree.size());
    anyhow::ensure!(
        start_at == 0,
        "the database is not empty (position {start_at})"
    );

    // Synthesize every batch first: only the commits are timed.
    let batches = synthesize(certs, batch_size);
    let started = Instant::now();
    let mut stored = 0;
    for b in &batches {
        stored += store.commit_batch(b)?.new_certificates;
    }
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(stored as u64 == certs, "stored {stored} of {certs}");
    println!(
        "{}: {certs} unique certificates in {} batches of {batch_size}: {secs:.2} s, {:.0} certs/s",
        store.backend_name(),
        batches.len(),
        certs as f64 / secs
    );
    Ok(())
}

fn synthesize(certs: u64, batch_size: u64) -> Vec<Batch> {
    let log = LogRef {
        log_id: [7u8; 32],
        url: "https://bench.example/".into(),
        description: "bench".into(),
    };
    let mut tree = CollapsedTree::new();
    let mut out = Vec::new();
    let mut i = 0;
    while i < certs {
        let start = i;
        let n = batch_size.min(certs - i);
        let mut entries = Vec::with_capacity(n as usize);
        for k in start..start + n {
            let h = |tag: &str| -> [u8; 32] { Sha256::digest(format!("{tag}{k}")).into() };
            tree.push(h("leaf"));
            let host = format!("host{k}.zone{}.example", k % 1000);
            entries.push(StoredEntry {
                index: k,
                timestamp_ms: 1_750_000_000_000 + k,
                entry_type: if k % 2 == 0 {
                    EntryType::Precert
                } else {
                    EntryType::X509
                },
                info: CertInfo {
                    dns_names: vec![host.clone(), format!("www.{host}")],
                    ip_addresses: Vec::new(),
                    subject: format!("CN={host}"),
                    issuer: "C=US, O=Let's Encrypt, CN=R11".into(),
                    issuer_org: Some("Let's Encrypt".into()),
                    issuer_cn: Some("R11".into()),
                    serial: hex::encode(&h("serial")[..16]),
                    not_before: 1_750_000_000,
                    not_after: 1_757_776_000,
                    cert_sha256: Some(h("cert")),
                    tbs_sha256: h("tbs"),
                    pubkey_sha256: h("key"),
                    issuer_spki_sha256: None,
                    chain: ChainStatus::Unchecked,
                    is_precert: k % 2 == 0,
                },
                der: Some(h("der").repeat(32)),
                matches: Vec::new(),
            });
        }
        i += n;
        out.push(Batch {
            log: log.clone(),
            start,
            head: TreeHead {
                tree_size: tree.size(),
                timestamp_ms: 1_750_000_000_000,
                root_hash: tree.root(),
            },
            tree: tree.clone(),
            entries,
            malformed: Vec::new(),
            entry_count: n,
            now: 1_750_000_000,
        });
    }
    out
}
