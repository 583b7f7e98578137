//! Domain-name helpers shared by the parser and the matcher (pure).
//!
//! Two kinds of names meet here. Watchlist items are written by people, so they may be Unicode, upper case or end in
//! a dot; they go through full IDNA (UTS #46) once, at load time. Certificate names arrive by the million and are
//! already ASCII as found in the certificate; they only get the cheap normalisation (lower case, no trailing dot) so
//! that the hot path never runs IDNA. Unicode forms of certificate names are produced only for display and for the
//! keyword/look-alike checks, and only when a label is actually `xn--`.

use std::borrow::Cow;

/// Longest DNS name in presentation form (RFC 1035 §2.3.4 allows 255 octets on the wire, 253 characters in text).
const MAX_NAME_LEN: usize = 253;
/// Longest DNS label (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// Why a domain written in a watchlist is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty domain name")]
    Empty,
    #[error("'{name}' has an empty label")]
    EmptyLabel { name: String },
    #[error("label '{label}' is {len} characters long (at most 63)")]
    LabelTooLong { label: String, len: usize },
    #[error("'{name}' is {len} characters long (at most 253)")]
    NameTooLong { name: String, len: usize },
    #[error("'{name}' contains the character {ch:?}, which is not allowed in a domain name")]
    BadChar { name: String, ch: char },
    #[error("'{name}' is not a valid internationalized domain name (IDNA)")]
    Idna { name: String },
}

/// Normalises a domain written in a watchlist to its ASCII (punycode) form: IDNA mapping (which also lower-cases),
/// one trailing dot removed, labels checked. `*` is rejected here; the parser strips a leading `*.` itself.
pub fn item_to_ascii(text: &str) -> Result<String, NameError> {
    let trimmed = text.strip_suffix('.').unwrap_or(text);
    if trimmed.is_empty() {
        return Err(NameError::Empty);
    }
    let ascii = idna::domain_to_ascii(trimmed).map_err(|_| NameError::Idna {
        name: text.to_string(),
    })?;
    check_ascii_name(&ascii)?;
    Ok(ascii)
}

/// Label rules for names we store: non-empty labels of at most 63 characters from `[a-z0-9_-]`. The underscore is
/// allowed because real certificates carry it (`_dmarc`-style service names); IDNA has already lower-cased.
fn check_ascii_name(name: &str) -> Result<(), NameError> {
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::NameTooLong {
            name: name.to_string(),
            len: name.len(),
        });
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel {
                name: name.to_string(),
            });
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(NameError::LabelTooLong {
                label: label.to_string(),
                len: label.len(),
            });
        }
        if let Some(ch) = label
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-' | '_'))
        {
            return Err(NameError::BadChar {
                name: name.to_string(),
                ch,
            });
        }
    }
    Ok(())
}

/// Cheap normalisation of a certificate name: ASCII lower case and one trailing dot removed. Garbage stays garbage
/// (it simply matches nothing structural), but never panics.
pub fn normalize_cert_name(raw: &str) -> Cow<'_, str> {
    // Names from certificates are nearly always trimmed already: a printable ASCII byte at each end is not (part
    // of) white space, and the Unicode-aware trim is skipped.
    let printable = |b: Option<&u8>| matches!(b, Some(0x21..=0x7e));
    let bytes = raw.as_bytes();
    let trimmed = if printable(bytes.first()) && printable(bytes.last()) {
        raw
    } else {
        raw.trim()
    };
    let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
    // Without an early exit the scan is a few vector instructions for a whole name.
    if trimmed
        .bytes()
        .fold(false, |upper, b| upper | b.is_ascii_uppercase())
    {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    }
}

/// The name and each of its parent domains: `a.b.c` yields `a.b.c`, `b.c`, `c`.
pub fn suffixes(name: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(name);
    std::iter::from_fn(move || {
        let current = rest?;
        rest = current.split_once('.').map(|(_, parent)| parent);
        Some(current)
    })
}

