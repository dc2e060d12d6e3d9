//! Minutia Cylinder-Code matcher, bit-based (MCC-Bit) with LSS-R
//! consolidation (Cappelli, Ferrara, Maltoni, IEEE TPAMI 2010).
//!
//! Each minutia gets a cylinder: a 16×16 grid of cells in the minutia's own
//! frame (so it is rotation and translation invariant) × 6 direction
//! layers, 1536 bits, a bit set where neighbouring minutiae with that
//! relative direction lie near the cell. Cylinders are compared by popcount
//! over the cells valid in both (tolerates partial overlap); the best local
//! matches, at most one per minutia, are then relaxed against each other's
//! geometry (tolerates distortion but punishes inconsistent pairs) and
//! averaged into a score in `[0, 1]`. Two additions to the paper: when both
//! templates carry ridge-flow descriptors ([`crate::FlowDescriptor`]), each
//! pair's cylinder similarity is weighted by how alike the ridge flow
//! around the two minutiae is ([`FLOW_WEIGHT`]), and consolidated pairs of
//! the same minutia type count a little more ([`MCC_TYPE_WEIGHT`]).
//!
//! ```
//! use sinhtrac_finger::{FingerTemplate, Matcher, Minutia, MinutiaKind};
//! let minutiae = (0..30u16).map(|i| Minutia {
//!     x: 40 + (i * 37) % 220, y: 40 + (i * 53) % 220,
//!     angle: f32::from(i) * 0.7 % 6.28, kind: MinutiaKind::Ending, quality: 50,
//! }).collect();
//! let t = FingerTemplate { width: 300, height: 300, dpi: 500, minutiae, flow: vec![] };
//! let matcher = Matcher::new(&t);
//! let same = matcher.score_template(&t);
//! assert!(same > 0.9, "{same}");
//! ```

use crate::coarse::{coarse_code, coarse_similarity, CoarseCode};
use crate::flow::{self, FLOW_LANES};
use crate::params::*;
use crate::template::{FingerTemplate, MinutiaKind};
use std::f32::consts::{PI, TAU};
use std::sync::OnceLock;

/// Bits in one cylinder.
pub const CYLINDER_BITS: usize = MCC_NS * MCC_NS * MCC_ND;
/// 64-bit words in one cylinder bit vector.
pub const CYLINDER_WORDS: usize = CYLINDER_BITS / 64;
pub(crate) const CELLS: usize = MCC_NS * MCC_NS;
/// 64-bit words of one direction layer (the spatial cells).
const CELL_WORDS: usize = CELLS / 64;
const _: () = assert!(CELLS.is_multiple_of(64), "a layer must fill whole words");

/// One minutia's cylinder: content bits (layer after layer, each layer
/// whole words) and the validity mask of the spatial cells, which is the
/// same for every direction layer, so it is kept once.
#[derive(Debug, Clone)]
pub struct Cylinder {
    pub(crate) bits: [u64; CYLINDER_WORDS],
    pub(crate) mask: [u64; CELL_WORDS],
    x: f32,
    y: f32,
    /// Direction in `[0, 2π)`.
    pub(crate) angle: f32,
    kind: MinutiaKind,
    /// Ridge-flow descriptor, one byte a sample (all off-print when the
    /// template has none).
    flow: [u8; FLOW_LANES],
}

/// The search form of a template: valid cylinders plus a coarse signature
/// for 1:N pre-selection. Derived, never stored (rebuild from the
/// [`FingerTemplate`]).
#[derive(Debug, Clone)]
pub struct SearchTemplate {
    cylinders: Vec<Cylinder>,
    coarse: Vec<CoarseCode>,
    /// Whether the template carried ridge-flow descriptors.
    has_flow: bool,
}

impl SearchTemplate {
    /// Builds cylinders for every minutia (coordinates are rescaled to
    /// 500 dpi first, so templates from other resolutions compare).
    pub fn new(t: &FingerTemplate) -> Self {
        let scale = if t.dpi == 0 {
            1.0
        } else {
            f32::from(TARGET_DPI) / f32::from(t.dpi)
        };
        let pts: Vec<(f32, f32, f32, u8)> = t
            .minutiae
            .iter()
            .map(|m| {
                (
                    f32::from(m.x) * scale,
                    f32::from(m.y) * scale,
                    m.angle,
                    m.quality,
                )
            })
            .collect();
        let hull = convex_hull(&pts.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>());
        // `flow` is a public field: descriptors count only when there is one per minutia.
        let has_flow = !t.flow.is_empty() && t.flow.len() == t.minutiae.len();
        let mut with_q: Vec<(u8, Cylinder)> = pts
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let mut c = build_cylinder(i, &pts, &hull)?;
                c.kind = t.minutiae[i].kind;
                if has_flow {
                    c.flow = t.flow[i].lanes();
                }
                Some((p.3, c))
            })
            .collect();
        // Best quality first: the coarse signature takes a prefix.
        with_q.sort_by_key(|c| std::cmp::Reverse(c.0));
        let cylinders: Vec<Cylinder> = with_q
            .into_iter()
            .take(MCC_MAX_CYLINDERS)
            .map(|(_, c)| c)
            .collect();
        let coarse = cylinders
            .iter()
            .take(COARSE_MINUTIAE)
            .map(coarse_code)
            .collect();
        SearchTemplate {
            cylinders,
            coarse,
            has_flow,
        }
    }

    /// Number of valid cylinders.
    pub fn len(&self) -> usize {
        self.cylinders.len()
    }

    /// The coarse codes (pre-selection signature).
    pub(crate) fn coarse_codes(&self) -> &[CoarseCode] {
        &self.coarse
    }

    /// True when no cylinder is valid (the template cannot match anything).
    pub fn is_empty(&self) -> bool {
        self.cylinders.is_empty()
    }
}

