//! How an extractor's minutiae compare with a reference extractor's on the
//! same images: a diagnostic for extractor work, not a matching step.
//!
//! Two questions decide where an extractor loses accuracy. *Precision*:
//! are many of its minutiae false? [`ConfirmedExtractor`] keeps only the
//! minutiae a reference (say LEADER) also finds; if the error rates of
//! those templates are no better, false minutiae are not what costs
//! accuracy. *Recall*: which share of the reference's minutiae does it find
//! at all? [`agreement`] counts both, a minutia "found" when one of the
//! other side lies within a distance (positions only: the directions of
//! paired classical and LEADER minutiae agree to within 30° for 97.9–99.6%
//! of the pairs on the five FVC databases).

use crate::error::Result;
use crate::extract::{finish_template, Extractor, ImageView};
use crate::fvc;
use crate::template::{FingerTemplate, Minutia};
use rayon::prelude::*;
use std::path::Path;

/// Minutiae counts of one template against a reference template of the
/// same image. Counts are not a one-to-one pairing: one reference minutia
/// near two of ours confirms both, so a cluster of false minutiae around a
/// true one raises precision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Agreement {
    /// Images (templates) counted: 1 for one pair, more for a sum.
    pub images: usize,
    /// Images left out because either extractor refused them (sums only).
    pub failed: usize,
    /// Minutiae in the template.
    pub minutiae: usize,
    /// Of those, how many have a reference minutia within the distance.
    pub confirmed: usize,
    /// Minutiae in the reference.
    pub reference: usize,
    /// Of those, how many have a template minutia within the distance.
    pub found: usize,
}

impl Agreement {
    /// Mean minutiae per template.
    pub fn minutiae_per_image(&self) -> f64 {
        ratio(self.minutiae, self.images)
    }

    /// Mean reference minutiae per template.
    pub fn reference_per_image(&self) -> f64 {
        ratio(self.reference, self.images)
    }

    /// Share of the template's minutiae the reference confirms.
    pub fn precision(&self) -> f64 {
        ratio(self.confirmed, self.minutiae)
    }

    /// Share of the reference's minutiae the template finds.
    pub fn recall(&self) -> f64 {
        ratio(self.found, self.reference)
    }
}

impl std::ops::AddAssign for Agreement {
    fn add_assign(&mut self, o: Self) {
        self.images += o.images;
        self.failed += o.failed;
        self.minutiae += o.minutiae;
        self.confirmed += o.confirmed;
        self.reference += o.reference;
        self.found += o.found;
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn near(m: &Minutia, others: &[Minutia], max_dist: f32) -> bool {
    others.iter().any(|o| {
        let (dx, dy) = (
            f32::from(m.x) - f32::from(o.x),
            f32::from(m.y) - f32::from(o.y),
        );
        dx * dx + dy * dy <= max_dist * max_dist
    })
}

/// Counts `template`'s minutiae with a `reference` minutia within
/// `max_dist` pixels, and the other way round. Both templates must come
/// from the same image (coordinates are compared as they are).
pub fn agreement(
    template: &FingerTemplate,
    reference: &FingerTemplate,
    max_dist: f32,
) -> Agreement {
    let (ours, theirs) = (&template.minutiae, &reference.minutiae);
    Agreement {
        images: 1,
        failed: 0,
        minutiae: ours.len(),
        confirmed: ours.iter().filter(|m| near(m, theirs, max_dist)).count(),
        reference: theirs.len(),
        found: theirs.iter().filter(|m| near(m, ours, max_dist)).count(),
    }
}

/// [`Agreement`] summed over every image of each database under `root`
/// (the folders [`fvc::evaluate_tree`] reports, in the same order and with
/// the same names); images either extractor fails on are left out and
/// counted in [`Agreement::failed`].
pub fn agreement_tree(
    root: &Path,
    extractor: &dyn Extractor,
    reference: &dyn Extractor,
    dpi: u16,
    max_dist: f32,
) -> Result<Vec<(String, Agreement)>> {
    fvc::databases_under(root)?
        .into_iter()
        .map(|(name, dir)| {
            let per_image = fvc::list_samples(&dir)?
                .par_iter()
                .map(|s| -> Result<Agreement> {
                    let (w, h, px) = fvc::load_gray(&s.path)?;
                    let view = ImageView::new(w, h, &px, dpi)?;
                    Ok(match (extractor.extract(&view), reference.extract(&view)) {
                        (Ok(t), Ok(r)) => agreement(&t, &r, max_dist),
                        _ => Agreement {
                            failed: 1,
                            ..Agreement::default()
                        },
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let mut sum = Agreement::default();
            for a in per_image {
                sum += a;
            }
            Ok((name, sum))
        })
        .collect()
}

/// `inner`'s minutiae that `reference` confirms (one within `max_dist`
/// pixels); both extractors run on every image. Fewer than the minimum
/// left is a failure to enrol, as for any extractor.
pub struct ConfirmedExtractor<'a> {
    inner: &'a dyn Extractor,
    reference: &'a dyn Extractor,
    max_dist: f32,
}

impl<'a> ConfirmedExtractor<'a> {
    /// `inner` filtered by `reference` at `max_dist` pixels (at 500 dpi).
    pub fn new(inner: &'a dyn Extractor, reference: &'a dyn Extractor, max_dist: f32) -> Self {
        ConfirmedExtractor {
            inner,
            reference,
            max_dist,
        }
    }
}

impl Extractor for ConfirmedExtractor<'_> {
    fn extract(&self, image: &ImageView<'_>) -> Result<FingerTemplate> {
        let t = self.inner.extract(image)?;
        let r = self.reference.extract(image)?;
        let kept: Vec<_> = t
            .minutiae_with_flow()
            .filter(|(m, _)| near(m, &r.minutiae, self.max_dist))
            .collect();
        let minutiae = kept.iter().map(|(m, _)| *m).collect();
        let mut out = finish_template(u32::from(t.width), u32::from(t.height), minutiae)?;
        // Descriptors stay with their minutiae (none if the inner extractor made none).
        out.set_minutiae_with_flow(kept);
        Ok(out)
    }

    fn name(&self) -> &'static str {
        "confirmed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::MinutiaKind;

    fn template(points: &[(u16, u16)]) -> FingerTemplate {
        FingerTemplate {
            width: 300,
            height: 300,
            dpi: 500,
            minutiae: points
                .iter()
                .map(|&(x, y)| Minutia {
                    x,
                    y,
                    angle: 0.0,
                    kind: MinutiaKind::Ending,
                    quality: 50,
                })
                .collect(),
            flow: Vec::new(),
        }
    }

    #[test]
    fn counts_each_side_within_the_distance() {
        let ours = template(&[(10, 10), (100, 100), (200, 200)]);
        // (16, 18) is 10 px from (10, 10); (104, 103) 5 px from (100, 100).
        let reference = template(&[(16, 18), (104, 103), (50, 250), (60, 250)]);
        let a = agreement(&ours, &reference, 8.0);
        assert_eq!(
            a,
            Agreement {
                images: 1,
                failed: 0,
                minutiae: 3,
                confirmed: 1,
                reference: 4,
                found: 1
            }
        );
        let b = agreement(&ours, &reference, 10.0);
        assert_eq!((b.confirmed, b.found), (2, 2));
        assert!((b.precision() - 2.0 / 3.0).abs() < 1e-12);
        assert!((b.recall() - 0.5).abs() < 1e-12);
        assert_eq!(Agreement::default().recall(), 0.0);
    }
}