/// The labels of a name, left to right (`a.b` -> `a`, `b`): `name.split('.')` without a SIMD search's set-up per
/// label, which cost more than the search itself for labels this short.
pub fn labels(name: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(name);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.bytes().position(|b| b == b'.') {
            Some(dot) => {
                rest = Some(&current[dot + 1..]);
                Some(&current[..dot])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// The parent domain (`a.b.c` -> `b.c`), or `None` for a single label.
pub fn parent(name: &str) -> Option<&str> {
    name.split_once('.').map(|(_, p)| p)
}

/// Number of labels (`a.b.c` -> 3).
pub fn label_count(name: &str) -> usize {
    name.bytes().filter(|&b| b == b'.').count() + 1
}

/// True when some label is punycode, i.e. the Unicode form differs from the ASCII one.
pub fn has_idn_label(name: &str) -> bool {
    // Nearly no name has one: a substring search settles the common case before the labels are walked.
    name.contains("xn--") && name.split('.').any(|l| l.starts_with("xn--"))
}

/// Unicode form of a single label: `xn--` labels are decoded, anything else (including undecodable garbage, and
/// `xn--` labels that decode to plain ASCII, which IDNA never produces) is returned as is, so a bad label never hides
/// the rest of the name or poses as another one.
pub fn label_to_unicode(label: &str) -> Cow<'_, str> {
    let decoded = label
        .strip_prefix("xn--")
        .and_then(idna::punycode::decode_to_string);
    match decoded.filter(|d| !d.is_ascii()) {
        Some(decoded) => Cow::Owned(decoded),
        None => Cow::Borrowed(label),
    }
}

/// Unicode form of a whole name for display, label by label (see [`label_to_unicode`]).
pub fn to_unicode(name: &str) -> Cow<'_, str> {
    if !has_idn_label(name) {
        return Cow::Borrowed(name);
    }
    let labels: Vec<Cow<'_, str>> = name.split('.').map(label_to_unicode).collect();
    Cow::Owned(labels.join("."))
}

/// A name cut at its public suffix, from one Public Suffix List lookup: `a.example.co.uk` has the head `a.example`
/// and the registrable domain `example.co.uk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuffixSplit<'a> {
    /// Labels left of the public suffix (`a.example`).
    pub head: &'a str,
    /// The registrable domain ("eTLD+1"): the head's last label and the suffix (`example.co.uk`).
    pub registrable: &'a str,
}

/// `None` when nothing is left of the public suffix (the name is itself a suffix). Unknown TLDs count as suffixes
/// (the PSL `*` rule).
pub fn split_public_suffix(name: &str) -> Option<SuffixSplit<'_>> {
    let name = name.strip_suffix('.').unwrap_or(name); // fully qualified `example.com.`
    let suffix = psl::suffix_str(name)?;
    let head = name.strip_suffix(suffix)?.strip_suffix('.')?;
    let last = head.rfind('.').map_or(0, |dot| dot + 1);
    if head.len() == last {
        return None; // empty head or empty last label (`.co.uk`, `a..co.uk`)
    }
    Some(SuffixSplit {
        head,
        registrable: &name[last..],
    })
}

