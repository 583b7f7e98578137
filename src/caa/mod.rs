//! CAA checks (RFC 8659): is the CA that issued a certificate for a watched name allowed by the name's CAA
//! records? A certificate from a CA the domain's own DNS forbids is either a CA error or a mis-issuance — worth an
//! alert (`caa_mismatch`) even when the watchlist has no `issuers=` policy.
//!
//! ```text
//!  matched certificate ──names──> relevant CAA RRset (climb the tree: name, parent, ... ; CNAMEs followed by
//!                                  the resolver) ──issue / issuewild──> allowed issuer domains
//!  issuer DN ──table (assets/caa_identifiers.csv)──> the CA's CAA identifiers ──> Allowed | Mismatch | Unknown
//! ```
//!
//! Pure rules here; the DNS lookup is behind [`CaaLookup`] ([`dns`] implements it with hickory-resolver), and
//! [`checker`] is the daemon task that checks newly stored certificates. A DNS failure is `Unknown`, never a
//! violation; so is a CA missing from the table.
//!
//! CAA is checked by the CA at issuance; ctwatch checks when it first sees the certificate (minutes to hours
//! later), so a record changed in between can cause a false alarm; certificates older than the checker's
//! `max_age` are not checked at all.

pub mod checker;
pub mod dns;
pub mod table;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// One CAA resource record (RFC 8659 §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaaRecord {
    /// The issuer-critical flag (bit 0 of the flags octet, value 128).
    pub critical: bool,
    /// Property tag, lower-case (`issue`, `issuewild`, `iodef`, ...).
    pub tag: String,
    /// Property value as text (`letsencrypt.org; accounturi=...`, `;`).
    pub value: String,
}

/// Why a lookup gave no answer (SERVFAIL, timeout, refused, ...): the verdict is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CAA lookup of {name} failed: {reason}")]
pub struct LookupError {
    pub name: String,
    pub reason: String,
}

pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<CaaRecord>, LookupError>> + Send + 'a>>;

/// Looks up the CAA RRset of one name.
///
/// Contract: `Ok(vec![])` when the name has no CAA records (NODATA or NXDOMAIN); CNAMEs are followed (the
/// RRset at the end of the chain is the name's, RFC 8659 §3); `Err` for anything that is not an answer
/// (SERVFAIL, timeout, refused). Safe to call concurrently; caching (with the records' TTL) is the
/// implementation's business.
pub trait CaaLookup: Send + Sync {
    fn caa<'a>(&'a self, name: &'a str) -> LookupFuture<'a>;
}

/// The relevant RRset of a name (RFC 8659 §3): the CAA RRset of the name itself, else of its parent, and so on
/// up to the top-level domain. `None`: no CAA anywhere above the name (any CA may issue).
pub async fn relevant_rrset(
    lookup: &dyn CaaLookup,
    name: &str,
) -> Result<Option<(String, Vec<CaaRecord>)>, LookupError> {
    let mut domain = name
        .trim_start_matches("*.")
        .trim_end_matches('.')
        .to_ascii_lowercase();
    loop {
        let records = lookup.caa(&domain).await?;
        if !records.is_empty() {
            return Ok(Some((domain, records)));
        }
        match domain.split_once('.') {
            Some((_, parent)) if !parent.is_empty() => domain = parent.to_string(),
            _ => return Ok(None),
        }
    }
}

/// Property tags this implementation understands (RFC 8659 §4.2-4.4, RFC 8657 parameters ride on `issue`).
const KNOWN_TAGS: [&str; 5] = [
    "issue",
    "issuewild",
    "iodef",
    "contactemail",
    "contactphone",
];

/// What the relevant RRset says about a CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Decision {
    Allowed,
    /// Not allowed; `allowed` lists the issuer domains the records allow (empty: no CA at all).
    Forbidden {
        allowed: Vec<String>,
        reason: String,
    },
}

/// The issuer domain of an `issue` / `issuewild` value: the part before `;`, trimmed, lower-case; empty for
/// `;` (no CA may issue).
fn issuer_domain(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Whether a CA whose CAA identifiers are `ca_domains` may issue for a name (a wildcard name when
/// `wildcard`) under `records`, the name's relevant RRset (RFC 8659 §4).
pub fn decide(records: &[CaaRecord], wildcard: bool, ca_domains: &[String]) -> Decision {
    if let Some(r) = records
        .iter()
        .find(|r| r.critical && !KNOWN_TAGS.contains(&r.tag.as_str()))
    {
        return Decision::Forbidden {
            allowed: Vec::new(),
            reason: format!("unknown critical property {:?}", r.tag),
        };
    }
    let wild: Vec<&CaaRecord> = records.iter().filter(|r| r.tag == "issuewild").collect();
    let props: Vec<&CaaRecord> = if wildcard && !wild.is_empty() {
        wild
    } else {
        records.iter().filter(|r| r.tag == "issue").collect()
    };
    if props.is_empty() {
        return Decision::Allowed;
    }
    let allowed: Vec<String> = props
        .iter()
        .map(|r| issuer_domain(&r.value))
        .filter(|d| !d.is_empty())
        .collect();
    if allowed
        .iter()
        .any(|d| ca_domains.iter().any(|c| c.eq_ignore_ascii_case(d)))
    {
        return Decision::Allowed;
    }
    let reason = if allowed.is_empty() {
        "the records allow no CA at all".to_string()
    } else {
        format!("the records allow only {}", allowed.join(", "))
    };
    Decision::Forbidden { allowed, reason }
}

/// The CAA verdict for one name of a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameVerdict {
    pub name: String,
    /// Where the relevant RRset was found (`None`: no CAA records above the name).
    pub relevant_domain: Option<String>,
    pub records: Vec<CaaRecord>,
    pub decision: Option<Decision>,
    /// Set when the lookup failed: the decision is unknown.
    pub error: Option<String>,
}

/// The verdict for a whole certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every checked name allows the CA.
    Allowed,
    /// At least one name's CAA records forbid the CA.
    Mismatch,
    /// No name forbids it, but a lookup failed or the CA is not in the table.
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Mismatch => "mismatch",
            Verdict::Unknown => "unknown",
        }
    }
}

/// Checks every name of a certificate issued by a CA with CAA identifiers `ca_domains`.
pub async fn check_names(
    lookup: &dyn CaaLookup,
    names: &[String],
    ca_domains: &[String],
) -> (Verdict, Vec<NameVerdict>) {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let wildcard = name.starts_with("*.");
        let v = match relevant_rrset(lookup, name).await {
            Ok(None) => NameVerdict {
                name: name.clone(),
                relevant_domain: None,
                records: Vec::new(),
                decision: Some(Decision::Allowed),
                error: None,
            },
            Ok(Some((domain, records))) => NameVerdict {
                name: name.clone(),
                decision: Some(decide(&records, wildcard, ca_domains)),
                relevant_domain: Some(domain),
                records,
                error: None,
            },
            Err(e) => NameVerdict {
                name: name.clone(),
                relevant_domain: None,
                records: Vec::new(),
                decision: None,
                error: Some(e.to_string()),
            },
        };
        out.push(v);
    }
    let forbidden = out
        .iter()
        .any(|v| matches!(v.decision, Some(Decision::Forbidden { .. })));
    let failed = out.iter().any(|v| v.decision.is_none());
    let verdict = match (forbidden, failed) {
        (true, _) => Verdict::Mismatch,
        (false, true) => Verdict::Unknown,
        (false, false) => Verdict::Allowed,
    };
    (verdict, out)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
