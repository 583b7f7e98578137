//! Real proofs from Argon2020, Icarus and navigli2025h2, plus exhaustive checks on small trees against a naive
//! recursive implementation of RFC 6962's MTH written straight from the RFC.

use super::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

fn fixture_json(path: &str) -> Value {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))).unwrap()
}

fn b64_hash(v: &Value) -> Hash {
    B64.decode(v.as_str().unwrap()).unwrap().try_into().unwrap()
}

fn b64_hashes(v: &Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(b64_hash).collect()
}

/// MTH from RFC 6962 section 2.1, recursively, with no caching: the independent reference.
fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

fn test_leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

fn memory_tree(leaves: &[Hash]) -> MemoryTree {
    let mut t = MemoryTree::new();
    leaves.iter().for_each(|l| t.push(*l));
    t
}

#[test]
fn known_hash_values() {
    // SHA-256("") and the RFC 6962 hash of the empty leaf, from the certificate-transparency test vectors.
    assert_eq!(
        hex::encode(empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex::encode(leaf_hash(b"")),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
    assert_eq!(CollapsedTree::new().root(), empty_root());
    assert_eq!(MemoryTree::new().root(0), empty_root());
}

#[test]
fn argon2020_inclusion_and_consistency() {
    let dir = "rfc6962/argon2020";
    let sth = fixture_json(&format!("{dir}/get-sth.json"));
    let log = fixture_json(&format!("{dir}/log.json"));
    let entries = fixture_json(&format!("{dir}/get-entries_start-10000_end-10000.json"));
    let proof = fixture_json(&format!(
        "{dir}/get-proof-by-hash_tree-size-961984011_leaf-10000.json"
    ));
    let cons = fixture_json(&format!(
        "{dir}/get-sth-consistency_first-3654490_second-961984011.json"
    ));

    let leaf_input = B64
        .decode(entries["entries"][0]["leaf_input"].as_str().unwrap())
        .unwrap();
    let leaf = leaf_hash(&leaf_input);
    assert_eq!(leaf, b64_hash(&log["leaf_hash_index_10000"]));
    let root = b64_hash(&sth["sha256_root_hash"]);
    let size = sth["tree_size"].as_u64().unwrap();
    assert_eq!(size, 961_984_011);
    let path = b64_hashes(&proof["audit_path"]);
    assert_eq!(path.len(), 30);
    verify_inclusion(10000, size, &leaf, &path, &root).unwrap();

    let mut bad = path.clone();
    bad[7][3] ^= 1;
    assert!(matches!(
        verify_inclusion(10000, size, &leaf, &bad, &root),
        Err(MerkleError::RootMismatch { .. })
    ));
    assert!(verify_inclusion(10001, size, &leaf, &path, &root).is_err());
    assert_eq!(
        verify_inclusion(10000, size, &leaf, &path[..29], &root),
        Err(MerkleError::WrongProofLength {
            expected: 30,
            got: 29
        })
    );

    let old_root = b64_hash(&log["old_tree_head"]["sha256_root_hash"]);
    let cproof = b64_hashes(&cons["consistency"]);
    verify_consistency(3_654_490, size, &old_root, &root, &cproof).unwrap();
    let mut bad_old = old_root;
    bad_old[0] ^= 0x80;
    assert!(matches!(
        verify_consistency(3_654_490, size, &bad_old, &root, &cproof),
        Err(MerkleError::OldRootMismatch { .. })
    ));
    let mut bad_new = root;
    bad_new[31] ^= 1;
    assert!(matches!(
        verify_consistency(3_654_490, size, &old_root, &bad_new, &cproof),
        Err(MerkleError::NewRootMismatch { .. })
    ));

    let tree = CollapsedTree::from_inclusion_proof(10000, size, leaf, &path, &root).unwrap();
    assert_eq!(tree.size(), 10001);
    assert_eq!(tree.nodes.len(), 10001u64.count_ones() as usize);
    assert!(CollapsedTree::from_inclusion_proof(10000, size, leaf, &bad, &root).is_err());
}

#[test]
fn icarus_inclusion_and_consistency() {
    let dir = "rfc6962/icarus";
    let sth1 = fixture_json(&format!("{dir}/get-sth_tree-129596132.json"));
    let sth2 = fixture_json(&format!("{dir}/get-sth_tree-129721434.json"));
    let entry = fixture_json(&format!(
        "{dir}/get-entry-and-proof_leaf-120000000_tree-129721434.json"
    ));
    let cons = fixture_json(&format!(
        "{dir}/get-sth-consistency_first-129596132_second-129721434.json"
    ));
    let (size1, root1) = (
        sth1["tree_size"].as_u64().unwrap(),
        b64_hash(&sth1["sha256_root_hash"]),
    );
    let (size2, root2) = (
        sth2["tree_size"].as_u64().unwrap(),
        b64_hash(&sth2["sha256_root_hash"]),
    );

    let leaf = leaf_hash(&B64.decode(entry["leaf_input"].as_str().unwrap()).unwrap());
    let path = b64_hashes(&entry["audit_path"]);
    verify_inclusion(120_000_000, size2, &leaf, &path, &root2).unwrap();
    assert!(verify_inclusion(120_000_000, size2, &leaf, &path, &root1).is_err());
    assert!(verify_inclusion(120_000_000, size1, &leaf, &path, &root1).is_err());

    let cproof = b64_hashes(&cons["consistency"]);
    verify_consistency(size1, size2, &root1, &root2, &cproof).unwrap();
    assert!(verify_consistency(size1 + 1, size2, &root1, &root2, &cproof).is_err());
    assert_eq!(
        verify_consistency(size2, size1, &root2, &root1, &cproof),
        Err(MerkleError::ShrinkingTree {
            size1: size2,
            size2: size1
        })
    );
    for i in 0..cproof.len() {
        let mut bad = cproof.clone();
        bad[i][i] ^= 0x10;
        assert!(
            verify_consistency(size1, size2, &root1, &root2, &bad).is_err(),
            "flipped hash {i}"
        );
    }
}

#[test]
fn navigli_real_leaf_hashes_give_real_roots() {
    let heads = fixture_json("rfc6962/navigli2025h2-converted-from-tiles/tree_heads_UNSIGNED.json");
    let leaves = b64_hashes(&heads["leaf_hashes_b64"]);
    assert_eq!(leaves.len(), 1024);
    let expected: Vec<(u64, Hash)> = heads["tree_heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["tree_size"].as_u64().unwrap(),
                b64_hash(&h["sha256_root_hash"]),
            )
        })
        .collect();
    assert_eq!(
        expected.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![778, 1024]
    );

    let mem = memory_tree(&leaves);
    let mut collapsed = CollapsedTree::new();
    for (i, leaf) in leaves.iter().enumerate() {
        collapsed.push(*leaf);
        if let Some((_, root)) = expected.iter().find(|e| e.0 == i as u64 + 1) {
            assert_eq!(collapsed.root(), *root, "collapsed root at {}", i + 1);
            assert_eq!(mem.root(i as u64 + 1), *root);
        }
    }
    let (root778, root1024) = (expected[0].1, expected[1].1);
    for index in [0, 1, 255, 256, 500, 777] {
        verify_inclusion(
            index,
            778,
            &leaves[index as usize],
            &mem.inclusion_proof(index, 778),
            &root778,
        )
        .unwrap();
        let proof = mem.inclusion_proof(index, 1024);
        verify_inclusion(index, 1024, &leaves[index as usize], &proof, &root1024).unwrap();
    }
    verify_consistency(
        778,
        1024,
        &root778,
        &root1024,
        &mem.consistency_proof(778, 1024),
    )
    .unwrap();
}