/// A probe prepared for matching: build once, then call
/// [`Matcher::score`] against any number of candidates, from any number
/// of threads (`Matcher` is `Send + Sync` and `score` takes `&self`).
#[derive(Debug, Clone)]
pub struct Matcher {
    probe: SearchTemplate,
    geometry: Geometry,
}

/// Distances and radial directions between every two of a template's
/// minutiae, as the consolidation step computes them: the probe's are
/// computed once instead of in every comparison (its `atan2`s were a
/// sixth of a 1:N search).
#[derive(Debug, Clone)]
struct Geometry {
    n: usize,
    /// `dist[i·n + k]`: distance from minutia i to k.
    dist: Vec<f32>,
    /// `radial[i·n + k]`: direction of the segment from minutia i to k.
    radial: Vec<f32>,
}

impl Geometry {
    fn new(t: &SearchTemplate) -> Self {
        let n = t.cylinders.len();
        let (mut dist, mut radial) = (Vec::with_capacity(n * n), Vec::with_capacity(n * n));
        for a in &t.cylinders {
            for b in &t.cylinders {
                dist.push(distance(a, b));
                radial.push(radial_direction(a, b));
            }
        }
        Geometry { n, dist, radial }
    }
}

/// Distance between two minutiae (the consolidation step's `d`).
#[inline(always)]
fn distance(a: &Cylinder, b: &Cylinder) -> f32 {
    ((a.x - b.x).powi(2) + (a.y - b.y).powi(2)).sqrt()
}

/// Direction of the segment from `a` to `b`.
#[inline(always)]
fn radial_direction(a: &Cylinder, b: &Cylinder) -> f32 {
    (b.y - a.y).atan2(b.x - a.x)
}

impl Matcher {
    /// Prepares `probe` for matching.
    pub fn new(probe: &FingerTemplate) -> Self {
        Self::from_search(SearchTemplate::new(probe))
    }

    /// Wraps an already built search template.
    pub fn from_search(probe: SearchTemplate) -> Self {
        let geometry = Geometry::new(&probe);
        Matcher { probe, geometry }
    }

    /// The probe's search form.
    pub fn probe(&self) -> &SearchTemplate {
        &self.probe
    }

    /// Similarity in `[0, 1]` (0 = no evidence, 1 = identical).
    pub fn score(&self, candidate: &SearchTemplate) -> f32 {
        let flow = self.probe.has_flow && candidate.has_flow;
        lss_r(
            &self.probe.cylinders,
            &self.geometry,
            &candidate.cylinders,
            flow,
        )
    }

    /// [`Matcher::score`] over only the best-quality `cylinders` minutiae of
    /// each side: about (cylinders / 45)² of the cost, a cheaper re-scoring
    /// stage between the coarse pass and the full score.
    pub fn score_best(&self, candidate: &SearchTemplate, cylinders: usize) -> f32 {
        let a = &self.probe.cylinders[..cylinders.min(self.probe.cylinders.len())];
        let b = &candidate.cylinders[..cylinders.min(candidate.cylinders.len())];
        lss_r(
            a,
            &self.geometry,
            b,
            self.probe.has_flow && candidate.has_flow,
        )
    }

    /// Convenience: builds the candidate's search form and scores it.
    pub fn score_template(&self, candidate: &FingerTemplate) -> f32 {
        self.score(&SearchTemplate::new(candidate))
    }

    /// Cheap pre-selection score (coarse cylinder codes): higher is more
    /// similar; only comparable across candidates for the same probe.
    pub fn coarse_score(&self, candidate: &SearchTemplate) -> u32 {
        coarse_similarity(&self.probe.coarse, &candidate.coarse)
    }
}

// ------------------------------------------------------------- creation --

