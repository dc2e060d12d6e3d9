//! Every tunable constant of the fingerprint pipeline, in one place.
//!
//! Lengths are in pixels at [`TARGET_DPI`] (500 dpi, ≈ 19.7 px/mm) unless a
//! name says otherwise; the extractor rescales other resolutions first, so
//! these never need per-sensor variants.

use std::f32::consts::PI;

// ---------------------------------------------------------------- input --

/// Resolution every stage works at; other inputs are resampled to it.
pub const TARGET_DPI: u16 = 500;
/// Lowest accepted capture resolution (below this ridges alias away).
pub const MIN_DPI: u16 = 250;
/// Highest accepted capture resolution.
pub const MAX_DPI: u16 = 2000;
/// Smallest accepted side after rescaling (a 64 px window holds ~7 ridges).
pub const MIN_SIDE: u32 = 64;
/// Largest accepted side after rescaling (a 4 cm × 4 cm plain impression
/// at 500 dpi is ~800 px; this leaves room for rolled prints).
pub const MAX_SIDE: u32 = 2048;

// --------------------------------------------------------- segmentation --

/// Block size of the variance mask.
pub const SEG_BLOCK: usize = 8;
/// Radius of the window the local standard deviation is taken over.
pub const SEG_STD_RADIUS: usize = 8;
/// A block is foreground if its std exceeds this fraction of the 95th
/// percentile block std: relative, because sensors differ 4× in contrast.
pub const SEG_REL_THRESHOLD: f32 = 0.28;
/// ... and at least this absolute std (grey levels), so flat noise is never
/// foreground however low the percentile is.
pub const SEG_ABS_THRESHOLD: f32 = 5.0;
/// Blocks whose mean orientation coherence is below this are background
/// (noise texture has variance but no dominant ridge direction).
pub const SEG_MIN_COHERENCE: f32 = 0.12;
/// Majority-vote smoothing passes over the block mask (removes speckle).
pub const SEG_SMOOTH_PASSES: usize = 3;
/// Minimum foreground fraction of the image, else `TooLittleForeground`.
pub const MIN_FOREGROUND_FRACTION: f32 = 0.08;
/// Minimum 95th-percentile block std (grey levels), else `LowContrast`.
pub const MIN_CONTRAST_STD: f32 = 8.0;

// -------------------------------------------------------- normalisation --

/// Radius of the local mean/std window used to normalise contrast.
pub const NORM_RADIUS: usize = 9;

// ----------------------------------------------------------- orientation --

