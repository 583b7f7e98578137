//! `ctwatch check DOMAIN... | -f FILE | -`: bulk expiry check for scripts, cron and Nagios.
//!
//! Exit codes: 0 every host OK, 1 some WARNING, 2 some CRITICAL, 3 the tool itself failed
//! (bad arguments, unreadable file, no targets) — `run` returns `Err` for 3 and the binary
//! prints the error chain.

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::classify::{Level, ThresholdFlags, Thresholds};
use super::report::{self, Format};
use super::resolve::{StaticResolver, SystemResolver};
use super::target::{DEFAULT_PORT, Target};
use super::{Families, ProbeOptions, Timeouts, TrustRoots, probe_hosts};

/// Exit code when the tool itself failed (Nagios UNKNOWN).
pub const EXIT_TOOL_FAILURE: u8 = 3;

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Hosts to check: `host`, `host:port`, `https://host/...`; `-` reads the list from stdin.
    pub domains: Vec<String>,
    /// Read hosts from FILE (one or more per line, `#` starts a comment); `-` is stdin.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print JSON: [{"domain","status","level","days_left",...}].
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV with a header line.
    #[arg(long)]
    pub csv: bool,
    /// Port for hosts given without one.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// WARNING when at most this many days are left. Default rule: min(21 d, max(0.2 × lifetime, 2 d)).
    /// Given alone: exactly this many days. With --warning-fraction: whichever leaves fewer days.
    #[arg(long)]
    pub warning_days: Option<u32>,
    /// CRITICAL when at most this many days are left. Default rule: min(7 d, max(0.1 × lifetime, 1 d)).
    /// Same rule with --critical-fraction.
    #[arg(long)]
    pub critical_days: Option<u32>,
    /// WARNING when at most this fraction of the certificate's lifetime is left, (0-1] [default: 0.2].
    #[arg(long)]
    pub warning_fraction: Option<f64>,
    /// CRITICAL when at most this fraction of the certificate's lifetime is left, (0-1] [default: 0.1].
    #[arg(long)]
    pub critical_fraction: Option<f64>,
    /// Connections in flight at once (1-10000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=10000))]
    pub concurrency: u16,
    /// DNS timeout, seconds.
    #[arg(long, default_value_t = 5.0)]
    pub dns_timeout_secs: f64,
    /// TCP connect timeout per address, seconds.
    #[arg(long, default_value_t = 5.0)]
    pub connect_timeout_secs: f64,
    /// TLS handshake timeout per address, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub handshake_timeout_secs: f64,
    /// Also trust the CA certificates in this PEM file (repeatable).
    #[arg(long = "ca-file", value_name = "PEM")]
    pub ca_files: Vec<PathBuf>,
    /// Trust only --ca-file, not the Mozilla roots.
    #[arg(long, requires = "ca_files")]
    pub no_default_roots: bool,
    /// Connect to ADDR:PORT for HOST instead of resolving it (repeatable; like curl).
    #[arg(long = "resolve", value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<String>,
    /// Probe IPv4 addresses only.
    #[arg(short = '4', long, conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Probe IPv6 addresses only.
    #[arg(short = '6', long)]
    pub ipv6: bool,
    /// Database whose certificates fill the "seen in CT" column [default: the config's `db` when a config
    /// file is given or exists; none otherwise].
    #[arg(long, env = "CTWATCH_DB", value_name = "FILE")]
    pub db: Option<PathBuf>,
    #[command(flatten)]
    pub config: crate::database::ConfigArg,
}

/// Runs the check, printing to stdout; the returned code is the process exit code.
pub async fn run(args: CheckArgs) -> anyhow::Result<u8> {
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let mut out = stdout.lock();
    let code = run_to(args, &mut out, tty).await?;
    out.flush().context("writing results")?;
    Ok(code)
}

/// Like [`run`], writing to `out`; `tty` selects colours and the summary line.
pub async fn run_to(args: CheckArgs, out: &mut dyn Write, tty: bool) -> anyhow::Result<u8> {
    let targets = collect_targets(&args)?;
    let opts = options(&args)?;
    let reports = probe_hosts(targets, &opts).await;
    let format = match (args.json, args.csv) {
        (true, _) => Format::Json,
        (_, true) => Format::Csv,
        _ => Format::Table {
            color: tty && std::env::var_os("NO_COLOR").is_none(),
        },
    };
    report::render(out, &reports, format).context("writing results")?;
    if tty && matches!(format, Format::Table { .. }) {
        writeln!(out, "\n{}", report::summary(&reports)).context("writing results")?;
    }
    let worst = reports.iter().map(|r| r.level).max().unwrap_or(Level::Ok);
    Ok(worst.exit_code())
}

