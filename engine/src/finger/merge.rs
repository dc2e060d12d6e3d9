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
            (Ok(p), Ok(s)) => (p, Some(s)),
            (Ok(p), Err(_)) => (p, None),
            (Err(_), Ok(s)) => (s, None),
            // Both refuse (the quality gates are shared): the primary's reason.
            (Err(e), Err(_)) => return Err(e),
        };
        // Each minutia travels with its ridge-flow descriptor, if its template has them.
        let mut all: Vec<_> = merged.minutiae_with_flow().collect();
        let d2 = self.min_distance * self.min_distance;
        if let Some(other) = other {
            let extra: Vec<_> = other
                .minutiae_with_flow()
                .filter(|(s, _)| {
                    merged.minutiae.iter().all(|p| {
                        let (dx, dy) = (
                            f32::from(p.x) - f32::from(s.x),
                            f32::from(p.y) - f32::from(s.y),
                        );
                        dx * dx + dy * dy > d2
                    })
                })
                .collect();
            all.extend(extra);
        }
        all.sort_by_key(|(m, _)| std::cmp::Reverse(m.quality));
        all.truncate(MAX_MINUTIAE);
        if all.len() < MIN_MINUTIAE {
            return Err(FingerError::TooFewMinutiae {
                found: all.len(),
                min: MIN_MINUTIAE,
            });
        }
        merged.set_minutiae_with_flow(all);
        Ok(merged)
    }

    fn name(&self) -> &'static str {
        self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sinhtrac_finger::{FlowDescriptor, Minutia, MinutiaKind};

    /// A fixed template, with or without descriptors (descriptor k holds code k
    /// in every sample, so each can be traced back to its minutia).
    struct Fixed(Vec<(u16, u8)>, bool);

    impl Extractor for Fixed {
        fn extract(&self, _: &ImageView<'_>) -> Result<FingerTemplate> {
            let minutiae = self
                .0
                .iter()
                .map(|&(x, quality)| Minutia {
                    x,
                    y: 50,
                    angle: 0.0,
                    kind: MinutiaKind::Ending,
                    quality,
                })
                .collect();
            let flow = if self.1 {
                self.0
                    .iter()
                    .map(|&(x, _)| {
                        FlowDescriptor([(x % 16) as u8 * 0x11; sinhtrac_finger::FLOW_BYTES])
                    })
                    .collect()
            } else {
                Vec::new()
            };
            Ok(FingerTemplate {
                width: 400,
                height: 100,
                dpi: 500,
                minutiae,
                flow,
            })
        }
        fn name(&self) -> &'static str {
            "fixed"
        }
    }

    fn run(primary_flow: bool, secondary_flow: bool) -> FingerTemplate {
        // Primary at x = 10..150, secondary at x = 201..341: all kept, the secondary's of higher quality.
        let primary = Fixed(
            (0..8).map(|k| (10 + 20 * k, 40 + k as u8)).collect(),
            primary_flow,
        );
        let secondary = Fixed(
            (0..8).map(|k| (201 + 20 * k, 90 - k as u8)).collect(),
            secondary_flow,
        );
        let merged = MergedExtractor::new(Box::new(primary), Box::new(secondary), 8.0, "test");
        let pixels = vec![0u8; 400 * 100];
        let image = ImageView::new(400, 100, &pixels, 500).unwrap();
        merged.extract(&image).unwrap()
    }

    #[test]
    fn descriptors_stay_with_their_minutiae_through_the_merge() {
        let t = run(true, true);
        assert_eq!(t.minutiae.len(), 16);
        // Sorted by quality, so the secondary's minutiae come first.
        assert!(t.minutiae[0].x > 200);
        assert_eq!(t.flow.len(), t.minutiae.len());
        for (m, d) in t.minutiae.iter().zip(&t.flow) {
            assert_eq!(d.0[0], (m.x % 16) as u8 * 0x11, "descriptor of x = {}", m.x);
        }
        t.to_bytes().expect("a merged template encodes");
        // One side without descriptors: none are kept (all or none).
        assert!(run(true, false).flow.is_empty());
        assert!(run(false, true).flow.is_empty());
    }
}