fn build_cylinder(i: usize, pts: &[(f32, f32, f32, u8)], hull: &[(f32, f32)]) -> Option<Cylinder> {
    let (mx, my, ma, _) = pts[i];
    let delta_s = 2.0 * MCC_RADIUS / MCC_NS as f32;
    let delta_d = TAU / MCC_ND as f32;
    let reach = MCC_RADIUS + 3.0 * MCC_SIGMA_S;
    let neigh: Vec<(f32, f32, f32)> = pts
        .iter()
        .enumerate()
        .filter(|&(j, p)| j != i && (p.0 - mx).hypot(p.1 - my) <= reach)
        .map(|(_, p)| (p.0, p.1, signed_diff(ma, p.2)))
        .collect();
    if neigh.len() < MCC_MIN_NEIGHBOURS {
        return None;
    }
    let (c, s) = (ma.cos(), ma.sin());
    let gs_norm = 1.0 / (MCC_SIGMA_S * (2.0 * PI).sqrt());
    let cut2 = (3.0 * MCC_SIGMA_S).powi(2);
    let mut bits = [0u64; CYLINDER_WORDS];
    let mut mask = [0u64; CELL_WORDS];
    let (mut valid, mut in_disc) = (0usize, 0usize);
    // Directional weight of each neighbour for each layer depends only on
    // the neighbour, so compute it once per cylinder.
    let dir_w: Vec<[f32; MCC_ND]> = neigh
        .iter()
        .map(|&(_, _, d)| {
            let mut w = [0f32; MCC_ND];
            for (k, wk) in w.iter_mut().enumerate() {
                let centre = -PI + (k as f32 + 0.5) * delta_d;
                *wk = directional_weight(signed_diff(centre, d), delta_d);
            }
            w
        })
        .collect();
    for j in 0..MCC_NS {
        for ii in 0..MCC_NS {
            let u = (ii as f32 - (MCC_NS as f32 - 1.0) / 2.0) * delta_s;
            let v = (j as f32 - (MCC_NS as f32 - 1.0) / 2.0) * delta_s;
            if u * u + v * v > MCC_RADIUS * MCC_RADIUS {
                continue;
            }
            in_disc += 1;
            let px = mx + u * c - v * s;
            let py = my + u * s + v * c;
            if !inside_enlarged_hull(hull, px, py, MCC_HULL_OFFSET) {
                continue;
            }
            valid += 1;
            let cell = j * MCC_NS + ii;
            let mut contrib = [0f32; MCC_ND];
            for (n, &(nx, ny, _)) in neigh.iter().enumerate() {
                let d2 = (nx - px).powi(2) + (ny - py).powi(2);
                if d2 > cut2 {
                    continue;
                }
                let gs = gs_norm * (-d2 / (2.0 * MCC_SIGMA_S * MCC_SIGMA_S)).exp();
                for k in 0..MCC_ND {
                    contrib[k] += gs * dir_w[n][k];
                }
            }
            mask[cell / 64] |= 1 << (cell % 64);
            for (k, &v) in contrib.iter().enumerate() {
                let bit = k * CELLS + cell;
                if v >= MCC_MU_PSI {
                    bits[bit / 64] |= 1 << (bit % 64);
                }
            }
        }
    }
    if (valid as f32) < MCC_MIN_VALID_CELLS * in_disc as f32 {
        return None;
    }
    Some(Cylinder {
        bits,
        mask,
        x: mx,
        y: my,
        // Templates hold angles in [0, 2π) already; the comparison's cheap wraps rely on it.
        angle: wrap_tau(ma),
        kind: MinutiaKind::Other,
        flow: [FLOW_OFF_PRINT; FLOW_LANES],
    })
}

/// Integral of the direction Gaussian over one layer's width (erf form).
fn directional_weight(alpha: f32, width: f32) -> f32 {
    let z = std::f32::consts::SQRT_2 * MCC_SIGMA_D;
    0.5 * (erf((alpha + width / 2.0) / z) - erf((alpha - width / 2.0) / z))
}

/// Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7); std has no erf.
fn erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_4 * t - 1.453_152_1) * t) + 1.421_413_7) * t - 0.284_496_74) * t
            + 0.254_829_6)
            * t
            * (-x * x).exp();
    y.copysign(x)
}

/// `a - b` wrapped into `[-π, π)`.
fn signed_diff(a: f32, b: f32) -> f32 {
    (a - b + PI).rem_euclid(TAU) - PI
}

fn convex_hull(pts: &[(f32, f32)]) -> Vec<(f32, f32)> {
    let mut p = pts.to_vec();
    p.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let cross = |o: (f32, f32), a: (f32, f32), b: (f32, f32)| {
        (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
    };
    let mut hull: Vec<(f32, f32)> = Vec::with_capacity(2 * p.len());
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &(f32, f32)>> = if pass == 0 {
            Box::new(p.iter())
        } else {
            Box::new(p.iter().rev())
        };
        for &q in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 0.0
            {
                hull.pop();
            }
            hull.push(q);
        }
        hull.pop();
    }
    hull
}

