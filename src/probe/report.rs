//! Probe results as data ([`HostReport`], [`AddressReport`]) and their table / JSON / CSV forms.

use std::io::{self, Write};
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::classify::{Level, Status};
use super::panel::PanelStatus;

/// One host (name + port): the worst of its addresses, with the served certificate of that
/// address. Serialised as the `--json` output and stored by the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostReport {
    pub domain: String,
    pub port: u16,
    pub status: Status,
    pub level: Level,
    /// Whole days until notAfter (rounded down, negative once expired); null without a cert.
    pub days_left: Option<i64>,
    /// RFC 3339, UTC.
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub sans: Vec<String>,
    /// SHA-256 of the served leaf's DER, lower-case hex.
    pub cert_sha256: Option<String>,
    /// CT identity of the served leaf (SHA-256 of the TBS without SCTs), when computed.
    pub tbs_sha256: Option<String>,
    /// Whether CT logs hold the served leaf; null when not looked up. `false` deserves a look:
    /// a publicly trusted certificate nobody logged is unusual.
    pub seen_in_ct: Option<bool>,
    /// Every problem found on any counted address, worst first.
    pub problems: Vec<Status>,
    pub error: Option<String>,
    pub addresses: Vec<AddressReport>,
    /// When the probe started, RFC 3339 UTC.
    pub probed_at: String,
    pub duration_ms: u64,
}

/// One address of a host, probed with the host's name as SNI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddressReport {
    pub address: SocketAddr,
    pub status: Status,
    pub level: Level,
    /// False when the address cannot count against the host (an IPv6 address on a machine
    /// without IPv6 connectivity); such an address never makes a host CRITICAL on its own.
    pub counted: bool,
    pub days_left: Option<i64>,
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    pub issuer: Option<String>,
    pub subject: Option<String>,
    pub sans: Vec<String>,
    pub cert_sha256: Option<String>,
    pub tbs_sha256: Option<String>,
    pub seen_in_ct: Option<bool>,
    /// Served chain length including the leaf; 0 when nothing was received.
    pub chain_len: usize,
    pub tls_version: Option<String>,
    pub problems: Vec<Status>,
    pub error: Option<String>,
}

/// A host as `--json` prints it: the report plus `panel_status` (Valid / Invalid / Inactive / Unknown,
/// what hosting panels show).
#[derive(Serialize)]
pub struct JsonHost<'a> {
    #[serde(flatten)]
    pub report: &'a HostReport,
    pub panel_status: PanelStatus,
}

impl<'a> From<&'a HostReport> for JsonHost<'a> {
    fn from(report: &'a HostReport) -> Self {
        JsonHost {
            report,
            panel_status: PanelStatus::of(Some(report.status)),
        }
    }
}

/// Output format of `ctwatch check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns; `color` adds ANSI colours to the level.
    Table {
        color: bool,
    },
    Json,
    Csv,
}

/// Writes the reports in `format`.
pub fn render(out: &mut dyn Write, reports: &[HostReport], format: Format) -> io::Result<()> {
    match format {
        Format::Table { color } => write_table(out, reports, color),
        Format::Json => {
            let hosts: Vec<JsonHost<'_>> = reports.iter().map(JsonHost::from).collect();
            serde_json::to_writer_pretty(&mut *out, &hosts).map_err(io::Error::other)?;
            writeln!(out)
        }
        Format::Csv => write_csv(out, reports),
    }
}

const TABLE_HEADER: [&str; 8] = [
    "DOMAIN", "LEVEL", "STATUS", "DAYS", "EXPIRES", "ISSUER", "CT", "DETAIL",
];

fn table_row(r: &HostReport) -> [String; 8] {
    let domain = if r.port == 443 {
        r.domain.clone()
    } else {
        format!("{}:{}", r.domain, r.port)
    };
    let counted = r.addresses.iter().filter(|a| a.counted).count();
    let detail = match (&r.error, counted) {
        (Some(e), _) => e.clone(),
        (None, n) if n > 1 => format!("{n} addresses"),
        (None, _) => String::new(),
    };
    [
        domain,
        r.level.to_string(),
        r.status.to_string(),
        r.days_left.map_or("-".into(), |d| d.to_string()),
        r.not_after
            .as_deref()
            .map_or("-".into(), |s| s.chars().take(10).collect()),
        r.issuer.as_deref().map_or("-".into(), short_name),
        match r.seen_in_ct {
            Some(true) => "yes".into(),
            Some(false) => "NO".into(),
            None => "-".into(),
        },
        detail,
    ]
}

fn write_table(out: &mut dyn Write, reports: &[HostReport], color: bool) -> io::Result<()> {
    let rows: Vec<[String; 8]> = reports.iter().map(table_row).collect();
    let mut widths = TABLE_HEADER.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header = TABLE_HEADER.map(String::from);
    write_row(out, &header, &widths, None)?;
    for (row, report) in rows.iter().zip(reports) {
        write_row(out, row, &widths, color.then_some(report.level))?;
    }
    Ok(())
}

fn write_row(
    out: &mut dyn Write,
    row: &[String; 8],
    widths: &[usize; 8],
    color: Option<Level>,
) -> io::Result<()> {
    let mut line = String::new();
    for (i, cell) in row.iter().enumerate() {
        if i == row.len() - 1 {
            line.push_str(cell);
            break;
        }
        let pad = widths[i] - cell.chars().count();
        match (i, color) {
            (1, Some(level)) => {
                let code = match level {
                    Level::Ok => "32",
                    Level::Warning => "33",
                    Level::Critical => "31",
                };
                line.push_str(&format!("\x1b[{code}m{cell}\x1b[0m"));
            }
            _ => line.push_str(cell),
        }
        line.extend(std::iter::repeat_n(' ', pad + 2));
    }
    writeln!(out, "{}", line.trim_end())
}

