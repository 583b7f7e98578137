//! The watchlist line language (pure: text in, items and per-line diagnostics out).
//!
//! ```text
//! line    = item *(WS option) [WS comment] | 1*(WS tag) [WS comment] | [comment]
//! item    = domain | "=" name | "*." domain | "/" regex "/" | "~" keyword | "!" domain | "!=" name
//! option  = "@" tag | "issuers=" issuer *("," issuer) | "lookalike=" ("on" | "off")
//! issuer  = "spki:" 64HEXDIG | organization-or-CN-substring
//! comment = "#" *CHAR          ; at line start, or after white space
//! ```
//! A line holding only tags sets the default tags of every later line of the same file (each such line replaces the
//! previous default). The file may start with a UTF-8 BOM and use CRLF line ends.

use super::name::{NameError, item_to_ascii, label_to_unicode};

/// The part of an item that decides which names it covers. Names are ASCII (punycode), lower case, no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// `example.com`: the domain and every name under it.
    Domain(String),
    /// `=host.example.com`: exactly this name (`=*.example.com` is exactly that wildcard name).
    Exact(String),
    /// `*.example.com`: names exactly one label under the stored parent (`example.com`).
    Wildcard(String),
    /// `/regex/`: the pattern between the slashes.
    Regex(String),
    /// `~paypal`: the keyword in its Unicode form (IDNA-mapped, lower case).
    Keyword(String),
    /// `!example.com` (name and subdomains) or `!=host.example.com` (`exact`).
    Exclude { name: String, exact: bool },
    /// `ip:203.0.113.0/24`, `ip:2001:db8::1`: IP-address SANs in this network (a single address is a /32 or
    /// /128).
    Ip(ipnet::IpNet),
}

/// One `issuers=` entry: a CA is authorized if its organization or CN contains `Name` (compared on lower-case
/// letters and digits only, so `letsencrypt` matches "Let's Encrypt"), or if its key hashes to `Spki`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerRule {
    Name(String),
    Spki([u8; 32]),
}

/// One valid watchlist line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedItem {
    /// The item as written (without options), for reports.
    pub text: String,
    pub line: usize,
    pub pattern: Pattern,
    /// Default tags of the file, then the line's own, without duplicates, without the `@`.
    pub tags: Vec<String>,
    /// Empty: no issuance policy.
    pub issuers: Vec<IssuerRule>,
    /// `lookalike=off` turns look-alike detection off for a domain or keyword item.
    pub lookalike: bool,
}

/// Why a line was rejected. Each variant carries the offending text; [`LineError::hint`] says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("'{prefix}' is not followed by anything")]
    EmptyItem { prefix: String },
    #[error("invalid domain in '{item}': {source}")]
    BadName { item: String, source: NameError },
    #[error("'{item}': '*' is only allowed as the whole first label")]
    BadWildcard { item: String },
    #[error("regex '{item}' has no closing '/'")]
    UnterminatedRegex { item: String },
    #[error("empty regex '//'")]
    EmptyRegex,
    #[error("unexpected '{text}' right after the regex's closing '/'")]
    TextAfterRegex { text: String },
    #[error("invalid regex /{pattern}/: {message}")]
    BadRegex { pattern: String, message: String },
    #[error("keyword '{keyword}' contains {ch:?}")]
    BadKeyword { keyword: String, ch: char },
    #[error("keyword '{keyword}' is not valid IDNA text")]
    KeywordIdna { keyword: String },
    #[error("unknown option '{option}'")]
    UnknownOption { option: String },
    #[error("option '{option}' does not apply to {kind} items")]
    OptionNotAllowed { option: String, kind: &'static str },
    #[error("invalid tag '{tag}'")]
    BadTag { tag: String },
    #[error("empty issuer in '{option}'")]
    EmptyIssuer { option: String },
    #[error("invalid issuer key hash '{value}'")]
    BadSpki { value: String },
    #[error("invalid value '{value}' for lookalike=")]
    BadLookalike { value: String },
    #[error("unexpected '{text}' after the item")]
    UnexpectedText { text: String },
    #[error("invalid IP address or network in '{item}'")]
    BadIp { item: String },
}