/// Every inclusion proof of every tree up to 300 leaves verifies, and fails once any byte is changed or the
/// proof is presented for a neighbouring tree size with that size's root.
#[test]
fn inclusion_proofs_for_all_small_trees() {
    let leaves = test_leaves(300);
    let mem = memory_tree(&leaves);
    let mut collapsed = CollapsedTree::new();
    for n in 1..=300u64 {
        collapsed.push(leaves[n as usize - 1]);
        let root = naive_root(&leaves[..n as usize]);
        assert_eq!(mem.root(n), root, "memory root {n}");
        assert_eq!(collapsed.root(), root, "collapsed root {n}");
        for i in 0..n {
            let proof = mem.inclusion_proof(i, n);
            let leaf = &leaves[i as usize];
            verify_inclusion(i, n, leaf, &proof, &root)
                .unwrap_or_else(|e| panic!("({i}, {n}): {e}"));
            if n < 300 {
                assert!(
                    verify_inclusion(i, n + 1, leaf, &proof, &mem.root(n + 1)).is_err(),
                    "({i}, {n}+1)"
                );
            }
            if i < n - 1 {
                assert!(
                    verify_inclusion(i, n - 1, leaf, &proof, &mem.root(n - 1)).is_err(),
                    "({i}, {n}-1)"
                );
            }
            if n <= 40 {
                for j in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[j][(i as usize + j) % 32] ^= 0x01;
                    assert!(verify_inclusion(i, n, leaf, &bad, &root).is_err());
                }
            }
        }
    }
}

/// Every consistency proof between trees up to 300 leaves verifies and fails on any change.
#[test]
fn consistency_proofs_for_all_small_trees() {
    let leaves = test_leaves(300);
    let mem = memory_tree(&leaves);
    for n in 1..=300u64 {
        let root_n = mem.root(n);
        for m in 0..=n {
            let root_m = mem.root(m);
            let proof = mem.consistency_proof(m, n);
            verify_consistency(m, n, &root_m, &root_n, &proof)
                .unwrap_or_else(|e| panic!("({m}, {n}): {e}"));
            if m > 0 && m < n {
                let r = mem.root(m + 1);
                assert!(
                    verify_consistency(m + 1, n, &r, &root_n, &proof).is_err(),
                    "({m}+1, {n})"
                );
                if n < 300 {
                    let r = mem.root(n + 1);
                    assert!(
                        verify_consistency(m, n + 1, &root_m, &r, &proof).is_err(),
                        "({m}, {n}+1)"
                    );
                }
            }
            if n <= 40 {
                for j in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[j][j % 32] ^= 0x40;
                    assert!(
                        verify_consistency(m, n, &root_m, &root_n, &bad).is_err(),
                        "({m}, {n}) hash {j}"
                    );
                }
            }
        }
    }
}

