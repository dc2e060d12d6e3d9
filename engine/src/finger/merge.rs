//! [`MergedExtractor`]: the union of two extractors' minutiae (an experiment: LEADER's minutiae plus the
//! classical extractor's where LEADER found none nearby), measured in `engine/crates/finger/README.md`.

use sinhtrac_finger::params::{MAX_MINUTIAE, MIN_MINUTIAE};
use sinhtrac_finger::{Extractor, FingerError, FingerTemplate, ImageView, Result};

/// Minutiae of `primary`, plus those of `secondary` farther than `min_distance` pixels from every primary
/// one; best quality first, at most [`MAX_MINUTIAE`]. Runs both extractors (the cost is their sum).
pub struct MergedExtractor<'a> {
    primary: Box<dyn Extractor + 'a>,
    secondary: Box<dyn Extractor + 'a>,
    min_distance: f32,
    name: &'static str,
}

impl std::fmt::Debug for MergedExtractor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergedExtractor")
            .field("name", &self.name)
            .field("min_distance", &self.min_distance)
            .finish()
    }
}

impl<'a> MergedExtractor<'a> {
    /// Merges `secondary` into `primary`; `name` is reported (e.g. `"leader+classical"`).
    pub fn new(
        primary: Box<dyn Extractor + 'a>,
        secondary: Box<dyn Extractor + 'a>,
        min_distance: f32,
        name: &'static str,
    ) -> Self {
        MergedExtractor {
            primary,
            secondary,
            min_distance,
            name,
        }
    }
}

impl Extractor for MergedExtractor<'_> {
    fn extract(&self, image: &ImageView<'_>) -> Result<FingerTemplate> {
        let (mut merged, other) = match (self.primary.extract(image), self.secondary.extract(image))
        {
            (Ok(p), Ok(s)) => (p, s.minutiae),
            (Ok(p), Err(_)) => (p, Vec::new()),
            (Err(_), Ok(s)) => (s, Vec::new()),
            // Both refuse (the quality gates are shared): the primary's reason.
            (Err(e), Err(_)) => return Err(e),
        };
        let d2 = self.min_distance * self.min_distance;
        let extra: Vec<_> = other
            .into_iter()
            .filter(|s| {
                merged.minutiae.iter().all(|p| {
                    let (dx, dy) = (
                        f32::from(p.x) - f32::from(s.x),
                        f32::from(p.y) - f32::from(s.y),
                    );
                    dx * dx + dy * dy > d2
                })
            })
            .collect();
        merged.minutiae.extend(extra);
        merged
            .minutiae
            .sort_by_key(|m| std::cmp::Reverse(m.quality));
        merged.minutiae.truncate(MAX_MINUTIAE);
        if merged.minutiae.len() < MIN_MINUTIAE {
            return Err(FingerError::TooFewMinutiae {
                found: merged.minutiae.len(),
                min: MIN_MINUTIAE,
            });
        }
        Ok(merged)
    }

    fn name(&self) -> &'static str {
        self.name
    }
}