fn inside_enlarged_hull(hull: &[(f32, f32)], x: f32, y: f32, offset: f32) -> bool {
    if hull.len() < 3 {
        return hull
            .iter()
            .any(|&(hx, hy)| (hx - x).hypot(hy - y) <= offset);
    }
    let mut inside = true;
    let mut min_d = f32::INFINITY;
    for k in 0..hull.len() {
        let a = hull[k];
        let b = hull[(k + 1) % hull.len()];
        let (ex, ey) = (b.0 - a.0, b.1 - a.1);
        // Counter-clockwise hull (in x-right/y-down math): left = inside.
        if ex * (y - a.1) - ey * (x - a.0) < 0.0 {
            inside = false;
        }
        let len2 = ex * ex + ey * ey;
        let t = if len2 > 0.0 {
            (((x - a.0) * ex + (y - a.1) * ey) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        min_d = min_d.min((a.0 + t * ex - x).hypot(a.1 + t * ey - y));
    }
    inside || min_d <= offset
}

// ----------------------------------------------------------- comparison --

fn sqrt_table() -> &'static [f32; CYLINDER_BITS + 1] {
    static T: OnceLock<[f32; CYLINDER_BITS + 1]> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = [0f32; CYLINDER_BITS + 1];
        for (i, v) in t.iter_mut().enumerate() {
            *v = (i as f32).sqrt();
        }
        t
    })
}

/// Cells valid in both cylinders (one layer's worth) and their mask.
#[inline(always)]
fn common_cells(a: &Cylinder, b: &Cylinder) -> (u32, [u64; CELL_WORDS]) {
    let mut m = [0u64; CELL_WORDS];
    let mut n = 0;
    for (w, mw) in m.iter_mut().enumerate() {
        *mw = a.mask[w] & b.mask[w];
        n += mw.count_ones();
    }
    (n, m)
}

/// Popcounts (|a∧m|, |b∧m|, |(a⊕b)∧m|) over every layer, `m` the common
/// cell mask of each layer; portable (see [`counts_avx2`]).
#[inline(always)]
fn counts(a: &Cylinder, b: &Cylinder, m: &[u64; CELL_WORDS]) -> (u32, u32, u32) {
    let (mut na, mut nb, mut nx) = (0, 0, 0);
    for w in 0..CYLINDER_WORDS {
        let mw = m[w % CELL_WORDS];
        let x = a.bits[w] & mw;
        let y = b.bits[w] & mw;
        na += x.count_ones();
        nb += y.count_ones();
        nx += (x ^ y).count_ones();
    }
    (na, nb, nx)
}

pub(crate) fn has_fast_popcount() -> bool {
    static F: OnceLock<bool> = OnceLock::new();
    *F.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::env::var_os("SINHTRAC_FORCE_SCALAR").is_none()
                && is_x86_feature_detected!("popcnt")
                && is_x86_feature_detected!("avx2")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// [`counts`] with AVX2: one layer (4 words) per vector, popcounts by
/// nibble lookup (vpshufb) summed per byte and reduced once at the end
/// (a byte holds at most 8 bits per layer × 6 layers = 48). Half the
/// instructions of 72 scalar popcounts, which were 40% of a comparison.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn counts_avx2(a: &Cylinder, b: &Cylinder, m: &[u64; CELL_WORDS]) -> (u32, u32, u32) {
    use std::arch::x86_64::*;
    const _: () = assert!(CELL_WORDS == 4 && MCC_ND * 8 <= 255);
    let load = |words: &[u64; CELL_WORDS]| {
        // SAFETY: the array is CELL_WORDS = 4 words, exactly the 32 bytes read.
        unsafe { _mm256_loadu_si256(words.as_ptr() as *const __m256i) }
    };
    fn layer(w: &[u64]) -> &[u64; CELL_WORDS] {
        w.try_into().expect("chunks_exact yields whole layers")
    }
    let mv = load(m);
    let zero = _mm256_setzero_si256();
    let (mut ca, mut cb, mut cx) = (zero, zero, zero);
    for (la, lb) in a
        .bits
        .chunks_exact(CELL_WORDS)
        .zip(b.bits.chunks_exact(CELL_WORDS))
    {
        let x = _mm256_and_si256(load(layer(la)), mv);
        let y = _mm256_and_si256(load(layer(lb)), mv);
        ca = _mm256_add_epi8(ca, popcount_bytes(x));
        cb = _mm256_add_epi8(cb, popcount_bytes(y));
        cx = _mm256_add_epi8(cx, popcount_bytes(_mm256_xor_si256(x, y)));
    }
    let total = |v: __m256i| {
        let s = _mm256_sad_epu8(v, zero);
        let s = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
        (_mm_cvtsi128_si64(s) + _mm_extract_epi64::<1>(s)) as u32
    };
    (total(ca), total(cb), total(cx))
}

/// Popcount of each byte of `v` (nibble lookup with vpshufb: AVX2 has no
/// vector popcount). Shared by the exact and the coarse kernels.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) fn popcount_bytes(v: std::arch::x86_64::__m256i) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    let lut = _mm256_setr_epi8(
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3,
        3, 4,
    );
    let nibble = _mm256_set1_epi8(0x0f);
    let lo = _mm256_and_si256(v, nibble);
    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), nibble);
    _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi))
}

/// `a` in `[0, 2π)` (`rem_euclid` alone can round up to exactly 2π).
fn wrap_tau(a: f32) -> f32 {
    let w = a.rem_euclid(TAU);
    if w >= TAU {
        0.0
    } else {
        w
    }
}

