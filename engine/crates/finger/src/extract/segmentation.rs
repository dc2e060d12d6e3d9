//! Stage 1: foreground mask from block variance.

use super::plane::{box_mean, Plane};
use crate::params::*;

/// Foreground mask plus the statistics the quality checks need.
pub(crate) struct Segmentation {
    /// Pixel mask, true = fingerprint.
    pub(crate) mask: Plane<bool>,
    /// Foreground fraction of the image.
    pub(crate) fraction: f32,
    /// 95th percentile of block standard deviation (contrast measure).
    pub(crate) contrast: f32,
}

/// Blocks whose local std is high are ridges; flat background and smudges
/// have low std. The mask is then smoothed by majority vote, reduced to
/// its largest component and hole-filled, because a fingerprint is one
/// connected blob.
pub(crate) fn segment(img: &Plane<f32>) -> Segmentation {
    let (w, h) = (img.width, img.height);
    let mean = box_mean(img, SEG_STD_RADIUS);
    let sq = Plane {
        width: w,
        height: h,
        data: img.data.iter().map(|v| v * v).collect(),
    };
    let mean_sq = box_mean(&sq, SEG_STD_RADIUS);
    let bw = w.div_ceil(SEG_BLOCK);
    let bh = h.div_ceil(SEG_BLOCK);
    let mut block_std = Plane::<f32>::new(bw, bh);
    for by in 0..bh {
        for bx in 0..bw {
            let (mut s, mut n) = (0f32, 0f32);
            for y in by * SEG_BLOCK..((by + 1) * SEG_BLOCK).min(h) {
                for x in bx * SEG_BLOCK..((bx + 1) * SEG_BLOCK).min(w) {
                    let i = y * w + x;
                    s += (mean_sq.data[i] - mean.data[i] * mean.data[i])
                        .max(0.0)
                        .sqrt();
                    n += 1.0;
                }
            }
            block_std.set(bx, by, s / n.max(1.0));
        }
    }
    // Contrast = 95th percentile over the non-flat blocks, so that a small
    // print on a large blank canvas is reported as too little foreground
    // rather than as low contrast.
    let mut sorted: Vec<f32> = block_std
        .data
        .iter()
        .copied()
        .filter(|&v| v > SEG_ABS_THRESHOLD)
        .collect();
    if sorted.is_empty() {
        sorted = block_std.data.clone();
    }
    sorted.sort_by(|a, b| a.total_cmp(b));
    let contrast = sorted[((sorted.len() - 1) as f32 * 0.95) as usize];
    let thr = (contrast * SEG_REL_THRESHOLD).max(SEG_ABS_THRESHOLD);
    let mut blocks = Plane::<bool>::new(bw, bh);
    for i in 0..blocks.data.len() {
        blocks.data[i] = block_std.data[i] > thr;
    }
    majority_smooth(&mut blocks);
    keep_largest_and_fill(&mut blocks);
    let mask = blocks_to_pixels(&blocks, w, h);
    let fg = mask.data.iter().filter(|&&b| b).count();
    Segmentation {
        mask,
        fraction: fg as f32 / (w * h) as f32,
        contrast,
    }
}

/// Removes blocks whose mean orientation coherence is low: textured
/// background and smudges can have high variance, but only ridges have a
/// dominant orientation. Then re-smooths as in [`segment`].
pub(crate) fn refine_with_coherence(seg: &mut Segmentation, coherence: &Plane<f32>) {
    let (w, h) = (seg.mask.width, seg.mask.height);
    let bw = w.div_ceil(SEG_BLOCK);
    let bh = h.div_ceil(SEG_BLOCK);
    let mut blocks = Plane::<bool>::new(bw, bh);
    for by in 0..bh {
        for bx in 0..bw {
            let (mut s, mut n) = (0f32, 0f32);
            let mut fg = false;
            for y in by * SEG_BLOCK..((by + 1) * SEG_BLOCK).min(h) {
                for x in bx * SEG_BLOCK..((bx + 1) * SEG_BLOCK).min(w) {
                    s += coherence.at(x, y);
                    n += 1.0;
                    fg |= seg.mask.at(x, y);
                }
            }
            blocks.set(bx, by, fg && s / n.max(1.0) >= SEG_MIN_COHERENCE);
        }
    }
    majority_smooth(&mut blocks);
    keep_largest_and_fill(&mut blocks);
    seg.mask = blocks_to_pixels(&blocks, w, h);
    let fg = seg.mask.data.iter().filter(|&&b| b).count();
    seg.fraction = fg as f32 / (w * h) as f32;
}

fn blocks_to_pixels(blocks: &Plane<bool>, w: usize, h: usize) -> Plane<bool> {
    let mut mask = Plane::<bool>::new(w, h);
    for y in 0..h {
        for x in 0..w {
            mask.set(x, y, blocks.at(x / SEG_BLOCK, y / SEG_BLOCK));
        }
    }
    mask
}

fn majority_smooth(blocks: &mut Plane<bool>) {
    let (bw, bh) = (blocks.width, blocks.height);
    for _ in 0..SEG_SMOOTH_PASSES {
        let prev = blocks.clone();
        for by in 0..bh as isize {
            for bx in 0..bw as isize {
                let mut votes = 0;
                let mut total = 0;
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        if let Some(v) = prev.get(bx + dx, by + dy) {
                            total += 1;
                            votes += usize::from(v);
                        }
                    }
                }
                blocks.set(bx as usize, by as usize, votes * 2 > total);
            }
        }
    }
}

