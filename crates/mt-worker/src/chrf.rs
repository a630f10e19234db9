//! chrF, the character n-gram F-score (Popović 2015), computed exactly as sacreBLEU's default
//! `CHRF()` does (sacreBLEU 2.x: character order 6, β = 2, no word n-grams, whitespace removed,
//! case kept), so numbers here compare with published ones.
//!
//! A corpus score is not the mean of sentence scores: n-gram counts are summed over the corpus
//! first ([`ChrfStats`] adds up), then precision and recall are averaged over the orders that
//! have n-grams on both sides, and combined into F-β.

use std::collections::HashMap;
use std::ops::AddAssign;

/// Character n-gram orders, 1 to 6.
pub const CHAR_ORDER: usize = 6;
/// Recall weighs β² = 4 times as much as precision.
pub const BETA: f64 = 2.0;

/// Summed n-gram counts for each order: n-grams in the hypotheses, in the references, and
/// matched (clipped to the smaller count).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChrfStats {
    pub hypothesis: [u64; CHAR_ORDER],
    pub reference: [u64; CHAR_ORDER],
    pub matched: [u64; CHAR_ORDER],
}

impl ChrfStats {
    /// The counts for one hypothesis against one reference.
    pub fn sentence(hypothesis: &str, reference: &str) -> Self {
        let hypothesis: Vec<char> = hypothesis.chars().filter(|c| !c.is_whitespace()).collect();
        let reference: Vec<char> = reference.chars().filter(|c| !c.is_whitespace()).collect();
        let mut stats = Self::default();
        for order in 1..=CHAR_ORDER {
            let hypothesis_ngrams = ngrams(&hypothesis, order);
            let reference_ngrams = ngrams(&reference, order);
            let i = order - 1;
            stats.hypothesis[i] = hypothesis_ngrams.values().sum();
            stats.reference[i] = reference_ngrams.values().sum();
            stats.matched[i] = hypothesis_ngrams
                .iter()
                .map(|(ngram, count)| (*count).min(reference_ngrams.get(ngram).copied().unwrap_or(0)))
                .sum();
        }
        stats
    }

    /// chrF from 0 to 100.
    pub fn score(&self) -> f64 {
        let (mut precision, mut recall, mut orders) = (0.0, 0.0, 0u32);
        for i in 0..CHAR_ORDER {
            // sacreBLEU averages over the orders present on both sides only.
            if self.hypothesis[i] > 0 && self.reference[i] > 0 {
                precision += self.matched[i] as f64 / self.hypothesis[i] as f64;
                recall += self.matched[i] as f64 / self.reference[i] as f64;
                orders += 1;
            }
        }
        if orders == 0 || precision + recall == 0.0 {
            return 0.0;
        }
        let (precision, recall) = (precision / f64::from(orders), recall / f64::from(orders));
        let beta2 = BETA * BETA;
        100.0 * (1.0 + beta2) * precision * recall / (beta2 * precision + recall)
    }
}

impl AddAssign for ChrfStats {
    fn add_assign(&mut self, other: Self) {
        for i in 0..CHAR_ORDER {
            self.hypothesis[i] += other.hypothesis[i];
            self.reference[i] += other.reference[i];
            self.matched[i] += other.matched[i];
        }
    }
}

fn ngrams(chars: &[char], order: usize) -> HashMap<&[char], u64> {
    let mut counts = HashMap::new();
    for ngram in chars.windows(order) {
        *counts.entry(ngram).or_insert(0) += 1;
    }
    counts
}

/// chrF of one hypothesis against one reference.
pub fn sentence_chrf(hypothesis: &str, reference: &str) -> f64 {
    ChrfStats::sentence(hypothesis, reference).score()
}

/// Corpus chrF of (hypothesis, reference) pairs.
pub fn corpus_chrf<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> f64 {
    let mut stats = ChrfStats::default();
    for (hypothesis, reference) in pairs {
        stats += ChrfStats::sentence(hypothesis, reference);
    }
    stats.score()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < 1e-9
    }

    // Expected values worked out by hand below, and equal to sacreBLEU 2.6's
    // `CHRF().sentence_score` / `corpus_score`.

    #[test]
    fn one_character_differs() {
        // abc/abd: 1-grams 2 of 3 match, 2-grams 1 of 2, 3-grams 0 of 1; no longer n-grams.
        // P = R = (2/3 + 1/2 + 0) / 3 = 7/18, and F2 of P = R is P.
        let stats = ChrfStats::sentence("abc", "abd");
        assert_eq!(stats.hypothesis, [3, 2, 1, 0, 0, 0]);
        assert_eq!(stats.matched, [2, 1, 0, 0, 0, 0]);
        assert!(close(stats.score(), 100.0 * 7.0 / 18.0), "{}", stats.score());
    }

    #[test]
    fn shorter_hypothesis() {
        // ab/abc: P = (1 + 1) / 2 = 1 over orders 1-2 (order 3 has no hypothesis n-gram),
        // R = (2/3 + 1/2) / 2 = 7/12; F2 = 5 P R / (4 P + R) = 7/11.
        assert!(close(sentence_chrf("ab", "abc"), 100.0 * 7.0 / 11.0));
    }

    #[test]
    fn corpus_sums_counts_before_averaging() {
        // Orders 1-3: P = (4/5, 2/3, 0), R = (4/6, 2/4, 0); F2 of the averages.
        let (p, r) = ((0.8 + 2.0 / 3.0) / 3.0, (4.0 / 6.0 + 0.5) / 3.0);
        let expected = 100.0 * 5.0 * p * r / (4.0 * p + r);
        let score = corpus_chrf([("abc", "abd"), ("ab", "abc")]);
        assert!(close(score, expected), "{score} vs {expected}");
        assert!(close(score, 40.54765666140073));
    }

    #[test]
    fn sacrebleu_reference_value() {
        let score =
            corpus_chrf([("El gato está en la casa.", "El gato esta en casa."), ("Hola mundo", "Hola, mundo.")]);
        assert!((score - 56.58374033374034).abs() < 1e-9, "{score}");
    }

    #[test]
    fn whitespace_is_ignored_and_case_is_kept() {
        assert!(close(sentence_chrf("a b", "ab"), 100.0));
        assert!(close(sentence_chrf("Same words", "Same words"), 100.0));
        assert!(sentence_chrf("HELLO", "hello") < 1.0);
    }

    #[test]
    fn nothing_in_common_or_empty_scores_zero() {
        assert_eq!(sentence_chrf("xyz", "abc"), 0.0);
        assert_eq!(sentence_chrf("", "abc"), 0.0);
        assert_eq!(sentence_chrf("abc", ""), 0.0);
        assert_eq!(corpus_chrf([]), 0.0);
    }

    #[test]
    fn counts_are_clipped() {
        // "aaaa" has four 1-gram "a"s, the reference one: only one matches.
        let stats = ChrfStats::sentence("aaaa", "a");
        assert_eq!(stats.matched[0], 1);
        assert_eq!(stats.hypothesis[0], 4);
    }
}
