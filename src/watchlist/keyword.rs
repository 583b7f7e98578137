//! `~keyword` items: one Aho-Corasick scan per name finds both plain keyword matches and homoglyph look-alikes.
//!
//! The automaton holds the *skeletons* of the keywords (see `lookalike::fold`) and runs over the skeleton of the
//! name. Folding maps each character on its own, so a name containing a keyword also contains its skeleton: every
//! plain match is among the hits. Each hit is then checked against the plain texts: if the keyword itself occurs in
//! the ASCII or Unicode form of the name it is a `keyword` match, otherwise the name only looks like it
//! (`pаypal` with a Cyrillic а, `paypa1`) and it is a `lookalike` (for items with look-alike detection on).
//! One scan instead of two matters: with thousands of keywords the automaton does not fit in the CPU cache.

use aho_corasick::AhoCorasick;

use super::lookalike::{HOMOGLYPH_MIN_CHARS, ascii_fold_table, fold};

#[derive(Debug)]
struct Entry {
    item: u32,
    keyword: String,
    /// Brand id for look-alike reports, `None` with `lookalike=off` or a keyword too short.
    brand: Option<u32>,
}

#[derive(Debug, Default)]
pub struct KeywordIndex {
    automaton: Option<AhoCorasick>,
    /// Pattern i of the automaton (a distinct skeleton) belongs to the keywords `entries[i]`.
    entries: Vec<Vec<Entry>>,
    /// With few skeletons (up to [`ASCII_NEEDS_MAX`]): for each, one set of ASCII bytes per character of it, the
    /// bytes whose skeleton holds that character. An ASCII name whose bytes miss one set of every skeleton cannot
    /// hold any skeleton in its own, and is neither folded nor scanned (see [`KeywordIndex::may_occur_in_ascii`]).
    ascii_needs: Option<Vec<Vec<u64>>>,
}

/// Each byte's bit in a 64-bit byte set: the bytes host names are made of (`a`–`z`, `0`–`9`, `-`, `.`, `_`, `*`)
/// have one each, every other byte shares the last one. Sets built with it are supersets of the exact sets, which
/// is all a prefilter needs, and a name's set is one table lookup per byte.
static BYTE_BITS: [u64; 256] = {
    let mut bits = [1u64 << 63; 256];
    let mut i = 0;
    while i < 26 {
        bits[b'a' as usize + i] = 1 << i;
        i += 1;
    }
    let mut i = 0;
    while i < 10 {
        bits[b'0' as usize + i] = 1 << (26 + i);
        i += 1;
    }
    bits[b'-' as usize] = 1 << 36;
    bits[b'.' as usize] = 1 << 37;
    bits[b'_' as usize] = 1 << 38;
    bits[b'*' as usize] = 1 << 39;
    bits
};

/// The [`BYTE_BITS`] set of the bytes of `s`.
fn byte_set(s: &[u8]) -> u64 {
    s.iter().fold(0, |set, &b| set | BYTE_BITS[usize::from(b)])
}

/// Up to this many distinct skeletons, names are prefiltered by [`KeywordIndex::ascii_needs`].
const ASCII_NEEDS_MAX: usize = 64;

/// One hit: the item, and the brand if it is a look-alike rather than a plain match.
pub type KeywordHit = (u32, Option<u32>);

impl KeywordIndex {
    /// `keywords`: (item id, keyword in Unicode form, brand id if look-alikes are wanted).
    pub fn build(keywords: Vec<(u32, String, Option<u32>)>) -> KeywordIndex {
        let mut patterns: Vec<String> = Vec::new();
        let mut slots: foldhash::HashMap<String, usize> = Default::default();
        let mut entries: Vec<Vec<Entry>> = Vec::new();
        for (item, keyword, brand) in keywords {
            let skeleton = fold(&keyword);
            let slot = *slots.entry(skeleton.clone()).or_insert_with(|| {
                patterns.push(skeleton);
                entries.push(Vec::new());
                patterns.len() - 1
            });
            let brand = brand.filter(|_| keyword.chars().count() >= HOMOGLYPH_MIN_CHARS);
            entries[slot].push(Entry {
                item,
                keyword,
                brand,
            });
        }
        let ascii_needs = (patterns.len() <= ASCII_NEEDS_MAX).then(|| {
            let table = ascii_fold_table();
            patterns
                .iter()
                .map(|skeleton| {
                    let mut chars: Vec<char> = skeleton.chars().collect();
                    chars.sort_unstable();
                    chars.dedup();
                    chars
                        .iter()
                        .map(|&c| {
                            (0..128u8)
                                .filter(|&b| table[usize::from(b)].contains(c))
                                .fold(0, |set, b| set | BYTE_BITS[usize::from(b)])
                        })
                        .collect()
                })
                .collect()
        });
        let automaton = (!patterns.is_empty()).then(|| {
            AhoCorasick::builder()
                .build(&patterns)
                .expect("keyword skeletons are short literals")
        });
        KeywordIndex {
            automaton,
            entries,
            ascii_needs,
        }
    }

    /// False when the ASCII `name` cannot hold a keyword's skeleton in its own: some character of every skeleton
    /// comes from no byte of the name (ASCII folds byte by byte). True when it may, or when there are too many
    /// keywords to tell cheaply.
    pub fn may_occur_in_ascii(&self, name: &str) -> bool {
        let Some(needs) = &self.ascii_needs else {
            return true;
        };
        let present = byte_set(name.as_bytes());
        needs
            .iter()
            .any(|sets| sets.iter().all(|&set| present & set != 0))
    }

