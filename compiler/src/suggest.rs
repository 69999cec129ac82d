//! "Did you mean" suggestions for misspelled names.

/// The candidate closest to `word`, if it is close enough to be a likely typo. Case and
/// `_`/`-` separators are ignored first, so `per_try_timeout` suggests `perTryTimeout`.
pub fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect()
    };
    let word_norm = norm(word);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = levenshtein(&word_norm, &norm(candidate));
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    let (distance, candidate) = best?;
    let allowed = match word_norm.chars().count() {
        0..=3 => 1,
        4..=7 => 2,
        _ => 3,
    };
    (distance <= allowed).then_some(candidate)
}

/// Edit distance with adjacent transpositions counted as one edit.
fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
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
    }
}
