//! Redis's glob patterns (`KEYS`, `SCAN ... MATCH`): `*`, `?`, `[abc]`, `[^a]`, `[a-z]` and `\`
//! escapes, matched byte by byte as Redis's `stringmatchlen` (util.c) does. Written here rather
//! than taken from a crate because the path-glob crates treat `/` and `[` differently, and a
//! client's pattern must select the same keys it would on Redis.
//!
//! Redis's matcher backtracks on every `*` and so can take exponential time on patterns such as
//! `*a*a*a*a*b`; this one remembers only the last `*` (the classic greedy algorithm), which
//! gives the same answers in time linear in key × pattern.

/// Whether `key` matches `pattern`.
pub fn matches(pattern: &[u8], key: &[u8]) -> bool {
    let (mut p, mut k) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while k < key.len() {
        if pattern.get(p) == Some(&b'*') {
            star = Some((p, k));
            p += 1;
            continue;
        }
        if let Some(next) = pattern.get(p).and_then(|_| one(pattern, p, key[k])) {
            p = next;
            k += 1;
            continue;
        }
        let Some((sp, sk)) = star else {
            return false;
        };
        star = Some((sp, sk + 1));
        p = sp + 1;
        k = sk + 1;
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// If the pattern element at `p` (not `*`) matches `byte`, where the next element starts.
fn one(pattern: &[u8], p: usize, byte: u8) -> Option<usize> {
    match pattern[p] {
        b'?' => Some(p + 1),
        b'[' => class(pattern, p + 1, byte),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == byte).then_some(p + 2),
        c => (c == byte).then_some(p + 1),
    }
}

/// A `[...]` class starting after its `[` at `p`: where the pattern goes on if `byte` is in it.
/// An unclosed class runs to the end of the pattern, as in Redis.
fn class(pattern: &[u8], mut p: usize, byte: u8) -> Option<usize> {
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    let mut found = false;
    while p < pattern.len() && pattern[p] != b']' {
        if pattern[p] == b'\\' && p + 1 < pattern.len() {
            found |= pattern[p + 1] == byte;
            p += 2;
        } else if p + 2 < pattern.len() && pattern[p + 1] == b'-' {
            let (lo, hi) = (
                pattern[p].min(pattern[p + 2]),
                pattern[p].max(pattern[p + 2]),
            );
            found |= (lo..=hi).contains(&byte);
            p += 3;
        } else {
            found |= pattern[p] == byte;
            p += 1;
        }
    }
    let end = (p + 1).min(pattern.len());
    (found != negate).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns_select_as_in_redis() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "anything", true),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h*llo", "heeeello", true),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hallo", true),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hello", false),
            ("user:*:name", "user:12:name", true),
            ("user:*:name", "user:12:mail", false),
            (
                "*a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac",
                false,
            ),
            ("a*", "b", false),
            ("[abc", "b", true),
        ];
        for &(pattern, key, want) in cases {
            assert_eq!(
                matches(pattern.as_bytes(), key.as_bytes()),
                want,
                "{pattern} {key}"
            );
        }
    }
}
