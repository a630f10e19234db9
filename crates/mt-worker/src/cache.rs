//! A bounded least-recently-used cache of translations: IVR prompts and stock phrases repeat
//! all day, and a hit costs a hash lookup instead of a pipeline round trip.

use std::collections::{BTreeMap, HashMap};

/// What a translation depends on: the languages (table codes) and the cleaned source text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub source: &'static str,
    pub target: &'static str,
    pub text: String,
}

/// Holds at most `capacity` translations; the least recently used goes first.
#[derive(Debug)]
pub struct TranslationCache {
    capacity: usize,
    tick: u64,
    entries: HashMap<CacheKey, (String, u64)>,
    by_use: BTreeMap<u64, CacheKey>,
}

impl TranslationCache {
    /// A cache of `capacity` entries; 0 caches nothing.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, tick: 0, entries: HashMap::new(), by_use: BTreeMap::new() }
    }

    /// The translation, if cached; marks it as just used.
    pub fn get(&mut self, key: &CacheKey) -> Option<String> {
        self.tick += 1;
        let tick = self.tick;
        let (translation, used) = self.entries.get_mut(key)?;
        let previous = std::mem::replace(used, tick);
        let translation = translation.clone();
        if let Some(key) = self.by_use.remove(&previous) {
            self.by_use.insert(tick, key);
        }
        Some(translation)
    }

    /// Stores a translation, evicting the least recently used entry when full.
    pub fn insert(&mut self, key: CacheKey, translation: String) {
        if self.capacity == 0 {
            return;
        }
        self.tick += 1;
        if let Some((_, used)) = self.entries.remove(&key) {
            self.by_use.remove(&used);
        }
        while self.entries.len() >= self.capacity {
            let Some((_, oldest)) = self.by_use.pop_first() else { break };
            self.entries.remove(&oldest);
        }
        self.by_use.insert(self.tick, key.clone());
        self.entries.insert(key, (translation, self.tick));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> CacheKey {
        CacheKey { source: "en", target: "es", text: text.to_owned() }
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let mut cache = TranslationCache::new(2);
        cache.insert(key("a"), "A".into());
        cache.insert(key("b"), "B".into());
        assert_eq!(cache.get(&key("a")).as_deref(), Some("A"));
        cache.insert(key("c"), "C".into());
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&key("b")), None, "b was the least recently used");
        assert_eq!(cache.get(&key("a")).as_deref(), Some("A"));
        assert_eq!(cache.get(&key("c")).as_deref(), Some("C"));
    }

    #[test]
    fn keys_include_the_languages() {
        let mut cache = TranslationCache::new(10);
        cache.insert(key("hello"), "hola".into());
        let other = CacheKey { target: "ca", ..key("hello") };
        assert_eq!(cache.get(&other), None);
    }

    #[test]
    fn replacing_an_entry_keeps_one_copy() {
        let mut cache = TranslationCache::new(2);
        cache.insert(key("a"), "A1".into());
        cache.insert(key("a"), "A2".into());
        cache.insert(key("b"), "B".into());
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&key("a")).as_deref(), Some("A2"));
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let mut cache = TranslationCache::new(0);
        cache.insert(key("a"), "A".into());
        assert!(cache.is_empty());
        assert_eq!(cache.get(&key("a")), None);
    }
}
