//! Near duplicates: images whose perceptual hashes differ in only a few
//! bits. Pairs are found with multi-index hashing (the 64-bit hash split into
//! blocks; two hashes within `t` bits share at least one block exactly when
//! there are more than `t` blocks), so large libraries are not compared
//! pair by pair.

use std::collections::HashMap;

/// Default: at most 10 of 64 bits differ.
pub const DEFAULT_THRESHOLD: u32 = 10;

/// Groups of item indexes (at least two each) whose hashes are within
/// `threshold` bits of another member of the group.
pub fn group(hashes: &[Option<String>], threshold: u32) -> Vec<Vec<usize>> {
    group_where(hashes, threshold, |_, _| true)
}

/// Like [`group`], but a pair also has to pass `alike` (e.g. similar
/// dominant colours: flat images all share one gradient hash).
pub fn group_where(
    hashes: &[Option<String>],
    threshold: u32,
    alike: impl Fn(usize, usize) -> bool,
) -> Vec<Vec<usize>> {
    // An asset without a hash (flat images get none) is never paired.
    let values: Vec<Option<u64>> = hashes
        .iter()
        .map(|h| h.as_deref().and_then(|h| u64::from_str_radix(h, 16).ok()))
        .collect();
    // threshold + 1 blocks: by pigeonhole, a pair within the threshold
    // agrees exactly on at least one block.
    let blocks = (threshold + 1).clamp(1, 16) as u64;
    let width = 64 / blocks;
    let mut parent: Vec<usize> = (0..values.len()).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut tables: Vec<HashMap<u64, Vec<usize>>> = vec![HashMap::new(); blocks as usize];
    for (i, v) in values.iter().enumerate() {
        let Some(v) = v else { continue };
        for b in 0..blocks {
            let shift = b * width;
            let bits = if b == blocks - 1 { 64 - shift } else { width };
            let mask = if bits >= 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            let key = (v >> shift) & mask;
            let bucket = tables[b as usize].entry(key).or_default();
            for &j in bucket.iter() {
                if let Some(c) = values[j]
                    && (v ^ c).count_ones() <= threshold
                    && alike(i, j)
                {
                    let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
                    if ri != rj {
                        parent[ri] = rj;
                    }
                }
            }
            bucket.push(i);
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, v) in values.iter().enumerate() {
        if v.is_some() {
            let r = find(&mut parent, i);
            groups.entry(r).or_default().push(i);
        }
    }
    let mut out: Vec<Vec<usize>> = groups.into_values().filter(|g| g.len() > 1).collect();
    out.iter_mut().for_each(|g| g.sort_unstable());
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: u64) -> Option<String> {
        Some(format!("{v:016x}"))
    }

    #[test]
    fn close_hashes_group_and_far_ones_do_not() {
        let base = 0x0123_4567_89ab_cdefu64;
        let hashes = vec![
            h(base),
            h(base ^ 0b1011),        // 3 bits away
            h(!base),                // far
            h(base ^ (0b111 << 40)), // 3 bits away
            None,
        ];
        assert_eq!(group(&hashes, 10), vec![vec![0, 1, 3]]);
        assert!(group(&hashes, 2).is_empty());
    }

    #[test]
    fn assets_without_a_hash_are_never_paired() {
        let hashes = vec![None, None, h(0x0f0f), None, h(0x0f0e)];
        // Only the two hashed ones, one bit apart, form a group.
        assert_eq!(group(&hashes, 10), vec![vec![2, 4]]);
    }

    #[test]
    fn matches_a_brute_force_search_on_random_hashes() {
        // Deterministic pseudo-random hashes with planted near pairs.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut values = Vec::new();
        for _ in 0..300 {
            let v = next();
            values.push(v);
            if v % 3 == 0 {
                values.push(v ^ (next() & 0x0101_0101));
            }
        }
        let hashes: Vec<Option<String>> = values.iter().map(|v| h(*v)).collect();
        let fast = group(&hashes, 8);
        // Brute force union-find for comparison.
        let n = values.len();
        let mut parent: Vec<usize> = (0..n).collect();
        fn find(p: &mut [usize], mut i: usize) -> usize {
            while p[i] != i {
                i = p[i];
            }
            i
        }
        for i in 0..n {
            for j in 0..i {
                if (values[i] ^ values[j]).count_ones() <= 8 {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    if a != b {
                        parent[a] = b;
                    }
                }
            }
        }
        let mut slow: HashMap<usize, Vec<usize>> = HashMap::new();
        for i in 0..n {
            let r = find(&mut parent, i);
            slow.entry(r).or_default().push(i);
        }
        let mut slow: Vec<Vec<usize>> = slow.into_values().filter(|g| g.len() > 1).collect();
        slow.sort();
        assert_eq!(fast, slow);
        assert!(!fast.is_empty());
    }
}
