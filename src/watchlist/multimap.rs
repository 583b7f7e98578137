//! A string-keyed multimap of small ids, built once and then only read.
//!
//! Most keys of a watchlist index carry exactly one id, so instead of a `Vec` per key the ids of one key form a
//! linked chain in a single shared vector: one allocation for the whole map besides the keys themselves. This keeps a
//! 100,000-item list at a few megabytes.

const END: u32 = u32::MAX;

#[derive(Debug, Default)]
pub struct MultiMap {
    /// foldhash, not SipHash: keys come from the watchlist author, so hash flooding is not a concern, and hashing
    /// is most of the cost of a lookup.
    heads: foldhash::HashMap<Box<str>, u32>,
    /// (value, index of the next entry of the same key or `END`).
    chain: Vec<(u32, u32)>,
}

impl MultiMap {
    /// Adds `value` under `key`. Inserting the pair just inserted again is a no-op (one brand's deletion variants
    /// repeat: `google` gives `gogle` twice); other duplicates are kept, as checking would cost O(values) per insert.
    pub fn insert(&mut self, key: &str, value: u32) {
        if self.get(key).next() == Some(value) {
            return;
        }
        let entry = u32::try_from(self.chain.len()).expect("fewer than 4 billion index entries");
        let next = match self.heads.get_mut(key) {
            Some(head) => std::mem::replace(head, entry),
            None => {
                self.heads.insert(key.into(), entry);
                END
            }
        };
        self.chain.push((value, next));
    }

    /// Every value stored under `key`, most recently inserted first.
    pub fn get(&self, key: &str) -> impl Iterator<Item = u32> + '_ {
        let mut at = self.heads.get(key).copied().unwrap_or(END);
        std::iter::from_fn(move || {
            let (value, next) = *self.chain.get(at as usize)?;
            at = next;
            Some(value)
        })
    }

    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_chain_per_key_and_repeats_are_dropped() {
        let mut map = MultiMap::default();
        map.insert("a", 1);
        map.insert("b", 2);
        map.insert("a", 3);
        map.insert("a", 3);
        assert_eq!(map.get("a").collect::<Vec<_>>(), [3, 1]);
        assert_eq!(map.get("b").collect::<Vec<_>>(), [2]);
        assert_eq!(map.get("c").count(), 0);
        assert!(!map.is_empty() && MultiMap::default().is_empty());
    }
}