/// Flood-fill labelling (4-connected) of `value` pixels; returns labels
/// (0 = other value) and component sizes indexed by label - 1.
pub(crate) fn label(p: &Plane<bool>, value: bool) -> (Vec<u32>, Vec<usize>) {
    let (w, h) = (p.width, p.height);
    let mut labels = vec![0u32; w * h];
    let mut sizes = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if p.data[start] != value || labels[start] != 0 {
            continue;
        }
        let id = sizes.len() as u32 + 1;
        let mut size = 0;
        labels[start] = id;
        stack.push(start);
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = (i % w, i / w);
            let mut visit = |j: usize| {
                if p.data[j] == value && labels[j] == 0 {
                    labels[j] = id;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - w);
            }
            if y + 1 < h {
                visit(i + w);
            }
        }
        sizes.push(size);
    }
    (labels, sizes)
}

fn keep_largest_and_fill(blocks: &mut Plane<bool>) {
    let (labels, sizes) = label(blocks, true);
    let Some(best) = (0..sizes.len()).max_by_key(|&i| sizes[i]) else {
        return;
    };
    for (v, &l) in blocks.data.iter_mut().zip(&labels) {
        *v = l == best as u32 + 1;
    }
    // Holes = background components that do not touch the border.
    let (w, h) = (blocks.width, blocks.height);
    let (labels, sizes) = label(blocks, false);
    let mut touches = vec![false; sizes.len()];
    for y in 0..h {
        for x in 0..w {
            if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
                let l = labels[y * w + x];
                if l > 0 {
                    touches[l as usize - 1] = true;
                }
            }
        }
    }
    for (v, &l) in blocks.data.iter_mut().zip(&labels) {
        if l > 0 && !touches[l as usize - 1] {
            *v = true;
        }
    }
}

/// Distance-limited erosion: true where the whole (2r+1)² window is
/// foreground and inside the image. Used to reject border minutiae.
pub(crate) fn erode(mask: &Plane<bool>, r: usize) -> Plane<bool> {
    let f = Plane {
        width: mask.width,
        height: mask.height,
        data: mask.data.iter().map(|&b| f32::from(u8::from(b))).collect(),
    };
    let m = box_mean(&f, r);
    let mut out = Plane::<bool>::new(mask.width, mask.height);
    for y in 0..mask.height {
        for x in 0..mask.width {
            let inside = x >= r && y >= r && x + r < mask.width && y + r < mask.height;
            out.set(x, y, inside && m.at(x, y) > 0.999);
        }
    }
    out
}

/// Distance in pixels from each pixel to the nearest background pixel,
/// counting outside the image as background: 0 on the background, 1 on
/// the image's edge. Two-pass chamfer with steps 1 and √2 (at most 8.3%
/// above the Euclidean distance).
pub(crate) fn depth(mask: &Plane<bool>) -> Plane<f32> {
    const DIAG: f32 = std::f32::consts::SQRT_2;
    let (w, h) = (mask.width, mask.height);
    let mut d = Plane::<f32>::new(w, h);
    let edge = |x: usize, y: usize| x == 0 || y == 0 || x + 1 == w || y + 1 == h;
    for y in 0..h {
        for x in 0..w {
            let v = if !mask.at(x, y) {
                0.0
            } else if edge(x, y) {
                1.0
            } else {
                (d.at(x - 1, y) + 1.0)
                    .min(d.at(x, y - 1) + 1.0)
                    .min(d.at(x - 1, y - 1) + DIAG)
                    .min(d.at(x + 1, y - 1) + DIAG)
            };
            d.set(x, y, v);
        }
    }
    for y in (1..h.saturating_sub(1)).rev() {
        for x in (1..w.saturating_sub(1)).rev() {
            let v = d
                .at(x, y)
                .min(d.at(x + 1, y) + 1.0)
                .min(d.at(x, y + 1) + 1.0)
                .min(d.at(x + 1, y + 1) + DIAG)
                .min(d.at(x - 1, y + 1) + DIAG);
            d.set(x, y, v);
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_the_distance_to_background_or_image_edge() {
        let (w, h) = (61, 47);
        let mut mask = Plane::<bool>::new(w, h);
        // Foreground: the image minus a background disc around (40, 20),
        // so depth comes from the disc in one place and the edge elsewhere.
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f32 - 40.0, y as f32 - 20.0);
                mask.set(x, y, dx * dx + dy * dy > 36.0);
            }
        }
        let d = depth(&mask);
        for y in 0..h {
            for x in 0..w {
                let exact = if mask.at(x, y) {
                    // Outside the image counts as background one step away.
                    let mut exact = (x.min(y).min(w - 1 - x).min(h - 1 - y) + 1) as f32;
                    for by in 0..h {
                        for bx in 0..w {
                            if !mask.at(bx, by) {
                                let e = ((bx as f32 - x as f32).powi(2)
                                    + (by as f32 - y as f32).powi(2))
                                .sqrt();
                                exact = exact.min(e);
                            }
                        }
                    }
                    exact
                } else {
                    0.0
                };
                let got = d.at(x, y);
                assert!(
                    (got - exact).abs() <= 0.09 * exact + 1e-6,
                    "({x}, {y}): {got} vs {exact}"
                );
            }
        }
        assert_eq!(d.at(0, 10), 1.0);
        assert_eq!(d.at(40, 20), 0.0);
    }
}
