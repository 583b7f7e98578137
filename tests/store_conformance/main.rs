//! One conformance suite, two engines: every test body below runs against SQLite (`sqlite::NAME`) and against a
//! fresh PostgreSQL database (`postgres::NAME`, on the server of `CTWATCH_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Only the public `Store` API is used, so what passes here is
//! the observable behaviour callers rely on, whatever the backend. An unreachable PostgreSQL fails the
//! `postgres::` tests with what to do.

mod builders;
#[path = "../common/mod.rs"]
mod common;
mod reads;
mod writes;

use reads::*;
use writes::*;

/// Generate `sqlite::NAME` and `postgres::NAME` for each test body `NAME(&Store)`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = ctwatch::store::Store::open(&dir.path().join("ctwatch.db")).unwrap();
                    super::$name(&store);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    let db = super::common::pg::TestDb::new();
                    let store = ctwatch::store::Store::open(std::path::Path::new(&db.url)).unwrap();
                    assert_eq!(store.backend_name(), "postgres");
                    super::$name(&store);
                    drop(store);
                }
            )*
        }
    };
}

conformance!(
    batch_commit_deduplicates_and_moves_the_position,
    a_batch_at_the_wrong_position_is_refused_and_writes_nothing,
    matches_queue_events_probe_targets_and_caa_candidates,
    outbox_lifecycle,
    deliver_in_transaction_rolls_back_on_error,
    sink_pauses_hold_until_resumed,
    runs_report_a_crash_once,
    facts_and_issuer_cache,
    probe_targets_and_results,
    expiry_findings_are_raised_kept_and_resolved,
    caa_checks_are_recorded,
    console_search_events_and_cert_detail,
    logs_listing_counts_malformed_entries,
    rewind_is_requested_and_applied,
    inventory_and_ct_lookups,
);
