//! Builders shared by the conformance bodies: logs, certificates, batches as the tailer makes them, probe
//! reports.

use ctwatch::ct::cert::{CertInfo, ChainStatus};
use ctwatch::ct::leaf::EntryType;
use ctwatch::ct::merkle::CollapsedTree;
use ctwatch::ctlog::TreeHead;
use ctwatch::event::{Event, LogRef};
use ctwatch::probe::HostReport;
use ctwatch::store::{Batch, BatchOutcome, LogMeta, MalformedEntry, Store, StoredEntry};
use ctwatch::watchlist::{Match, MatchKind};
use serde_json::json;

pub const NOW: i64 = 1_750_000_000;

pub fn log(n: u8) -> LogRef {
    LogRef {
        log_id: [n; 32],
        url: format!("https://log{n}.example/"),
        description: format!("Log {n}"),
    }
}

pub fn add_log(store: &Store, n: u8) {
    store
        .upsert_log(&LogMeta {
            log_id: [n; 32],
            url: format!("https://log{n}.example/"),
            kind: "rfc6962",
            description: format!("Log {n}"),
            operator: "Op".into(),
            state: "usable".into(),
        })
        .unwrap();
    store
        .init_log_position(&[n; 32], &CollapsedTree::new(), None)
        .unwrap();
}

/// A certificate: `tbs` identifies it, `fp` its DER fingerprint.
pub fn info(tbs: u8, fp: u8, names: &[&str]) -> CertInfo {
    CertInfo {
        dns_names: names.iter().map(|s| s.to_string()).collect(),
        ip_addresses: Vec::new(),
        subject: format!("CN={}", names.first().unwrap_or(&"")),
        issuer: "CN=R11, O=Let's Encrypt, C=US".into(),
        issuer_org: Some("Let's Encrypt".into()),
        issuer_cn: Some("R11".into()),
        serial: format!("{tbs:02x}"),
        not_before: NOW - 86_400,
        not_after: NOW + 89 * 86_400,
        cert_sha256: Some([fp; 32]),
        tbs_sha256: [tbs; 32],
        pubkey_sha256: [0xAA; 32],
        issuer_spki_sha256: None,
        chain: ChainStatus::Unchecked,
        is_precert: false,
    }
}

pub fn domain_match(name: &str, tags: &[&str]) -> Match {
    Match {
        item: "example.com".into(),
        source: "watch.txt:1".into(),
        name: name.into(),
        name_unicode: name.into(),
        kind: MatchKind::Domain,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        brand: None,
        reason: None,
    }
}

pub fn entry(index: u64, tbs: u8, fp: u8, names: &[&str], matches: Vec<Match>) -> StoredEntry {
    StoredEntry {
        index,
        timestamp_ms: (NOW as u64) * 1000 + index,
        entry_type: if fp.is_multiple_of(2) {
            EntryType::X509
        } else {
            EntryType::Precert
        },
        info: info(tbs, fp, names),
        der: Some(vec![fp, tbs, 1, 2, 3]),
        matches,
    }
}

/// A log's tree as the tailer keeps it, to build consecutive batches.
pub struct Tail {
    pub log: LogRef,
    pub tree: CollapsedTree,
}

impl Tail {
    pub fn new(store: &Store, n: u8) -> Tail {
        add_log(store, n);
        Tail {
            log: log(n),
            tree: CollapsedTree::new(),
        }
    }

    /// A batch of `count` entries from the current position, storing `entries` and `malformed`.
    pub fn batch(
        &self,
        count: u64,
        entries: Vec<StoredEntry>,
        malformed: Vec<MalformedEntry>,
    ) -> Batch {
        let start = self.tree.size();
        let mut tree = self.tree.clone();
        for i in start..start + count {
            let mut leaf = [0u8; 32];
            leaf[..8].copy_from_slice(&i.to_be_bytes());
            tree.push(leaf);
        }
        Batch {
            log: self.log.clone(),
            start,
            head: TreeHead {
                tree_size: tree.size(),
                timestamp_ms: (NOW as u64) * 1000,
                root_hash: tree.root(),
            },
            tree,
            entries,
            malformed,
            entry_count: count,
            now: NOW,
        }
    }

    pub fn commit(
        &mut self,
        store: &Store,
        count: u64,
        entries: Vec<StoredEntry>,
        malformed: Vec<MalformedEntry>,
    ) -> BatchOutcome {
        let b = self.batch(count, entries, malformed);
        let out = store.commit_batch(&b).unwrap();
        self.tree = b.tree;
        out
    }
}

pub fn report(domain: &str, cert: Option<&str>, days_left: i64, not_after: &str) -> HostReport {
    serde_json::from_value(json!({
        "domain": domain, "port": 443, "status": "ok", "level": "OK", "days_left": days_left,
        "not_before": "2025-06-01T00:00:00Z", "not_after": not_after, "issuer": "CN=R11", "subject": null,
        "sans": [domain], "cert_sha256": cert, "tbs_sha256": cert.map(|c| format!("t{c}")),
        "seen_in_ct": true, "problems": [], "error": null, "addresses": [],
        "probed_at": "2025-06-15T14:13:20Z", "duration_ms": 12
    }))
    .unwrap()
}

pub fn event(kind: &str, tags: &[&str], payload: serde_json::Value) -> Event {
    Event {
        kind: kind.into(),
        group_key: "g".into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        payload,
    }
}