/// Radius of the box window the gradient tensor is averaged over when the
/// window spectra give no ridge period, and of the box that smooths the
/// coherence map.
pub const ORIENT_RADIUS: usize = 7;
/// Otherwise the radius is this many ridge periods (the median of the
/// window spectra's, so ≈ 7 px at the common 9 px, 10 at FVC2000 DB3's
/// 12). Extended EER over the five FVC databases, mean, 2026-12-01: fixed
/// 7 → 3.27%, 0.75 → 3.07%, 0.8 → 2.86%, 0.85 → 2.93%, 0.9 → 3.00%, 0.95 →
/// 2.93%, 1.05 → 3.09% (at the 0.2 blend; at blends 0.15–0.4 it gives
/// 3.21–3.30% against 3.25–3.64% fixed, so part of 0.2's margin is these
/// small sets' luck). Scaling the second smoothing with the period as well
/// measured worse (3.20–3.91%).
pub const ORIENT_RADIUS_PER_PERIOD: f32 = 0.8;
/// Smallest period-scaled tensor radius.
pub const ORIENT_RADIUS_MIN: usize = 4;
/// Largest period-scaled tensor radius.
pub const ORIENT_RADIUS_MAX: usize = 14;
/// Radius of the second smoothing pass over the doubled-angle field; two
/// box passes approximate a Gaussian and bridge creases and scars.
pub const ORIENT_SMOOTH_RADIUS: usize = 22;
/// Side (full-resolution pixels) of the windows whose spectra give the
/// spectral orientation estimate; their centres are half a side apart.
/// Wide enough to hold 4–14 ridge periods, so the peak's direction is
/// resolved to a few degrees: 32-px windows measured worse on FVC2000 DB3,
/// whose ridges are 11–14 px apart.
pub const SPECTRAL_WINDOW: usize = 64;
/// Shortest ridge period (pixels at 500 dpi) the spectral peak is searched
/// at: a little wider than the period stage's 5–15 px on both sides, so a
/// print at the end of that range still has its peak inside the band
/// rather than on its edge.
pub const SPECTRAL_MIN_PERIOD: f32 = 4.5;
/// Longest ridge period the spectral peak is searched at.
pub const SPECTRAL_MAX_PERIOD: f32 = 16.0;
/// Weight of the spectral estimate against the gradient tensor in the
/// orientation field. The gradient tensor alone is fooled by dotted and
/// faint ridges (each dot's gradient points every way); the spectrum alone
/// is coarse near cores and deltas (FVC2000 DB4, FVC2002 DB1 worse).
/// Extended EER over the five FVC databases (FVC2000 DB1–4 B, FVC2002 DB1
/// B), mean, 2026-12-01: 0 → 4.34%, 0.1 → 4.12%, 0.15 → 3.64%, 0.2 →
/// 3.27%, 0.25 → 3.36%, 0.3 → 3.42%, 0.4 → 3.25%, 0.5 → 3.34%, 0.6 →
/// 3.46%, 1 → 3.88%: a plateau from 0.2 to 0.5, where 0.2 keeps FVC2002 DB1
/// at its gradient-only figure (1.07%; 2.15% at 1). Measured with the fixed
/// 7-px tensor window; with the period-scaled one (below): 0.15 → 3.21%,
/// 0.2 → 2.86%, 0.3 → 3.29%, 0.4 → 3.30%.
pub const SPECTRAL_BLEND: f32 = 0.2;

// ------------------------------------------------------------ frequency --

/// Half-length (across ridges) of the oriented window for the x-signature.
pub const FREQ_HALF_LEN: i32 = 16;
/// Half-width (along ridges) of the oriented window.
pub const FREQ_HALF_WIDTH: i32 = 6;
/// Step between frequency windows.
pub const FREQ_STEP: usize = 16;
/// Plausible ridge period range at 500 dpi (pixels).
pub const MIN_WAVELENGTH: f32 = 5.0;
/// Upper end of the plausible ridge period.
pub const MAX_WAVELENGTH: f32 = 15.0;
/// Resolution of the period scan over the x-signature's spectrum.
pub const FREQ_PERIOD_STEP: f32 = 0.25;
/// Used when too few windows give a valid period.
pub const DEFAULT_WAVELENGTH: f32 = 9.0;

// ------------------------------------------------------------- enhance --

/// Number of quantised orientations in the Gabor bank.
pub const GABOR_ORIENTATIONS: usize = 16;
/// The bank's cosine is tuned to this fraction of the measured ridge
/// period: binarised ridges then keep their width where the period rises
/// locally (a single period serves the whole print). Chosen on the FVC
/// sets (extended EER, FVC2000 mean, during development): 0.85 and 1.0
/// were no better than 0.9 (5.65–5.72% with the old sigmas); 0.9 with the
/// sigmas below gives 5.16% (v2).
pub const GABOR_PERIOD_FACTOR: f32 = 0.9;
/// Gaussian sigma across ridges, as a fraction of the ridge period.
pub const GABOR_SIGMA_ACROSS: f32 = 0.45;
/// Gaussian sigma along ridges, as a fraction of the ridge period. Longer
/// windows bridge more breaks but cut across curved ridges: 0.6 and 0.8
/// measured worse than 0.5 once the period is measured right.
pub const GABOR_SIGMA_ALONG: f32 = 0.5;
/// Kernel half-size in sigmas (2 keeps 95% of the mass at ~40% of the cost
/// of 3).
pub const GABOR_EXTENT_SIGMAS: f32 = 2.0;

// -------------------------------------------------------- binarisation --

/// Connected ridge or valley blobs smaller than this (pixels) are flipped:
/// islands and pores make spurious ending pairs.
pub const MIN_BLOB_AREA: usize = 24;

