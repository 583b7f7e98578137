//! RFC 6962 Merkle trees (section 2.1): hashing, the collapsed tree a monitor keeps while it downloads entries,
//! and verification of inclusion and consistency proofs.
//!
//! The verifiers follow the "inner part / border part" decomposition used by transparency-dev and Go's
//! `sumdb/tlog`: the proof length is known in advance from the index and sizes, so a proof of the wrong length is
//! reported as such instead of as a root mismatch, and no recursion is needed.
//!
//! [`MemoryTree`] is a complete in-memory tree for test logs and benchmarks; monitors only need
//! [`CollapsedTree`].

use sha2::{Digest, Sha256};
use thiserror::Error;

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// Errors from proof verification and from decoding a stored [`CollapsedTree`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MerkleError {
    #[error("leaf index {index} is not inside a tree of size {tree_size}")]
    IndexOutOfRange { index: u64, tree_size: u64 },
    #[error("proof has {got} hashes, expected {expected}")]
    WrongProofLength { expected: usize, got: usize },
    #[error(
        "computed root {} does not match the signed root {}",
        hex::encode(computed),
        hex::encode(expected)
    )]
    RootMismatch { expected: Hash, computed: Hash },
    #[error("consistency proof from size {size1} to smaller size {size2}")]
    ShrinkingTree { size1: u64, size2: u64 },
    #[error(
        "consistency proof does not reproduce the old root: computed {}, expected {}",
        hex::encode(computed),
        hex::encode(expected)
    )]
    OldRootMismatch { expected: Hash, computed: Hash },
    #[error(
        "consistency proof does not reproduce the new root: computed {}, expected {}",
        hex::encode(computed),
        hex::encode(expected)
    )]
    NewRootMismatch { expected: Hash, computed: Hash },
    #[error("collapsed tree encoding is {len} bytes, expected {expected}")]
    EncodingLength { len: usize, expected: usize },
    #[error("collapsed tree of size {size} needs {expected} nodes, the encoding has {got}")]
    NodeCount { size: u64, expected: u32, got: u32 },
}

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Hash of a leaf: SHA-256(0x00 | leaf_input). `leaf_input` is the MerkleTreeLeaf bytes.
pub fn leaf_hash(leaf_input: &[u8]) -> Hash {
    sha256(&[&[0x00], leaf_input])
}

/// [`leaf_hash`] of the MerkleTreeLeaf wrapping `timestamped_entry` (version 0, leaf type 0), without building it.
pub fn leaf_hash_of_timestamped_entry(timestamped_entry: &[u8]) -> Hash {
    sha256(&[&[0x00, 0x00, 0x00], timestamped_entry])
}

/// Hash of an interior node: SHA-256(0x01 | left | right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// Root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    sha256(&[])
}

/// The frontier of full subtrees of a tree of `size` leaves: one hash per set bit of `size`, largest (leftmost)
/// subtree first. This is all a monitor has to keep to check that the entries it downloaded hash to the root a log
/// signed, without storing the entries.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CollapsedTree {
    size: u64,
    nodes: Vec<Hash>,
}

impl CollapsedTree {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Append the next leaf. Merges the new leaf with every full subtree it completes (one per trailing one-bit of
    /// the old size), so the frontier stays at popcount(size) hashes.
    pub fn push(&mut self, leaf_hash: Hash) {
        let mut hash = leaf_hash;
        let mut size = self.size;
        while size & 1 == 1 {
            let left = self.nodes.pop().expect("popcount(size) nodes");
            hash = node_hash(&left, &hash);
            size >>= 1;
        }
        self.nodes.push(hash);
        self.size += 1;
    }

    /// Root hash of the tree: the frontier folded right to left.
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        iter.fold(*last, |acc, left| node_hash(left, &acc))
    }

    /// A collapsed tree from its frontier (one hash per set bit of `size`, largest subtree first), e.g. read from
    /// a tiled log's hash tiles. The node count is checked; the hashes are only as good as their source.
    pub fn from_nodes(size: u64, nodes: Vec<Hash>) -> Result<Self, MerkleError> {
        let expected = size.count_ones();
        if nodes.len() as u32 != expected {
            return Err(MerkleError::NodeCount {
                size,
                expected,
                got: nodes.len() as u32,
            });
        }
        Ok(Self { size, nodes })
    }