impl LineError {
    /// A short suggestion shown after the message.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            Self::EmptyItem { .. } => {
                "write a domain or keyword right after the prefix, e.g. '=www.example.com'"
            }
            Self::BadName {
                source: NameError::BadChar { ch: '#', .. },
                ..
            } => "a comment needs white space before the '#'",
            Self::BadName { .. } => {
                "labels are letters, digits, '-' or '_', 1-63 characters, separated by single dots"
            }
            Self::BadWildcard { .. } => {
                "write '*.example.com' for one label deep, or use /regex/ for other patterns"
            }
            Self::UnterminatedRegex { .. } => {
                "end the regex with '/', e.g. /^mail[0-9]+\\.example\\.com$/"
            }
            Self::EmptyRegex => "'//' would match every name; write a pattern between the slashes",
            Self::TextAfterRegex { .. } => {
                "regexes are already case-insensitive; put options after white space, escape '/' as '\\/'"
            }
            Self::BadRegex { .. } => {
                "the syntax is that of the Rust regex crate: https://docs.rs/regex/#syntax"
            }
            Self::BadKeyword { .. } | Self::KeywordIdna { .. } => {
                "a keyword is text found inside one label: no dots, spaces or '*', e.g. ~paypal"
            }
            Self::UnknownOption { .. } | Self::UnexpectedText { .. } => {
                "one item per line; options are @tag, issuers=a,b and lookalike=off; comments start with ' #'"
            }
            Self::OptionNotAllowed { .. } => {
                "issuers= needs a domain, =exact or *.wildcard item; lookalike= a domain or ~keyword item; \
                 exclusions only take @tags"
            }
            Self::BadTag { .. } => {
                "tags are '@' followed by letters, digits, '_', '-', '.', ':' or '/'"
            }
            Self::EmptyIssuer { .. } => {
                "list CA names or keys separated by commas, e.g. issuers=letsencrypt,digicert"
            }
            Self::BadSpki { .. } => {
                "write spki:<64 hex digits>, the SHA-256 of the issuer's SubjectPublicKeyInfo"
            }
            Self::BadIp { .. } => {
                "write ip: and an address or a network in CIDR form: ip:203.0.113.7, ip:203.0.113.0/24, \
                 ip:2001:db8::/32"
            }
            Self::BadLookalike { .. } => {
                "use lookalike=off (look-alike detection is on by default)"
            }
        };
        Some(hint.to_string())
    }
}

/// Something valid but probably not what the author meant; reported by `watchlist check`, never fatal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineWarning {
    #[error("regex /{pattern}/ matches every name")]
    RegexMatchesEverything { pattern: String },
    #[error("keyword '{keyword}' is shorter than 3 characters and will match a great many names")]
    ShortKeyword { keyword: String },
    #[error("'{item}' is a public suffix: it covers every name registered under it")]
    PublicSuffix { item: String },
}

/// Everything found in one file; line numbers are 1-based.
#[derive(Debug, Default)]
pub struct ParsedFile {
    pub items: Vec<ParsedItem>,
    pub errors: Vec<(usize, LineError)>,
    pub warnings: Vec<(usize, LineWarning)>,
}

/// Parses one file. Never stops at the first error: every line is looked at.
pub fn parse_file(text: &str) -> ParsedFile {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = ParsedFile::default();
    let mut default_tags: Vec<String> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if content.starts_with('@') {
            match parse_tag_line(content) {
                Ok(tags) => default_tags = tags,
                Err(e) => out.errors.push((line, e)),
            }
            continue;
        }
        match parse_item_line(content, &default_tags) {
            Ok((mut item, warnings)) => {
                item.line = line;
                out.warnings.extend(warnings.into_iter().map(|w| (line, w)));
                out.items.push(item);
            }
            Err(e) => out.errors.push((line, e)),
        }
    }
    out
}

/// A line of only `@tags` (and maybe a comment).
fn parse_tag_line(content: &str) -> Result<Vec<String>, LineError> {
    let mut tags = Vec::new();
    for token in option_tokens(content) {
        let tag = token
            .strip_prefix('@')
            .ok_or_else(|| LineError::UnexpectedText {
                text: token.to_string(),
            })?;
        push_tag(&mut tags, tag)?;
    }
    Ok(tags)
}

fn parse_item_line(
    content: &str,
    default_tags: &[String],
) -> Result<(ParsedItem, Vec<LineWarning>), LineError> {
    let (item_text, rest) = split_item(content)?;
    let (pattern, warnings) = parse_pattern(item_text)?;
    let mut item = ParsedItem {
        text: item_text.to_string(),
        line: 0,
        pattern,
        tags: default_tags.to_vec(),
        issuers: Vec::new(),
        lookalike: true,
    };
    for token in option_tokens(rest) {
        apply_option(&mut item, token)?;
    }
    Ok((item, warnings))
}

