//! Look-alike detection: names that imitate a watched brand without being it.
//!
//! A brand is the keyword of a `~keyword` item, or the first label of a domain item that is itself a registrable
//! domain (`example.com` -> `example`). A certificate name imitates a brand when one of its *tokens* (in Unicode
//! form: the registrable label and its '-'-separated parts for domain brands; every label left of the public suffix
//! and its parts for keywords) is
//! - a typosquat: one character changed, added, removed or two neighbours swapped (brands of 5+ characters);
//! - a homoglyph: a different string with the same UTS #39 "skeleton" (Cyrillic `а` for `a`, `rn` for `m`, `0` for
//!   `o`), accents ignored (brands of 3+ characters);
//! - for domain brands, the brand itself under another registrable domain (`example.net`, `example-login.com`,
//!   `www.example.co`; brands of 4+ characters).
//!
//! Keywords are also looked for inside labels through their skeleton (see `keyword.rs`), which finds
//! `secure-pаypal1ogin` where the plain keyword search finds nothing.
//! Names under any registrable domain the watchlist itself names are never look-alikes.
//!
//! Speed: typosquats use a deletion neighbourhood (`typo.rs`); a token costs one hash lookup per character, whatever
//! the number of brands. Skeletons come from the
//! `unicode-security` crate (the Unicode confusables table); ASCII goes through a 128-entry table derived from it.

use std::sync::OnceLock;

use super::multimap::MultiMap;
use super::name::{SuffixSplit, label_to_unicode, labels};
use super::typo::{Hashes, TypoIndex, edit_distance_at_most_one};

const TYPO_MIN_CHARS: usize = 5;
const EXACT_MIN_CHARS: usize = 4;
/// Shortest brand reported as a homoglyph look-alike (shorter ones are too easily imitated by chance).
pub const HOMOGLYPH_MIN_CHARS: usize = 3;

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
    /// Brand labels and their one-character deletions (hashed) -> brand ids.
    neighbours: TypoIndex,
    /// Skeletons of domain-brand labels -> brand ids.
    skeletons: MultiMap,
    /// Registrable domains the watchlist names: their names are genuine, never look-alikes.
    own: foldhash::HashSet<String>,
    /// Bit `n` (n < 64; bit 63 also stands for every longer length) is set when some brand in `neighbours` has `n`
    /// characters. A token is within one edit of a brand only if their lengths differ by at most one, so most
    /// tokens of the firehose (`www`, `mail`, a 20-character host label) are ruled out before any hashing.
    lengths: u64,
    /// With few brands in `neighbours` (up to [`MASK_SCAN`]): each one's characters as a set ([`char_mask`]), its
    /// length in characters and its id. A token within one edit of a brand has at most one character the brand
    /// lacks and lacks at most one of the brand's, so two bit operations per brand rule out nearly every token
    /// without the token's deletion hashes (a dozen hash lookups).
    masks: Option<Vec<(u64, usize, u32)>>,
    /// Bit `b` is set when some skeleton in `skeletons` starts with the ASCII byte `b`; `skeleton_starts_wide`
    /// when one starts otherwise. An ASCII token's skeleton starts with its first character's, so most tokens are
    /// never folded.
    skeleton_starts: u128,
    skeleton_starts_wide: bool,
}

/// Up to this many typo brands, [`LookalikeIndex::masks`] is scanned instead of hashing deletions.
const MASK_SCAN: usize = 32;

/// The characters of `s` as a set of bits: `a`–`z`, `0`–`9`, `-` and `_` have their own, other characters share.
/// Any mapping of characters to bits keeps the one-edit test of [`LookalikeIndex::masks`] exact in what it rules
/// out; shared bits only let more tokens through to the exact check.
fn char_mask(s: &str) -> u64 {
    s.chars().fold(0, |mask, c| {
        let bit = match c {
            'a'..='z' => c as u32 - 'a' as u32,
            '0'..='9' => 26 + (c as u32 - '0' as u32),
            '-' => 36,
            '_' => 37,
            _ => 38 + c as u32 % 26,
        };
        mask | 1 << bit
    })
}

/// The bit of [`LookalikeIndex::lengths`] for a length in characters.
fn length_bit(chars: usize) -> u64 {
    1u64 << chars.min(63)
}

