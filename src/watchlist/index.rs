//! From parsed items to the lookup structures the matcher uses (built once per load, then read-only).
//!
//! No structure is scanned item by item at match time: domain-like items sit in hash maps keyed by the name they
//! cover (a certificate name is looked up once per label suffix), regexes in one `RegexSet`, keywords in one
//! Aho-Corasick automaton, brands in the look-alike index.

use std::collections::HashSet;

use regex::{RegexSet, RegexSetBuilder};

use super::MatchKind;
use super::keyword::KeywordIndex;
use super::lookalike::{Brand, LookalikeIndex};
use super::multimap::MultiMap;
use super::name::{label_count, label_to_unicode, parent, registrable};
use super::parse::{IssuerRule, ParsedItem, Pattern};

/// Compiled-program limit for the regex set: generous, because one set holds every regex of every file. The lazy
/// DFA cache keeps the crate's default (a larger one was measured no faster with 1,000 regexes, and 7 MB bigger).
const REGEX_SIZE_LIMIT: usize = 256 << 20;

/// One inclusion item as the matcher reports it.
#[derive(Debug)]
pub struct Item {
    pub text: Box<str>,
    /// Index into [`Index::files`]; with `line`, the `file:line` of reports (kept apart: 100,000 items).
    pub file: u32,
    pub line: u32,
    pub kind: MatchKind,
    pub tags: Vec<String>,
    pub issuers: Vec<IssuerRule>,
    /// Among items with an issuance policy that cover a name, only the most specific decide: exact names beat
    /// wildcards, which beat domains; deeper domains beat shallower ones.
    pub specificity: u8,
}

/// One `!` line; `tags` empty means it suppresses matches of every item, else only of items sharing a tag.
#[derive(Debug)]
pub struct Exclusion {
    pub tags: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Index {
    /// Watchlist file names, for `file:line`.
    pub files: Vec<String>,
    pub items: Vec<Item>,
    pub exclusions: Vec<Exclusion>,
    /// Domain items by their name.
    pub domain: MultiMap,
    /// Domain items by their parent, for wildcard certificate names (`*.example.com` covers `www.example.com`).
    pub domain_children: MultiMap,
    /// Exact items by their name (a literal `*.x` name included).
    pub exact: MultiMap,
    /// Non-wildcard exact items by their parent, for wildcard certificate names.
    pub exact_children: MultiMap,
    /// Wildcard items by the parent they cover one label under.
    pub wildcard: MultiMap,
    /// The last two labels ([`tail`]) of every key of `domain`, `exact` and `wildcard`: every key a certificate
    /// name can reach is a label suffix of it, so a name whose own tail is not here (nearly every name of the
    /// firehose) skips the lookups. A key of the two `_children` maps is the parent of a key of `domain` or
    /// `exact`, with the same tail unless it is a single label (see [`Index::may_cover`]).
    pub tails: foldhash::HashSet<Box<str>>,
    pub regex_set: Option<RegexSet>,
    /// Pattern i of `regex_set` belongs to item `regex_items[i]`.
    pub regex_items: Vec<u32>,
    pub keywords: KeywordIndex,
    /// Exclusions by name (and subdomains) and by exact name.
    pub excluded_domain: MultiMap,
    pub excluded_exact: MultiMap,
    pub lookalike: LookalikeIndex,
    /// `ip:` items: (network, item).
    pub ip_items: Vec<(ipnet::IpNet, u32)>,
}

/// Why building failed even though every line was valid (the regex set as a whole is too big).
#[derive(Debug, thiserror::Error)]
#[error("the {count} regexes together are too large to compile: {message}")]
pub struct BuildError {
    pub count: usize,
    pub message: String,
}

/// The last two labels of a name (`b.c` of `a.b.c`), or the name itself when it has fewer.
pub fn tail(name: &str) -> &str {
    let mut dots = name.bytes().enumerate().rev().filter(|&(_, b)| b == b'.');
    match (dots.next(), dots.next()) {
        (Some(_), Some((second, _))) => &name[second + 1..],
        _ => name,
    }
}

impl Index {
    /// Whether some domain, exact or wildcard item may cover `name` (`base`: without the `*.` of a wildcard
    /// name). False when no key ends with the name's last two labels nor is a single label equal to its last one,
    /// so that none is a label suffix of it: that settles most names at once.
    pub fn may_cover(&self, name: &str, base: Option<&str>) -> bool {
        if self.tails.is_empty() {
            return false;
        }
        // `*.com`: the children of a single label (`example.com` under `com`) have another tail.
        if base.is_some_and(|b| !b.contains('.')) {
            return true;
        }
        if self.tails.contains(tail(name)) {
            return true;
        }
        // A single-label key (`internal`, a TLD) is its own tail.
        let last = name.rsplit_once('.').map_or(name, |(_, last)| last);
        last.len() != name.len() && self.tails.contains(last)
    }

