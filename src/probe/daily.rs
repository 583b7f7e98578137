//! `ctwatch report`: the daily expiry report an MSP mails to itself from cron — per client tag, the hosts
//! that are CRITICAL, WARNING and OK, worst first, with days left and when each was last probed.
//!
//! Built from the stored targets and their latest results ([`Store::probe_status`]); nothing is probed here.
//! Two extra groups keep the email readable: names from CT that never answered TLS (mail, VPN, internal
//! names; not alerted on either) and targets not probed yet.

use std::io::Write;

use anyhow::Context;
use serde::Serialize;

use std::collections::{BTreeMap, HashMap};

use super::classify::{Level, Status};
use super::daily_changes::{Change, FindingNote, changes, notes};
use super::panel::PanelStatus;
use super::report::short_name;
use crate::args::DbArg;
use crate::event::rfc3339;
use crate::store::{FindingRow, ProbeResultRow, ProbeStatusRow, Store, TargetSource, unix_now};

#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub db: DbArg,
    #[command(flatten)]
    pub config: crate::database::ConfigArg,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Only hosts with this tag (repeatable: any of them).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Print a self-contained HTML email body instead of text.
    #[arg(long, conflicts_with = "json")]
    pub html: bool,
    /// What changed since: an RFC 3339 time or a span back from now (`36h`, `7d`) [default: 24h].
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
}

/// Where a host stands in the report, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    Critical,
    Warning,
    Ok,
    /// Fed from CT, never answered TLS (see [`super::schedule::decide`]).
    NotServing,
    /// Queued, not probed yet.
    Pending,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Critical => "CRITICAL",
            Category::Warning => "WARNING",
            Category::Ok => "OK",
            Category::NotServing => "NOT_SERVING",
            Category::Pending => "PENDING",
        }
    }

    /// Category of a target from its latest result.
    pub fn of(row: &ProbeStatusRow) -> Category {
        let Some(latest) = &row.latest else {
            return Category::Pending;
        };
        let never_served = row.target.source == TargetSource::Ct && row.target.snapshot.is_none();
        if never_served && latest.status.is_network_failure() {
            return Category::NotServing;
        }
        match latest.level {
            Level::Critical => Category::Critical,
            Level::Warning => Category::Warning,
            Level::Ok => Category::Ok,
        }
    }
}

/// One host line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostLine {
    pub domain: String,
    pub port: u16,
    pub category: Category,
    pub status: Option<Status>,
    pub level: Option<Level>,
    pub days_left: Option<i64>,
    pub not_after: Option<String>,
    pub issuer: Option<String>,
    pub cert_sha256: Option<String>,
    /// False: the served certificate was never seen in a followed CT log.
    pub seen_in_ct: Option<bool>,
    /// RFC 3339 UTC of the latest probe.
    pub probed_at: Option<String>,
    pub consecutive_failures: u32,
    pub tags: Vec<String>,
    /// What a hosting panel shows: Valid / Invalid / Inactive / Unknown.
    pub panel_status: PanelStatus,
    /// Open findings: renewed but not deployed, renewal missing.
    pub findings: Vec<FindingNote>,
    /// What changed since the report's `since`.
    pub changes: Vec<Change>,
}

/// What the report shows beyond the latest results.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// Findings open now or raised/resolved since `since`, per (domain, port).
    pub findings: BTreeMap<(String, u16), Vec<FindingRow>>,
    /// Unix seconds; the change section compares with the results as they were then.
    pub since: Option<i64>,
    /// The latest result of each host at `since`.
    pub before: HashMap<(String, u16), ProbeResultRow>,
}

/// Counts per category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub critical: usize,
    pub warning: usize,
    pub ok: usize,
    pub not_serving: usize,
    pub pending: usize,
}

impl Counts {
    fn add(&mut self, c: Category) {
        match c {
            Category::Critical => self.critical += 1,
            Category::Warning => self.warning += 1,
            Category::Ok => self.ok += 1,
            Category::NotServing => self.not_serving += 1,
            Category::Pending => self.pending += 1,
        }
    }

    fn summary(&self) -> String {
        let mut s = format!(
            "{} CRITICAL, {} WARNING, {} OK",
            self.critical, self.warning, self.ok
        );
        if self.not_serving > 0 {
            s.push_str(&format!(", {} not serving", self.not_serving));
        }
        if self.pending > 0 {
            s.push_str(&format!(", {} not probed yet", self.pending));
        }
        s
    }
}

/// The hosts of one tag (`tag: null` for untagged hosts).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagGroup {
    pub tag: Option<String>,
    pub counts: Counts,
    pub hosts: Vec<HostLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyReport {
    pub generated_at: String,
    /// Start of the change section, RFC 3339 UTC.
    pub since: Option<String>,
    /// Each host once, whatever its number of tags.
    pub totals: Counts,
    pub groups: Vec<TagGroup>,
}