impl LookalikeIndex {
    /// `own` are the registrable domains of every domain, exact and wildcard item.
    pub fn build(brands: Vec<Brand>, own: foldhash::HashSet<String>) -> LookalikeIndex {
        let mut index = LookalikeIndex {
            own,
            ..LookalikeIndex::default()
        };
        let mut hashes = Hashes::default();
        index
            .neighbours
            .reserve(brands.iter().map(|b| b.label.len() + 1).sum());
        // Collected until there are too many for a scan to beat the deletion hashes.
        let mut masks = Vec::new();
        for (id, brand) in brands.iter().enumerate() {
            let id = id as u32;
            let chars = brand.label.chars().count();
            if chars >= EXACT_MIN_CHARS {
                let with_deletions = chars >= TYPO_MIN_CHARS;
                index
                    .neighbours
                    .insert(&brand.label, id, with_deletions, &mut hashes);
                index.lengths |= length_bit(chars);
                if masks.len() <= MASK_SCAN {
                    masks.push((char_mask(&brand.label), chars, id));
                }
            }
            // Keywords' homoglyphs are found inside labels by the keyword automaton (`keyword.rs`).
            if chars >= HOMOGLYPH_MIN_CHARS && !brand.is_keyword {
                let skeleton = fold(&brand.label);
                match skeleton.as_bytes().first() {
                    Some(&b) if b.is_ascii() => index.skeleton_starts |= 1u128 << b,
                    _ => index.skeleton_starts_wide = true,
                }
                index.skeletons.insert(&skeleton, id);
            }
        }
        index.masks = (masks.len() <= MASK_SCAN).then_some(masks);
        index.brands = brands;
        index
    }

