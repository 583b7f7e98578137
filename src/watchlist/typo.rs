//! Typosquat candidates: the brands within one edit of a token, by a hashed deletion neighbourhood.
//!
//! Two strings are one change, insertion, deletion or neighbour swap apart only if one of them minus one character
//! equals the other, or both minus one character are equal. So each brand is stored under the hash of itself and of
//! each of its one-character deletions, and a token is looked up under the hash of itself and of each of its
//! deletions: length + 1 lookups per token, whatever the number of brands. Candidates are then verified exactly
//! ([`edit_distance_at_most_one`]), which also makes hash collisions harmless.
//!
//! Hashes rather than strings are stored: no allocation per key (a 100,000-brand list has about a million keys),
//! and the deletion hashes of a token come from its prefix and suffix hashes without building the strings.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Odd multiplier of the polynomial string hash (arithmetic mod 2^64).
const BASE: u64 = 0x100_0000_01b3;
const END: u32 = u32::MAX;

#[derive(Debug, Default)]
pub struct TypoIndex {
    /// High half of the mixed hash -> first entry of its chain in `chain`. 32 bits are plenty: a collision only
    /// adds a candidate that the exact check then drops, and they halve the table.
    heads: HashMap<u32, u32, BuildHasherDefault<Premixed>>,
    /// (brand id, next entry or `END`).
    chain: Vec<(u32, u32)>,
}

impl TypoIndex {
    /// Room for brands totalling `chars` characters, so that building does not keep doubling the table.
    pub fn reserve(&mut self, chars: usize) {
        self.heads.reserve(chars);
        self.chain.reserve(chars);
    }

    /// Stores `brand` under its own hash and, if `with_deletions`, under its deletions' hashes.
    pub fn insert(&mut self, brand: &str, id: u32, with_deletions: bool, hashes: &mut Hashes) {
        hashes.compute(brand, with_deletions);
        for &key in hashes.keys.iter() {
            self.insert_key(key, id);
        }
    }

    fn insert_key(&mut self, key: u32, id: u32) {
        let entry = u32::try_from(self.chain.len()).expect("fewer than 4 billion typo keys");
        let next = match self.heads.get(&key) {
            Some(&head) if self.chain[head as usize].0 == id => return, // `google` -> `gogle` twice
            Some(&head) => head,
            None => END,
        };
        self.heads.insert(key, entry);
        self.chain.push((id, next));
    }

    /// Appends the ids of brands that may be within one edit of `token` (with repeats and false positives).
    pub fn candidates(&self, token: &str, hashes: &mut Hashes, out: &mut Vec<u32>) {
        hashes.compute(token, true);
        for key in &hashes.keys {
            let mut at = self.heads.get(key).copied().unwrap_or(END);
            while let Some(&(id, next)) = self.chain.get(at as usize) {
                out.push(id);
                at = next;
            }
        }
    }
}

/// Scratch space for the hashes of a string and its deletions, reused across calls.
#[derive(Debug, Default)]
pub struct Hashes {
    chars: Vec<u64>,
    prefix: Vec<u64>,
    keys: Vec<u32>,
}

impl Hashes {
    /// `keys` = the mixed hash of `s`, then (if `deletions`) of `s` minus each character in turn.
    fn compute(&mut self, s: &str, deletions: bool) {
        self.chars.clear();
        self.chars.extend(s.chars().map(|c| u64::from(c) + 1));
        let n = self.chars.len();
        self.prefix.clear();
        self.prefix.push(0);
        for &c in &self.chars {
            let last = *self.prefix.last().expect("starts with 0");
            self.prefix.push(last.wrapping_mul(BASE).wrapping_add(c));
        }
        self.keys.clear();
        self.keys.push(mix(self.prefix[n], n));
        if !deletions || n == 0 {
            return;
        }
        // H(prefix ++ suffix) = H(prefix) * BASE^len(suffix) + H(suffix); suffixes are built right to left.
        let (mut suffix, mut power) = (0u64, 1u64);
        for i in (0..n).rev() {
            self.keys.push(mix(
                self.prefix[i].wrapping_mul(power).wrapping_add(suffix),
                n - 1,
            ));
            suffix = self.chars[i].wrapping_mul(power).wrapping_add(suffix);
            power = power.wrapping_mul(BASE);
        }
    }
}