#[test]
fn consistency_edge_cases() {
    let mem = memory_tree(&test_leaves(8));
    let (r5, r8) = (mem.root(5), mem.root(8));
    verify_consistency(5, 5, &r5, &r5, &[]).unwrap();
    verify_consistency(0, 8, &empty_root(), &r8, &[]).unwrap();
    assert_eq!(
        verify_consistency(5, 5, &r5, &r8, &[]),
        Err(MerkleError::NewRootMismatch {
            expected: r8,
            computed: r5
        })
    );
    assert_eq!(
        verify_consistency(5, 5, &r5, &r5, &[r8]),
        Err(MerkleError::WrongProofLength {
            expected: 0,
            got: 1
        })
    );
    assert!(matches!(
        verify_consistency(5, 8, &r5, &r8, &[]),
        Err(MerkleError::WrongProofLength { got: 0, .. })
    ));
    assert_eq!(
        verify_inclusion(8, 8, &r5, &[], &r8),
        Err(MerkleError::IndexOutOfRange {
            index: 8,
            tree_size: 8
        })
    );
}

#[test]
fn large_trees_agree() {
    let n = 70_000u64;
    let leaves = test_leaves(n);
    let mem = memory_tree(&leaves);
    let mut collapsed = CollapsedTree::new();
    let checkpoints = [65_535, 65_536, 65_537, 69_999, 70_000];
    for (i, leaf) in leaves.iter().enumerate() {
        collapsed.push(*leaf);
        let size = i as u64 + 1;
        if checkpoints.contains(&size) {
            assert_eq!(collapsed.root(), mem.root(size), "root at {size}");
            assert_eq!(
                CollapsedTree::from_bytes(&collapsed.to_bytes()).unwrap(),
                collapsed
            );
        }
    }
    assert_eq!(mem.root(n), naive_root(&leaves));
    for &(i, size) in &[
        (0, 70_000),
        (65_535, 65_536),
        (65_536, 70_000),
        (69_999, 70_000),
        (12_345, 65_537),
    ] {
        let proof = mem.inclusion_proof(i, size);
        verify_inclusion(i, size, &leaves[i as usize], &proof, &mem.root(size)).unwrap();
        let tree = CollapsedTree::from_inclusion_proof(
            i,
            size,
            leaves[i as usize],
            &proof,
            &mem.root(size),
        )
        .unwrap();
        assert_eq!(tree.root(), mem.root(i + 1));
    }
    for &(m, size) in &[
        (1, 70_000),
        (65_536, 70_000),
        (65_535, 65_537),
        (4_097, 69_999),
    ] {
        verify_consistency(
            m,
            size,
            &mem.root(m),
            &mem.root(size),
            &mem.consistency_proof(m, size),
        )
        .unwrap();
    }
}

#[test]
fn from_inclusion_proof_matches_pushing() {
    let leaves = test_leaves(100);
    let mem = memory_tree(&leaves);
    let mut pushed = CollapsedTree::new();
    for i in 0..100u64 {
        pushed.push(leaves[i as usize]);
        for size in i + 1..=100 {
            let proof = mem.inclusion_proof(i, size);
            let root = mem.root(size);
            let tree =
                CollapsedTree::from_inclusion_proof(i, size, leaves[i as usize], &proof, &root)
                    .unwrap();
            assert_eq!(tree, pushed, "index {i} size {size}");
        }
    }
}

#[test]
fn collapsed_tree_encoding() {
    let mut t = CollapsedTree::new();
    assert_eq!(t.to_bytes(), [0, 0, 0, 0, 0, 0, 0, 0, 0]);
    test_leaves(11).into_iter().for_each(|l| t.push(l));
    let b = t.to_bytes();
    assert_eq!(b.len(), 9 + 3 * 32);
    assert_eq!(&b[..9], &[0, 0, 0, 0, 0, 0, 0, 11, 3]);
    assert_eq!(CollapsedTree::from_bytes(&b).unwrap(), t);

    let mut wrong_count = b.clone();
    wrong_count[8] = 2;
    assert_eq!(
        CollapsedTree::from_bytes(&wrong_count),
        Err(MerkleError::NodeCount {
            size: 11,
            expected: 3,
            got: 2
        })
    );
    assert_eq!(
        CollapsedTree::from_bytes(&b[..b.len() - 1]),
        Err(MerkleError::EncodingLength {
            len: 9 + 95,
            expected: 9 + 96
        })
    );
    let mut trailing = b.clone();
    trailing.push(0);
    assert!(matches!(
        CollapsedTree::from_bytes(&trailing),
        Err(MerkleError::EncodingLength { .. })
    ));
    assert!(matches!(
        CollapsedTree::from_bytes(&b[..5]),
        Err(MerkleError::EncodingLength { len: 5, .. })
    ));
}