/// Difference of two directions in `[0, 2π)`, folded into `[0, π]`.
#[inline(always)]
fn direction_gap(a: f32, b: f32) -> f32 {
    let d = (a - b).abs();
    if d > PI {
        TAU - d
    } else {
        d
    }
}

/// `d` wrapped into `[-π, π)` for `d` in `[-3π, 3π)`: [`signed_diff`] without the
/// division (`rem_euclid` was a tenth of a comparison's time).
#[inline(always)]
fn wrap_pi(d: f32) -> f32 {
    if d >= PI {
        d - TAU
    } else if d < -PI {
        d + TAU
    } else {
        d
    }
}

/// Bit `j` set when `angles[j]` is within [`MCC_MAX_DIR_DIFF`] of `a`: the
/// direction test of every pair of a row at once, without a branch each
/// (half of them fail, unpredictably).
#[inline(always)]
fn aligned_mask(a: f32, angles: &[f32]) -> u64 {
    debug_assert!(angles.len() <= 64);
    angles.iter().enumerate().fold(0, |m, (j, &b)| {
        m | (u64::from(direction_gap(a, b) <= MCC_MAX_DIR_DIFF) << j)
    })
}

/// MCC-Bit local similarity of two cylinders whose directions are within
/// [`MCC_MAX_DIR_DIFF`] (see [`aligned_mask`]), `[0, 1]`.
#[inline(always)]
fn local_similarity(
    a: &Cylinder,
    b: &Cylinder,
    min_cells: u32,
    count_bits: impl Fn(&Cylinder, &Cylinder, &[u64; CELL_WORDS]) -> (u32, u32, u32),
) -> f32 {
    // Too little common area: decided from one layer's mask, before the bit counts.
    let (cells, m) = common_cells(a, b);
    if cells < min_cells {
        return 0.0;
    }
    let (na, nb, nx) = count_bits(a, b, &m);
    if na + nb == 0 {
        return 0.0;
    }
    let t = sqrt_table();
    1.0 - t[nx as usize] / (t[na as usize] + t[nb as usize])
}

fn sigmoid(v: f32, mu: f32, tau: f32) -> f32 {
    1.0 / (1.0 + (-tau * (v - mu)).exp())
}

fn disc_cells() -> u32 {
    static N: OnceLock<u32> = OnceLock::new();
    *N.get_or_init(|| {
        let delta_s = 2.0 * MCC_RADIUS / MCC_NS as f32;
        let mut n = 0;
        for j in 0..MCC_NS {
            for i in 0..MCC_NS {
                let u = (i as f32 - (MCC_NS as f32 - 1.0) / 2.0) * delta_s;
                let v = (j as f32 - (MCC_NS as f32 - 1.0) / 2.0) * delta_s;
                n += u32::from(u * u + v * v <= MCC_RADIUS * MCC_RADIUS);
            }
        }
        n
    })
}

const RHO_DIST_CUTOFF: f32 = MCC_RHO_DIST.0 - 9.2 / MCC_RHO_DIST.1;
const RHO_ANGLE_CUTOFF: f32 = MCC_RHO_DIR.0 - 9.2 / MCC_RHO_DIR.1;

/// A candidate pair as one sortable word: the similarity's bits (it is
/// positive, so its bits order as it does) above the two minutia indices,
/// which also make the order total.
#[inline(always)]
fn pair_key(similarity: f32, i: usize, j: usize) -> u64 {
    debug_assert!(similarity > 0.0 && i < 64 && j < 64);
    (u64::from(similarity.to_bits()) << 32) | ((i as u64) << 16) | j as u64
}

/// The two minutia indices of a [`pair_key`] (masked to 0..64, the
/// cylinder cap, so a shift by them cannot overflow).
#[inline(always)]
fn key_indices(key: u64) -> (u64, u64) {
    ((key >> 16) & 0x3f, key & 0x3f)
}

/// The up to `n` most similar pairs (similarity, minutia of A, minutia of
/// B) in which no minutia of either side appears twice, chosen greedily
/// best first, from `keys` made by [`pair_key`]. Without the one-to-one
/// rule one noisy minutia whose cylinder resembles many (a dense patch of
/// false minutiae) fills the consolidation with copies of itself; with it
/// the mean extended EER over FVC2000 DB1–4 fell from 3.31% to 2.67%
/// (same templates). Only the best keys are sorted, 4 per pair still
/// wanted; when they run out, the rest loses every key a chosen pair has
/// blocked and the next best are sorted (greedy order is unchanged: every
/// key left is below every key already seen).
fn best_one_to_one(keys: &mut [u64], n: usize) -> Vec<(f32, u16, u16)> {
    let by_key_desc = |x: &u64, y: &u64| y.cmp(x);
    let mut chosen = Vec::with_capacity(n);
    let (mut used_a, mut used_b) = (0u64, 0u64);
    let mut rest = keys;
    while chosen.len() < n && !rest.is_empty() {
        let m = (4 * (n - chosen.len())).min(rest.len());
        if m < rest.len() {
            rest.select_nth_unstable_by(m - 1, by_key_desc);
        }
        rest[..m].sort_unstable_by(by_key_desc);
        for &key in &rest[..m] {
            let (i, j) = key_indices(key);
            let (bit_a, bit_b) = (1u64 << i, 1u64 << j);
            if used_a & bit_a == 0 && used_b & bit_b == 0 {
                used_a |= bit_a;
                used_b |= bit_b;
                chosen.push((f32::from_bits((key >> 32) as u32), i as u16, j as u16));
                if chosen.len() == n {
                    return chosen;
                }
            }
        }
        let tail = &mut std::mem::take(&mut rest)[m..];
        let mut open = 0;
        for k in 0..tail.len() {
            let (i, j) = key_indices(tail[k]);
            if used_a & (1u64 << i) == 0 && used_b & (1u64 << j) == 0 {
                tail.swap(open, k);
                open += 1;
            }
        }
        rest = &mut tail[..open];
    }
    chosen
}