    /// Stable encoding for storage: size (u64 big-endian) | node count (u8) | nodes (32 bytes each).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + 32 * self.nodes.len());
        out.extend_from_slice(&self.size.to_be_bytes());
        out.push(self.nodes.len() as u8);
        for n in &self.nodes {
            out.extend_from_slice(n);
        }
        out
    }

    /// Decode [`to_bytes`](Self::to_bytes) output; a node count that disagrees with the size is rejected, since
    /// such a frontier would silently produce wrong roots forever after.
    pub fn from_bytes(b: &[u8]) -> Result<Self, MerkleError> {
        if b.len() < 9 {
            return Err(MerkleError::EncodingLength {
                len: b.len(),
                expected: 9,
            });
        }
        let size = u64::from_be_bytes(b[..8].try_into().expect("8 bytes"));
        let got = u32::from(b[8]);
        let expected = size.count_ones();
        if got != expected {
            return Err(MerkleError::NodeCount {
                size,
                expected,
                got,
            });
        }
        let want_len = 9 + 32 * got as usize;
        if b.len() != want_len {
            return Err(MerkleError::EncodingLength {
                len: b.len(),
                expected: want_len,
            });
        }
        let nodes = b[9..]
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        Ok(Self { size, nodes })
    }

    /// Collapsed tree of size `leaf_index + 1`, from an RFC 6962 audit path of leaf `leaf_index` in a tree of
    /// `tree_size` whose signed root is `root`.
    ///
    /// The path is verified first. Its left siblings (those hashed in on the left) are exactly the full subtrees
    /// covering `[0, leaf_index)`, one per set bit of `leaf_index`, so they form the frontier of that prefix; the
    /// leaf is then pushed. This lets a monitor start tailing in the middle of a log without downloading history,
    /// while still being able to prove every later root.
    pub fn from_inclusion_proof(
        leaf_index: u64,
        tree_size: u64,
        leaf_hash: Hash,
        proof: &[Hash],
        root: &Hash,
    ) -> Result<Self, MerkleError> {
        verify_inclusion(leaf_index, tree_size, &leaf_hash, proof, root)?;
        let (inner, _) = decompose_inclusion(leaf_index, tree_size);
        let inner_left = proof[..inner]
            .iter()
            .enumerate()
            .filter(|(level, _)| (leaf_index >> level) & 1 == 1)
            .map(|(_, h)| *h);
        // Path order is bottom-up; the frontier is top-down (largest subtree first).
        let mut nodes: Vec<Hash> = inner_left.chain(proof[inner..].iter().copied()).collect();
        nodes.reverse();
        let mut tree = Self {
            size: leaf_index,
            nodes,
        };
        tree.push(leaf_hash);
        Ok(tree)
    }
}

/// Split an audit path of leaf `index` in a tree of `size` into its inner part (levels where the path of `index`
/// and the path of the last leaf differ) and its border part (left siblings above that, on the right edge).
fn decompose_inclusion(index: u64, size: u64) -> (usize, usize) {
    let inner = (64 - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = (index >> inner).count_ones() as usize;
    (inner, border)
}

/// Fold the inner part of a path: at level `i` the sibling is on the right if bit `i` of `index` is 0.
fn chain_inner(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |acc, (i, h)| {
        if (index >> i) & 1 == 0 {
            node_hash(&acc, h)
        } else {
            node_hash(h, &acc)
        }
    })
}

/// Like [`chain_inner`] but only hashes in left siblings: reconstructs the root of the smaller tree in a
/// consistency proof, where right siblings lie beyond the old size.
fn chain_inner_right(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |acc, (i, h)| {
        if (index >> i) & 1 == 1 {
            node_hash(h, &acc)
        } else {
            acc
        }
    })
}

/// Fold the border part of a path: every sibling there is a left sibling.
fn chain_border_right(seed: Hash, proof: &[Hash]) -> Hash {
    proof.iter().fold(seed, |acc, h| node_hash(h, &acc))
}

/// Verify an RFC 6962 audit path (`get-proof-by-hash`) of leaf `leaf_index` in a tree of `tree_size`.
pub fn verify_inclusion(
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    if leaf_index >= tree_size {
        return Err(MerkleError::IndexOutOfRange {
            index: leaf_index,
            tree_size,
        });
    }
    let (inner, border) = decompose_inclusion(leaf_index, tree_size);
    if proof.len() != inner + border {
        return Err(MerkleError::WrongProofLength {
            expected: inner + border,
            got: proof.len(),
        });
    }
    let computed = chain_inner(*leaf_hash, &proof[..inner], leaf_index);
    let computed = chain_border_right(computed, &proof[inner..]);
    if computed != *root {
        return Err(MerkleError::RootMismatch {
            expected: *root,
            computed,
        });
    }
    Ok(())
}