/// Folds the length into the polynomial hash and mixes all bits into the 32 kept (splitmix64 finaliser).
fn mix(hash: u64, len: usize) -> u32 {
    (splitmix(hash ^ (len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 32) as u32
}

fn splitmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A `Hasher` for keys that are already well-mixed: spreads a `u32` over 64 bits (hash tables take the bucket from
/// the low bits and a tag from the high ones) with one multiplication.
#[derive(Debug, Default, Clone, Copy)]
pub struct Premixed(u64);

impl Hasher for Premixed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u32` is used by `HashMap<u32, _>`; keep anything else correct, if slow.
        for &b in bytes {
            self.0 = splitmix(self.0 ^ u64::from(b));
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.0 = u64::from(value).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// 0 if equal, 1 if one change, insertion, deletion or swap of neighbours apart, `None` if further.
pub fn edit_distance_at_most_one(a: &str, b: &str) -> Option<u8> {
    if a == b {
        return Some(0);
    }
    let one = if a.is_ascii() && b.is_ascii() {
        within_one_edit(a.as_bytes(), b.as_bytes())
    } else {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        within_one_edit(&a, &b)
    };
    one.then_some(1)
}

/// Whether two different sequences are one change, insertion, deletion or swap of neighbours apart.
fn within_one_edit<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    let i = long
        .iter()
        .zip(short.iter())
        .take_while(|(x, y)| x == y)
        .count();
    match long.len() - short.len() {
        0 => {
            long[i + 1..] == short[i + 1..]
                || (i + 1 < long.len()
                    && long[i] == short[i + 1]
                    && long[i + 1] == short[i]
                    && long[i + 2..] == short[i + 2..])
        }
        1 => long[i + 1..] == short[i..],
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &str) -> Vec<u32> {
        let mut hashes = Hashes::default();
        hashes.compute(s, true);
        hashes.keys.clone()
    }

    fn whole(s: &str) -> u32 {
        let mut hashes = Hashes::default();
        hashes.compute(s, false);
        hashes.keys[0]
    }

    #[test]
    fn deletion_hashes_equal_the_hashes_of_the_deleted_strings() {
        // Right to left: "abcd" minus d, minus c, minus b, minus a.
        assert_eq!(
            keys("abcd"),
            [
                whole("abcd"),
                whole("abc"),
                whole("abd"),
                whole("acd"),
                whole("bcd")
            ]
        );
        assert_eq!(keys("pаy")[1..], [whole("pа"), whole("py"), whole("аy")]); // Cyrillic а
        assert_ne!(whole("ab"), whole("ba"));
        assert_eq!(keys(""), [whole("")]);
    }

    #[test]
    fn candidates_include_every_brand_within_one_edit() {
        let mut index = TypoIndex::default();
        let mut hashes = Hashes::default();
        index.insert("paypal", 0, true, &mut hashes);
        index.insert("google", 1, true, &mut hashes);
        for (token, brand) in [
            ("paypal", 0),
            ("paypai", 0),
            ("paypall", 0),
            ("paypl", 0),
            ("papyal", 0),
            ("gogle", 1),
        ] {
            let mut out = Vec::new();
            index.candidates(token, &mut hashes, &mut out);
            assert!(out.contains(&brand), "{token}");
        }
        let mut out = Vec::new();
        index.candidates("amazon", &mut hashes, &mut out);
        assert!(out.is_empty());
        // `google` minus either `o` is stored once.
        assert_eq!(index.chain.iter().filter(|(id, _)| *id == 1).count(), 6);
    }

    #[test]
    fn edit_distance_is_capped_at_one() {
        assert_eq!(edit_distance_at_most_one("paypal", "paypal"), Some(0));
        assert_eq!(edit_distance_at_most_one("paypal", "paypai"), Some(1)); // changed
        assert_eq!(edit_distance_at_most_one("paypal", "paypall"), Some(1)); // added
        assert_eq!(edit_distance_at_most_one("paypal", "paypl"), Some(1)); // removed
        assert_eq!(edit_distance_at_most_one("paypal", "papyal"), Some(1)); // swapped
        assert_eq!(edit_distance_at_most_one("paypal", "pyapla"), None);
        assert_eq!(edit_distance_at_most_one("abc", "bcd"), None);
        assert_eq!(edit_distance_at_most_one("paypal", "paypalxx"), None);
        assert_eq!(edit_distance_at_most_one("pаypal", "paypal"), Some(1)); // one Cyrillic char is one change
    }
}
