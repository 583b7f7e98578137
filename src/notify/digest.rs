//! What a chat message says, before any target formatting.
//!
//! Every chat sink (Discord, Telegram, Slack) renders the same [`Digest`]: one event in detail, or a group of
//! events as a summary (count, the first few certificates, "N more"). Building it is pure — payloads in, plain
//! unescaped text out — so the wording is tested once here and each sink only has to escape and fit its limits.

use serde_json::Value;

/// The event kinds that describe a certificate (their payload is built by `event::certificate_events`).
pub const CERT_KINDS: [&str; 3] = ["new_certificate", "unauthorized_issuer", "lookalike"];

/// One message worth of events, in plain text.
#[derive(Clone, Debug, PartialEq)]
pub struct Digest {
    /// Event kind shared by the group (`new_certificate`, ...); a group mixes kinds only if its key does.
    pub kind: String,
    /// One line, no markup: `New certificate: *.example.com` or `200 new certificates: example.com`.
    pub title: String,
    /// How many events the message stands for.
    pub count: usize,
    /// The events shown, at most the sink's `max_events_per_message`.
    pub entries: Vec<Entry>,
    /// Events not shown (`count - entries.len()`): "... and N more".
    pub more: usize,
    /// RFC 3339 time of the first event shown, when its payload has one.
    pub timestamp: Option<String>,
}

/// One event of a digest.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    Cert(Box<CertEntry>),
    /// Anything that is not a certificate (health, probe, test): its message text.
    Message {
        title: String,
        text: String,
    },
}

/// The parts of a certificate event a person reads.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct CertEntry {
    /// The name that triggered the event (first match, in Unicode when it is an IDN), else the first name.
    pub primary: String,
    /// Every DNS name and IP address of the certificate.
    pub names: Vec<String>,
    /// `(name, watch item, match kind)` per match.
    pub matched: Vec<(String, String, String)>,
    /// Brands a look-alike imitates.
    pub brands: Vec<String>,
    pub issuer: String,
    /// The issuer's CN (or the whole DN when it has none): short enough for a summary line.
    pub issuer_short: String,
    pub not_before: String,
    pub not_after: String,
    pub log: String,
    pub index: u64,
    pub entry_type: String,
    pub tbs_sha256: String,
    pub cert_sha256: String,
}

/// Build the digest of `payloads` (one group, oldest first), detailing at most `max_entries` of them.
/// The digest of one outbox batch: its events' payloads under the batch's group key.
pub fn digest_deliveries(events: &[crate::store::Delivery], max_entries: usize) -> Digest {
    let payloads: Vec<&Value> = events.iter().map(|d| &d.payload).collect();
    let key = events.first().map(|d| d.group_key.as_str()).unwrap_or("");
    digest(&payloads, key, max_entries)
}

