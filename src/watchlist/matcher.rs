//! Matching one certificate against the index (pure, read-only, safe to call from many threads).
//!
//! Per name, in this order:
//! 1. exclusions: a global one drops the name; tagged ones are remembered to filter hits at the end;
//! 2. domain, exact and wildcard items: hash lookups on the name, its label suffixes and its parent
//!    (a wildcard certificate name `*.p` also reaches the items one label under `p`);
//! 3. issuance policies: the most specific covering items with `issuers=` turn into `unauthorized_issuer` when the
//!    certificate's issuer is not one of theirs, or is not proven by the chain the log served (reason
//!    `issuer not proven`);
//! 4. the regex set, then keywords (plain and homoglyph) on the ASCII and, for `xn--` names, Unicode forms;
//! 5. look-alikes (unless the name is under a domain the list names), then tagged exclusions; an item that matched
//!    the name in another way is not also reported as a look-alike.

use std::borrow::Cow;
use std::cell::OnceCell;

use super::index::Index;
use super::keyword::KeywordHit;
use super::lookalike::{self, fold_into};
use super::name::{
    SuffixSplit, has_idn_label, normalize_cert_name, parent, split_public_suffix, suffixes,
    to_unicode,
};
use super::parse::{IssuerRule, normalize_issuer_text};
use super::{Match, MatchInput, MatchKind};

/// One item that matched one name, before it becomes a [`Match`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hit {
    item: u32,
    kind: MatchKind,
    /// Why, when the kind alone does not say it all (`issuer not proven`).
    reason: Option<&'static str>,
    /// Look-alikes: the brand id in the look-alike index.
    brand: Option<u32>,
}

/// The certificate's issuer, normalised lazily and at most once per certificate.
struct Issuer<'a> {
    input: &'a MatchInput<'a>,
    names: OnceCell<[String; 2]>,
}

/// What an item's `issuers=` policy says about the certificate's issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Authorized,
    /// Not an issuer the policy allows.
    Unauthorized,
    /// The policy would allow the issuer the certificate names, but the log did not prove it (its chain does not
    /// verify): a hostile log must not be able to silence an alert by serving the allowed CA's certificate.
    Unproven,
}

impl Issuer<'_> {
    fn verdict(&self, rules: &[IssuerRule]) -> Verdict {
        let names = self.names.get_or_init(|| {
            let norm = |s: Option<&str>| s.map(normalize_issuer_text).unwrap_or_default();
            [norm(self.input.issuer_org), norm(self.input.issuer_cn)]
        });
        let by_name = rules.iter().any(|rule| match rule {
            IssuerRule::Name(wanted) => names.iter().any(|n| n.contains(wanted.as_str())),
            IssuerRule::Spki(_) => false,
        });
        let by_key = |key: &[u8; 32]| self.input.issuer_spki_sha256 == Some(key);
        if self.input.issuer_proven {
            let allowed = by_name
                || rules
                    .iter()
                    .any(|rule| matches!(rule, IssuerRule::Spki(key) if by_key(key)));
            return if allowed {
                Verdict::Authorized
            } else {
                Verdict::Unauthorized
            };
        }
        // Unproven: a name the policy allows, or a key the log may have claimed, is not enough.
        let has_key_rule = rules.iter().any(|rule| matches!(rule, IssuerRule::Spki(_)));
        if by_name || has_key_rule {
            Verdict::Unproven
        } else {
            Verdict::Unauthorized
        }
    }
}

pub fn match_cert(index: &Index, input: &MatchInput<'_>) -> Vec<Match> {
    let issuer = Issuer {
        input,
        names: OnceCell::new(),
    };
    let mut out = Vec::new();
    // The buffers of one thread's previous certificate: matching every entry of the firehose must not allocate
    // them afresh per certificate (that was a fifth of the matcher's time).
    let mut scratch = SCRATCH.take().unwrap_or_default();
    // Names repeat only after normalization (case, a trailing dot), and rarely: a few names are compared with
    // the ones before them, a long list goes through a set.
    let mut seen: foldhash::HashSet<Cow<'_, str>> = Default::default();
    for (i, raw) in input.dns_names.iter().enumerate() {
        let name = normalize_cert_name(raw);
        if name.is_empty() {
            continue;
        }
        let repeated = if i < DEDUP_SCAN {
            input.dns_names[..i]
                .iter()
                .any(|before| normalize_cert_name(before) == name)
        } else {
            if seen.is_empty() {
                seen.extend(input.dns_names[..i].iter().map(|b| normalize_cert_name(b)));
            }
            !seen.insert(name.clone())
        };
        if repeated {
            continue;
        }
        match_name(index, &name, &issuer, &mut scratch, &mut out);
    }
    SCRATCH.set(Some(scratch));
    match_ips(index, input.ip_addresses, &mut out);
    out
}