/// The registrable domain ("eTLD+1") by the Public Suffix List, e.g. `example.co.uk` for `a.example.co.uk`.
/// `None` when the name is itself a public suffix. Unknown TLDs count as suffixes (the PSL `*` rule).
pub fn registrable(name: &str) -> Option<&str> {
    split_public_suffix(name).map(|s| s.registrable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_names_are_normalised_to_punycode_lowercase() {
        assert_eq!(item_to_ascii("Example.COM.").unwrap(), "example.com");
        assert_eq!(item_to_ascii("Bücher.de").unwrap(), "xn--bcher-kva.de");
        assert_eq!(
            item_to_ascii("xn--bcher-kva.de").unwrap(),
            "xn--bcher-kva.de"
        );
        assert_eq!(
            item_to_ascii("_dmarc.example.com").unwrap(),
            "_dmarc.example.com"
        );
    }

    #[test]
    fn bad_item_names_say_what_is_wrong() {
        assert_eq!(item_to_ascii(""), Err(NameError::Empty));
        assert_eq!(item_to_ascii("."), Err(NameError::Empty));
        assert_eq!(
            item_to_ascii("a..b"),
            Err(NameError::EmptyLabel {
                name: "a..b".into()
            })
        );
        assert_eq!(
            item_to_ascii("xn--zzzz.com"),
            Err(NameError::Idna {
                name: "xn--zzzz.com".into()
            })
        );
        assert_eq!(
            item_to_ascii("a b.com"),
            Err(NameError::BadChar {
                name: "a b.com".into(),
                ch: ' '
            })
        );
        assert_eq!(
            item_to_ascii("*.com"),
            Err(NameError::BadChar {
                name: "*.com".into(),
                ch: '*'
            })
        );
        let long = "a".repeat(64);
        assert_eq!(
            item_to_ascii(&format!("{long}.com")),
            Err(NameError::LabelTooLong {
                label: long,
                len: 64
            })
        );
    }

    #[test]
    fn labels_split_like_split_at_dots() {
        for name in [
            "",
            ".",
            "a",
            "a.b",
            "www.example.co.uk",
            "a..b.",
            ".a",
            "bücher.de",
            "*.x",
        ] {
            assert_eq!(
                labels(name).collect::<Vec<_>>(),
                name.split('.').collect::<Vec<_>>(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn cert_names_get_the_cheap_normalisation() {
        assert_eq!(normalize_cert_name("WWW.Example.com."), "www.example.com");
        assert_eq!(normalize_cert_name("*.example.com"), "*.example.com");
        assert_eq!(normalize_cert_name(" x "), "x");
        assert_eq!(normalize_cert_name("."), "");
        assert_eq!(normalize_cert_name(""), "");
        assert_eq!(
            normalize_cert_name("\u{a0}Www.Example.com.\n"),
            "www.example.com"
        );
        assert_eq!(normalize_cert_name("x.\u{2003}"), "x");
        assert_eq!(normalize_cert_name("\tx"), "x");
        assert!(matches!(normalize_cert_name("a.b"), Cow::Borrowed("a.b")));
    }

    #[test]
    fn suffixes_walk_up_to_the_tld() {
        assert_eq!(
            suffixes("a.b.example.com").collect::<Vec<_>>(),
            ["a.b.example.com", "b.example.com", "example.com", "com"]
        );
        assert_eq!(suffixes("com").collect::<Vec<_>>(), ["com"]);
        assert_eq!(parent("a.b"), Some("b"));
        assert_eq!(parent("b"), None);
        assert_eq!(label_count("a.b.c"), 3);
    }

    #[test]
    fn unicode_forms_decode_only_punycode_labels() {
        assert_eq!(to_unicode("www.xn--bcher-kva.de"), "www.bücher.de");
        // Cyrillic "пример" (example) and a garbage xn-- label that does not decode stay readable.
        assert_eq!(to_unicode("xn--e1afmkfd.xn--p1ai"), "пример.рф");
        assert_eq!(to_unicode("xn--.example.com"), "xn--.example.com");
        assert_eq!(to_unicode("xn--abc-.example.com"), "xn--abc-.example.com");
        assert_eq!(to_unicode("plain.example.com"), "plain.example.com");
    }

    #[test]
    fn one_suffix_lookup_gives_what_the_psl_crate_calls_the_domain() {
        let names = [
            "example.com",
            "www.example.co.uk",
            "a.b.c.example.com.au",
            "co.uk",
            "com",
            "example.unknowntld",
            "x.example.unknowntld",
            "foo.github.io",
            "github.io",
            "a..example.com",
            ".example.com",
            "example.com.",
            "",
            ".",
            "..",
            "xn--bcher-kva.de",
            "*.example.com",
            "a.b.kawasaki.jp",
            "city.kawasaki.jp",
            "a.city.kawasaki.jp",
        ];
        for name in names {
            assert_eq!(
                registrable(name),
                psl::domain_str(name),
                "registrable domain of {name:?}"
            );
        }
        // One difference, on purpose: an empty label is no registrable domain (psl answers `.co.uk`).
        assert_eq!(psl::domain_str("a..co.uk"), Some(".co.uk"));
        assert_eq!(registrable("a..co.uk"), None);
        assert_eq!(registrable(".co.uk"), None);
    }

    #[test]
    fn registrable_domains_follow_the_public_suffix_list() {
        assert_eq!(registrable("a.b.example.co.uk"), Some("example.co.uk"));
        assert_eq!(registrable("co.uk"), None);
        assert_eq!(
            split_public_suffix("a.b.example.co.uk"),
            Some(SuffixSplit {
                head: "a.b.example",
                registrable: "example.co.uk"
            })
        );
        let head = |name| split_public_suffix(name).map(|s| s.head);
        assert_eq!(head("a.example.co.uk"), Some("a.example"));
        assert_eq!(head("co.uk"), None);
        assert_eq!(head("example.com"), Some("example"));
    }
}