pub fn digest(payloads: &[&Value], group_key: &str, max_entries: usize) -> Digest {
    let count = payloads.len();
    let kind = payloads
        .first()
        .map(|p| str_of(p, "kind").to_string())
        .unwrap_or_default();
    let entries: Vec<Entry> = payloads
        .iter()
        .take(max_entries.max(1))
        .map(|p| entry(p))
        .collect();
    let title = if count == 1 {
        match &entries[0] {
            Entry::Cert(c) => format!("{}: {}", kind_title(&kind, 1), c.primary),
            Entry::Message { title, .. } => title.clone(),
        }
    } else {
        let label = group_label(group_key);
        if label.is_empty() {
            kind_title(&kind, count)
        } else {
            format!("{}: {label}", kind_title(&kind, count))
        }
    };
    let timestamp = payloads
        .first()
        .and_then(|p| p.get("timestamp"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Digest {
        kind,
        title,
        count,
        more: count - entries.len(),
        entries,
        timestamp,
    }
}

/// The readable part of a group key (`new_certificate|example.com` -> `example.com`).
pub fn group_label(group_key: &str) -> &str {
    group_key
        .split_once('|')
        .map(|(_, rest)| rest)
        .unwrap_or("")
}

/// A title for `count` events of `kind`.
pub fn kind_title(kind: &str, count: usize) -> String {
    let (one, many) = match kind {
        "new_certificate" => ("New certificate", "new certificates"),
        "unauthorized_issuer" => (
            "Certificate from an unauthorized issuer",
            "certificates from unauthorized issuers",
        ),
        "lookalike" => ("Look-alike certificate", "look-alike certificates"),
        "probe" => (
            "Served certificate status change",
            "served certificate status changes",
        ),
        "stale_deployment" => (
            "Renewed certificate not deployed",
            "renewed certificates not deployed",
        ),
        "renewal_missing" => (
            "Certificate renewal missing",
            "certificate renewals missing",
        ),
        "health" => ("ctwatch health alert", "ctwatch health alerts"),
        "test" => ("ctwatch test notification", "ctwatch test notifications"),
        other => {
            return if count == 1 {
                format!("ctwatch {other} event")
            } else {
                format!("{count} {other} events")
            };
        }
    };
    if count == 1 {
        one.to_string()
    } else {
        format!("{count} {many}")
    }
}

fn entry(p: &Value) -> Entry {
    let kind = str_of(p, "kind");
    if !CERT_KINDS.contains(&kind) {
        let title = p
            .get("title")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| kind_title(kind, 1));
        let text = match p.get("message").and_then(Value::as_str) {
            Some(m) => m.to_string(),
            None => p.to_string(),
        };
        return Entry::Message { title, text };
    }
    let mut names: Vec<String> = strings(p, "dns_names");
    names.extend(strings(p, "ip_addresses"));
    let mut matched = Vec::new();
    let mut brands = Vec::new();
    for m in p
        .get("matched")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = match str_of(m, "name_unicode") {
            "" => str_of(m, "name"),
            unicode => unicode,
        };
        matched.push((
            name.to_string(),
            str_of(m, "item").to_string(),
            str_of(m, "kind").to_string(),
        ));
        if let Some(b) = m.get("brand").and_then(Value::as_str)
            && !brands.iter().any(|x| x == b)
        {
            brands.push(b.to_string());
        }
    }
    let primary = matched
        .first()
        .map(|m| m.0.clone())
        .or_else(|| names.first().cloned())
        .unwrap_or_else(|| str_of(p, "subject").to_string());
    let issuer = str_of(p, "issuer").to_string();
    Entry::Cert(Box::new(CertEntry {
        primary,
        names,
        matched,
        brands,
        issuer_short: dn_common_name(&issuer).unwrap_or(&issuer).to_string(),
        issuer,
        not_before: str_of(p, "not_before").to_string(),
        not_after: str_of(p, "not_after").to_string(),
        log: match str_of(p, "log_description") {
            "" => str_of(p, "log").to_string(),
            d => d.to_string(),
        },
        index: p.get("index").and_then(Value::as_u64).unwrap_or(0),
        entry_type: str_of(p, "entry_type").to_string(),
        tbs_sha256: str_of(p, "tbs_sha256").to_string(),
        cert_sha256: str_of(p, "cert_sha256").to_string(),
    }))
}

impl CertEntry {
    /// The fingerprint to show: the certificate's, or the issuance identity when the log did not prove the
    /// served pre_certificate (`cert_sha256` is then null).
    pub fn fingerprint(&self) -> (&'static str, &str) {
        if self.cert_sha256.is_empty() {
            ("tbs SHA-256", &self.tbs_sha256)
        } else {
            ("cert SHA-256", &self.cert_sha256)
        }
    }

    /// `*.example.com via example.com` per match, joined.
    pub fn matched_text(&self) -> String {
        let parts: Vec<String> = self
            .matched
            .iter()
            .map(|(name, item, _)| {
                if name == item {
                    name.clone()
                } else {
                    format!("{name} via {item}")
                }
            })
            .collect();
        parts.join("; ")
    }

    /// `2025-05-03T16:14:48Z .. 2025-08-01T16:14:47Z`
    pub fn validity(&self) -> String {
        format!("{} .. {}", self.not_before, self.not_after)
    }

    /// `Log name #1234 (precert)`
    pub fn sighting(&self) -> String {
        format!("{} #{} ({})", self.log, self.index, self.entry_type)
    }

    /// How many names the certificate has besides the primary one.
    pub fn other_names(&self) -> usize {
        self.names.iter().filter(|n| **n != self.primary).count()
    }
}

/// The CN value of an RFC 4514 DN string (`CN=R10, O=Let's Encrypt, C=US` -> `R10`).
pub fn dn_common_name(dn: &str) -> Option<&str> {
    let mut rdn_start = 0;
    let mut escaped = false;
    for (i, c) in dn.char_indices().chain(std::iter::once((dn.len(), ','))) {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            ',' => {
                if let Some(v) = dn[rdn_start..i].trim_start().strip_prefix("CN=") {
                    return Some(v);
                }
                rdn_start = i + 1;
            }
            _ => {}
        }
    }
    None
}

