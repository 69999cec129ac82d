//! "Did you mean" suggestions for misspelled names.

/// The candidate closest to `word`, if it is close enough to be a likely typo. Case and
/// `_`/`-` separators are ignored first, so `per_try_timeout` suggests `perTryTimeout`.
pub fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let norm = |s: &str| -> Vec<char> {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect()
    };
    let word_norm = norm(word);
    let allowed = match word_norm.len() {
        0..=3 => 1,
        4..=7 => 2,
        _ => 3,
    };
    let filter = LevenshteinFilter::new(&word_norm);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        // Only a candidate strictly closer than the best so far, and within the allowance,
        // can change the answer; most are ruled out by length or by a cheap lower bound.
        let limit = best.map_or(allowed, |(d, _)| d.saturating_sub(1).min(allowed));
        if best.is_some_and(|(d, _)| d == 0) {
            break;
        }
        let candidate_norm = norm(candidate);
        if candidate_norm.len().abs_diff(word_norm.len()) > limit {
            continue;
        }
        // A transposition is two plain edits, so the plain distance is at most twice ours.
        if filter
            .distance(&candidate_norm)
            .is_some_and(|plain| plain > 2 * limit)
        {
            continue;
        }
        let distance = levenshtein(&word_norm, &candidate_norm);
        if distance <= limit {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Plain edit distance (no transpositions) from one word to many, with Myers's bit-parallel
/// algorithm: one pass of a few word operations per character. Words longer than 64 or
/// with non-ASCII characters get no filter (`distance` answers `None`).
struct LevenshteinFilter {
    peq: Option<Box<[u64; 128]>>,
    len: usize,
}

impl LevenshteinFilter {
    fn new(word: &[char]) -> LevenshteinFilter {
        if word.is_empty() || word.len() > 64 || !word.iter().all(char::is_ascii) {
            return LevenshteinFilter {
                peq: None,
                len: word.len(),
            };
        }
        let mut peq = Box::new([0u64; 128]);
        for (i, c) in word.iter().enumerate() {
            peq[*c as usize] |= 1 << i;
        }
        LevenshteinFilter {
            peq: Some(peq),
            len: word.len(),
        }
    }

    fn distance(&self, text: &[char]) -> Option<usize> {
        let peq = self.peq.as_ref()?;
        let last = 1u64 << (self.len - 1);
        let (mut pv, mut mv, mut score) = (u64::MAX, 0u64, self.len);
        for c in text {
            let eq = if c.is_ascii() { peq[*c as usize] } else { 0 };
            let xv = eq | mv;
            let xh = ((eq & pv).wrapping_add(pv) ^ pv) | eq;
            let mut ph = mv | !(xh | pv);
            let mut mh = pv & xh;
            if ph & last != 0 {
                score += 1;
            } else if mh & last != 0 {
                score -= 1;
            }
            ph = (ph << 1) | 1;
            mh <<= 1;
            pv = mh | !(xv | ph);
            mv = ph & xv;
        }
        Some(score)
    }
}

/// Edit distance with adjacent transpositions counted as one edit.
fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut prev_prev: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev_prev[j - 2] + 1);
            }
        }
        std::mem::swap(&mut prev_prev, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names() {
        let fields = ["retries", "route", "timeout", "fault", "perTryTimeout"];
        assert_eq!(did_you_mean("retires", fields.into_iter()), Some("retries"));
        assert_eq!(
            did_you_mean("per_try_timeout", fields.into_iter()),
            Some("perTryTimeout")
        );
        assert_eq!(did_you_mean("routes", fields.into_iter()), Some("route"));
        assert_eq!(did_you_mean("banana", fields.into_iter()), None);
        assert_eq!(
            did_you_mean("ROUND_ROBBIN", ["ROUND_ROBIN", "RANDOM"].into_iter()),
            Some("ROUND_ROBIN")
        );
        // The first of equally close candidates wins.
        assert_eq!(did_you_mean("ab", ["ac", "ad"].into_iter()), Some("ac"));
        assert_eq!(did_you_mean("ba", ["ab"].into_iter()), Some("ab"));
    }

    /// The bit-parallel filter computes the plain edit distance exactly, and the plain
    /// distance bounds ours from both sides.
    #[test]
    fn the_filter_agrees_with_the_table() {
        fn plain(a: &[char], b: &[char]) -> usize {
            let mut prev: Vec<usize> = (0..=b.len()).collect();
            for i in 1..=a.len() {
                let mut cur = vec![i; b.len() + 1];
                for j in 1..=b.len() {
                    let cost = usize::from(a[i - 1] != b[j - 1]);
                    cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
                }
                prev = cur;
            }
            prev[b.len()]
        }
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5000 {
            let word: Vec<char> = (0..1 + next() % 70)
                .map(|_| (b'a' + (next() % 4) as u8) as char)
                .collect();
            let text: Vec<char> = (0..next() % 70)
                .map(|_| (b'a' + (next() % 4) as u8) as char)
                .collect();
            let ours = levenshtein(&word, &text);
            let exact = plain(&word, &text);
            assert!(ours <= exact && exact <= 2 * ours, "{word:?} {text:?}");
            match LevenshteinFilter::new(&word).distance(&text) {
                Some(d) => assert_eq!(d, exact, "{word:?} {text:?}"),
                None => assert!(word.len() > 64),
            }
        }
    }
}
