//! Stage 7: thinning to a one-pixel skeleton.

use super::plane::Plane;

/// Neighbour offsets in ring order P2..P9: N, NE, E, SE, S, SW, W, NW.
pub(crate) const RING: [(isize, isize); 8] = [
    (0, -1),
    (1, -1),
    (1, 0),
    (1, 1),
    (0, 1),
    (-1, 1),
    (-1, 0),
    (-1, -1),
];

/// 8-bit neighbourhood code, bit i = ring[i] set (outside = unset).
#[inline]
pub(crate) fn code(p: &Plane<bool>, x: usize, y: usize) -> u8 {
    let mut c = 0u8;
    for (i, (dx, dy)) in RING.iter().enumerate() {
        if p.get(x as isize + dx, y as isize + dy) == Some(true) {
            c |= 1 << i;
        }
    }
    c
}

/// Crossing number: half the number of 0↔1 transitions around the ring
/// (1 = ending, 2 = ridge, 3 = bifurcation).
#[inline]
pub(crate) fn crossing_number(c: u8) -> u32 {
    let rotated = c.rotate_right(1);
    (c ^ rotated).count_ones() / 2
}

/// Zhang–Suen thinning with precomputed decision tables, followed by one
/// pass removing staircase corners (pixels whose removal keeps 8-connectivity)
/// so that ridge pixels have exactly two neighbours and the crossing number
/// is unambiguous.
pub(crate) fn thin(ridges: &Plane<bool>) -> Plane<bool> {
    let tables = [table(0), table(1)];
    let mut img = ridges.clone();
    let mut active: Vec<usize> = (0..img.data.len()).filter(|&i| img.data[i]).collect();
    let w = img.width;
    loop {
        let mut changed = false;
        for t in &tables {
            let remove: Vec<usize> = active
                .iter()
                .copied()
                .filter(|&i| img.data[i] && t[code(&img, i % w, i / w) as usize])
                .collect();
            for &i in &remove {
                img.data[i] = false;
            }
            changed |= !remove.is_empty();
        }
        active.retain(|&i| img.data[i]);
        if !changed {
            break;
        }
    }
    for &i in &active {
        let (x, y) = (i % w, i / w);
        if !img.data[i] {
            continue;
        }
        let c = code(&img, x, y);
        let n = c.count_ones();
        // Orthogonal 4-neighbour pairs: N&E, E&S, S&W, W&N.
        let corner = [(0, 2), (2, 4), (4, 6), (6, 0)]
            .iter()
            .any(|&(a, b)| c & (1 << a) != 0 && c & (1 << b) != 0);
        if n >= 2 && corner && connectivity8(c) == 1 {
            img.data[i] = false;
        }
    }
    img
}

/// Yokoi 8-connectivity number: 1 means removing the pixel keeps its
/// neighbours connected.
fn connectivity8(c: u8) -> u32 {
    let bar = |i: usize| u32::from(c & (1 << (i % 8)) == 0);
    [2usize, 0, 6, 4]
        .iter()
        .map(|&k| bar(k) - bar(k) * bar(k + 7) * bar(k + 6))
        .sum::<u32>()
}

fn table(step: usize) -> [bool; 256] {
    let mut t = [false; 256];
    for (c, entry) in t.iter_mut().enumerate() {
        let p = |i: usize| (c >> (i - 2)) & 1 == 1; // P2..P9
        let b = (c as u8).count_ones();
        let a = crossing_number(c as u8);
        let cond = if step == 0 {
            !(p(2) && p(4) && p(6) || p(4) && p(6) && p(8))
        } else {
            !(p(2) && p(4) && p(8) || p(2) && p(6) && p(8))
        };
        *entry = (2..=6).contains(&b) && a == 1 && cond;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossing_numbers() {
        assert_eq!(crossing_number(0b0000_0001), 1);
        assert_eq!(crossing_number(0b0001_0001), 2);
        assert_eq!(crossing_number(0b0101_0001), 3);
    }

    #[test]
    fn thick_bar_thins_to_line() {
        let mut p = Plane::<bool>::new(30, 9);
        for y in 2..7 {
            for x in 2..28 {
                p.set(x, y, true);
            }
        }
        let s = thin(&p);
        for x in 6..24 {
            let col: usize = (0..9).map(|y| usize::from(s.at(x, y))).sum();
            assert_eq!(col, 1, "column {x}");
        }
    }
}
