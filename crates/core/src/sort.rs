//! One small stable sort for the whole crate. Every `slice::sort_by` call compiles its own copy
//! of the standard library's driftsort (about 3.5 KB of wasm each); this merge sort of indices
//! takes its comparison behind `&dyn`, so there is a single copy however many callers it has.

use std::cmp::Ordering;

/// The indices `0..len` in the order `cmp` (comparing the items at two indices) puts them,
/// stably: items that compare equal keep their order. A bottom-up merge sort, O(n log n).
#[inline(never)]
pub fn order(len: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut merged = vec![0; len];
    let mut width = 1;
    while width < len {
        let mut start = 0;
        while start < len {
            let mid = len.min(start + width);
            let end = len.min(mid + width);
            let (mut left, mut right) = (start, mid);
            for slot in &mut merged[start..end] {
                // The right run's item goes first only if strictly smaller: that keeps it stable.
                let take_right = right < end
                    && (left == mid || cmp(order[right], order[left]) == Ordering::Less);
                if take_right {
                    *slot = order[right];
                    right += 1;
                } else {
                    *slot = order[left];
                    left += 1;
                }
            }
            start = end;
        }
        std::mem::swap(&mut order, &mut merged);
        width *= 2;
    }
    order
}

/// `items` in the order `cmp` puts them, stably (see [`order`]).
pub fn sorted_by<T>(items: &[T], cmp: impl Fn(&T, &T) -> Ordering) -> impl Iterator<Item = &T> {
    let order = order(items.len(), &|i, j| cmp(&items[i], &items[j]));
    order.into_iter().map(move |i| &items[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so large cases need no dependency.
    fn numbers(count: usize, seed: u64) -> Vec<u64> {
        let mut x = seed;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..count).map(|_| next()).collect()
    }

    fn sorted_copy(items: &[(u64, usize)], cmp: fn(&(u64, usize), &(u64, usize)) -> Ordering) {
        let ours: Vec<_> = sorted_by(items, cmp).copied().collect();
        let mut std = items.to_vec();
        std.sort_by(cmp);
        assert_eq!(ours, std);
    }

    #[test]
    fn nothing_and_one_item_stay_as_they_are() {
        assert!(order(0, &|_, _| unreachable!()).is_empty());
        assert_eq!(order(1, &|_, _| unreachable!()), vec![0]);
    }

    #[test]
    fn orders_ascending_and_descending_as_the_comparison_says() {
        let items = [5, 1, 4, 2, 3];
        let up: Vec<_> = sorted_by(&items, |a, b| a.cmp(b)).copied().collect();
        assert_eq!(up, vec![1, 2, 3, 4, 5]);
        let down: Vec<_> = sorted_by(&items, |a, b| b.cmp(a)).copied().collect();
        assert_eq!(down, vec![5, 4, 3, 2, 1]);
    }

    #[test]
    fn equal_items_keep_their_order() {
        // Sorted by the first field only: the second says where each item stood.
        let items = [(2, 0), (1, 1), (2, 2), (1, 3), (2, 4), (0, 5), (1, 6)];
        let by_first: Vec<_> = sorted_by(&items, |a, b| a.0.cmp(&b.0)).copied().collect();
        let expected = [(0, 5), (1, 1), (1, 3), (1, 6), (2, 0), (2, 2), (2, 4)];
        assert_eq!(by_first, expected);
    }

    #[test]
    fn large_inputs_sort_as_the_standard_library_does() {
        for (count, seed) in [(1_000, 1), (4_097, 7), (10_000, 42)] {
            // Few distinct keys, so stability is exercised too.
            let keyed: Vec<(u64, usize)> = numbers(count, seed)
                .into_iter()
                .enumerate()
                .map(|(i, n)| (n % 97, i))
                .collect();
            sorted_copy(&keyed, |a, b| a.0.cmp(&b.0));
            sorted_copy(&keyed, |a, b| b.0.cmp(&a.0));
            let mut ascending = keyed.clone();
            ascending.sort();
            sorted_copy(&ascending, |a, b| a.cmp(b));
            sorted_copy(&ascending, |a, b| b.cmp(a));
        }
    }

    #[test]
    fn every_length_up_to_a_few_runs_sorts_fully() {
        for len in 0..70 {
            let items = numbers(len, len as u64 + 3);
            let ours: Vec<_> = sorted_by(&items, |a, b| a.cmp(b)).copied().collect();
            let mut std = items.clone();
            std.sort();
            assert_eq!(ours, std, "length {len}");
        }
    }
}
