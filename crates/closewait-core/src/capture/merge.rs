//! The k-way merge of several inputs by timestamp, like `mergecap`.
//!
//! Each input keeps one look-ahead item; the smallest timestamp goes first, ties go to the
//! input named first. Only heads are compared, so an input whose own timestamps go
//! backwards keeps its order (the merge never reorders packets within a file).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

pub(crate) struct Merge<T> {
    heads: Vec<Option<T>>,
    /// (timestamp, input) of every input that has a head.
    heap: BinaryHeap<Reverse<(i64, usize)>>,
    primed: bool,
}

impl<T> Merge<T> {
    pub(crate) fn new(inputs: usize) -> Self {
        Merge {
            heads: (0..inputs).map(|_| None).collect(),
            heap: BinaryHeap::with_capacity(inputs),
            primed: false,
        }
    }

    /// The next item in merged order. `pull(i)` reads input `i`'s next item (`None` when it
    /// is finished); `ts` gives an item's timestamp. Inputs are first read on the first
    /// call, not before.
    pub(crate) fn next(
        &mut self,
        mut pull: impl FnMut(usize) -> Option<T>,
        ts: impl Fn(&T) -> i64,
    ) -> Option<T> {
        // One input: no look-ahead needed.
        if self.heads.len() == 1 {
            return pull(0);
        }
        if !self.primed {
            self.primed = true;
            for i in 0..self.heads.len() {
                if let Some(item) = pull(i) {
                    self.heap.push(Reverse((ts(&item), i)));
                    self.heads[i] = Some(item);
                }
            }
        }
        let Reverse((_, i)) = self.heap.pop()?;
        let item = self.heads[i].take();
        if let Some(next) = pull(i) {
            self.heap.push(Reverse((ts(&next), i)));
            self.heads[i] = Some(next);
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(inputs: Vec<Vec<i64>>) -> Vec<(usize, i64)> {
        let mut iters: Vec<_> = inputs.into_iter().map(|v| v.into_iter()).collect();
        let mut m = Merge::new(iters.len());
        let mut out = Vec::new();
        while let Some(x) = m.next(|i| iters[i].next().map(|t| (i, t)), |&(_, t)| t) {
            out.push(x);
        }
        out
    }

    #[test]
    fn merges_by_timestamp_ties_to_first_input() {
        let out = merged(vec![vec![1, 5, 5, 9], vec![2, 5, 10], vec![]]);
        assert_eq!(
            out,
            vec![(0, 1), (1, 2), (0, 5), (0, 5), (1, 5), (0, 9), (1, 10)]
        );
    }

    #[test]
    fn backwards_timestamps_keep_file_order() {
        let out = merged(vec![vec![10, 3, 11], vec![5]]);
        assert_eq!(out, vec![(1, 5), (0, 10), (0, 3), (0, 11)]);
    }

    #[test]
    fn single_input_passes_through() {
        assert_eq!(merged(vec![vec![3, 1, 2]]), vec![(0, 3), (0, 1), (0, 2)]);
        assert_eq!(merged(vec![]), vec![]);
    }
}
