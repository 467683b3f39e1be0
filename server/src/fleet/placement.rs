//! Which worker runs an assignment: weighted rendezvous hashing. Every
//! (assignment, worker) pair gets a stable score; the highest wins. A worker
//! joining takes only the assignments it now wins, a worker leaving gives up
//! only its own, and a worker with twice the capacity wins twice as often.

/// A stable 64-bit hash (FNV-1a, then a splitmix64 finaliser for avalanche):
/// identical across processes and releases, unlike `DefaultHasher`.
fn stable_hash(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0xff)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// Score of `worker` (with `capacity`) for the assignment `key`:
/// `capacity / -ln(u)` with `u` uniform in (0, 1) from the hash.
pub fn score(key: &str, worker: &str, capacity: u32) -> f64 {
    let u = (stable_hash(&[key, worker]) as f64 + 0.5) / (u64::MAX as f64 + 1.0);
    f64::from(capacity.max(1)) / -u.ln()
}

/// The winner among `(worker id, capacity)` candidates, if any.
pub fn choose<'a>(key: &str, candidates: impl IntoIterator<Item = (&'a str, u32)>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|(worker, capacity)| (score(key, worker, capacity), worker))
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)))
        .map(|(_, worker)| worker)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn spread(workers: &[(&str, u32)], keys: usize) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for k in 0..keys {
            let winner = choose(&format!("job-{k}"), workers.iter().copied()).unwrap();
            *counts.entry(winner.to_owned()).or_insert(0) += 1;
        }
        counts
    }

    #[test]
    fn balanced_and_weighted() {
        let even = spread(&[("a", 1), ("b", 1), ("c", 1), ("d", 1)], 20_000);
        for (worker, n) in &even {
            assert!((4_500..=5_500).contains(n), "{worker}: {n} of 20000");
        }
        let weighted = spread(&[("a", 1), ("b", 3)], 20_000);
        let share = weighted["b"] as f64 / 20_000.0;
        assert!(
            (0.72..=0.78).contains(&share),
            "capacity 3 of 4 should win ~75%, got {share}"
        );
    }

    #[test]
    fn joining_and_leaving_move_only_their_share() {
        let before: Vec<_> = (0..10_000)
            .map(|k| choose(&format!("k{k}"), [("a", 1), ("b", 1)]).unwrap())
            .collect();
        let after: Vec<_> = (0..10_000)
            .map(|k| choose(&format!("k{k}"), [("a", 1), ("b", 1), ("c", 1)]).unwrap())
            .collect();
        for (old, new) in before.iter().zip(&after) {
            assert!(
                old == new || *new == "c",
                "a key moved between old workers: {old} -> {new}"
            );
        }
        let moved = after.iter().filter(|w| **w == "c").count();
        assert!(
            (3_000..=3_700).contains(&moved),
            "the newcomer takes about a third: {moved}"
        );
        assert_eq!(choose("x", std::iter::empty()), None);
        assert_eq!(stable_hash(&["job", "worker"]), stable_hash(&["job", "worker"]));
        assert_ne!(stable_hash(&["jo", "bworker"]), stable_hash(&["job", "worker"]));
    }
}
