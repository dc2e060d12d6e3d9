//! Stages 8–9: crossing-number minutiae, their direction, false-minutiae
//! removal and per-minutia quality.

use super::orientation::OrientationField;
use super::plane::Plane;
use super::thinning::{code, crossing_number, RING};
use crate::params::*;
use crate::template::{Minutia, MinutiaKind};
use std::f32::consts::{PI, TAU};

/// A minutia candidate in working precision.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub(crate) x: usize,
    pub(crate) y: usize,
    pub(crate) kind: MinutiaKind,
    pub(crate) angle: f32,
    pub(crate) quality: u8,
}

/// Outcome of following a skeleton branch.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Trace {
    /// Reached the candidate with this index after `steps` pixels.
    Hit(usize, usize),
    /// Reached an unlabelled junction.
    Junction(usize),
    /// Ridge ended (or left the skeleton) without a minutia.
    End(usize),
    /// Walked the full length; final pixel.
    Open(usize, usize),
}

struct Skeleton<'a> {
    skel: &'a Plane<bool>,
    /// Candidate index + 1 at each minutia pixel, 0 elsewhere.
    label: Vec<u32>,
}

impl Skeleton<'_> {
    fn neighbours(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let w = self.skel.width;
        let (x, y) = ((i % w) as isize, (i / w) as isize);
        RING.iter().filter_map(move |(dx, dy)| {
            let (nx, ny) = (x + dx, y + dy);
            (self.skel.get(nx, ny) == Some(true)).then(|| ny as usize * w + nx as usize)
        })
    }

    fn adjacent(&self, a: usize, b: usize) -> bool {
        let w = self.skel.width;
        let (ax, ay, bx, by) = (a % w, a / w, b % w, b / w);
        ax.abs_diff(bx) <= 1 && ay.abs_diff(by) <= 1
    }

    /// Follows the skeleton from `first` (a neighbour of the origin) for up
    /// to `max_len` pixels, never revisiting `visited`.
    fn trace(&self, mut visited: Vec<usize>, first: usize, max_len: usize) -> Trace {
        let mut prev = *visited.last().unwrap_or(&first);
        let mut cur = first;
        for steps in 1..=max_len {
            let l = self.label[cur];
            if l > 0 {
                return Trace::Hit(l as usize - 1, steps);
            }
            if steps == max_len {
                return Trace::Open(cur, steps);
            }
            visited.push(cur);
            let cands: Vec<usize> = self
                .neighbours(cur)
                .filter(|n| !visited.contains(n))
                .collect();
            let next = match cands.len() {
                0 => return Trace::End(steps),
                1 => cands[0],
                _ => {
                    // Pixels touching the previous one are the same ridge
                    // cutting a corner, not a new branch.
                    let forward: Vec<usize> = cands
                        .iter()
                        .copied()
                        .filter(|&n| !self.adjacent(n, prev))
                        .collect();
                    match forward.len() {
                        1 => forward[0],
                        0 => cands[0],
                        _ => return Trace::Junction(steps),
                    }
                }
            };
            prev = cur;
            cur = next;
        }
        Trace::Open(cur, max_len)
    }

    /// First pixels of the branches leaving `i`: one per run of set
    /// neighbours around the ring (4-neighbours preferred).
    fn branch_starts(&self, i: usize) -> Vec<usize> {
        let w = self.skel.width;
        let (x, y) = (i % w, i / w);
        let c = code(self.skel, x, y);
        let mut starts = Vec::new();
        let on = |k: usize| c & (1 << (k % 8)) != 0;
        for k in 0..8 {
            // A run starts where the previous ring position is off.
            if on(k) && !on(k + 7) {
                let mut best = k;
                let mut j = k;
                while on(j) && j < k + 8 {
                    if j % 2 == 0 {
                        best = j % 8;
                        break;
                    }
                    j += 1;
                }
                let (dx, dy) = RING[best % 8];
                starts.push((y as isize + dy) as usize * w + (x as isize + dx) as usize);
            }
        }
        starts
    }

    fn all_neighbours_and_self(&self, i: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self.neighbours(i).collect();
        v.push(i);
        v
    }
}

