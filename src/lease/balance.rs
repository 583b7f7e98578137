//! How many leases an instance should hold, and which to hand over (pure).
//!
//! Every instance targets ceil(wanted / live instances). Together the live instances can hold at least every
//! wanted log, and none holds more than its share, so a new instance finds leases to take: the others release
//! their excess at their next round.

use std::collections::BTreeSet;

use super::LogId;

/// The leases one instance should hold: ceil(`wanted` / `live`), with at least one live instance (itself).
pub fn target(wanted: usize, live: usize) -> usize {
    wanted.div_ceil(live.max(1))
}

/// What one round does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Held leases to hand over: logs no longer wanted, then the excess over the target.
    pub release: Vec<LogId>,
    /// How many more leases to try to take.
    pub acquire: usize,
}

/// The round's plan for an instance holding `held`, when `wanted` logs are followed by `live` instances.
///
/// The excess released is the held logs that sort last by `hash(log, instance)`-like order: here simply the
/// highest log IDs, so that repeated rounds release the same logs (no churn) and different instances, holding
/// different logs, still each release their own.
pub fn plan(wanted: &BTreeSet<LogId>, held: &BTreeSet<LogId>, live: usize) -> Plan {
    let mut release: Vec<LogId> = held.difference(wanted).copied().collect();
    let kept: Vec<LogId> = held.intersection(wanted).copied().collect();
    let goal = target(wanted.len(), live);
    if kept.len() > goal {
        release.extend(kept[goal..].iter().copied());
    }
    Plan {
        release,
        acquire: goal.saturating_sub(kept.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(range: std::ops::Range<u8>) -> BTreeSet<LogId> {
        range.map(|i| [i; 32]).collect()
    }

    #[test]
    fn the_target_is_the_ceiling_of_the_share() {
        assert_eq!(target(10, 3), 4);
        assert_eq!(target(9, 3), 3);
        assert_eq!(target(2, 3), 1);
        assert_eq!(target(0, 3), 0);
        assert_eq!(
            target(5, 0),
            5,
            "no live instance seen yet: this one counts"
        );
    }

    #[test]
    fn a_lone_instance_takes_everything() {
        let p = plan(&ids(0..5), &BTreeSet::new(), 1);
        assert_eq!(
            p,
            Plan {
                release: vec![],
                acquire: 5
            }
        );
    }

    #[test]
    fn a_new_instance_makes_the_others_release_their_excess() {
        // Two instances held 3 each of 6 logs; a third arrives.
        let p = plan(&ids(0..6), &ids(0..3), 3);
        assert_eq!(p.release, vec![[2; 32]]);
        assert_eq!(p.acquire, 0);
        // The newcomer wants its share.
        assert_eq!(plan(&ids(0..6), &BTreeSet::new(), 3).acquire, 2);
    }

    #[test]
    fn logs_no_longer_wanted_are_released_first_and_do_not_count() {
        let wanted = ids(0..4);
        let held: BTreeSet<LogId> = [[0; 32], [9; 32]].into();
        let p = plan(&wanted, &held, 2);
        assert_eq!(p.release, vec![[9; 32]]);
        assert_eq!(p.acquire, 1);
    }

    #[test]
    fn the_shares_cover_every_log_whatever_the_count() {
        for logs in 0..20usize {
            for live in 1..7 {
                assert!(
                    target(logs, live) * live >= logs,
                    "{logs} logs, {live} live"
                );
                assert!(target(logs, live) <= logs.max(1));
            }
        }
    }
}