// ------------------------------------------------------------ minutiae --

/// Steps traced along the skeleton to estimate a minutia's direction.
pub const DIR_TRACE_LEN: usize = 10;
/// A minutia closer than this to the mask edge is a border artefact.
pub const BORDER_MARGIN: usize = 12;
/// An ending joined to a bifurcation within this many steps is a spur.
pub const SPUR_LEN: usize = 10;
/// Two endings joined within this many steps are a short ridge / island.
pub const SHORT_RIDGE_LEN: usize = 12;
/// Two bifurcations joined within this many steps are a bridge / ladder.
pub const BRIDGE_LEN: usize = 10;
/// Facing endings closer than this are a broken ridge.
pub const BREAK_DIST: f32 = 16.0;
/// Maximal deviation from antiparallel for facing endings.
pub const BREAK_ANGLE: f32 = PI / 4.0;
/// Any two minutiae closer than this are noise (both removed).
pub const CLOSE_DIST: f32 = 5.0;
/// Radius of the crowding test: a minutia with [`CLUSTER_MAX`] or more
/// others this close sits in a noisy patch (scar, core smear).
pub const CLUSTER_RADIUS: f32 = 14.0;
/// Neighbour count that marks a cluster.
pub const CLUSTER_MAX: usize = 4;
/// Minimum orientation coherence at a kept minutia.
pub const MIN_MINUTIA_COHERENCE: f32 = 0.1;
/// Minutiae closer than this (pixels) to the print's edge or the image's
/// get proportionally lower quality (chosen on FVC2000 / FVC2002: 60–170 px
/// measured alike, 40 px worse).
pub const QUALITY_FULL_DEPTH: f32 = 80.0;
/// Radius (pixels) within which other minutiae lower a minutia's quality.
pub const QUALITY_CROWD_RADIUS: f32 = 25.0;
/// That many neighbours within [`QUALITY_CROWD_RADIUS`] halve the quality
/// (radius 20–30 px and 1–2 neighbours measured alike: FVC2000 mean
/// extended EER 2.04–2.41% against 2.41% without).
pub const QUALITY_CROWD_HALVING: f32 = 1.5;
/// Fewer minutiae than this after filtering gives `TooFewMinutiae`.
pub const MIN_MINUTIAE: usize = 8;
/// At most this many minutiae are kept (best quality first); more only
/// slows matching and is a sign of noise.
pub const MAX_MINUTIAE: usize = 100;

// ------------------------------------------------------------------ MCC --
// Values from Cappelli, Ferrara, Maltoni, "Minutia Cylinder-Code", IEEE
// TPAMI 32(12), 2010, for the bit-based variant with LSS-R consolidation.