/// Local similarity sort with relaxation.
fn lss_r(a: &[Cylinder], ga: &Geometry, b: &[Cylinder], use_flow: bool) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_fast_popcount() {
        // SAFETY: has_fast_popcount() checked popcnt and AVX2 at run time.
        return unsafe { lss_r_avx2(a, ga, b, use_flow) };
    }
    lss_r_generic(a, ga, b, counts, use_flow.then_some(flow::agreement))
}

/// [`lss_r_generic`] compiled with hardware popcount (the baseline x86-64
/// target lacks it; the bit-twiddling fallback is ~4× slower), so the
/// popcount loops inline into the pair loop.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt,avx2")]
unsafe fn lss_r_avx2(a: &[Cylinder], ga: &Geometry, b: &[Cylinder], use_flow: bool) -> f32 {
    // The closures inherit this function's target features, so the AVX2 kernels inline.
    lss_r_generic(
        a,
        ga,
        b,
        |x, y, m| counts_avx2(x, y, m),
        use_flow.then_some(|x: &[u8; FLOW_LANES], y: &[u8; FLOW_LANES]| flow::agreement_avx2(x, y)),
    )
}

#[inline(always)]
fn lss_r_generic(
    a: &[Cylinder],
    ga: &Geometry,
    b: &[Cylinder],
    count_bits: impl Fn(&Cylinder, &Cylinder, &[u64; CELL_WORDS]) -> (u32, u32, u32) + Copy,
    flow_agreement: Option<impl Fn(&[u8; FLOW_LANES], &[u8; FLOW_LANES]) -> (u32, u32)>,
) -> f32 {
    let (na, nb) = (a.len(), b.len());
    // `a` may be a prefix of the geometry's template: rows keep its stride.
    let stride = ga.n;
    if na == 0 || nb == 0 {
        return 0.0;
    }
    let min_cells = (MCC_MIN_MATCHABLE * disc_cells() as f32).ceil() as u32;
    let mut keys: Vec<u64> = Vec::with_capacity(na * nb / 2);
    let b_angles: Vec<f32> = b.iter().map(|c| c.angle).collect();
    for (i, ca) in a.iter().enumerate() {
        // Same pairs in the same order as testing every j.
        let mut aligned = aligned_mask(ca.angle, &b_angles);
        while aligned != 0 {
            let j = aligned.trailing_zeros() as usize;
            aligned &= aligned - 1;
            let mut s = local_similarity(ca, &b[j], min_cells, count_bits);
            if let (true, Some(agree)) = (s > 0.0, &flow_agreement) {
                s *= flow::factor(agree(&ca.flow, &b[j].flow));
            }
            if s > 0.0 {
                keys.push(pair_key(s, i, j));
            }
        }
    }
    let n_min = na.min(nb);
    let np = MCC_MIN_NP
        + (sigmoid(n_min as f32, MCC_MU_P, MCC_TAU_P) * (MCC_MAX_NP - MCC_MIN_NP) as f32).round()
            as usize;
    let pairs = best_one_to_one(&mut keys, n_min);
    let nr = pairs.len();
    if nr == 0 {
        return 0.0;
    }
    let lambda0: Vec<f32> = pairs.iter().map(|p| p.0).collect();
    let mut lambda = lambda0.clone();
    if nr > 1 {
        // Pairwise geometric compatibility ρ(t, k), kept sparse: most pairs
        // are cut by the early outs below, and a relaxation sum that skips the
        // exact zeros adds the same terms in the same order (x + 0 = x), so
        // scores are unchanged while the serial float sums get much shorter.
        let mut rho = vec![0f32; nr * nr];
        debug_assert!(na <= ga.n, "geometry of another template");
        for t in 0..nr {
            let it = pairs[t].1 as usize;
            let (at, bt) = (&a[it], &b[pairs[t].2 as usize]);
            for k in t + 1..nr {
                let ik = pairs[k].1 as usize;
                let (ak, bk) = (&a[ik], &b[pairs[k].2 as usize]);
                let da = ga.dist[it * stride + ik];
                let db = distance(bt, bk);
                let d1 = (da - db).abs();
                // Early outs: past these the sigmoids are < 1e-4, so ρ ≈ 0
                // and the atan2/exp work (most of LSS-R's cost on impostor
                // pairs) can be skipped.
                if d1 > RHO_DIST_CUTOFF {
                    continue;
                }
                let d2 = wrap_pi(wrap_pi(at.angle - ak.angle) - wrap_pi(bt.angle - bk.angle)).abs();
                if d2 > RHO_ANGLE_CUTOFF {
                    continue;
                }
                let ra = wrap_pi(at.angle - ga.radial[it * stride + ik]);
                let rb = wrap_pi(bt.angle - radial_direction(bt, bk));
                let d3 = wrap_pi(ra - rb).abs();
                let r = sigmoid(d1, MCC_RHO_DIST.0, MCC_RHO_DIST.1)
                    * sigmoid(d2, MCC_RHO_DIR.0, MCC_RHO_DIR.1)
                    * sigmoid(d3, MCC_RHO_RADIAL.0, MCC_RHO_RADIAL.1);
                rho[t * nr + k] = r;
                rho[k * nr + t] = r;
            }
        }
        let mut links: Vec<(u16, f32)> = Vec::with_capacity(nr * 4);
        let mut row_end = Vec::with_capacity(nr);
        for row in rho.chunks_exact(nr) {
            links.extend(
                row.iter()
                    .enumerate()
                    .filter(|&(_, &r)| r != 0.0)
                    .map(|(k, &r)| (k as u16, r)),
            );
            row_end.push(links.len());
        }
        let mut next = vec![0f32; nr];
        for _ in 0..MCC_RELAX_ITERS {
            let mut start = 0;
            for (t, &end) in row_end.iter().enumerate() {
                let support: f32 = links[start..end]
                    .iter()
                    .map(|&(k, r)| r * lambda[k as usize])
                    .sum();
                start = end;
                next[t] = MCC_RELAX_WEIGHT * lambda[t]
                    + (1.0 - MCC_RELAX_WEIGHT) * support / (nr - 1) as f32;
            }
            std::mem::swap(&mut lambda, &mut next);
        }
    }
    // Keep the pairs whose similarity relaxation preserved best.
    let kept: Vec<f32> = lambda.iter().zip(&lambda0).map(|(l, l0)| l / l0).collect();
    let mut order: Vec<usize> = (0..nr).collect();
    order.sort_by(|&x, &y| kept[y].total_cmp(&kept[x]));
    let sum: f32 = order
        .iter()
        .take(np)
        .map(|&t| {
            let kinds = (a[pairs[t].1 as usize].kind, b[pairs[t].2 as usize].kind);
            lambda[t] * type_weight(kinds)
        })
        .sum();
    (sum / np as f32).clamp(0.0, 1.0)
}