/// Finds, orients, filters and grades minutiae on the skeleton; `depth` is
/// each pixel's distance to the background (see [`quality`]).
pub(crate) fn detect(
    skel: &Plane<bool>,
    inner: &Plane<bool>,
    depth: &Plane<f32>,
    field: &OrientationField,
) -> Vec<Candidate> {
    let (w, h) = (skel.width, skel.height);
    let mut cands = Vec::new();
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            if !skel.at(x, y) {
                continue;
            }
            let kind = match crossing_number(code(skel, x, y)) {
                1 => MinutiaKind::Ending,
                3 => MinutiaKind::Bifurcation,
                _ => continue,
            };
            // Adjacent bifurcation pixels are one junction drawn thick.
            if kind == MinutiaKind::Bifurcation
                && cands.iter().rev().take(4 * w).any(|c: &Candidate| {
                    c.kind == kind && c.x.abs_diff(x) <= 2 && c.y.abs_diff(y) <= 2
                })
            {
                continue;
            }
            cands.push(Candidate {
                x,
                y,
                kind,
                angle: 0.0,
                quality: 0,
            });
        }
    }
    let mut sk = Skeleton {
        skel,
        label: vec![0; w * h],
    };
    for (k, c) in cands.iter().enumerate() {
        sk.label[c.y * w + c.x] = k as u32 + 1;
    }
    let mut keep = vec![true; cands.len()];
    let filter_len = SHORT_RIDGE_LEN.max(SPUR_LEN).max(BRIDGE_LEN);

    for k in 0..cands.len() {
        let c = cands[k];
        let i = c.y * w + c.x;
        let starts = sk.branch_starts(i);
        match c.kind {
            MinutiaKind::Ending => {
                let Some(&first) = starts.first() else {
                    keep[k] = false;
                    continue;
                };
                match sk.trace(vec![i], first, filter_len) {
                    Trace::Hit(j, s) => {
                        let other = cands[j].kind;
                        if (other == MinutiaKind::Bifurcation && s <= SPUR_LEN)
                            || (other == MinutiaKind::Ending && s <= SHORT_RIDGE_LEN)
                        {
                            keep[k] = false;
                            keep[j] = false;
                        }
                    }
                    Trace::Junction(s) | Trace::End(s) if s <= SPUR_LEN => keep[k] = false,
                    _ => {}
                }
                match sk.trace(vec![i], first, DIR_TRACE_LEN) {
                    Trace::Open(end, _) => {
                        let (ex, ey) = ((end % w) as f32, (end / w) as f32);
                        let rough = (c.y as f32 - ey).atan2(c.x as f32 - ex);
                        cands[k].angle = snap(field.angle.at(c.x, c.y), rough);
                    }
                    _ => keep[k] = false,
                }
            }
            _ => {
                if starts.len() != 3 {
                    keep[k] = false;
                    continue;
                }
                let mut ends = Vec::with_capacity(3);
                for &s in &starts {
                    let visited = sk.all_neighbours_and_self(i);
                    match sk.trace(visited.clone(), s, BRIDGE_LEN) {
                        Trace::Hit(j, _) if cands[j].kind == MinutiaKind::Bifurcation => {
                            keep[k] = false;
                            keep[j] = false;
                        }
                        Trace::Junction(_) => keep[k] = false,
                        _ => {}
                    }
                    let end = match sk.trace(visited, s, DIR_TRACE_LEN) {
                        Trace::Open(e, _) => e,
                        Trace::Hit(j, _) => cands[j].y * w + cands[j].x,
                        _ => s,
                    };
                    let (ex, ey) = ((end % w) as f32 - c.x as f32, (end / w) as f32 - c.y as f32);
                    let n = (ex * ex + ey * ey).sqrt().max(1e-3);
                    ends.push((ex / n, ey / n));
                }
                // The stem points away from the two (similar) fork branches.
                // The bifurcation's direction is along the stem: that is
                // where the direction of the ending it becomes points when
                // a fork branch breaks off (ridge/valley duality).
                let stem = (0..3)
                    .min_by(|&a, &b| {
                        let score = |s: usize| {
                            let (o1, o2) = ((s + 1) % 3, (s + 2) % 3);
                            ends[s].0 * (ends[o1].0 + ends[o2].0)
                                + ends[s].1 * (ends[o1].1 + ends[o2].1)
                        };
                        score(a).total_cmp(&score(b))
                    })
                    .unwrap_or(0);
                let rough = ends[stem].1.atan2(ends[stem].0);
                cands[k].angle = snap(field.angle.at(c.x, c.y), rough);
            }
        }
    }

    for k in 0..cands.len() {
        let c = cands[k];
        if !inner.at(c.x, c.y) || field.coherence.at(c.x, c.y) < MIN_MINUTIA_COHERENCE {
            keep[k] = false;
        }
    }
    // Pairwise geometric filters look at the candidates that survived the
    // topological ones, against each other.
    let alive: Vec<usize> = (0..cands.len()).filter(|&k| keep[k]).collect();
    let mut drop = vec![false; cands.len()];
    for (ai, &a) in alive.iter().enumerate() {
        for &b in &alive[ai + 1..] {
            let (ca, cb) = (cands[a], cands[b]);
            let dx = cb.x as f32 - ca.x as f32;
            let dy = cb.y as f32 - ca.y as f32;
            let d = (dx * dx + dy * dy).sqrt();
            // Too close to be two real minutiae, or two endings facing
            // each other across a gap (a broken ridge).
            let close = d < CLOSE_DIST;
            let broken = d < BREAK_DIST
                && ca.kind == MinutiaKind::Ending
                && cb.kind == MinutiaKind::Ending
                && angle_diff(ca.angle, cb.angle + PI) < BREAK_ANGLE
                && angle_diff(dy.atan2(dx), ca.angle) < BREAK_ANGLE;
            if close || broken {
                drop[a] = true;
                drop[b] = true;
            }
        }
    }
    for &a in &alive {
        if neighbours(&cands, &alive, a, CLUSTER_RADIUS) >= CLUSTER_MAX {
            drop[a] = true;
        }
    }
    let survivors: Vec<usize> = alive.into_iter().filter(|&k| !drop[k]).collect();
    let mut out: Vec<Candidate> = survivors
        .iter()
        .map(|&k| {
            let mut c = cands[k];
            let crowd = neighbours(&cands, &survivors, k, QUALITY_CROWD_RADIUS);
            c.quality = quality(field.coherence.at(c.x, c.y), depth.at(c.x, c.y), crowd);
            c
        })
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse(c.quality));
    out.truncate(MAX_MINUTIAE);
    out
}

