//! Consistency proofs and start-of-tailing trees computed from hash tiles (levels 0, 1 and 2) against a fake tiled
//! log, compared with the full in-memory tree.

mod common;

use std::sync::Arc;

use common::fast_retry;
use ctwatch::ct::merkle::{self, MemoryTree};
use ctwatch::ctlog::CtLog;
use ctwatch::ctlog::http::{Fetcher, build_client};
use ctwatch::ctlog::static_ct::{IssuerCache, StaticCtLog};
use ctwatch::store::Store;
use ctwatch_fakelog as fakelog;
use ctwatch_fakelog::tiled::{self as fakelog_tiled, FakeTiledLog};

/// A tiny RFC 6962 x509 entry (the certificate bytes are not a certificate: only the tree matters here).
fn tiny_entry(i: u32) -> fakelog::FakeEntry {
    let mut leaf_input = vec![0, 0];
    leaf_input.extend_from_slice(&(1_700_000_000_000u64 + u64::from(i)).to_be_bytes());
    leaf_input.extend_from_slice(&[0, 0, 0, 0, 4]);
    leaf_input.extend_from_slice(&i.to_be_bytes());
    leaf_input.extend_from_slice(&[0, 0]);
    fakelog::FakeEntry {
        leaf_input,
        extra_data: vec![0, 0, 0],
    }
}

#[tokio::test]
async fn proofs_and_start_trees_from_hash_tiles_match_the_full_tree_up_to_level_2() {
    const SIZE: u32 = 70_000; // level-2 tiles start at 65,536 entries
    let entries: Vec<_> = (0..SIZE).map(tiny_entry).collect();
    let log = FakeTiledLog::new("proofs");
    log.append_rfc6962(&entries).unwrap();
    // The reference tree, built here from the same TileLeaf hashing rule (0x00 0x00 | TimestampedEntry with the
    // leaf_index extension the fake adds).
    let mut reference = MemoryTree::new();
    for (i, e) in entries.iter().enumerate() {
        let mut leaf_input = e.leaf_input[..e.leaf_input.len() - 2].to_vec();
        leaf_input.extend_from_slice(&[0, 8, 0, 0, 5]);
        leaf_input.extend_from_slice(&(i as u64).to_be_bytes()[3..]);
        reference.push(merkle::leaf_hash(&leaf_input));
    }
    assert_eq!(log.root(u64::from(SIZE)), reference.root(u64::from(SIZE)));

    let (url, _s) = fakelog_tiled::serve(log.clone()).await.unwrap();
    let key = ctwatch::ct::sig::LogKey::from_spki_der(log.spki()).unwrap();
    let store: Arc<dyn IssuerCache> = Arc::new(Store::open_in_memory().unwrap());
    let fetcher = Fetcher::new(build_client().unwrap(), fast_retry());
    let client = StaticCtLog::new(&url, log.submission_url(), key, fetcher, store);
    for (first, second) in [
        (1, 70_000),
        (255, 256),
        (256, 65_536),
        (778, 1024),
        (4096, 69_632),
        (12_345, 67_890),
        (65_535, 65_537),
        (65_536, 70_000),
        (69_999, 70_000),
    ] {
        let got = client.consistency_proof(first, second).await.unwrap();
        assert_eq!(
            got,
            reference.consistency_proof(first, second),
            "{first} -> {second}"
        );
        log.publish(second);
        let head = client.latest_head().await.unwrap();
        assert_eq!(head.tree_size, second);
        let tree = client.tree_at(first, &head).await.unwrap();
        assert_eq!(
            tree.root(),
            reference.root(first),
            "tree_at({first}) under {second}"
        );
        let whole = client.tree_at(second, &head).await.unwrap();
        assert_eq!(whole.root(), head.root_hash);
    }
    assert!(
        log.request_count("tile/2/000.p/1") >= 1,
        "level-2 tile never used"
    );
    assert_eq!(log.request_count("data"), 0);
}
