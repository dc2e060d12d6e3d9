//! Bounded top-k selection.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A scored row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Scored {
    pub score: f32,
    pub row: u32,
}

impl Scored {
    /// Total order, best first: higher score, then lower row (so ties resolve the
    /// same way whatever the scan order or shard split).
    pub fn better_first(a: &Scored, b: &Scored) -> Ordering {
        b.score.total_cmp(&a.score).then(a.row.cmp(&b.row))
    }
}

/// Heap entry ordered so the heap's maximum is the *worst* kept candidate.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Worst(Scored);

impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Worst {
    fn cmp(&self, o: &Self) -> Ordering {
        Scored::better_first(&self.0, &o.0)
    }
}

/// Keeps the `k` best candidates seen.
#[derive(Clone, Debug)]
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Worst>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(1 << 16) + 1),
        }
    }

    /// Score a candidate must beat to enter (−∞ while not full).
    #[inline]
    pub fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap.peek().map_or(f32::INFINITY, |w| w.0.score)
        }
    }

    #[inline]
    pub fn push(&mut self, s: Scored) {
        if self.k == 0 {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(Worst(s));
        } else if let Some(mut top) = self.heap.peek_mut() {
            if Scored::better_first(&s, &top.0) == Ordering::Less {
                *top = Worst(s);
            }
        }
    }

    pub fn merge(&mut self, other: TopK) {
        for w in other.heap {
            self.push(w.0);
        }
    }

    /// The kept candidates, best first.
    pub fn into_sorted(self) -> Vec<Scored> {
        let mut v: Vec<Scored> = self.heap.into_iter().map(|w| w.0).collect();
        v.sort_by(Scored::better_first);
        v
    }
}

/// Scores compared at once before any is looked at one by one.
const SKIP_BLOCK: usize = 16;

/// Calls `visit(j, score)` for every `scores[j] > threshold` (`>=` with `inclusive`), in order;
/// `visit` returns the threshold for the rest (a top-k heap raises it as it fills).
///
/// Nearly every row of a 1:N scan scores far below the k-th best, so 16 scores are first
/// checked with one branch-free comparison (vectorised) and skipped together; a branch per
/// score made this loop a fifth of a batched int8 scan.
#[inline]
pub(crate) fn for_each_above(
    scores: &[f32],
    mut threshold: f32,
    inclusive: bool,
    mut visit: impl FnMut(usize, f32) -> f32,
) {
    let passes = |s: f32, th: f32| if inclusive { s >= th } else { s > th };
    let mut blocks = scores.chunks_exact(SKIP_BLOCK);
    let mut j0 = 0;
    for block in blocks.by_ref() {
        let mut any = false;
        for &s in block {
            any |= passes(s, threshold);
        }
        if any {
            for (j, &s) in block.iter().enumerate() {
                if passes(s, threshold) {
                    threshold = visit(j0 + j, s);
                }
            }
        }
        j0 += SKIP_BLOCK;
    }
    for (j, &s) in blocks.remainder().iter().enumerate() {
        if passes(s, threshold) {
            threshold = visit(j0 + j, s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_each_above_sees_what_a_plain_loop_sees() {
        // 37 scores: two full blocks and a remainder; the threshold rises as in a top-k.
        let scores: Vec<f32> = (0..37).map(|i| ((i * 7919) % 37) as f32 / 37.0).collect();
        for inclusive in [false, true] {
            let (mut seen, mut th) = (Vec::new(), 0.5f32);
            for (j, &s) in scores.iter().enumerate() {
                if (inclusive && s >= th) || (!inclusive && s > th) {
                    seen.push(j);
                    th = s.min(0.9);
                }
            }
            let mut got = Vec::new();
            for_each_above(&scores, 0.5, inclusive, |j, s| {
                got.push(j);
                s.min(0.9)
            });
            assert_eq!(got, seen, "inclusive {inclusive}");
        }
    }

    #[test]
    fn keeps_best_with_row_tiebreak() {
        let mut t = TopK::new(2);
        for (score, row) in [(0.5, 3), (0.9, 1), (0.5, 2), (0.1, 0)] {
            t.push(Scored { score, row });
        }
        let v = t.into_sorted();
        assert_eq!(
            v,
            vec![Scored { score: 0.9, row: 1 }, Scored { score: 0.5, row: 2 }]
        );
    }
}