/// Splits a trimmed line into the item text and the rest (options, comment). A regex runs to its first unescaped
/// closing slash, so it may contain white space and '#'.
fn split_item(content: &str) -> Result<(&str, &str), LineError> {
    if let Some(body) = content.strip_prefix('/') {
        let close = closing_slash(body).ok_or_else(|| LineError::UnterminatedRegex {
            item: content.to_string(),
        })?;
        let (item, rest) = content.split_at(close + 2);
        if rest.starts_with(|c: char| !c.is_whitespace()) {
            let text = rest.split_whitespace().next().unwrap_or(rest);
            return Err(LineError::TextAfterRegex {
                text: text.to_string(),
            });
        }
        return Ok((item, rest));
    }
    Ok(content
        .split_once(char::is_whitespace)
        .unwrap_or((content, "")))
}

/// Byte offset (within `body`) of the first '/' not escaped by a backslash.
fn closing_slash(body: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '/' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

/// White-space separated tokens up to a token starting with '#'.
fn option_tokens(rest: &str) -> impl Iterator<Item = &str> {
    rest.split_whitespace().take_while(|t| !t.starts_with('#'))
}

fn parse_pattern(text: &str) -> Result<(Pattern, Vec<LineWarning>), LineError> {
    let mut warnings = Vec::new();
    let pattern = if let Some(net) = text.strip_prefix("ip:") {
        Pattern::Ip(parse_ip_net(text, net)?)
    } else if let Some(body) = text.strip_prefix('/') {
        let pattern = body.strip_suffix('/').unwrap_or(body);
        if pattern.is_empty() {
            return Err(LineError::EmptyRegex);
        }
        let regex = compile_regex(pattern)?;
        if matches_everything(&regex) {
            warnings.push(LineWarning::RegexMatchesEverything {
                pattern: pattern.to_string(),
            });
        }
        Pattern::Regex(pattern.to_string())
    } else if let Some(keyword) = text.strip_prefix('~') {
        let keyword = parse_keyword(keyword)?;
        if keyword.chars().count() < 3 {
            warnings.push(LineWarning::ShortKeyword {
                keyword: keyword.clone(),
            });
        }
        Pattern::Keyword(keyword)
    } else if let Some(name) = text.strip_prefix("!=") {
        Pattern::Exclude {
            name: exact_name(text, name)?,
            exact: true,
        }
    } else if let Some(name) = text.strip_prefix('!') {
        Pattern::Exclude {
            name: plain_name(text, name)?,
            exact: false,
        }
    } else if let Some(name) = text.strip_prefix('=') {
        Pattern::Exact(exact_name(text, name)?)
    } else if let Some(parent) = text.strip_prefix("*.") {
        Pattern::Wildcard(plain_name(text, parent)?)
    } else {
        let domain = plain_name(text, text)?;
        if super::name::registrable(&domain).is_none() {
            warnings.push(LineWarning::PublicSuffix {
                item: text.to_string(),
            });
        }
        Pattern::Domain(domain)
    };
    Ok((pattern, warnings))
}

/// Regexes are compiled case-insensitively: certificate names are lower case, so `/PayPal/` should still find them.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, LineError> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .build()
        .map_err(|e| LineError::BadRegex {
            pattern: pattern.to_string(),
            message: one_line(&e.to_string()),
        })
}