/// "CN=R11,O=Let's Encrypt,C=US" -> "R11"; falls back to O, then the whole name.
pub(crate) fn short_name(dn: &str) -> String {
    let part = |key: &str| {
        dn.split(',')
            .map(str::trim)
            .find_map(|p| p.strip_prefix(key))
            .map(str::to_string)
    };
    part("CN=")
        .or_else(|| part("O="))
        .unwrap_or_else(|| dn.to_string())
}

const CSV_HEADER: &str = "domain,port,status,level,days_left,not_before,not_after,issuer,subject,\
sans,cert_sha256,tbs_sha256,seen_in_ct,problems,addresses,error";

fn write_csv(out: &mut dyn Write, reports: &[HostReport]) -> io::Result<()> {
    writeln!(out, "{CSV_HEADER}")?;
    for r in reports {
        let opt = |s: &Option<String>| s.clone().unwrap_or_default();
        let fields = [
            r.domain.clone(),
            r.port.to_string(),
            r.status.to_string(),
            r.level.to_string(),
            r.days_left.map(|d| d.to_string()).unwrap_or_default(),
            opt(&r.not_before),
            opt(&r.not_after),
            opt(&r.issuer),
            opt(&r.subject),
            r.sans.join(" "),
            opt(&r.cert_sha256),
            opt(&r.tbs_sha256),
            r.seen_in_ct.map(|b| b.to_string()).unwrap_or_default(),
            r.problems
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            r.addresses
                .iter()
                .map(|a| format!("{}={}", a.address, a.status))
                .collect::<Vec<_>>()
                .join(" "),
            opt(&r.error),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        writeln!(out, "{}", line.join(","))?;
    }
    Ok(())
}

/// RFC 4180 quoting: only when needed, quotes doubled.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Counts of hosts per level, for the summary line.
pub fn summary(reports: &[HostReport]) -> String {
    let count = |l: Level| reports.iter().filter(|r| r.level == l).count();
    format!(
        "{} host(s): {} OK, {} WARNING, {} CRITICAL",
        reports.len(),
        count(Level::Ok),
        count(Level::Warning),
        count(Level::Critical)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(domain: &str, status: Status, days: Option<i64>) -> HostReport {
        HostReport {
            domain: domain.into(),
            port: 443,
            status,
            level: status.level(),
            days_left: days,
            not_before: None,
            not_after: days.map(|_| "2026-03-01T12:00:00Z".to_string()),
            issuer: Some("C=US, O=Let's Encrypt, CN=R11".into()),
            subject: None,
            sans: vec!["a.example".into(), "b.example".into()],
            cert_sha256: None,
            tbs_sha256: None,
            seen_in_ct: None,
            problems: vec![],
            error: None,
            addresses: vec![],
            probed_at: "2026-01-01T00:00:00Z".into(),
            duration_ms: 3,
        }
    }

    fn text(reports: &[HostReport], format: Format) -> String {
        let mut out = Vec::new();
        render(&mut out, reports, format).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_table_is_aligned() {
        let mut bad = report("expired.example", Status::Expired, Some(-3));
        bad.error = Some("certificate expired".into());
        let got = text(
            &[report("ok.example", Status::Ok, Some(60)), bad],
            Format::Table { color: false },
        );
        let want = "\
DOMAIN           LEVEL     STATUS   DAYS  EXPIRES     ISSUER  CT  DETAIL
ok.example       OK        ok       60    2026-03-01  R11     -
expired.example  CRITICAL  expired  -3    2026-03-01  R11     -   certificate expired
";
        assert_eq!(got, want);
    }

    #[test]
    fn coloured_table_only_colours_the_level() {
        let got = text(
            &[report("w.example", Status::Warning, Some(9))],
            Format::Table { color: true },
        );
        assert!(got.contains("\x1b[33mWARNING\x1b[0m"), "{got:?}");
        assert_eq!(got.matches('\x1b').count(), 2);
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        let mut r = report("x.example", Status::DnsError, None);
        r.issuer = None;
        r.sans.clear();
        r.error = Some("lookup failed: \"NXDOMAIN\", twice".into());
        let got = text(&[r], Format::Csv);
        let mut lines = got.lines();
        assert_eq!(lines.next(), Some(CSV_HEADER));
        assert_eq!(
            lines.next(),
            Some(
                "x.example,443,dns_error,CRITICAL,,,,,,,,,,,,\"lookup failed: \"\"NXDOMAIN\"\", twice\""
            )
        );
    }

    #[test]
    fn json_has_the_fields_scripts_read() {
        let got = text(&[report("ok.example", Status::Ok, Some(60))], Format::Json);
        let v: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(v[0]["domain"], "ok.example");
        assert_eq!(v[0]["status"], "ok");
        assert_eq!(v[0]["level"], "OK");
        assert_eq!(v[0]["days_left"], 60);
        assert_eq!(v[0]["panel_status"], "Valid");
        let back: Vec<HostReport> = serde_json::from_str(&got).unwrap();
        assert_eq!(back, vec![report("ok.example", Status::Ok, Some(60))]);
    }

    #[test]
    fn short_issuer_names() {
        assert_eq!(short_name("C=US, O=Let's Encrypt, CN=R11"), "R11");
        assert_eq!(short_name("C=US, O=Example Corp"), "Example Corp");
        assert_eq!(short_name("serialNumber=1"), "serialNumber=1");
    }
}