fn host_line(row: &ProbeStatusRow, extras: &Extras) -> HostLine {
    let latest = row.latest.as_ref();
    let key = (row.target.domain.clone(), row.target.port);
    let findings = extras.findings.get(&key).map_or(&[][..], Vec::as_slice);
    let active: Vec<FindingRow> = findings
        .iter()
        .filter(|f| f.resolved_at.is_none())
        .cloned()
        .collect();
    HostLine {
        panel_status: PanelStatus::of(latest.map(|l| l.status)),
        findings: notes(&active),
        changes: extras.since.map_or_else(Vec::new, |since| {
            changes(extras.before.get(&key), latest, findings, since)
        }),
        domain: row.target.domain.clone(),
        port: row.target.port,
        category: Category::of(row),
        status: latest.map(|l| l.status),
        level: latest.map(|l| l.level),
        days_left: latest.and_then(|l| l.days_left),
        not_after: latest.and_then(|l| l.not_after.clone()),
        issuer: latest.and_then(|l| l.issuer.clone()),
        cert_sha256: latest.and_then(|l| l.cert_sha256.clone()),
        seen_in_ct: latest.and_then(|l| l.seen_in_ct),
        probed_at: latest.map(|l| rfc3339(l.probed_at)),
        consecutive_failures: row.target.consecutive_failures,
        tags: row.target.tags.clone(),
    }
}

/// Worst first; within a category the fewest days left, then by name.
fn line_order(a: &HostLine, b: &HostLine) -> std::cmp::Ordering {
    (a.category, a.status.map(std::cmp::Reverse))
        .cmp(&(b.category, b.status.map(std::cmp::Reverse)))
        .then(
            a.days_left
                .unwrap_or(i64::MAX)
                .cmp(&b.days_left.unwrap_or(i64::MAX)),
        )
        .then_with(|| (&a.domain, a.port).cmp(&(&b.domain, b.port)))
}

/// Groups rows by tag (a host with two tags is in both groups), hosts worst first, groups with the worst
/// hosts first and then by tag. `only_tags` keeps the named groups only.
pub fn build(rows: &[ProbeStatusRow], only_tags: &[String], now: i64) -> DailyReport {
    build_full(rows, &Extras::default(), only_tags, now)
}

/// [`build`] with findings and the change section.
pub fn build_full(
    rows: &[ProbeStatusRow],
    extras: &Extras,
    only_tags: &[String],
    now: i64,
) -> DailyReport {
    let mut totals = Counts::default();
    let mut groups: BTreeMap<Option<String>, Vec<HostLine>> = Default::default();
    for row in rows {
        let line = host_line(row, extras);
        let tags: Vec<Option<String>> = if line.tags.is_empty() {
            vec![None]
        } else {
            line.tags.iter().cloned().map(Some).collect()
        };
        let wanted: Vec<_> = tags
            .into_iter()
            .filter(|t| only_tags.is_empty() || t.as_ref().is_some_and(|t| only_tags.contains(t)))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        totals.add(line.category);
        for tag in wanted {
            groups.entry(tag).or_default().push(line.clone());
        }
    }
    let mut groups: Vec<TagGroup> = groups
        .into_iter()
        .map(|(tag, mut hosts)| {
            hosts.sort_by(line_order);
            let mut counts = Counts::default();
            hosts.iter().for_each(|h| counts.add(h.category));
            TagGroup { tag, counts, hosts }
        })
        .collect();
    let worst = |g: &TagGroup| g.hosts.first().map(|h| h.category);
    groups.sort_by(|a, b| {
        worst(a)
            .cmp(&worst(b))
            .then_with(|| b.counts.critical.cmp(&a.counts.critical))
            .then_with(|| (a.tag.is_none(), &a.tag).cmp(&(b.tag.is_none(), &b.tag)))
    });
    DailyReport {
        generated_at: rfc3339(now),
        since: extras.since.map(rfc3339),
        totals,
        groups,
    }
}

const HEADER: [&str; 8] = [
    "LEVEL", "DOMAIN", "STATUS", "DAYS", "EXPIRES", "ISSUER", "CT", "PROBED",
];

fn cells(h: &HostLine) -> [String; 8] {
    let dash = || "-".to_string();
    let level = match h.category {
        Category::NotServing => "NO TLS".to_string(),
        Category::Pending => "PENDING".to_string(),
        c => c.as_str().to_string(),
    };
    let domain = if h.port == 443 {
        h.domain.clone()
    } else {
        format!("{}:{}", h.domain, h.port)
    };
    [
        level,
        domain,
        h.status.map_or_else(dash, |s| s.to_string()),
        h.days_left.map_or_else(dash, |d| d.to_string()),
        h.not_after
            .as_deref()
            .map_or_else(dash, |s| s.chars().take(10).collect()),
        h.issuer.as_deref().map_or_else(dash, short_name),
        match h.seen_in_ct {
            Some(true) => "yes".into(),
            Some(false) => "NO".into(),
            None => dash(),
        },
        h.probed_at.as_deref().map_or_else(dash, |s| {
            s.chars().take(16).collect::<String>().replace('T', " ")
        }),
    ]
}