/// Builds probe options from the flags, rejecting bad values before any probe starts.
pub fn options(args: &CheckArgs) -> anyhow::Result<ProbeOptions> {
    let thresholds = Thresholds::from_flags(ThresholdFlags {
        warning_days: args.warning_days,
        critical_days: args.critical_days,
        warning_fraction: args.warning_fraction,
        critical_fraction: args.critical_fraction,
    });
    thresholds.validate().map_err(|e| {
        anyhow::anyhow!(
            "{}",
            e.to_string()
                .replace("critical_days", "--critical-days")
                .replace("warning_days", "--warning-days")
                .replace("warning_fraction", "--warning-fraction")
                .replace("critical_fraction", "--critical-fraction")
        )
    })?;
    let timeouts = Timeouts {
        dns: seconds("--dns-timeout-secs", args.dns_timeout_secs)?,
        connect: seconds("--connect-timeout-secs", args.connect_timeout_secs)?,
        handshake: seconds("--handshake-timeout-secs", args.handshake_timeout_secs)?,
    };
    let mut roots = if args.no_default_roots {
        TrustRoots::empty()
    } else {
        TrustRoots::webpki()
    };
    for path in &args.ca_files {
        roots.add_pem_file(path)?;
    }
    let mut resolver = StaticResolver::with_fallback(Box::new(SystemResolver));
    for entry in &args.resolve {
        let (host, addr) = parse_resolve(entry)?;
        resolver.insert(&host, [addr]);
    }
    Ok(ProbeOptions {
        thresholds,
        timeouts,
        concurrency: usize::from(args.concurrency),
        roots: Arc::new(roots),
        resolver: Arc::new(resolver),
        families: match (args.ipv4, args.ipv6) {
            (true, _) => Families::V4Only,
            (_, true) => Families::V6Only,
            _ => Families::Any,
        },
        ct_lookup: ct_lookup(args)?,
        tbs_identity: Some(|tbs| crate::ct::cert::tbs_identity(tbs).ok()),
        // The CLI probes anything: its user is the operator (the API sets a policy).
        address_policy: None,
    })
}

/// The stored certificates that answer "seen in CT": `--db`, else the config's `db` (when a config file is
/// given or exists). None without either; a named database that does not exist is an error.
fn ct_lookup(args: &CheckArgs) -> anyhow::Result<Option<Arc<dyn super::CtLookup>>> {
    let db = crate::args::DbArg {
        db: args.db.clone(),
    };
    let configured = args.db.is_some()
        || crate::database::config_file(args.config.config.as_deref())
            .and_then(|f| crate::config::load(&f).ok())
            .is_some_and(|c| c.db.is_some());
    if !configured {
        return Ok(None);
    }
    let store = crate::database::open_read_only(&db, &args.config)?;
    Ok(Some(Arc::new(store)))
}

fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    if !(value > 0.0 && value <= 3600.0) {
        bail!("{flag} {value} is out of range (0, 3600]");
    }
    Ok(Duration::from_secs_f64(value))
}

/// `host:port:addr` (addr may be `[v6]`) -> (host, addr:port).
fn parse_resolve(entry: &str) -> anyhow::Result<(String, SocketAddr)> {
    let bad = || anyhow::anyhow!("--resolve {entry:?}: expected HOST:PORT:ADDR");
    let (host, rest) = entry.split_once(':').ok_or_else(bad)?;
    let (port, addr) = rest.split_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = addr.parse().map_err(|_| bad())?;
    let host = Target::new(host, port).map_err(|e| bad().context(e))?.host;
    Ok((host, SocketAddr::new(ip, port)))
}

/// Every target from the arguments, files and stdin, deduplicated in first-seen order.
pub fn collect_targets(args: &CheckArgs) -> anyhow::Result<Vec<Target>> {
    let mut inputs: Vec<(String, String)> = Vec::new(); // (where, text)
    let mut stdin_used = false;
    for (i, d) in args.domains.iter().enumerate() {
        if d == "-" {
            stdin_used |= read_stdin(&mut inputs, stdin_used)?;
        } else {
            inputs.push((format!("argument {}", i + 1), d.clone()));
        }
    }
    for path in &args.files {
        if path.as_os_str() == "-" {
            stdin_used |= read_stdin(&mut inputs, stdin_used)?;
            continue;
        }
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let reader = std::io::BufReader::new(file);
        push_lines(&mut inputs, &path.display().to_string(), reader)?;
    }
    parse_inputs(&inputs, args.port)
}

fn read_stdin(inputs: &mut Vec<(String, String)>, already: bool) -> anyhow::Result<bool> {
    if !already {
        push_lines(inputs, "stdin", std::io::stdin().lock())?;
    }
    Ok(true)
}

fn push_lines(
    inputs: &mut Vec<(String, String)>,
    source: &str,
    reader: impl BufRead,
) -> anyhow::Result<()> {
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading {source}"))?;
        let content = line.split('#').next().unwrap_or("");
        for word in content.split(|c: char| c.is_whitespace() || c == ',') {
            if !word.is_empty() {
                inputs.push((format!("{source}:{}", n + 1), word.to_string()));
            }
        }
    }
    Ok(())
}