    pub fn brand(&self, id: u32) -> &Brand {
        &self.brands[id as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.brands.is_empty()
    }

    /// Whether the watchlist names any domain of its own (else no name is genuine).
    pub fn has_own_domains(&self) -> bool {
        !self.own.is_empty()
    }

    /// True for names under a registrable domain the watchlist names: never look-alikes. `split` is the name
    /// (ASCII, lower case, without a leading `*.`) cut at its public suffix ([`super::name::split_public_suffix`]).
    pub fn is_genuine(&self, split: Option<SuffixSplit<'_>>) -> bool {
        split.is_some_and(|s| self.own.contains(s.registrable))
    }

    /// Brand ids whose label the name cut as `split` imitates; may repeat an id. The caller checks
    /// [`LookalikeIndex::is_genuine`] first.
    pub fn find(
        &self,
        split: Option<SuffixSplit<'_>>,
        scratch: &mut Scratch,
        found: &mut Vec<u32>,
    ) {
        if self.brands.is_empty() {
            return;
        }
        let Some(SuffixSplit { head, .. }) = split else {
            return;
        };
        let last = head.bytes().filter(|&b| b == b'.').count();
        for (i, label) in labels(head).enumerate() {
            // Domain brands are compared with the registrable label only: `mail.com` as a brand must not make every
            // `mail.<anything>` a look-alike. Keywords are looked for in every label.
            let scope = if i == last {
                Scope::AllBrands
            } else {
                Scope::Keywords
            };
            let label = label_to_unicode(label);
            self.check_token(&label, scope, scratch, found);
            // A plain loop: labels are too short for a SIMD search's set-up to pay.
            if label.bytes().any(|b| b == b'-') {
                for part in label.split('-').filter(|p| !p.is_empty()) {
                    self.check_token(part, scope, scratch, found);
                }
            }
        }
    }

    fn check_token(&self, token: &str, scope: Scope, scratch: &mut Scratch, found: &mut Vec<u32>) {
        // Shorter tokens cannot be within one edit of a brand long enough for the typo or exact checks, nor can
        // tokens whose length is more than one away from every brand's.
        let chars = if token.is_ascii() {
            token.len()
        } else {
            token.chars().count()
        };
        let near = length_bit(chars.saturating_sub(1)) | length_bit(chars) | length_bit(chars + 1);
        if chars >= EXACT_MIN_CHARS && self.lengths & near != 0 {
            self.check_neighbours(token, scope, scratch, found);
        }
        if scope == Scope::AllBrands
            && !self.skeletons.is_empty()
            && (!token.is_ascii() || self.may_fold_to_skeleton(token))
        {
            fold_into(token, &mut scratch.folded);
            for id in self.skeletons.get(&scratch.folded) {
                if self.brands[id as usize].label != token {
                    found.push(id);
                }
            }
        }
    }

    /// Whether the skeleton of `token` (ASCII) may be one of `skeletons`, by its first byte.
    fn may_fold_to_skeleton(&self, token: &str) -> bool {
        let Some(&first) = token.as_bytes().first() else {
            return true;
        };
        match ascii_fold_table()[usize::from(first & 0x7f)]
            .as_bytes()
            .first()
        {
            Some(&b) if b.is_ascii() && !self.skeleton_starts_wide => {
                self.skeleton_starts & (1u128 << b) != 0
            }
            _ => true,
        }
    }

    fn check_neighbours(
        &self,
        token: &str,
        scope: Scope,
        scratch: &mut Scratch,
        found: &mut Vec<u32>,
    ) {
        let Scratch {
            hashes, candidates, ..
        } = scratch;
        candidates.clear();
        match &self.masks {
            Some(masks) => {
                let (mask, chars) = (char_mask(token), token.chars().count());
                candidates.extend(
                    masks
                        .iter()
                        .filter(|&&(m, c, _)| {
                            c.abs_diff(chars) <= 1
                                && (mask & !m).count_ones() <= 1
                                && (m & !mask).count_ones() <= 1
                        })
                        .map(|&(_, _, id)| id),
                );
            }
            None => self.neighbours.candidates(token, hashes, candidates),
        }
        for &id in candidates.iter() {
            let brand = &self.brands[id as usize];
            if scope == Scope::Keywords && !brand.is_keyword {
                continue;
            }
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

/// Which brands a token is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The registrable label (`example` in `www.example.co.uk`) and its '-' parts.
    AllBrands,
    /// Other labels.
    Keywords,
}

/// Buffers reused across tokens and names.
#[derive(Debug, Default)]
pub struct Scratch {
    hashes: Hashes,
    candidates: Vec<u32>,
    folded: String,
}

/// The comparison form for homoglyphs: UTS #39 skeleton, lower-cased, skeleton again, combining accents
/// (U+0300..U+036F, left separate by the skeleton's NFD) removed. `pаypal` (Cyrillic а) -> `paypal`,
/// `g00gle` -> `google`, `microsoft` -> `rnicrosoft`.
pub fn fold(s: &str) -> String {
    let mut out = String::new();
    fold_into(s, &mut out);
    out
}

/// [`fold`] into a reused buffer.
pub fn fold_into(s: &str, out: &mut String) {
    out.clear();
    if s.is_ascii() {
        let (table, single) = (ascii_fold_table(), ascii_fold_single());
        // SAFETY: only whole UTF-8 sequences are appended: single ASCII bytes and the bytes of whole strings.
        let out = unsafe { out.as_mut_vec() };
        out.reserve(s.len());
        for b in s.bytes() {
            // Most ASCII characters fold to one ASCII character: a byte push, not a string copy.
            match single[usize::from(b)] {
                0 => out.extend_from_slice(table[usize::from(b)].as_bytes()),
                one => out.push(one),
            }
        }
    } else {
        out.push_str(&full_fold(s));
    }
}

fn full_fold(s: &str) -> String {
    let skeleton: String = unicode_security::skeleton(s).collect();
    let lower = skeleton.to_lowercase();
    unicode_security::skeleton(&lower)
        .filter(|c| !('\u{300}'..='\u{36f}').contains(c))
        .collect()
}

/// `full_fold` of each ASCII character, computed once: ASCII is what nearly every certificate name is made of.
/// For each ASCII byte, the one ASCII byte it folds to, or 0 when its fold is something else (see
/// [`ascii_fold_table`]).
fn ascii_fold_single() -> &'static [u8; 128] {
    static SINGLE: OnceLock<[u8; 128]> = OnceLock::new();
    SINGLE.get_or_init(|| {
        let table = ascii_fold_table();
        std::array::from_fn(|b| match table[b].as_bytes() {
            &[one] if one.is_ascii() && one != 0 => one,
            _ => 0,
        })
    })
}

pub(super) fn ascii_fold_table() -> &'static [String; 128] {
    static TABLE: OnceLock<[String; 128]> = OnceLock::new();
    TABLE.get_or_init(|| std::array::from_fn(|b| full_fold(&char::from(b as u8).to_string())))
}

#[cfg(test)]
#[path = "lookalike_tests.rs"]
mod tests;
