//! ctwatch — a Certificate Transparency log monitor.
//!
//! # Data flow
//!
//! ```text
//!  logsource (file / signed Google list, cached) ─> loglist ─> run: one supervised Tailer per log
//!                                 │
//!   ctlog::rfc6962 (get-sth, get-entries, proofs)   ctlog::static_ct (checkpoint, tiles, issuers)
//!        sth/sig: verify the signed head              checkpoint/sig: verify the signed note
//!                                 │  parallel ranges, back in order
//!   leaf: MerkleTreeLeaf / TileLeaf -> LogEntry ── cert::leaf_info: the leaf alone -> CertInfo (names, tbs_sha256)
//!                                 │    matched entries only: chain::check proves the served pre_certificate / issuer
//!                                 │
//!   watchlist: CertInfo -> matches          merkle: batch root == signed root, or consistency proof
//!                                 │
//!   store::commit_batch — certificates (dedup by tbs_sha256), sightings, matches, probe targets,
//!                         events (outbox) and the log's new position, in ONE SQLite transaction
//!                                 │
//!   notify: one worker per sink (stdout, webhook, Discord, Telegram, Slack, exec), grouped and retried
//!   probe::scheduler: TLS-probes matched hosts on a schedule, queues `probe` events
//!     └─ probe::renewal: served certificate vs CT -> `stale_deployment`, `renewal_missing` (expiry_findings)
//!   caa::checker (`--caa`): CAA records of newly matched names vs the issuing CA -> `caa_mismatch`
//!   health: queues `health` events; api: /health, /metrics, /api/v1; progress: catch-up display
//!   feed: after each commit, the batch's entries as certstream messages (certstream) -> api::stream clients
//!   stream: after each commit, the same messages to NATS JetStream (bounded queue, acks, published position
//!           per log in store::stream_positions; a restart re-reads what was committed but not acknowledged)
//!   console: the web console on the API's port (store/console.rs queries)
//! ```
//!
//! # Layout
//! - Pure protocol and parsing code, no I/O: [`ct`] (the CT protocol layer: [`ct::leaf`], [`ct::cert`],
//!   [`ct::chain`], [`ct::der`], [`ct::merkle`], [`ct::sig`], [`ct::sth`], [`ct::checkpoint`], [`ct::loglist`]), and
//!   [`watchlist`], [`event`].
//! - I/O behind small traits: [`ctlog`] (the [`ctlog::CtLog`] trait and its HTTP clients), [`store`] (SQLite),
//!   [`notify`] (the [`notify::Sink`] trait and the outbox workers), [`logsource`] (fetching the log list).
//! - The TLS expiry probe: [`probe`] (resolve, handshake, classify; `ctwatch check`, the daemon scheduler,
//!   `ctwatch report`).
//! - Running it: [`config`] (TOML + flags, [`envfile`]), [`database`] (which database a command uses, read-only
//!   opening), [`api`] (with the live feed, `api::stream`), [`console`] (web pages), [`feed`] (the verified
//!   broadcast) and [`certstream`] (its message format), [`stream`] (the NATS JetStream publisher), [`health`],
//!   [`progress`], [`stats`], [`terminal`] and [`run_report`] (what a person sees at the end of a run), [`rewind`]
//!   (re-reading known logs), [`outbox_admin`].
//! - CT and probe together: [`probe::renewal`] (renewed but not deployed, renewal missing), [`inventory`]
//!   (`ctwatch inventory`: valid certificates per domain and where each is served), [`caa`] (CAA checks of
//!   newly matched certificates, `run --caa`).
//! - Several instances on one PostgreSQL database: [`lease`] (which logs this instance may tail: leases,
//!   heartbeats, the balance; `run` follows them; the store fences each batch by the log's lease).
//! - Orchestration: [`tailer`] (one log), [`run`] (all logs + sinks + services), [`cli`] (commands);
//!   [`deadline`] bounds a `--once` run; [`runlock`] keeps a second `run` off a database that one is writing.
//! - Test and benchmark support lives outside this crate: `crates/fakelog` (`ctwatch-fakelog`, a dev-dependency)
//!   serves fake, misbehaving RFC 6962 and tiled logs on 127.0.0.1; the `ctwatch` binary never contains it.

pub mod alloc;
pub mod api;
pub mod args;
pub mod caa;
pub mod certstream;
pub mod cli;
pub mod config;
pub mod console;
pub mod ct;
pub mod ctlog;
pub mod database;
pub mod deadline;
pub mod envfile;
pub mod event;
pub mod feed;
pub mod health;
pub mod inventory;
pub mod lease;
pub mod logsource;
pub mod notify;
pub mod outbox_admin;
pub mod probe;
pub mod progress;
pub mod rewind;
pub mod run;
pub mod run_report;
pub mod runlock;
pub mod stats;
pub mod store;
pub mod stream;
pub mod tailer;
pub mod terminal;
pub mod watchlist;