/// Parses all inputs, reporting every bad one at once (up to 10) rather than the first.
fn parse_inputs(inputs: &[(String, String)], port: u16) -> anyhow::Result<Vec<Target>> {
    let mut targets: Vec<Target> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut bad = Vec::new();
    for (place, text) in inputs {
        match Target::parse(text, port) {
            Ok(t) if seen.insert(t.clone()) => targets.push(t),
            Ok(_) => {}
            Err(e) => bad.push(format!("{place}: {e}")),
        }
    }
    if !bad.is_empty() {
        let shown = bad
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ");
        let more = bad.len().saturating_sub(10);
        let tail = if more > 0 {
            format!("\n  ... and {more} more")
        } else {
            String::new()
        };
        bail!("{} invalid target(s):\n  {shown}{tail}", bad.len());
    }
    if targets.is_empty() {
        bail!("no domains given (arguments, -f FILE or - for stdin)");
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(lines: &str) -> Vec<(String, String)> {
        let mut v = Vec::new();
        push_lines(&mut v, "list.txt", lines.as_bytes()).unwrap();
        v
    }

    #[test]
    fn file_lines_with_comments_commas_and_duplicates() {
        let v = inputs(
            "# clients\nexample.com  # main site\n\na.example, b.example:8443\nEXAMPLE.com\n",
        );
        assert_eq!(v[0], ("list.txt:2".to_string(), "example.com".to_string()));
        let targets = parse_inputs(&v, 443).unwrap();
        let shown: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        assert_eq!(
            shown,
            ["example.com:443", "a.example:443", "b.example:8443"]
        );
    }

    #[test]
    fn every_bad_line_is_reported_with_its_place() {
        let v = inputs("ok.example\nhttp://x.example\nbad host:99999\n");
        let err = parse_inputs(&v, 443).unwrap_err().to_string();
        assert!(err.starts_with("2 invalid target(s)"), "{err}");
        assert!(
            err.contains("list.txt:2: \"http://x.example\": scheme \"http\""),
            "{err}"
        );
        assert!(
            err.contains("list.txt:3: \"host:99999\": bad port \"99999\""),
            "{err}"
        );
    }

    #[test]
    fn no_targets_is_a_tool_failure() {
        assert!(parse_inputs(&inputs("# nothing\n\n"), 443).is_err());
    }

    #[test]
    fn an_explicit_threshold_is_not_overridden_by_the_default_fraction() {
        // --warning-days 60 alone: 60 days, whatever the lifetime (the default 20 % would make it 18 days for a
        // 90-day certificate).
        // (The rule lives in Thresholds::from_flags, table-tested in classify.rs.)
        let warn = |days: Option<u32>, fraction: Option<f64>| {
            let t = Thresholds::from_flags(ThresholdFlags {
                warning_days: days,
                warning_fraction: fraction,
                ..ThresholdFlags::default()
            });
            (t.warning_days, t.warning_fraction)
        };
        assert_eq!(warn(Some(60), None), (60, 1.0));
        assert_eq!(warn(None, Some(0.5)), (3650, 0.5));
        assert_eq!(warn(None, None), (21, 0.2));
        assert_eq!(warn(Some(30), Some(0.3)), (30, 0.3));
        let args = |a: &[&str]| {
            use clap::Parser;
            #[derive(Parser)]
            struct W {
                #[command(flatten)]
                a: CheckArgs,
            }
            W::try_parse_from(std::iter::once("check").chain(a.iter().copied()))
                .unwrap()
                .a
        };
        let t = options(&args(&["x.test", "--warning-days", "60"]))
            .unwrap()
            .thresholds;
        let ninety_days = 90 * 86_400;
        assert_eq!(t.effective_secs(ninety_days).0, 60 * 86_400);
        let t = options(&args(&["x.test", "--warning-days", "5"]))
            .unwrap()
            .thresholds;
        assert_eq!((t.warning_days, t.critical_days), (5, 5));
        let err = options(&args(&["x.test", "--critical-days", "30"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--critical-days (30) must not exceed --warning-days (21)"),
            "{err}"
        );
    }

    #[test]
    fn resolve_entries() {
        assert_eq!(
            parse_resolve("Two.Test:8443:127.0.0.2").unwrap(),
            ("two.test".to_string(), "127.0.0.2:8443".parse().unwrap())
        );
        assert_eq!(
            parse_resolve("v6.test:443:[::1]").unwrap(),
            ("v6.test".to_string(), "[::1]:443".parse().unwrap())
        );
        assert!(parse_resolve("v6.test:443").is_err());
        assert!(parse_resolve("v6.test:x:127.0.0.1").is_err());
    }
}
