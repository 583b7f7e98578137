//! Watchlists: which certificates matter to the user, and why.
//!
//! ```text
//! watchlists/*.txt --parse.rs--> items --index.rs--> Index --matcher.rs--> Vec<Match> per certificate
//!                                              \--> lookalike.rs (brands: typosquats, homoglyphs)
//! reload.rs: WatchlistHandle swaps in a new Arc<Watchlist> when the files change or on SIGHUP
//! ```
//! The line language is described in `parse.rs` and, for users, in the README (section Watchlists). Everything here except
//! `reload.rs` is pure: no I/O beyond reading the files in [`Watchlist::load`].
//!
//! Matching cost does not grow with the number of items: see `index.rs`.

mod index;
mod inspect;
mod keyword;
mod lookalike;
mod matcher;
mod multimap;
mod name;
mod parse;
mod reload;
mod typo;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

pub use inspect::{FileView, Inspection, ItemView, inspect};
pub use reload::{WatchlistHandle, fingerprint};

use index::Index;
use parse::{ParsedItem, Pattern, pattern_kind};

/// A loaded, validated, indexed watchlist. `Send + Sync`; share it in an `Arc`.
#[derive(Debug)]
pub struct Watchlist {
    index: Index,
    item_count: usize,
    sources: Vec<PathBuf>,
    warnings: Vec<WatchlistError>,
    summary: Vec<FileSummary>,
}

/// What one certificate is matched with. DNS names are as found in the certificate (ASCII, may be `*.x`, `xn--`,
/// or garbage); the issuer fields come from the issuing CA.
#[derive(Debug, Clone, Copy)]
pub struct MatchInput<'a> {
    pub dns_names: &'a [String],
    /// IP-address SANs (text form), for `ip:` items.
    pub ip_addresses: &'a [String],
    pub issuer_org: Option<&'a str>,
    pub issuer_cn: Option<&'a str>,
    /// SHA-256 of the issuer's SubjectPublicKeyInfo (DER), for `issuers=spki:<hex>`: only of an issuer proven to
    /// have signed the certificate (`ct::chain`), never of a certificate a log merely served next to it.
    pub issuer_spki_sha256: Option<&'a [u8; 32]>,
    /// Whether the issuer was proven (its subject is the certificate's issuer name and its key verifies the
    /// certificate's signature). An `issuers=` policy is never satisfied by an unproven issuer: the match is
    /// reported as `unauthorized_issuer` with the reason [`REASON_ISSUER_NOT_PROVEN`].
    pub issuer_proven: bool,
}

impl<'a> MatchInput<'a> {
    /// What a decoded certificate offers to the matcher: its names, its own issuer name, and the issuer key only
    /// when the chain check proved it.
    pub fn from_cert(info: &'a crate::ct::cert::CertInfo) -> MatchInput<'a> {
        MatchInput {
            dns_names: &info.dns_names,
            ip_addresses: &info.ip_addresses,
            issuer_org: info.issuer_org.as_deref(),
            issuer_cn: info.issuer_cn.as_deref(),
            issuer_spki_sha256: info.issuer_spki_sha256.as_ref(),
            issuer_proven: info.chain.is_proven(),
        }
    }

    /// The names alone, issuer unknown: enough to decide WHETHER a certificate matches (an `issuers=` policy
    /// changes a match's kind, never whether there is one); match again with [`MatchInput::from_cert`] for the
    /// verdict.
    pub fn from_names(names: &'a crate::ct::cert::LeafNames) -> MatchInput<'a> {
        MatchInput {
            dns_names: &names.dns_names,
            ip_addresses: &names.ip_addresses,
            issuer_org: None,
            issuer_cn: None,
            issuer_spki_sha256: None,
            issuer_proven: false,
        }
    }
}

/// The [`Match::reason`] of an `unauthorized_issuer` match whose policy would allow the issuer the certificate
/// names, had the log proven it.
pub const REASON_ISSUER_NOT_PROVEN: &str = "issuer not proven";

/// One item that matched one certificate name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Match {
    /// The item as written in the file (without options).
    pub item: String,
    /// `file:line` of the item.
    pub source: String,
    /// The certificate name, ASCII (`xn--`) form, lower case, without a trailing dot.
    pub name: String,
    /// The same name with `xn--` labels decoded (equal to `name` for plain ASCII names).
    pub name_unicode: String,
    pub kind: MatchKind,
    /// The item's tags, for routing (`@client-acme` -> `client-acme`).
    pub tags: Vec<String>,
    /// For look-alikes: the brand imitated (a keyword, or a registrable domain such as `example.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// Why, when the kind alone does not say it all: [`REASON_ISSUER_NOT_PROVEN`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// Why an item matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// `example.com`: the name is the domain or under it.
    Domain,
    /// `=host.example.com`.
    Exact,
    /// `*.example.com`: the name is one label under it.
    Wildcard,
    /// `/regex/`.
    Regex,
    /// `~keyword`: the keyword occurs in the name (ASCII or Unicode form).
    Keyword,
    /// The name imitates a brand (see `brand`).
    Lookalike,
    /// A covered name issued by a CA that the item's `issuers=` does not allow.
    UnauthorizedIssuer,
    /// `ip:203.0.113.0/24`: an IP-address SAN in the network.
    Ip,
}

impl MatchKind {
    /// The event a match of this kind raises.
    /// The kind as written in reports (`domain`, `exact`, ..., `unauthorized_issuer`).
    pub fn as_str(&self) -> &'static str {
        match self {
            MatchKind::Domain => "domain",
            MatchKind::Exact => "exact",
            MatchKind::Wildcard => "wildcard",
            MatchKind::Regex => "regex",
            MatchKind::Keyword => "keyword",
            MatchKind::Ip => "ip",
            MatchKind::Lookalike => "lookalike",
            MatchKind::UnauthorizedIssuer => "unauthorized_issuer",
        }
    }

