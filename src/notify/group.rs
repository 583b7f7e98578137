//! Which pending deliveries go out now, and together.
//!
//! Alertmanager-style grouping: the first event of a group key opens a window; everything with the same key that
//! is queued before the window closes goes out as ONE message when it closes. So a burst of 200 certificates
//! becomes one summary, and a lone event waits at most the window. The window is measured from the events'
//! `created_at` in the database, so a restart neither resets nor loses it.
//!
//! A group whose earlier attempt failed waits for its retry time; events that join it meanwhile wait with it
//! instead of overtaking it in a message of their own.

use std::collections::HashMap;

/// What the planner needs to know about one pending delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRow {
    pub event_id: i64,
    pub group_key: String,
    /// Unix seconds the event was queued.
    pub created_at: i64,
    /// Unix seconds before which it must not be sent (retry backoff).
    pub next_attempt_at: i64,
}

/// How a sink batches events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batching {
    /// Group window in seconds; 0 sends events as they come, in batches of `max_batch` unrelated events.
    pub window_secs: u64,
    /// Events per `send` call: unrelated events without grouping, events of one group with it.
    pub max_batch: usize,
}

/// The outcome of planning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Event ids to send now, one `send` per inner list, oldest first.
    pub ready: Vec<Vec<i64>>,
    /// When the next not-yet-ready delivery becomes ready (unix seconds).
    pub next_at: Option<i64>,
}

fn later(t: i64, out: &mut Plan) {
    out.next_at = Some(out.next_at.map_or(t, |n| n.min(t)));
}

/// Plan the sends for `rows` (pending deliveries of one sink, in event id order) at `now`. With `flush`, open
/// windows are treated as closed (shutdown, `--once`): nothing more will join them in this process.
pub fn plan(rows: &[PendingRow], now: i64, batching: Batching, flush: bool) -> Plan {
    let max_batch = batching.max_batch.max(1);
    let mut out = Plan::default();
    if batching.window_secs == 0 {
        let due: Vec<i64> = rows
            .iter()
            .filter(|r| {
                let ok = r.next_attempt_at <= now;
                if !ok {
                    later(r.next_attempt_at, &mut out);
                }
                ok
            })
            .map(|r| r.event_id)
            .collect();
        out.ready = due.chunks(max_batch).map(<[i64]>::to_vec).collect();
        return out;
    }
    // Groups in order of their oldest event.
    let mut order: Vec<&str> = Vec::new();
    let mut groups: HashMap<&str, Vec<&PendingRow>> = HashMap::new();
    for r in rows {
        groups
            .entry(r.group_key.as_str())
            .or_insert_with(|| {
                order.push(r.group_key.as_str());
                Vec::new()
            })
            .push(r);
    }
    let window = i64::try_from(batching.window_secs).unwrap_or(i64::MAX);
    for key in order {
        let members = &groups[key];
        let opened = members.iter().map(|r| r.created_at).min().unwrap_or(now);
        let retry = members
            .iter()
            .map(|r| r.next_attempt_at)
            .max()
            .unwrap_or(now);
        let closes = if flush {
            opened
        } else {
            opened.saturating_add(window)
        };
        let ready_at = closes.max(retry);
        if ready_at <= now {
            let ids: Vec<i64> = members.iter().map(|r| r.event_id).collect();
            out.ready.extend(ids.chunks(max_batch).map(<[i64]>::to_vec));
        } else {
            later(ready_at, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, key: &str, created: i64, next: i64) -> PendingRow {
        PendingRow {
            event_id: id,
            group_key: key.into(),
            created_at: created,
            next_attempt_at: next,
        }
    }

    const GROUPED: Batching = Batching {
        window_secs: 30,
        max_batch: 1000,
    };

    #[test]
    fn a_burst_is_one_batch_when_the_window_closes() {
        let rows: Vec<PendingRow> = (1..=200)
            .map(|i| row(i, "new_certificate|example.com", 1000 + i / 10, 1000))
            .collect();
        // The window opened at 1000 (the first event): nothing before 1030, even though events keep coming.
        assert_eq!(
            plan(&rows, 1029, GROUPED, false),
            Plan {
                ready: vec![],
                next_at: Some(1030)
            }
        );
        let p = plan(&rows, 1030, GROUPED, false);
        assert_eq!(p.ready.len(), 1);
        assert_eq!(p.ready[0], (1..=200).collect::<Vec<i64>>());
        assert_eq!(p.next_at, None);
    }

    #[test]
    fn a_single_event_waits_exactly_the_window() {
        let rows = [row(7, "lookalike|brand", 500, 500)];
        assert_eq!(
            plan(&rows, 529, GROUPED, false).ready,
            Vec::<Vec<i64>>::new()
        );
        assert_eq!(plan(&rows, 529, GROUPED, false).next_at, Some(530));
        assert_eq!(plan(&rows, 530, GROUPED, false).ready, vec![vec![7]]);
    }

    #[test]
    fn groups_are_independent_and_ordered_by_their_oldest_event() {
        let rows = [
            row(1, "a", 100, 100),
            row(2, "b", 110, 110),
            row(3, "a", 125, 125),
            row(4, "c", 140, 140),
        ];
        let p = plan(&rows, 140, GROUPED, false);
        assert_eq!(p.ready, vec![vec![1, 3], vec![2]]);
        assert_eq!(p.next_at, Some(170));
    }

    #[test]
    fn a_group_in_backoff_keeps_late_joiners_with_it() {
        // Events 1-2 failed and retry at 200; event 3 joined at 150 and is due at once on its own.
        let rows = [
            row(1, "a", 100, 200),
            row(2, "a", 101, 200),
            row(3, "a", 150, 150),
        ];
        assert_eq!(
            plan(&rows, 199, GROUPED, false),
            Plan {
                ready: vec![],
                next_at: Some(200)
            }
        );
        assert_eq!(plan(&rows, 200, GROUPED, false).ready, vec![vec![1, 2, 3]]);
    }

    #[test]
    fn flush_closes_open_windows_but_not_backoffs() {
        let rows = [row(1, "a", 100, 100), row(2, "b", 100, 160)];
        let p = plan(&rows, 101, GROUPED, true);
        assert_eq!(p.ready, vec![vec![1]]);
        assert_eq!(p.next_at, Some(160));
    }

    #[test]
    fn big_groups_are_cut_at_max_batch() {
        let rows: Vec<PendingRow> = (1..=5).map(|i| row(i, "a", 0, 0)).collect();
        let p = plan(
            &rows,
            100,
            Batching {
                window_secs: 30,
                max_batch: 2,
            },
            false,
        );
        assert_eq!(p.ready, vec![vec![1, 2], vec![3, 4], vec![5]]);
    }

    #[test]
    fn without_a_window_due_events_go_in_batches_regardless_of_key() {
        let rows = [
            row(1, "a", 0, 0),
            row(2, "b", 0, 50),
            row(3, "c", 0, 0),
            row(4, "a", 0, 0),
        ];
        let p = plan(
            &rows,
            10,
            Batching {
                window_secs: 0,
                max_batch: 2,
            },
            false,
        );
        assert_eq!(p.ready, vec![vec![1, 3], vec![4]]);
        assert_eq!(p.next_at, Some(50));
    }
}