/// Up to this many names, a repeated name is found by comparing with the ones before it.
const DEDUP_SCAN: usize = 16;

thread_local! {
    /// [`Scratch`] kept between the certificates a thread matches.
    static SCRATCH: std::cell::Cell<Option<Box<Scratch>>> = const { std::cell::Cell::new(None) };
}

/// `ip:` items: every IP-address SAN inside an item's network (a linear scan: IP items are few).
fn match_ips(index: &Index, ips: &[String], out: &mut Vec<Match>) {
    if index.ip_items.is_empty() {
        return;
    }
    let mut seen = Vec::new();
    for raw in ips {
        let Ok(ip) = raw.trim().parse::<std::net::IpAddr>() else {
            continue;
        };
        if seen.contains(&ip) {
            continue;
        }
        seen.push(ip);
        for (net, id) in &index.ip_items {
            if !net.contains(&ip) {
                continue;
            }
            let item = &index.items[*id as usize];
            out.push(Match {
                item: item.text.to_string(),
                source: format!("{}:{}", index.files[item.file as usize], item.line),
                name: ip.to_string(),
                name_unicode: ip.to_string(),
                kind: MatchKind::Ip,
                tags: item.tags.clone(),
                brand: None,
                reason: None,
            });
        }
    }
}

/// Buffers reused across the names of one certificate.
#[derive(Default)]
struct Scratch {
    hits: Vec<Hit>,
    keyword_hits: Vec<KeywordHit>,
    folded: String,
    brands: Vec<u32>,
    lookalike: lookalike::Scratch,
}

fn match_name(
    index: &Index,
    name: &str,
    issuer: &Issuer<'_>,
    scratch: &mut Scratch,
    out: &mut Vec<Match>,
) {
    let base = name.strip_prefix("*.");
    let Some(scoped_exclusions) = exclusions(index, name, base) else {
        return;
    };
    let unicode = if has_idn_label(name) {
        to_unicode(name)
    } else {
        Cow::Borrowed(name)
    };
    // Look-alikes ask which labels precede the name's public suffix; keywords and look-alikes ask whether it is
    // one of the list's own domains (only when the list names any). One suffix lookup per name serves both, and
    // none is made when neither asks.
    let asks_genuine = !index.keywords.is_empty() && index.lookalike.has_own_domains();
    let split = if index.lookalike.is_empty() && !asks_genuine {
        None
    } else {
        split_public_suffix(base.unwrap_or(name))
    };
    let genuine = index.lookalike.is_genuine(split);
    let mut hits = std::mem::take(&mut scratch.hits);
    hits.clear();
    structural_hits(index, name, base, &mut hits);
    apply_issuer_policy(index, issuer, &mut hits);
    regex_hits(index, name, &mut hits);
    keyword_hits(index, name, &unicode, !genuine, scratch, &mut hits);
    if !genuine {
        lookalike_hits(index, split, scratch, &mut hits);
    }
    hits.retain(|hit| {
        let tags = &index.items[hit.item as usize].tags;
        !scoped_exclusions.iter().any(|&e| {
            index.exclusions[e as usize]
                .tags
                .iter()
                .any(|t| tags.contains(t))
        })
    });
    // Per item, a plain match (brand `None`) sorts first and wins over a look-alike.
    hits.sort_by_key(|h| (h.item, h.brand));
    hits.dedup_by_key(|h| h.item);
    for hit in &hits {
        let item = &index.items[hit.item as usize];
        out.push(Match {
            item: item.text.to_string(),
            source: format!("{}:{}", index.files[item.file as usize], item.line),
            name: name.to_string(),
            name_unicode: unicode.clone().into_owned(),
            kind: hit.kind,
            tags: item.tags.clone(),
            brand: hit.brand.map(|b| index.lookalike.brand(b).display.clone()),
            reason: hit.reason,
        });
    }
    scratch.hits = hits;
}

/// `None` if an untagged exclusion covers the name; otherwise the tagged exclusions that do.
/// `base` is the name without its leading `*.` for wildcard names: `*.dev.example.com` lies under `dev.example.com`.
fn exclusions(index: &Index, name: &str, base: Option<&str>) -> Option<Vec<u32>> {
    if index.exclusions.is_empty() {
        return Some(Vec::new());
    }
    let mut found: Vec<u32> = index.excluded_exact.get(name).collect();
    for suffix in suffixes(base.unwrap_or(name)) {
        found.extend(index.excluded_domain.get(suffix));
    }
    if found
        .iter()
        .any(|&e| index.exclusions[e as usize].tags.is_empty())
    {
        return None;
    }
    Some(found)
}