/// The plain-text report: a summary line, then per tag a heading and an aligned table (same column widths
/// across groups, so the email reads as one table).
pub fn write_text(out: &mut dyn Write, report: &DailyReport) -> std::io::Result<()> {
    let t = &report.totals;
    let hosts = t.critical + t.warning + t.ok + t.not_serving + t.pending;
    writeln!(out, "ctwatch expiry report, {}", report.generated_at)?;
    writeln!(out, "{hosts} host(s): {}", t.summary())?;
    if report.groups.is_empty() {
        writeln!(out, "\nno probed hosts yet")?;
        return Ok(());
    }
    let rows: Vec<Vec<[String; 8]>> = report
        .groups
        .iter()
        .map(|g| g.hosts.iter().map(cells).collect())
        .collect();
    let mut widths = HEADER.map(str::len);
    for row in rows.iter().flatten() {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    for (group, rows) in report.groups.iter().zip(&rows) {
        let name = group.tag.as_deref().unwrap_or("(untagged)");
        writeln!(out, "\n== {name}: {} ==", group.counts.summary())?;
        write_row(out, &HEADER.map(String::from), &widths)?;
        for row in rows {
            write_row(out, row, &widths)?;
        }
        write_notes(out, group, report.since.as_deref())?;
    }
    let not_in_ct = report
        .groups
        .iter()
        .flat_map(|g| &g.hosts)
        .any(|h| h.seen_in_ct == Some(false));
    if not_in_ct {
        writeln!(
            out,
            "\nCT NO: the served certificate was never seen in a CT log followed by ctwatch \
             (expected for private CAs and for certificates issued before ctwatch started)."
        )?;
    }
    if t.not_serving > 0 {
        writeln!(
            out,
            "\nNO TLS: names from CT certificates that have never answered a TLS handshake on this port \
             (often mail, VPN or internal names); they are not alerted on."
        )?;
    }
    Ok(())
}

/// Under a group's table: the open findings, then what changed since the report's `since`.
fn write_notes(out: &mut dyn Write, group: &TagGroup, since: Option<&str>) -> std::io::Result<()> {
    for h in &group.hosts {
        for f in &h.findings {
            writeln!(out, "  ! {}: {}", h.domain, f.text)?;
        }
    }
    let changed: Vec<&HostLine> = group
        .hosts
        .iter()
        .filter(|h| !h.changes.is_empty())
        .collect();
    if let (Some(since), false) = (since, changed.is_empty()) {
        writeln!(out, "  changes since {since}:")?;
        for h in changed {
            for c in &h.changes {
                writeln!(out, "  - {}: {}", h.domain, c.text)?;
            }
        }
    }
    Ok(())
}

fn write_row(out: &mut dyn Write, row: &[String; 8], widths: &[usize; 8]) -> std::io::Result<()> {
    let mut line = String::new();
    for (cell, w) in row.iter().zip(widths) {
        line.push_str(&format!("{cell:<w$}  "));
    }
    writeln!(out, "{}", line.trim_end())
}

/// `ctwatch report`. Exit 0 once the report is written (whatever the hosts' levels), 3 on failure.
pub fn report_command(args: ReportArgs) -> anyhow::Result<u8> {
    let store: Store = crate::database::open_read_only(&args.db, &args.config)?;
    let rows = store.probe_status(None).context("reading probe results")?;
    for tag in &args.tags {
        if !rows.iter().any(|r| r.target.tags.iter().any(|t| t == tag)) {
            eprintln!(
                "ctwatch: no probed host has the tag {tag:?} (tags come from the watchlist's @tags)"
            );
        }
    }
    let now = unix_now();
    let since = match &args.since {
        Some(s) => parse_since(s, now)?,
        None => now - 24 * 3600,
    };
    let extras = gather_extras(&store, since)?;
    let report = build_full(&rows, &extras, &args.tags, now);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else if args.html {
        super::daily_html::write_html(&mut out, &report)?;
    } else {
        write_text(&mut out, &report)?;
    }
    out.flush().context("writing the report")?;
    Ok(0)
}

/// Findings and the earlier results the change section compares with.
fn gather_extras(store: &Store, since: i64) -> anyhow::Result<Extras> {
    let mut extras = Extras {
        since: Some(since),
        before: store
            .latest_probe_results_at(since)
            .context("reading earlier probe results")?,
        ..Extras::default()
    };
    for f in store
        .expiry_findings(Some(since))
        .context("reading findings")?
    {
        extras
            .findings
            .entry((f.domain.clone(), f.port))
            .or_default()
            .push(f);
    }
    Ok(extras)
}

/// `--since`: RFC 3339, or a span back from `now` (`90m`, `36h`, `7d`).
pub fn parse_since(s: &str, now: i64) -> anyhow::Result<i64> {
    if let Some(t) = super::renewal::parse_time(s) {
        return Ok(t);
    }
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| {
        anyhow::anyhow!("--since {s:?}: expected an RFC 3339 time or a span like 36h or 7d")
    })?;
    let unit_secs = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => anyhow::bail!("--since {s:?}: the unit must be m, h or d (or give an RFC 3339 time)"),
    };
    Ok(now - n.saturating_mul(unit_secs))
}

#[cfg(test)]
#[path = "daily_tests.rs"]
mod tests;