/// Cylinder radius R.
pub const MCC_RADIUS: f32 = 70.0;
/// Spatial cells per side N_S.
pub const MCC_NS: usize = 16;
/// Directional layers N_D.
pub const MCC_ND: usize = 6;
/// Spatial Gaussian sigma σ_S.
pub const MCC_SIGMA_S: f32 = 28.0 / 3.0;
/// Directional Gaussian sigma σ_D.
pub const MCC_SIGMA_D: f32 = 2.0 * PI / 9.0;
/// Bit threshold μ_Ψ on a cell's contribution.
pub const MCC_MU_PSI: f32 = 0.005;
/// Offset Ω of the enlarged convex hull that bounds valid cells.
pub const MCC_HULL_OFFSET: f32 = 50.0;
/// Minimum fraction of valid cells (of those in the disc) for a valid cylinder.
pub const MCC_MIN_VALID_CELLS: f32 = 0.75;
/// Minimum contributing neighbours for a valid cylinder.
pub const MCC_MIN_NEIGHBOURS: usize = 2;
/// Minimum fraction of cells valid in both cylinders for a comparison.
pub const MCC_MIN_MATCHABLE: f32 = 0.60;
/// Maximal direction difference δ_θ of comparable minutiae.
pub const MCC_MAX_DIR_DIFF: f32 = PI / 2.0;
/// Sigmoid centre μ_P for the number of consolidated pairs.
pub const MCC_MU_P: f32 = 20.0;
/// Sigmoid slope τ_P for the number of consolidated pairs.
pub const MCC_TAU_P: f32 = 2.0 / 5.0;
/// Fewest consolidated pairs.
pub const MCC_MIN_NP: usize = 4;
/// Most consolidated pairs.
pub const MCC_MAX_NP: usize = 12;
/// Relaxation iterations n_rel.
pub const MCC_RELAX_ITERS: usize = 5;
/// Relaxation weight w_R.
pub const MCC_RELAX_WEIGHT: f32 = 0.5;
/// Relaxation: sigmoid of the distance difference (μ1, τ1).
pub const MCC_RHO_DIST: (f32, f32) = (5.0, -8.0 / 5.0);
/// Relaxation: sigmoid of the direction difference (μ2, τ2).
pub const MCC_RHO_DIR: (f32, f32) = (PI / 12.0, -30.0);
/// Relaxation: sigmoid of the radial-angle difference (μ3, τ3).
pub const MCC_RHO_RADIAL: (f32, f32) = (PI / 12.0, -30.0);
/// A consolidated pair of two endings or two bifurcations counts this much
/// more in the final score, a mixed pair this much less (a minutia of
/// unknown type counts as is). Types flip under pressure (an ending that
/// touches the next ridge becomes a bifurcation), so this is weak
/// evidence, not a gate. FVC2000 DB1–4 B mean EER, FVC protocol /
/// extended, matcher v2 templates, 2026-12-01: 0 → 2.27 / 2.23%, 0.1 →
/// 2.18 / 2.14%, 0.15 → 2.14 / 2.16%, 0.2 → 2.14 / 2.17%, 0.3 → 2.23 /
/// 2.23% (FVC2002 DB1 extended 1.07 → 0.72% from 0.1 to 0.3). Weighting
/// the local similarities instead (so types also steer which pairs are
/// chosen) was worse (2.59% extended at 0.1).
pub const MCC_TYPE_WEIGHT: f32 = 0.15;

// ----------------------------------------------------- ridge-flow descriptor --
// Tico, Kuosmanen, "Fingerprint matching using an orientation-based minutia
// descriptor", IEEE TPAMI 25(8), 2003: the ridge orientation sampled on
// circles around a minutia, relative to its direction.

/// Circles of the ridge-flow descriptor: (radius in pixels, samples). Tico
/// and Kuosmanen's radii with about three quarters of their samples (10 /
/// 16 / 22 / 28): FVC2000 mean EER 1.31 / 1.87% (FVC protocol / extended;
/// 1.31 / 1.81% as landed, with the agreement table in integer steps)
/// against 1.31 / 1.79% with theirs and 1.45 / 1.88% with the inner three
/// circles only (8 / 12 / 16), at 28 bytes a minutia instead of 38.
pub const FLOW_RINGS: [(f32, usize); 4] = [(27.0, 8), (45.0, 12), (63.0, 16), (81.0, 20)];
/// Samples per descriptor (the sum of [`FLOW_RINGS`]' counts).
pub const FLOW_SAMPLES: usize = 56;
const _: () =
    assert!(FLOW_RINGS[0].1 + FLOW_RINGS[1].1 + FLOW_RINGS[2].1 + FLOW_RINGS[3].1 == FLOW_SAMPLES);