fn structural_hits(index: &Index, name: &str, base: Option<&str>, hits: &mut Vec<Hit>) {
    if !index.may_cover(name, base) {
        return;
    }
    let mut push = |item: u32| {
        hits.push(Hit {
            item,
            kind: index.items[item as usize].kind,
            brand: None,
            reason: None,
        })
    };
    index.exact.get(name).for_each(&mut push);
    match base {
        // A wildcard certificate name covers exactly the names one label under `base`.
        Some(base) => {
            suffixes(base)
                .flat_map(|s| index.domain.get(s))
                .for_each(&mut push);
            index.domain_children.get(base).for_each(&mut push);
            index.exact_children.get(base).for_each(&mut push);
            index.wildcard.get(base).for_each(&mut push);
        }
        None => {
            suffixes(name)
                .flat_map(|s| index.domain.get(s))
                .for_each(&mut push);
            parent(name)
                .into_iter()
                .flat_map(|p| index.wildcard.get(p))
                .for_each(&mut push);
        }
    }
}

/// Turns the hits of the most specific items with an issuance policy into `UnauthorizedIssuer` when the issuer is
/// not allowed by them. Less specific policies are overridden (`shop.example.com issuers=x` inside
/// `example.com issuers=y` lets `x` issue for the shop).
fn apply_issuer_policy(index: &Index, issuer: &Issuer<'_>, hits: &mut [Hit]) {
    let with_policy = |h: &Hit| !index.items[h.item as usize].issuers.is_empty();
    let Some(top) = hits
        .iter()
        .filter(|h| with_policy(h))
        .map(|h| index.items[h.item as usize].specificity)
        .max()
    else {
        return;
    };
    for hit in hits.iter_mut().filter(|h| with_policy(h)) {
        let item = &index.items[hit.item as usize];
        if item.specificity != top {
            continue;
        }
        match issuer.verdict(&item.issuers) {
            Verdict::Authorized => {}
            Verdict::Unauthorized => hit.kind = MatchKind::UnauthorizedIssuer,
            Verdict::Unproven => {
                hit.kind = MatchKind::UnauthorizedIssuer;
                hit.reason = Some(super::REASON_ISSUER_NOT_PROVEN);
            }
        }
    }
}

fn regex_hits(index: &Index, name: &str, hits: &mut Vec<Hit>) {
    // `is_match` stops at the first match and is the common, negative case; `matches` then walks every pattern.
    if let Some(set) = index.regex_set.as_ref().filter(|set| set.is_match(name)) {
        for i in set.matches(name).iter() {
            hits.push(Hit {
                item: index.regex_items[i],
                kind: MatchKind::Regex,
                brand: None,
                reason: None,
            });
        }
    }
}

/// Plain keyword matches and keyword homoglyphs, from one scan of the name's skeleton (two for IDN names: the
/// ASCII and the Unicode form).
fn keyword_hits(
    index: &Index,
    name: &str,
    unicode: &str,
    lookalikes: bool,
    scratch: &mut Scratch,
    hits: &mut Vec<Hit>,
) {
    if index.keywords.is_empty()
        || (unicode == name && name.is_ascii() && !index.keywords.may_occur_in_ascii(name))
    {
        return;
    }
    let Scratch {
        keyword_hits: found,
        folded,
        ..
    } = scratch;
    found.clear();
    fold_into(name, folded);
    index
        .keywords
        .search(folded, name, unicode, lookalikes, found);
    if unicode != name {
        fold_into(unicode, folded);
        index
            .keywords
            .search(folded, name, unicode, lookalikes, found);
    }
    for &(item, brand) in found.iter() {
        let kind = if brand.is_some() {
            MatchKind::Lookalike
        } else {
            MatchKind::Keyword
        };
        hits.push(Hit {
            item,
            kind,
            brand,
            reason: None,
        });
    }
}

/// Typosquats and homoglyph labels. Look-alikes of items that matched the name in another way are dropped:
/// `paypall-login.com` is a keyword match of `~paypal`, not also a look-alike of it.
fn lookalike_hits(
    index: &Index,
    split: Option<SuffixSplit<'_>>,
    scratch: &mut Scratch,
    hits: &mut Vec<Hit>,
) {
    if index.lookalike.is_empty() {
        return;
    }
    let Scratch {
        brands, lookalike, ..
    } = scratch;
    brands.clear();
    index.lookalike.find(split, lookalike, brands);
    for &brand in brands.iter() {
        let item = index.lookalike.brand(brand).item;
        if !hits.iter().any(|h| h.item == item) {
            hits.push(Hit {
                item,
                kind: MatchKind::Lookalike,
                brand: Some(brand),
                reason: None,
            });
        }
    }
}