/// Verify an RFC 6962 consistency proof (`get-sth-consistency`) between a tree of `size1` with root `root1` and a
/// tree of `size2` with root `root2`: both roots must be reproduced from the same hashes.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if size2 < size1 {
        return Err(MerkleError::ShrinkingTree { size1, size2 });
    }
    if size1 == size2 || size1 == 0 {
        // Nothing to prove beyond equal roots for equal sizes; the empty tree is a prefix of every tree.
        if !proof.is_empty() {
            return Err(MerkleError::WrongProofLength {
                expected: 0,
                got: proof.len(),
            });
        }
        if size1 == size2 && root1 != root2 {
            return Err(MerkleError::NewRootMismatch {
                expected: *root2,
                computed: *root1,
            });
        }
        return Ok(());
    }
    let (inner, border) = decompose_inclusion(size1 - 1, size2);
    let shift = size1.trailing_zeros() as usize;
    let inner = inner - shift;
    // When the old tree is a single full subtree, its root is the starting node and the proof omits it.
    let (seed, rest) = if size1 == 1 << shift {
        (*root1, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (*first, rest),
            None => {
                return Err(MerkleError::WrongProofLength {
                    expected: 1 + inner + border,
                    got: 0,
                });
            }
        }
    };
    if rest.len() != inner + border {
        let expected = inner + border + (proof.len() - rest.len());
        return Err(MerkleError::WrongProofLength {
            expected,
            got: proof.len(),
        });
    }
    let mask = (size1 - 1) >> shift;
    let computed1 = chain_border_right(
        chain_inner_right(seed, &rest[..inner], mask),
        &rest[inner..],
    );
    if computed1 != *root1 {
        return Err(MerkleError::OldRootMismatch {
            expected: *root1,
            computed: computed1,
        });
    }
    let computed2 = chain_border_right(chain_inner(seed, &rest[..inner], mask), &rest[inner..]);
    if computed2 != *root2 {
        return Err(MerkleError::NewRootMismatch {
            expected: *root2,
            computed: computed2,
        });
    }
    Ok(())
}

/// Largest power of two strictly smaller than `n` (n >= 2): the RFC 6962 split point.
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// A complete in-memory Merkle tree for fake logs in tests and benchmarks.
///
/// `levels[k][i]` is the hash of the full, aligned subtree of `2^k` leaves starting at leaf `i * 2^k`, filled in as
/// leaves are pushed. Every subtree an RFC 6962 root or proof needs is aligned, so it splits into at most
/// one cached node per level: roots and proofs cost O(log n) hash operations.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, leaf_hash: Hash) {
        let mut hash = leaf_hash;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(hash);
            let row = &self.levels[level];
            if row.len() % 2 == 1 {
                break;
            }
            hash = node_hash(&row[row.len() - 2], &row[row.len() - 1]);
            level += 1;
        }
    }

    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The hash of the full subtree of `2^height` leaves starting at leaf `index << height`, if all its leaves
    /// are present. Static-ct hash tiles are exactly these hashes at heights 0, 8, 16, ...
    pub fn full_subtree(&self, height: u32, index: u64) -> Option<Hash> {
        self.levels
            .get(height as usize)?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    /// Hash of leaves `[start, start + n)`, where `start` is a multiple of the largest power of two `<= n`, as is
    /// the case for every range RFC 6962 hashes.
    fn range_hash(&self, start: u64, n: u64) -> Hash {
        if n.is_power_of_two() {
            let level = n.trailing_zeros() as usize;
            return self.levels[level][(start >> level) as usize];
        }
        let k = split_point(n);
        node_hash(
            &self.range_hash(start, k),
            &self.range_hash(start + k, n - k),
        )
    }

    /// Root of the first `size` leaves.
    ///
    /// # Panics
    /// If `size > self.len()`.
    pub fn root(&self, size: u64) -> Hash {
        assert!(
            size <= self.len(),
            "root({size}) of a tree of {} leaves",
            self.len()
        );
        if size == 0 {
            empty_root()
        } else {
            self.range_hash(0, size)
        }
    }

    /// RFC 6962 audit path (PATH) of leaf `index` in the tree of the first `size` leaves, bottom-up.
    ///
    /// # Panics
    /// If `index >= size` or `size > self.len()`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Vec<Hash> {
        assert!(
            index < size && size <= self.len(),
            "inclusion_proof({index}, {size}) of {}",
            self.len()
        );
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof);
        proof
    }

    fn path(&self, m: u64, start: u64, n: u64, out: &mut Vec<Hash>) {
        if n == 1 {
            return;
        }
        let k = split_point(n);
        if m < k {
            self.path(m, start, k, out);
            out.push(self.range_hash(start + k, n - k));
        } else {
            self.path(m - k, start + k, n - k, out);
            out.push(self.range_hash(start, k));
        }
    }

    /// RFC 6962 consistency proof (PROOF) from the first `size1` leaves to the first `size2` leaves.
    ///
    /// # Panics
    /// If `size1 > size2` or `size2 > self.len()`.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Vec<Hash> {
        assert!(
            size1 <= size2 && size2 <= self.len(),
            "consistency_proof({size1}, {size2}) of {}",
            self.len()
        );
        let mut proof = Vec::new();
        if size1 != 0 && size1 != size2 {
            self.subproof(size1, 0, size2, true, &mut proof);
        }
        proof
    }

    fn subproof(&self, m: u64, start: u64, n: u64, whole: bool, out: &mut Vec<Hash>) {
        if m == n {
            if !whole {
                out.push(self.range_hash(start, n));
            }
            return;
        }
        let k = split_point(n);
        if m <= k {
            self.subproof(m, start, k, whole, out);
            out.push(self.range_hash(start + k, n - k));
        } else {
            self.subproof(m - k, start + k, n - k, false, out);
            out.push(self.range_hash(start, k));
        }
    }
}

#[cfg(test)]
mod tests;