    /// `parsed` pairs each valid item with its file name.
    pub fn build(parsed: Vec<(&str, ParsedItem)>) -> Result<Index, BuildError> {
        let mut builder = Builder::default();
        for (file, item) in parsed {
            if builder.index.files.last().is_none_or(|last| last != file) {
                builder.index.files.push(file.to_string());
            }
            match &item.pattern {
                Pattern::Exclude { name, exact } => {
                    let id = builder.index.exclusions.len() as u32;
                    let map = if *exact {
                        &mut builder.index.excluded_exact
                    } else {
                        &mut builder.index.excluded_domain
                    };
                    map.insert(name, id);
                    builder.index.exclusions.push(Exclusion { tags: item.tags });
                }
                _ => builder.add_item(item),
            }
        }
        builder.finish()
    }
}

/// What `Index::build` accumulates before the regex set, keyword automaton and look-alike index are compiled.
#[derive(Default)]
struct Builder {
    index: Index,
    regexes: Vec<String>,
    /// (item, keyword, brand id) for `KeywordIndex::build`.
    keywords: Vec<(u32, String, Option<u32>)>,
    brands: Vec<Brand>,
    /// (label, tags) of domain brands so far: `example.com` and `example.net` of one owner are one brand.
    brand_labels: HashSet<(String, Vec<String>)>,
    /// Registrable domains of domain, exact and wildcard items: never look-alikes.
    own: foldhash::HashSet<String>,
}

impl Builder {
    fn add_item(&mut self, item: ParsedItem) {
        let id = self.index.items.len() as u32;
        let index = &mut self.index;
        match &item.pattern {
            Pattern::Domain(name) => {
                index.domain.insert(name, id);
                index.tails.insert(tail(name).into());
                if let Some(p) = parent(name) {
                    index.domain_children.insert(p, id);
                }
                self.own.extend(registrable(name).map(str::to_string));
                // Only a registrable domain is a brand (`shop.example.com` would repeat `example.com`), and one
                // label is one brand per tag set (`example.net` would repeat `example.com`).
                let label = label_to_unicode(name.split('.').next().unwrap_or(name)).into_owned();
                if item.lookalike
                    && registrable(name) == Some(name.as_str())
                    && self.brand_labels.insert((label.clone(), item.tags.clone()))
                {
                    self.brands.push(Brand {
                        item: id,
                        label,
                        display: name.clone(),
                        is_keyword: false,
                    });
                }
            }
            Pattern::Exact(name) => {
                index.exact.insert(name, id);
                index.tails.insert(tail(name).into());
                if let Some(p) = parent(name).filter(|_| !name.starts_with("*.")) {
                    index.exact_children.insert(p, id);
                }
                self.own
                    .extend(registrable(name.trim_start_matches("*.")).map(str::to_string));
            }
            Pattern::Wildcard(p) => {
                index.wildcard.insert(p, id);
                index.tails.insert(tail(p).into());
                self.own.extend(registrable(p).map(str::to_string));
            }
            Pattern::Regex(pattern) => {
                self.regexes.push(pattern.clone());
                index.regex_items.push(id);
            }
            Pattern::Keyword(keyword) => {
                let brand = item.lookalike.then_some(self.brands.len() as u32);
                if item.lookalike {
                    let (label, display) = (keyword.clone(), keyword.clone());
                    self.brands.push(Brand {
                        item: id,
                        label,
                        display,
                        is_keyword: true,
                    });
                }
                self.keywords.push((id, keyword.clone(), brand));
            }
            Pattern::Ip(net) => index.ip_items.push((*net, id)),
            Pattern::Exclude { .. } => unreachable!("exclusions are not items"),
        }
        let file = self.index.files.len() as u32 - 1;
        self.index.items.push(make_item(file, item));
    }

    fn finish(mut self) -> Result<Index, BuildError> {
        self.index.regex_set = build_regex_set(&self.regexes)?;
        self.index.keywords = KeywordIndex::build(self.keywords);
        self.index.lookalike = LookalikeIndex::build(self.brands, self.own);
        self.index.items.shrink_to_fit();
        Ok(self.index)
    }
}

fn make_item(file: u32, item: ParsedItem) -> Item {
    // At most 127 labels fit in 253 characters.
    let labels = |name: &str| label_count(name).min(200) as u8;
    let (kind, specificity) = match &item.pattern {
        Pattern::Domain(name) => (MatchKind::Domain, labels(name)),
        Pattern::Wildcard(p) => (MatchKind::Wildcard, labels(p) + 1),
        Pattern::Exact(_) => (MatchKind::Exact, u8::MAX),
        Pattern::Regex(_) => (MatchKind::Regex, 0),
        Pattern::Keyword(_) => (MatchKind::Keyword, 0),
        Pattern::Ip(net) => (MatchKind::Ip, net.prefix_len()),
        Pattern::Exclude { .. } => unreachable!("exclusions are not items"),
    };
    Item {
        text: item.text.into_boxed_str(),
        file,
        line: u32::try_from(item.line).unwrap_or(u32::MAX),
        kind,
        tags: item.tags,
        issuers: item.issuers,
        specificity,
    }
}

fn build_regex_set(patterns: &[String]) -> Result<Option<RegexSet>, BuildError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    RegexSetBuilder::new(patterns)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(Some)
        .map_err(|e| BuildError {
            count: patterns.len(),
            message: e.to_string(),
        })
}