/// [`MCC_TYPE_WEIGHT`]: same types count more, mixed less, unknown as is.
#[inline(always)]
fn type_weight(kinds: (MinutiaKind, MinutiaKind)) -> f32 {
    match kinds {
        (MinutiaKind::Other, _) | (_, MinutiaKind::Other) => 1.0,
        (x, y) if x == y => 1.0 + MCC_TYPE_WEIGHT,
        _ => 1.0 - MCC_TYPE_WEIGHT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::angle_diff;
    use crate::template::{Minutia, MinutiaKind};

    fn synthetic(seed: u32, n: usize) -> FingerTemplate {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            s >> 8
        };
        let minutiae = (0..n)
            .map(|_| Minutia {
                x: (30 + next() % 240) as u16,
                y: (30 + next() % 240) as u16,
                angle: (next() % 6283) as f32 / 1000.0,
                kind: MinutiaKind::Ending,
                quality: 50,
            })
            .collect::<Vec<_>>();
        // Random ridge flow around each minutia (moves with it in `transform`).
        let flow = (0..n)
            .map(|_| {
                let mut codes = [0u8; FLOW_SAMPLES];
                for c in codes.iter_mut() {
                    *c = (next() % 16) as u8;
                }
                crate::FlowDescriptor::from_codes(&codes)
            })
            .collect();
        FingerTemplate {
            width: 300,
            height: 300,
            dpi: 500,
            minutiae,
            flow,
        }
    }

    fn transform(t: &FingerTemplate, rot: f32, dx: f32, dy: f32) -> FingerTemplate {
        let (c, s) = (rot.cos(), rot.sin());
        let mut out = t.clone();
        out.width = 600;
        out.height = 600;
        for m in &mut out.minutiae {
            let (x, y) = (f32::from(m.x) - 150.0, f32::from(m.y) - 150.0);
            m.x = (x * c - y * s + 300.0 + dx) as u16;
            m.y = (x * s + y * c + 300.0 + dy) as u16;
            m.angle = (m.angle + rot).rem_euclid(TAU);
        }
        out
    }

    #[test]
    fn rotation_translation_invariant() {
        let t = synthetic(7, 40);
        let m = Matcher::new(&t);
        let moved = transform(&t, 1.1, 20.0, -15.0);
        let same = m.score_template(&moved);
        let other = m.score_template(&synthetic(99, 40));
        assert!(same > 0.7, "same {same}");
        assert!(other < 0.3, "other {other}");
    }

    #[test]
    fn fast_and_portable_scores_agree() {
        let t = SearchTemplate::new(&synthetic(3, 40));
        for seed in [3, 4, 5] {
            let u = SearchTemplate::new(&synthetic(seed, 40));
            let g = Geometry::new(&t);
            for use_flow in [false, true] {
                assert_eq!(
                    lss_r(&t.cylinders, &g, &u.cylinders, use_flow),
                    lss_r_generic(
                        &t.cylinders,
                        &g,
                        &u.cylinders,
                        counts,
                        use_flow.then_some(flow::agreement)
                    ),
                    "seed {seed}"
                );
            }
        }
    }

    #[test]
    fn partial_score_over_every_minutia_is_the_full_score() {
        let m = Matcher::new(&synthetic(3, 40));
        let mate = SearchTemplate::new(&transform(&synthetic(3, 40), 0.4, 9.0, -5.0));
        let other = SearchTemplate::new(&synthetic(8, 40));
        for c in [&mate, &other] {
            assert_eq!(m.score_best(c, MCC_MAX_CYLINDERS), m.score(c));
        }
        // Over the best 16 it still tells the mate from the impostor.
        assert!(m.score_best(&mate, 16) > 0.5, "{}", m.score_best(&mate, 16));
        assert!(
            m.score_best(&other, 16) < 0.2,
            "{}",
            m.score_best(&other, 16)
        );
    }

    #[test]
    fn simd_and_portable_counts_agree() {
        let t = SearchTemplate::new(&synthetic(3, 40));
        let u = SearchTemplate::new(&synthetic(4, 40));
        #[cfg(target_arch = "x86_64")]
        if has_fast_popcount() {
            for a in &t.cylinders {
                for b in &u.cylinders {
                    let (_, m) = common_cells(a, b);
                    // SAFETY: AVX2 detected by has_fast_popcount().
                    let fast = unsafe { counts_avx2(a, b, &m) };
                    assert_eq!(fast, counts(a, b, &m));
                }
            }
        } else {
            eprintln!("no AVX2 on this CPU: only the portable counts ran");
        }
    }

    #[test]
    fn cheap_wraps_match_the_modular_forms() {
        for i in 0..2000 {
            let a = i as f32 * 0.0123 % TAU;
            let b = i as f32 * 0.0571 % TAU;
            assert!((direction_gap(a, b) - angle_diff(a, b)).abs() < 1e-5);
            let d = a - b + (i % 3) as f32 - 1.0;
            assert!((wrap_pi(d) - signed_diff(d, 0.0)).abs() < 1e-5, "{d}");
        }
    }

    /// Greedy one-to-one selection over the fully sorted list (ties:
    /// higher indices first, as the keys order them).
    fn one_to_one_reference(pairs: &[(f32, u16, u16)], n: usize) -> Vec<(f32, u16, u16)> {
        let mut all = pairs.to_vec();
        all.sort_by(|x, y| y.0.total_cmp(&x.0).then(y.1.cmp(&x.1)).then(y.2.cmp(&x.2)));
        let mut out: Vec<(f32, u16, u16)> = Vec::new();
        for p in all {
            if out.len() < n && out.iter().all(|q| q.1 != p.1 && q.2 != p.2) {
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn best_pairs_are_one_to_one_and_match_a_full_sort() {
        let mut s = 11u32;
        let mut next = || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            s >> 8
        };
        for case in 0..200 {
            let (na, nb) = (1 + next() % 45, 1 + next() % 45);
            // Half the cases crowd the top with one minutia of A, so that
            // the first 4n sorted pairs hold too few distinct ones.
            let crowded = case % 2 == 0;
            let mut pairs: Vec<(f32, u16, u16)> = Vec::new();
            for i in 0..na {
                for j in 0..nb {
                    if next() % 3 == 0 {
                        let boost = if crowded && i == 0 { 2.0 } else { 0.0 };
                        // Coarse similarities, so that ties occur.
                        let sim = boost + (next() % 1000) as f32 * 1e-3;
                        pairs.push((sim, i as u16, j as u16));
                    }
                }
            }
            let n = na.min(nb) as usize;
            let want = one_to_one_reference(&pairs, n);
            let mut keys: Vec<u64> = pairs
                .iter()
                .map(|&(s, i, j)| pair_key(s, i.into(), j.into()))
                .collect();
            assert_eq!(best_one_to_one(&mut keys, n), want, "case {case}");
        }
        assert!(best_one_to_one(&mut [], 5).is_empty());
    }

    #[test]
    fn hull_contains_interior() {
        let h = convex_hull(&[
            (0.0, 0.0),
            (10.0, 0.0),
            (10.0, 10.0),
            (0.0, 10.0),
            (5.0, 5.0),
        ]);
        assert_eq!(h.len(), 4);
        assert!(inside_enlarged_hull(&h, 5.0, 5.0, 0.0));
        assert!(!inside_enlarged_hull(&h, 20.0, 5.0, 5.0));
        assert!(inside_enlarged_hull(&h, 14.0, 5.0, 5.0));
    }
}