/// Cut `s` to at most `max` characters, marking a cut with `…`.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Join as many of `lines` as fit in `budget` characters (`measure` decides what a character is), followed by
/// the line `more(n)` when `n` events or lines (`hidden` plus those cut here) are not shown.
pub fn fit_lines(
    lines: &[String],
    budget: usize,
    hidden: usize,
    measure: fn(&str) -> usize,
    more: &dyn Fn(usize) -> String,
) -> String {
    let total = lines.len();
    let mut used = 0;
    let mut best = None;
    // Largest k such that lines[..k] plus the "more" line fits.
    let mut prefix = Vec::with_capacity(total + 1);
    prefix.push(0usize);
    for l in lines {
        used += measure(l) + 1;
        prefix.push(used);
    }
    for k in (0..=total).rev() {
        let rest = hidden + total - k;
        let tail = if rest > 0 {
            measure(&more(rest)) + 1
        } else {
            0
        };
        if prefix[k] + tail <= budget.saturating_add(1) {
            best = Some(k);
            break;
        }
    }
    let k = best.unwrap_or(0);
    let mut out: Vec<String> = lines[..k].to_vec();
    let rest = hidden + total - k;
    if rest > 0 {
        out.push(more(rest));
    }
    out.join("\n")
}

/// Length in characters (Unicode scalar values).
pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Length in UTF-16 code units (how Telegram counts).
pub fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::sample::fixtures;

    #[test]
    fn one_certificate_is_detailed() {
        let p = fixtures::cloudflare();
        let d = digest(&[&p], "new_certificate|cloudflare-dns.com", 10);
        assert_eq!(d.title, "New certificate: cloudflare-dns.com");
        assert_eq!((d.count, d.more), (1, 0));
        assert_eq!(d.timestamp.as_deref(), Some("2021-09-13T01:38:37.000Z"));
        let Entry::Cert(c) = &d.entries[0] else {
            panic!("{d:?}")
        };
        assert_eq!(c.names.len(), 11);
        assert_eq!(c.other_names(), 10);
        assert_eq!(c.issuer_short, "DigiCert TLS Hybrid ECC SHA384 2020 CA1");
        assert_eq!(
            c.matched,
            [
                (
                    "cloudflare-dns.com".into(),
                    "cloudflare-dns.com".into(),
                    "domain".into()
                ),
                (
                    "*.cloudflare-dns.com".into(),
                    "cloudflare-dns.com".into(),
                    "domain".into()
                ),
            ]
        );
        assert_eq!(
            c.matched_text(),
            "cloudflare-dns.com; *.cloudflare-dns.com via cloudflare-dns.com"
        );
        assert_eq!(c.validity(), "2021-10-25T00:00:00Z .. 2022-10-25T23:59:59Z");
        assert_eq!(c.sighting(), "Sample log #1234 (x509)");
    }

    #[test]
    fn a_group_counts_what_it_does_not_show() {
        let p = fixtures::google();
        let many: Vec<&Value> = (0..25).map(|_| &p).collect();
        let d = digest(&many, "new_certificate|client-acme", 10);
        assert_eq!(d.title, "25 new certificates: client-acme");
        assert_eq!((d.count, d.entries.len(), d.more), (25, 10, 15));
        assert_eq!(
            digest(&many, "new_certificate|", 3).title,
            "25 new certificates"
        );
    }

    #[test]
    fn other_events_show_their_message() {
        let p = serde_json::json!({"kind": "health", "message": "log X is 3 days behind"});
        let d = digest(&[&p], "health|x", 10);
        assert_eq!(d.title, "ctwatch health alert");
        assert_eq!(
            d.entries,
            [Entry::Message {
                title: "ctwatch health alert".into(),
                text: "log X is 3 days behind".into()
            }]
        );
    }

    #[test]
    fn common_names_are_found_in_rfc4514_strings() {
        assert_eq!(dn_common_name("CN=R10, O=Let's Encrypt, C=US"), Some("R10"));
        assert_eq!(
            dn_common_name("C=US, O=Google Trust Services LLC, CN=GTS CA 1C3"),
            Some("GTS CA 1C3")
        );
        assert_eq!(dn_common_name(r"O=A\, CN=fake, CN=real"), Some("real"));
        assert_eq!(dn_common_name("O=No CN"), None);
        assert_eq!(dn_common_name(""), None);
    }

    #[test]
    fn lines_are_fitted_exactly() {
        let lines: Vec<String> = ["aaaa", "bbbb", "cccc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let more = |n: usize| format!("+{n}");
        // Everything: 14 characters.
        assert_eq!(
            fit_lines(&lines, 14, 0, char_len, &more),
            "aaaa\nbbbb\ncccc"
        );
        // 13: drop one line, say so: "aaaa\nbbbb\n+1" is 12.
        assert_eq!(fit_lines(&lines, 13, 0, char_len, &more), "aaaa\nbbbb\n+1");
        assert_eq!(fit_lines(&lines, 11, 0, char_len, &more), "aaaa\n+2");
        assert_eq!(fit_lines(&lines, 14, 5, char_len, &more), "aaaa\nbbbb\n+6");
        assert_eq!(fit_lines(&lines, 2, 0, char_len, &more), "+3");
        assert_eq!(truncate_chars("ééééé", 3), "éé…");
        assert_eq!(truncate_chars("abc", 3), "abc");
    }
}