/// Orientation levels over π (12° each); a sample's 4 bits hold a level
/// or [`FLOW_OFF_PRINT`]. 16 levels with another off-print code, 32, or 8
/// measured alike (FVC2000 mean extended EER 1.77–1.86%).
pub const FLOW_LEVELS: u8 = 15;
/// Sample code of a point outside the print (not compared).
pub const FLOW_OFF_PRINT: u8 = 15;
/// Decay of a sample's agreement with the orientation difference d:
/// exp(−d / τ). FVC2000 mean EER, FVC protocol / extended, at
/// [`FLOW_WEIGHT`] 1: τ 10° → 1.95 / 2.18%, 15° → 1.77 / 1.98%, 25° → 1.77 /
/// 1.95%; at 0.5: 15° → 1.36 / 1.79%, 25° → 1.82 / 1.96%.
pub const FLOW_TAU: f32 = 15.0 * PI / 180.0;
/// Two descriptors that share fewer on-print samples than this fraction
/// cannot vouch for a pair: its local similarity becomes 0 (0 to 0.34
/// measured alike, 0.5 slightly worse).
pub const FLOW_MIN_SHARED: f32 = 1.0 / 3.0;
/// A pair's local similarity is MCC's times the descriptors' agreement to
/// this power, when both templates carry descriptors. The cylinder codes
/// only see neighbouring minutiae, so spurious and missing ones (dry, wet
/// and textured prints) change them; the ridge flow around a true pair
/// stays alike. FVC2000 DB1–4 B mean EER (FVC protocol / extended) with
/// [`MCC_TYPE_WEIGHT`] 0.15: off → 2.14 / 2.16%, 0.3 → 1.45 / 1.77%, 0.4 →
/// 1.49 / 1.79%, 0.5 → 1.36 / 1.79%, 0.75 → 1.82 / 1.96%, 1 → 1.77 /
/// 1.98%, 2 → 1.90 / 2.43% (three inner circles, 32 levels); DB3 carries
/// the gain (extended 3.57 → 1.44–2.15%), DB2 loses a little (2.20% with
/// the type weight alone, 2.50% before it, → 2.85%: most of its losses are
/// one finger either way).
pub const FLOW_WEIGHT: f32 = 0.5;

// ---------------------------------------------------------- 1:N search --

/// Cylinders kept per template for matching (best quality first): past
/// ~60 the extra minutiae are mostly noise and cost quadratic time.
pub const MCC_MAX_CYLINDERS: usize = 45;
// The matcher tests a row of pairs with one 64-bit mask.
const _: () = assert!(MCC_MAX_CYLINDERS <= 64);
/// Minutiae (best quality first) whose coarse codes form the pre-selection
/// signature.
pub const COARSE_MINUTIAE: usize = 16;
/// A coarse code bit is set when at least this many of its 12 fine cells are.
pub const COARSE_MIN_FINE_BITS: u32 = 3;
/// Candidates kept by pre-selection, as a fraction of the gallery ...
pub const PRESELECT_FRACTION: f32 = 0.03;
/// ... but never fewer than this (nor fewer for the full score).
pub const PRESELECT_MIN: usize = 50;
/// Pre-selection's first pass scores the gallery with this many probe codes
/// (a quarter of the coarse work) ...
pub const FIRST_PASS_CODES: usize = 4;
/// ... and keeps this fraction for the full coarse score: on the 400 FVC
/// templates, leave-one-out rank-1 at a 2% shortlist is the same with it
/// (94.75%) and 0.75 points lower when it keeps 20%.
pub const FIRST_PASS_FRACTION: f32 = 0.3;
/// The refine stage scores the shortlist by MCC over this many
/// best-quality minutiae per side (~1/5 of the pairs of the full score) ...
pub const REFINE_CYLINDERS: usize = 20;
/// ... and passes this fraction of the gallery to the full score. With a
/// 3% shortlist, leave-one-out rank-1 on the 400 FVC templates (extractor
/// v4, matcher v2) is 97.25% against 98.50% exhaustive; 16 minutiae: 96.25%,
/// 24: 97.75% (`sinhtrac bench finger`, two threads, same day: 1.97M/s with
/// 16, 1.45–1.74M/s with 20, 1.30M/s with 24). That check is pessimistic for
/// this stage: on 399 entries it passes only 2 to the full score, on
/// 100,000 it passes 600.
pub const REFINE_FRACTION: f32 = 0.006;

// ------------------------------------------------------------ decision --

/// Default decision threshold on the `[0, 1]` MCC score: the highest of the
/// per-database FMR = 0.1% thresholds on the extended FVC impostor sets
/// (FVC2000 DB1–4 B, FVC2002 DB1 B; 0.020–0.032 with extractor v5 and
/// matcher v3). LSS-R relaxation shrinks scores, so useful thresholds are
/// small. Prefer a threshold calibrated on your own impostor scores with
/// [`crate::fvc::threshold_for_fmr`].
pub const DEFAULT_THRESHOLD: f32 = 0.032;