    pub fn is_empty(&self) -> bool {
        self.automaton.is_none()
    }

    /// Searches `folded` (the skeleton of `ascii` or of `unicode`); plain matches are judged on both forms.
    /// `lookalikes` is false for names that are genuine (under a domain the watchlist names).
    pub fn search(
        &self,
        folded: &str,
        ascii: &str,
        unicode: &str,
        lookalikes: bool,
        out: &mut Vec<KeywordHit>,
    ) {
        let Some(automaton) = &self.automaton else {
            return;
        };
        for hit in automaton.find_overlapping_iter(folded) {
            for entry in &self.entries[hit.pattern().as_usize()] {
                let plain = ascii.contains(&entry.keyword)
                    || (unicode != ascii && unicode.contains(&entry.keyword));
                if plain {
                    out.push((entry.item, None));
                } else if let Some(brand) = entry.brand.filter(|_| lookalikes) {
                    out.push((entry.item, Some(brand)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(index: &KeywordIndex, ascii: &str, unicode: &str) -> Vec<KeywordHit> {
        let mut out = Vec::new();
        index.search(&fold(ascii), ascii, unicode, true, &mut out);
        if unicode != ascii {
            index.search(&fold(unicode), ascii, unicode, true, &mut out);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    #[test]
    fn plain_matches_and_homoglyphs_from_one_scan() {
        let index = KeywordIndex::build(vec![
            (0, "paypal".into(), Some(10)),
            (1, "microsoft".into(), Some(11)),
            (2, "bücher".into(), None),
            (3, "ab".into(), Some(13)),
        ]);
        assert_eq!(
            search(&index, "login.paypal.example", "login.paypal.example"),
            [(0, None)]
        );
        assert_eq!(
            search(&index, "paypa1-login.example", "paypa1-login.example"),
            [(0, Some(10))]
        );
        assert_eq!(
            search(&index, "rnicrosoft.example", "rnicrosoft.example"),
            [(1, Some(11))]
        );
        assert_eq!(
            search(&index, "microsoft.example", "microsoft.example"),
            [(1, None)]
        );
        // Cyrillic а in paypal; the plain keyword is in neither form.
        assert_eq!(
            search(&index, "xn--pypal-4ve.com", "pаypal.com"),
            [(0, Some(10))]
        );
        // A Unicode keyword found in the decoded form; look-alikes off for it.
        assert_eq!(search(&index, "xn--bcher-kva.de", "bücher.de"), [(2, None)]);
        assert_eq!(search(&index, "bucher.de", "bucher.de"), []);
        // Too short for homoglyphs (Cyrillic а), but plain matches still count.
        assert_eq!(search(&index, "xn--b-7sb.example", "аb.example"), []);
        assert_eq!(search(&index, "lab.example", "lab.example"), [(3, None)]);
    }

    #[test]
    fn genuine_names_get_plain_matches_only() {
        let index = KeywordIndex::build(vec![(0, "paypal".into(), Some(0))]);
        let mut out = Vec::new();
        index.search("paypal.corn", "paypa1.com", "paypa1.com", false, &mut out);
        assert!(out.is_empty());
    }

    /// The ASCII prefilter only rules out names whose skeleton holds no keyword skeleton: every name with a hit
    /// passes it, and it does rule out the unrelated ones.
    #[test]
    fn the_ascii_prefilter_keeps_every_name_with_a_hit() {
        let index = KeywordIndex::build(vec![
            (0, "paypal".into(), Some(10)),
            (1, "microsoft".into(), Some(11)),
            (2, "bücher".into(), None),
            (3, "ab".into(), Some(13)),
        ]);
        let mut hits = 0;
        for name in [
            "login.paypal.example",
            "paypa1-login.example",
            "pavpal.example",
            "rnicrosoft.example",
            "microsoft.example",
            "rn1crosoft.example",
            "lab.example",
            "a-b.example",
            "bucher.de",
            "www.google.com",
            "mail.example.org",
            "x.y.z",
        ] {
            let found = search(&index, name, name);
            hits += usize::from(!found.is_empty());
            if !found.is_empty() {
                assert!(index.may_occur_in_ascii(name), "{name}: {found:?}");
            }
        }
        assert!(hits >= 5, "{hits}");
        assert!(!index.may_occur_in_ascii("www.google.com"));
        assert!(!index.may_occur_in_ascii("x.y.z"));
        // `bücher` folds to ASCII (`bucher`): an ASCII name may hold it. `例子` holds characters no ASCII byte
        // folds to: it never makes an ASCII name pass.
        assert!(index.may_occur_in_ascii("bucher.de"));
        // Bytes outside host names share one bit of the set: a name of them passes wherever one of them may fold
        // into a skeleton (an upper-case name, before normalisation), never the other way round.
        assert!(index.may_occur_in_ascii("LOGIN.PAYPAL.EXAMPLE"));
        assert!(!search(&index, "LOGIN.PAYPAL.EXAMPLE", "LOGIN.PAYPAL.EXAMPLE").is_empty());
        let unicode_only = KeywordIndex::build(vec![(2, "例子".into(), None)]);
        assert!(!unicode_only.may_occur_in_ascii("xn--fsqu00a.example"));
        // Many keywords: no prefilter, every name is scanned.
        let many = KeywordIndex::build(
            (0..=ASCII_NEEDS_MAX as u32)
                .map(|i| (i, format!("kw{i}"), None))
                .collect(),
        );
        assert!(many.may_occur_in_ascii("x.y.z"));
    }
}