    pub fn event_kind(&self) -> &'static str {
        match self {
            MatchKind::Lookalike => "lookalike",
            MatchKind::UnauthorizedIssuer => "unauthorized_issuer",
            _ => "new_certificate",
        }
    }
}

/// One problem in a watchlist file. `line` 0 means the file as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchlistError {
    pub source: String,
    pub line: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for WatchlistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.source, self.message)?,
            line => write!(f, "{}:{}: {}", self.source, line, self.message)?,
        }
        match &self.hint {
            Some(hint) => write!(f, " (hint: {hint})"),
            None => Ok(()),
        }
    }
}

/// Every error found while loading, in file and line order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchlistErrors(pub Vec<WatchlistError>);

impl fmt::Display for WatchlistErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for WatchlistErrors {}

/// Items per kind in one file, for `watchlist check`.
#[derive(Debug, Clone)]
struct FileSummary {
    source: String,
    kinds: BTreeMap<&'static str, usize>,
    policies: usize,
}

impl Watchlist {
    /// A file, or every `*.txt` in a directory (sorted by name, not recursive). All errors are collected.
    pub fn load(path: &Path) -> Result<Watchlist, WatchlistErrors> {
        let files = reload::watchlist_files(path).map_err(|e| WatchlistErrors(vec![e]))?;
        let mut sources = Vec::new();
        let mut errors = Vec::new();
        for file in &files {
            match std::fs::read(file) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => sources.push((file.display().to_string(), text)),
                    Err(e) => {
                        errors.push(not_utf8(file, e.as_bytes(), e.utf8_error().valid_up_to()))
                    }
                },
                Err(e) => errors.push(file_error(file, format!("cannot read: {e}"))),
            }
        }
        let built = Watchlist::from_sources(&sources);
        let mut list = match (built, errors.is_empty()) {
            (Ok(list), true) => list,
            (Ok(_), false) => return Err(WatchlistErrors(errors)),
            (Err(WatchlistErrors(more)), _) => {
                errors.extend(more);
                return Err(WatchlistErrors(errors));
            }
        };
        if files.is_empty() {
            list.warnings.push(file_error(
                path,
                "no *.txt watchlist files here; nothing will match".into(),
            ));
        }
        list.sources = files;
        Ok(list)
    }

    /// One file's text; `source` names it in messages and matches.
    pub fn parse_str(source: &str, text: &str) -> Result<Watchlist, WatchlistErrors> {
        Watchlist::from_sources(&[(source.to_string(), text.to_string())])
    }

    /// Several (name, text) files, as if loaded from one directory in this order.
    pub fn from_sources(sources: &[(String, String)]) -> Result<Watchlist, WatchlistErrors> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut items: Vec<(&str, ParsedItem)> = Vec::new();
        let mut summary = Vec::new();
        for (source, text) in sources {
            let parsed = parse::parse_file(text);
            let at = |line: usize| (source.clone(), line);
            errors.extend(
                parsed
                    .errors
                    .iter()
                    .map(|(line, e)| located(at(*line), e.to_string(), e.hint())),
            );
            warnings.extend(
                parsed
                    .warnings
                    .iter()
                    .map(|(line, w)| located(at(*line), w.to_string(), None)),
            );
            summary.push(summarize(source, &parsed.items));
            items.extend(parsed.items.into_iter().map(|item| (source.as_str(), item)));
        }
        warnings.extend(duplicates(&items));
        if !errors.is_empty() {
            return Err(WatchlistErrors(errors));
        }
        let item_count = items.len();
        let index = Index::build(items).map_err(|e| {
            WatchlistErrors(vec![WatchlistError {
                source: sources
                    .iter()
                    .map(|(s, _)| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                line: 0,
                message: e.to_string(),
                hint: Some(
                    "use fewer or simpler regexes; keywords (~) and domains are much cheaper"
                        .into(),
                ),
            }])
        })?;
        Ok(Watchlist {
            index,
            item_count,
            sources: Vec::new(),
            warnings,
            summary,
        })
    }

    /// Number of items, exclusions included.
    pub fn len(&self) -> usize {
        self.item_count
    }

    pub fn is_empty(&self) -> bool {
        self.item_count == 0
    }

    /// All matches for one certificate; empty means not interesting. Names are deduplicated; matches come in name
    /// order, then item order.
    pub fn match_cert(&self, cert: &MatchInput<'_>) -> Vec<Match> {
        matcher::match_cert(&self.index, cert)
    }

    /// Files it was loaded from (empty for [`Watchlist::parse_str`] / [`Watchlist::from_sources`]).
    pub fn sources(&self) -> &[PathBuf] {
        &self.sources
    }

    /// Valid but suspicious lines (a regex matching everything, a duplicate item, ...).
    pub fn warnings(&self) -> &[WatchlistError] {
        &self.warnings
    }

    /// Human summary: items per kind per file, then the warnings.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for file in &self.summary {
            let kinds: Vec<String> = file.kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
            let kinds = if kinds.is_empty() {
                "no items".to_string()
            } else {
                kinds.join(", ")
            };
            out.push_str(&format!("{}: {kinds}", file.source));
            if file.policies > 0 {
                out.push_str(&format!(" ({} with issuers=)", file.policies));
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "{} items in {} file(s)\n",
            self.item_count,
            self.summary.len()
        ));
        for warning in &self.warnings {
            out.push_str(&format!("warning: {warning}\n"));
        }
        out
    }
}