/// How many of the candidates `among` (other than `k`) lie closer than
/// `radius` to candidate `k`.
fn neighbours(cands: &[Candidate], among: &[usize], k: usize, radius: f32) -> usize {
    let c = cands[k];
    among
        .iter()
        .filter(|&&b| {
            b != k && {
                let dx = cands[b].x as f32 - c.x as f32;
                let dy = cands[b].y as f32 - c.y as f32;
                dx * dx + dy * dy < radius * radius
            }
        })
        .count()
}

/// Minutia quality `1..=100`: the orientation coherence at the minutia,
/// scaled down within [`QUALITY_FULL_DEPTH`] of the print's edge and by
/// the other minutiae within [`QUALITY_CROWD_RADIUS`]. Both the
/// 100-minutiae cap and the matcher's choice of cylinders keep the best
/// first. Edge minutiae are the least reliable (the finger lifts, distorts
/// and smears there) and the least likely to lie in the part two
/// impressions share; crowded ones are mostly broken ridges and texture
/// (true minutiae are a few ridge periods apart). On a dry print that
/// fills the capture area (FVC2000 DB3 finger 105, coherence low
/// everywhere) coherence alone ranked textured border minutiae first.
fn quality(coherence: f32, depth: f32, crowd: usize) -> u8 {
    let clarity = ((coherence - MIN_MINUTIA_COHERENCE) / 0.6).clamp(0.0, 1.0);
    let inset = (depth / QUALITY_FULL_DEPTH).clamp(0.0, 1.0);
    let isolation = 1.0 / (1.0 + crowd as f32 / QUALITY_CROWD_HALVING);
    (clarity * inset * isolation * 99.0 + 1.0) as u8
}

/// Picks the orientation-field direction (θ or θ+π) closest to the traced
/// one: the field is smooth and precise, the trace only knows the sense.
fn snap(theta: f32, rough: f32) -> f32 {
    let a = if angle_diff(theta, rough) <= PI / 2.0 {
        theta
    } else {
        theta + PI
    };
    a.rem_euclid(TAU)
}

/// Absolute angle difference in `[0, π]`.
pub(crate) fn angle_diff(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(TAU);
    d.min(TAU - d)
}

impl From<Candidate> for Minutia {
    fn from(c: Candidate) -> Self {
        let angle = c.angle.rem_euclid(TAU);
        Minutia {
            x: c.x as u16,
            y: c.y as u16,
            angle: if angle >= TAU { 0.0 } else { angle },
            kind: c.kind,
            quality: c.quality,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_ranks_clear_inner_isolated_minutiae_first() {
        let best = quality(0.8, 200.0, 0);
        assert_eq!(best, 100);
        // Each of the three factors alone lowers it: coherence, the edge
        // in proportion to the depth, crowding as 1 / (1 + n / 1.5).
        assert!(quality(0.4, 200.0, 0) < best);
        assert_eq!(quality(0.8, QUALITY_FULL_DEPTH / 2.0, 0), 50);
        assert_eq!(quality(0.8, 200.0, 1), 60);
        assert_eq!(quality(0.8, 200.0, 2), 43);
        assert!(quality(0.8, 200.0, 6) < 43);
        // Never below 1, never above 100.
        assert_eq!(quality(0.0, 0.0, 50), 1);
        assert_eq!(quality(1.5, 1e6, 0), 100);
    }
}
