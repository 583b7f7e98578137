//! Look-alike detection: names that imitate a watched brand without being it.
//!
//! A brand is the keyword of a `~keyword` item, or the first label of a domain item that is itself a registrable
//! domain (`example.com` -> `example`). A certificate name imitates a brand when one of its *tokens* (each label left
//! of the public suffix, and each '-'-separated part of such a label, in Unicode form) is
//! - a typosquat: one character changed, added, removed or two neighbours swapped (brands of 5+ characters);
//! - a homoglyph: a different string with the same UTS #39 "skeleton" (Cyrillic `а` for `a`, `rn` for `m`, `0` for
//!   `o`), accents ignored (brands of 3+ characters);
//! - for domain brands, the brand itself under another registrable domain (`example.net`, `example-login.com`;
//!   brands of 4+ characters).
//!
//! Keywords are also looked for inside labels through their skeleton (an Aho-Corasick automaton over skeletons), which
//! finds `secure-pаypal1ogin` where the plain keyword search finds nothing.
//! Names under any registrable domain the watchlist itself names are never look-alikes.
//!
//! Speed: typosquats use a deletion neighbourhood (each brand and its one-character deletions, hashed at load); a
//! token then costs one hash lookup per character, whatever the number of brands. Skeletons come from the
//! `unicode-security` crate (the Unicode confusables table); ASCII goes through a 128-entry table derived from it.

use std::collections::HashSet;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

use super::multimap::MultiMap;
use super::name::{label_to_unicode, registrable, strip_public_suffix};

const TYPO_MIN_CHARS: usize = 5;
const EXACT_MIN_CHARS: usize = 4;
const HOMOGLYPH_MIN_CHARS: usize = 3;

/// One brand to protect.
#[derive(Debug, Clone)]
pub struct Brand {
    /// Item id reported when this brand is imitated.
    pub item: u32,
    /// What is compared with tokens (Unicode, lower case): `paypal`, `example`.
    pub label: String,
    /// What the report calls the brand: the keyword, or the registrable domain (`example.com`).
    pub display: String,
    pub is_keyword: bool,
}

#[derive(Debug, Default)]
pub struct LookalikeIndex {
    brands: Vec<Brand>,
    /// Brand labels and their one-character deletions -> brand ids.
    neighbours: MultiMap,
    /// Skeletons of domain-brand labels -> brand ids.
    skeletons: MultiMap,
    /// Skeletons of keywords, searched inside the skeleton of whole names; pattern i belongs to `keyword_brands[i]`.
    keyword_skeletons: Option<AhoCorasick>,
    keyword_brands: Vec<u32>,
    /// Registrable domains the watchlist names: their names are genuine, never look-alikes.
    own: HashSet<String>,
}

impl LookalikeIndex {
    /// `own` are the registrable domains of every domain, exact and wildcard item.
    pub fn build(brands: Vec<Brand>, own: HashSet<String>) -> LookalikeIndex {
        let mut index = LookalikeIndex {
            own,
            ..LookalikeIndex::default()
        };
        let mut keyword_patterns = Vec::new();
        let mut buf = String::new();
        for (id, brand) in brands.iter().enumerate() {
            let id = id as u32;
            let chars = brand.label.chars().count();
            if chars >= EXACT_MIN_CHARS {
                index.neighbours.insert(&brand.label, id);
            }
            if chars >= TYPO_MIN_CHARS {
                for_each_deletion(&brand.label, &mut buf, |variant| {
                    index.neighbours.insert(variant, id)
                });
            }
            if chars >= HOMOGLYPH_MIN_CHARS {
                if brand.is_keyword {
                    keyword_patterns.push(fold(&brand.label));
                    index.keyword_brands.push(id);
                } else {
                    index.skeletons.insert(&fold(&brand.label), id);
                }
            }
        }
        if !keyword_patterns.is_empty() {
            index.keyword_skeletons =
                Some(AhoCorasick::new(&keyword_patterns).expect("keyword skeletons fit"));
        }
        index.brands = brands;
        index
    }