/// For `ctwatch watchlist check`: the summary, or every error.
pub fn check(path: &Path) -> Result<String, WatchlistErrors> {
    Watchlist::load(path).map(|list| list.summary())
}

fn located(
    (source, line): (String, usize),
    message: String,
    hint: Option<String>,
) -> WatchlistError {
    WatchlistError {
        source,
        line,
        message,
        hint,
    }
}

fn file_error(path: &Path, message: String) -> WatchlistError {
    WatchlistError {
        source: path.display().to_string(),
        line: 0,
        message,
        hint: None,
    }
}

fn not_utf8(path: &Path, bytes: &[u8], valid_up_to: usize) -> WatchlistError {
    let line = bytes[..valid_up_to].iter().filter(|&&b| b == b'\n').count() + 1;
    WatchlistError {
        source: path.display().to_string(),
        line,
        message: "not valid UTF-8".into(),
        hint: Some("save the file as UTF-8".into()),
    }
}

fn summarize(source: &str, items: &[ParsedItem]) -> FileSummary {
    let mut kinds = BTreeMap::new();
    for item in items {
        *kinds.entry(pattern_kind(&item.pattern)).or_insert(0) += 1;
    }
    let policies = items.iter().filter(|i| !i.issuers.is_empty()).count();
    FileSummary {
        source: source.to_string(),
        kinds,
        policies,
    }
}

/// The same pattern with the same tags twice reports every match twice: warn, pointing at the first one.
fn duplicates(items: &[(&str, ParsedItem)]) -> Vec<WatchlistError> {
    let mut first: HashMap<(&Pattern, &[String]), (&str, usize)> = HashMap::new();
    let mut warnings = Vec::new();
    for (source, item) in items {
        let key = (&item.pattern, item.tags.as_slice());
        if let Some((file, line)) = first.get(&key) {
            let message = format!("'{}' repeats {file}:{line}", item.text);
            warnings.push(located((source.to_string(), item.line), message, None));
        } else {
            first.insert(key, (source, item.line));
        }
    }
    warnings
}

#[cfg(test)]
mod load_tests;
#[cfg(test)]
mod tests;