/// The regex crate's messages draw a caret under the pattern over several lines; keep the last, meaningful one.
fn one_line(message: &str) -> String {
    message
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(message)
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

/// A heuristic for `/.*/`, `/^/`, `/./` and friends: it matches a handful of unrelated names, including the empty one
/// or a one-letter one.
fn matches_everything(regex: &regex::Regex) -> bool {
    const PROBES: [&str; 5] = ["a", "example.com", "*.xn--p1ai", "0.0", "zz-9_q.test"];
    PROBES.iter().all(|p| regex.is_match(p))
}

fn parse_keyword(keyword: &str) -> Result<String, LineError> {
    if keyword.is_empty() {
        return Err(LineError::EmptyItem { prefix: "~".into() });
    }
    if let Some(ch) = keyword
        .chars()
        .find(|&c| c == '.' || c == '*' || c.is_whitespace())
    {
        return Err(LineError::BadKeyword {
            keyword: keyword.to_string(),
            ch,
        });
    }
    // IDNA maps case and compatibility forms, so the keyword compares equal to decoded punycode labels.
    let ascii = item_to_ascii(keyword).map_err(|_| LineError::KeywordIdna {
        keyword: keyword.to_string(),
    })?;
    Ok(label_to_unicode(&ascii).into_owned())
}

/// A domain without any wildcard (`item` is the whole item text, for messages).
fn plain_name(item: &str, name: &str) -> Result<String, LineError> {
    if name.is_empty() {
        return Err(LineError::EmptyItem {
            prefix: item.to_string(),
        });
    }
    if name.contains('*') {
        return Err(LineError::BadWildcard {
            item: item.to_string(),
        });
    }
    item_to_ascii(name).map_err(|source| LineError::BadName {
        item: item.to_string(),
        source,
    })
}

/// An exact name, which may itself be a wildcard certificate name (`*.example.com`).
fn exact_name(item: &str, name: &str) -> Result<String, LineError> {
    match name.strip_prefix("*.") {
        Some(parent) => Ok(format!("*.{}", plain_name(item, parent)?)),
        None => plain_name(item, name),
    }
}

fn apply_option(item: &mut ParsedItem, token: &str) -> Result<(), LineError> {
    let kind = pattern_kind(&item.pattern);
    let not_allowed = || LineError::OptionNotAllowed {
        option: token.to_string(),
        kind,
    };
    if let Some(tag) = token.strip_prefix('@') {
        return push_tag(&mut item.tags, tag);
    }
    if let Some(list) = token.strip_prefix("issuers=") {
        if !matches!(
            item.pattern,
            Pattern::Domain(_) | Pattern::Exact(_) | Pattern::Wildcard(_)
        ) {
            return Err(not_allowed());
        }
        for entry in list.split(',') {
            item.issuers.push(parse_issuer(token, entry)?);
        }
        return Ok(());
    }
    if let Some(value) = token.strip_prefix("lookalike=") {
        if !matches!(item.pattern, Pattern::Domain(_) | Pattern::Keyword(_)) {
            return Err(not_allowed());
        }
        item.lookalike = match value {
            "on" => true,
            "off" => false,
            _ => {
                return Err(LineError::BadLookalike {
                    value: value.to_string(),
                });
            }
        };
        return Ok(());
    }
    if token.contains('=') {
        return Err(LineError::UnknownOption {
            option: token.to_string(),
        });
    }
    Err(LineError::UnexpectedText {
        text: token.to_string(),
    })
}

/// Item kind names used in messages and in the `watchlist check` summary.
pub fn pattern_kind(pattern: &Pattern) -> &'static str {
    match pattern {
        Pattern::Domain(_) => "domain",
        Pattern::Exact(_) => "exact",
        Pattern::Wildcard(_) => "wildcard",
        Pattern::Regex(_) => "regex",
        Pattern::Keyword(_) => "keyword",
        Pattern::Exclude { .. } => "exclusion",
        Pattern::Ip(_) => "ip",
    }
}

/// `203.0.113.0/24`, `2001:db8::/32`, or one address (a host network); the host bits of a network are cleared.
fn parse_ip_net(item: &str, text: &str) -> Result<ipnet::IpNet, LineError> {
    let bad = || LineError::BadIp {
        item: item.to_string(),
    };
    if text.contains('/') {
        return text
            .parse::<ipnet::IpNet>()
            .map(|n| n.trunc())
            .map_err(|_| bad());
    }
    text.parse::<std::net::IpAddr>()
        .map(ipnet::IpNet::from)
        .map_err(|_| bad())
}

fn parse_issuer(option: &str, entry: &str) -> Result<IssuerRule, LineError> {
    let entry = entry.trim();
    if let Some(hex_value) = entry.strip_prefix("spki:") {
        let mut key = [0u8; 32];
        hex::decode_to_slice(hex_value, &mut key).map_err(|_| LineError::BadSpki {
            value: hex_value.to_string(),
        })?;
        return Ok(IssuerRule::Spki(key));
    }
    let name = normalize_issuer_text(entry);
    if name.is_empty() {
        return Err(LineError::EmptyIssuer {
            option: option.to_string(),
        });
    }
    Ok(IssuerRule::Name(name))
}

/// Lower-case letters and digits only: "Let's Encrypt" -> "letsencrypt", "DigiCert Inc" -> "digicertinc".
pub fn normalize_issuer_text(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn push_tag(tags: &mut Vec<String>, tag: &str) -> Result<(), LineError> {
    let valid = !tag.is_empty()
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:/".contains(c));
    if !valid {
        return Err(LineError::BadTag {
            tag: format!("@{tag}"),
        });
    }
    if !tags.iter().any(|t| t == tag) {
        tags.push(tag.to_string());
    }
    Ok(())
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