    pub fn brand(&self, id: u32) -> &Brand {
        &self.brands[id as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.brands.is_empty()
    }

    /// Brand ids imitated by `name` (ASCII, lower case, without a leading `*.`); may repeat an id.
    pub fn find(&self, name: &str, found: &mut Vec<u32>) {
        if self.brands.is_empty() || registrable(name).is_some_and(|r| self.own.contains(r)) {
            return;
        }
        if let Some(head) = strip_public_suffix(name) {
            for label in head.split('.') {
                let label = label_to_unicode(label);
                self.check_token(&label, found);
                if label.contains('-') {
                    for part in label.split('-').filter(|p| !p.is_empty()) {
                        self.check_token(part, found);
                    }
                }
            }
        }
        if let Some(automaton) = &self.keyword_skeletons {
            let folded = fold(&super::name::to_unicode(name));
            for hit in automaton.find_overlapping_iter(&folded) {
                found.push(self.keyword_brands[hit.pattern().as_usize()]);
            }
        }
    }

    fn check_token(&self, token: &str, found: &mut Vec<u32>) {
        // Shorter tokens cannot be within one edit of a brand long enough for the typo or exact checks.
        if token.chars().count() >= EXACT_MIN_CHARS {
            self.check_neighbours(token, found);
        }
        for id in self.skeletons.get(&fold(token)) {
            if self.brands[id as usize].label != token {
                found.push(id);
            }
        }
    }

    fn check_neighbours(&self, token: &str, found: &mut Vec<u32>) {
        let mut buf = String::new();
        let mut candidates: Vec<u32> = self.neighbours.get(token).collect();
        for_each_deletion(token, &mut buf, |variant| {
            candidates.extend(self.neighbours.get(variant))
        });
        for id in candidates {
            let brand = &self.brands[id as usize];
            let accepted = match edit_distance_at_most_one(token, &brand.label) {
                Some(0) => !brand.is_keyword && brand.label.chars().count() >= EXACT_MIN_CHARS,
                Some(_) => brand.label.chars().count() >= TYPO_MIN_CHARS,
                None => false,
            };
            if accepted {
                found.push(id);
            }
        }
    }
}

/// Calls `f` with `s` minus each of its characters in turn (`abc` -> `bc`, `ac`, `ab`), reusing `buf`.
fn for_each_deletion(s: &str, buf: &mut String, mut f: impl FnMut(&str)) {
    for (i, c) in s.char_indices() {
        buf.clear();
        buf.push_str(&s[..i]);
        buf.push_str(&s[i + c.len_utf8()..]);
        f(buf);
    }
}

/// 0 if equal, 1 if one substitution, insertion, deletion or swap of neighbours apart, `None` if further.
pub fn edit_distance_at_most_one(a: &str, b: &str) -> Option<u8> {
    if a == b {
        return Some(0);
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (long, short) = if a.len() >= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let i = long
        .iter()
        .zip(short.iter())
        .take_while(|(x, y)| x == y)
        .count();
    let one = match long.len() - short.len() {
        0 => {
            long[i + 1..] == short[i + 1..]
                || (i + 1 < long.len()
                    && long[i] == short[i + 1]
                    && long[i + 1] == short[i]
                    && long[i + 2..] == short[i + 2..])
        }
        1 => long[i + 1..] == short[i..],
        _ => false,
    };
    one.then_some(1)
}

/// The comparison form for homoglyphs: UTS #39 skeleton, lower-cased, skeleton again, combining accents
/// (U+0300..U+036F, left separate by the skeleton's NFD) removed. `pаypal` (Cyrillic а) -> `paypal`,
/// `g00gle` -> `google`, `microsoft` -> `rnicrosoft`.
pub fn fold(s: &str) -> String {
    if s.is_ascii() {
        let table = ascii_fold_table();
        return s.bytes().map(|b| table[b as usize].as_str()).collect();
    }
    full_fold(s)
}

fn full_fold(s: &str) -> String {
    let skeleton: String = unicode_security::skeleton(s).collect();
    let lower = skeleton.to_lowercase();
    unicode_security::skeleton(&lower)
        .filter(|c| !('\u{300}'..='\u{36f}').contains(c))
        .collect()
}

/// `full_fold` of each ASCII character, computed once: ASCII is what nearly every certificate name is made of.
fn ascii_fold_table() -> &'static [String; 128] {
    static TABLE: OnceLock<[String; 128]> = OnceLock::new();
    TABLE.get_or_init(|| std::array::from_fn(|b| full_fold(&char::from(b as u8).to_string())))
}

#[cfg(test)]
#[path = "lookalike_tests.rs"]
mod tests;
