//! The Certificate Transparency protocol layer: pure parsers and verifiers, bytes in, values out.
//!
//! Nothing here does I/O, spawns tasks or touches storage; the tailer ([`crate::ctlog`], [`crate::tailer`])
//! drives these functions with what it downloads.
//!
//! - [`loglist`]: the v3 log list (RFC 6962 `logs` and static-ct `tiled_logs`) and its signature.
//! - [`sth`] / [`checkpoint`] / [`sig`]: signed tree heads, signed notes, and the log keys that verify them.
//! - [`merkle`]: leaf hashes, roots, consistency and inclusion proofs, the collapsed tree a tailer keeps.
//! - [`leaf`]: `MerkleTreeLeaf` (RFC 6962) and `TileLeaf` (static-ct) decoding into a [`leaf::LogEntry`].
//! - [`cert`] / [`der`]: a certificate or precertificate into [`cert::CertInfo`] (names, issuer, validity,
//!   fingerprints, the `tbs_sha256` identity that folds a precert and its certificate into one).
//! - [`chain`]: what a log serves outside the tree (pre_certificate, issuer chain), checked before it counts.

pub mod cert;
pub mod chain;
pub mod checkpoint;
pub mod der;
pub mod leaf;
pub mod loglist;
pub mod merkle;
pub mod sig;
pub mod sth;
