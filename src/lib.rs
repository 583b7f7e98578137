//! ctwatch — a Certificate Transparency log monitor.
//!
//! # Data flow
//!
//! ```text
//!  log list (loglist) ──> run: one supervised Tailer per log
//!                                 │
//!   ctlog::rfc6962 (get-sth, get-entries, proofs) ── sth/sig: verify the signed head
//!                                 │  parallel ranges, back in order
//!   leaf: MerkleTreeLeaf -> LogEntry ── cert: LogEntry -> CertInfo (names, tbs_sha256, ...)
//!                                 │
//!   watchlist: CertInfo -> matches          merkle: collapsed tree == signed root?
//!                                 │
//!   store::commit_batch — certificates (dedup by tbs_sha256), sightings, matches, events (outbox)
//!                         and the log's new position, in ONE SQLite transaction
//!                                 │
//!   notify: one worker per sink delivers queued events (stdout, ...) and marks them delivered
//! ```
//!
//! # Layout
//! - Pure protocol and parsing code, no I/O: [`leaf`], [`cert`], [`der`], [`merkle`], [`sig`], [`sth`],
//!   [`checkpoint`], [`loglist`], [`watchlist`], [`event`].
//! - I/O behind small traits: [`ctlog`] (the [`ctlog::CtLog`] trait and its HTTP clients), [`store`] (SQLite),
//!   [`notify`] (the [`notify::Sink`] trait and the outbox workers).
//! - The TLS expiry probe: [`probe`] (resolve, handshake, classify; `ctwatch check`).
//! - Orchestration: [`tailer`] (one log), [`run`] (all logs + sinks), [`cli`] (commands).
//! - Test and benchmark support: [`fakelog`] (a misbehaving RFC 6962 log on 127.0.0.1).

pub mod api;
pub mod cert;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod ctlog;
pub mod der;
pub mod event;
pub mod fakelog;
pub mod fakelog_tiled;
pub mod health;
pub mod leaf;
pub mod loglist;
pub mod logsource;
pub mod merkle;
pub mod notify;
pub mod probe;
pub mod progress;
pub mod run;
pub mod sig;
pub mod stats;
pub mod sth;
pub mod store;
pub mod tailer;
pub mod watchlist;
