//! Matching, 1:N and resolution handling on real FVC images.

mod common;

use common::{db, template};
use sinhtrac_finger::params::DEFAULT_THRESHOLD;
use sinhtrac_finger::reference::{agreement, agreement_tree, ConfirmedExtractor};
use sinhtrac_finger::{
    fvc, ClassicalExtractor, Extractor, FingerError, FingerPosition, Gallery, ImageView, Matcher,
    SearchOptions, SearchTemplate,
};

const DB: &str = "fvc2002/DB1_B";

#[test]
fn genuine_above_and_impostor_below_threshold() {
    // Fixed sample: impressions 1 and 2 of every finger of FVC2002 DB1_B.
    let first: Vec<_> = (101..=110).map(|f| template(DB, f, 1)).collect();
    let second: Vec<_> = (101..=110).map(|f| template(DB, f, 2)).collect();
    let matchers: Vec<Matcher> = first.iter().map(Matcher::new).collect();
    let genuine: Vec<f32> = matchers
        .iter()
        .zip(&second)
        .map(|(m, t)| m.score_template(t))
        .collect();
    let mut impostor = Vec::new();
    for (i, m) in matchers.iter().enumerate() {
        for (j, t) in first.iter().enumerate() {
            if i != j {
                impostor.push(m.score_template(t));
            }
        }
    }
    let passed = genuine.iter().filter(|&&s| s >= DEFAULT_THRESHOLD).count();
    // 1 of 10 may fail: FVC2002 DB1 has a ~3% FNMR at this FMR.
    assert!(
        passed >= 9,
        "genuine scores {genuine:?} vs threshold {DEFAULT_THRESHOLD}"
    );
    let max_impostor = impostor.iter().copied().fold(0.0, f32::max);
    assert!(
        max_impostor < DEFAULT_THRESHOLD,
        "impostor max {max_impostor}"
    );
    let min_genuine_mean = genuine.iter().sum::<f32>() / genuine.len() as f32;
    assert!(
        min_genuine_mean > 2.0 * max_impostor,
        "genuine mean {min_genuine_mean}"
    );
}

#[test]
fn self_match_is_near_one_and_scores_are_in_range() {
    let t = template(DB, 103, 1);
    let m = Matcher::new(&t);
    let s = m.score_template(&t);
    assert!((0.0..=1.0).contains(&s));
    assert!(s > 0.3, "self score {s}");
}

#[test]
fn identification_finds_mates_and_fuses_fingers() {
    // Single finger: gallery = impression 1, probes = impression 3.
    let mut gallery = Gallery::new();
    for f in 101..=110u32 {
        gallery.insert(
            u64::from(f),
            FingerPosition::RIGHT_INDEX,
            &template(DB, f, 1),
        );
    }
    let mut rank1 = 0;
    for f in 101..=110u32 {
        let probe = Matcher::new(&template(DB, f, 3));
        let hits = gallery.search(
            &probe,
            FingerPosition::RIGHT_INDEX,
            &SearchOptions::default(),
        );
        rank1 += usize::from(hits.first().map(|h| h.subject) == Some(u64::from(f)));
    }
    assert!(rank1 >= 9, "rank-1 {rank1}/10");

    // Two fingers per subject (fingers 2k+1 and 2k+2 of the database as
    // right index and right middle): fusion must identify every subject.
    let mut two = Gallery::new();
    for s in 0..5u32 {
        two.insert(
            u64::from(s),
            FingerPosition::RIGHT_INDEX,
            &template(DB, 101 + 2 * s, 1),
        );
        two.insert(
            u64::from(s),
            FingerPosition::RIGHT_MIDDLE,
            &template(DB, 102 + 2 * s, 1),
        );
    }
    for s in 0..5u32 {
        let a = Matcher::new(&template(DB, 101 + 2 * s, 4));
        let b = Matcher::new(&template(DB, 102 + 2 * s, 4));
        let hits = two.identify(
            &[
                (FingerPosition::RIGHT_INDEX, &a),
                (FingerPosition::RIGHT_MIDDLE, &b),
            ],
            &SearchOptions::exhaustive(3),
        );
        assert_eq!(hits[0].subject, u64::from(s), "{hits:?}");
        assert_eq!(hits[0].per_finger.len(), 2);
    }
}

#[test]
fn search_cascade_finds_the_mates_among_5000_fillers() {
    // 10 mates (impression 1 of FVC2002 DB1_B) among 5,000 fillers (FVC2000 DB2_B cloned), so the
    // default search runs every stage: the first coarse pass keeps 30% (1,503), the full coarse
    // score 3% (151), the refine stage (partial MCC) 50 of those for the full score.
    let fillers: Vec<SearchTemplate> = (101..=110u32)
        .flat_map(|f| (1..=8u32).map(move |i| (f, i)))
        .map(|(f, i)| SearchTemplate::new(&template("fvc2000/DB2_B", f, i)))
        .collect();
    let mut gallery = Gallery::new();
    for k in 0..5000 {
        gallery.push(
            1000 + k as u64,
            FingerPosition::UNKNOWN,
            fillers[k % fillers.len()].clone(),
        );
    }
    for f in 101..=110u32 {
        gallery.insert(u64::from(f), FingerPosition::UNKNOWN, &template(DB, f, 1));
    }
    let (mut rank1, mut exhaustive_rank1) = (0, 0);
    for f in 101..=110u32 {
        let probe = Matcher::new(&template(DB, f, 3));
        let top = |opts: &SearchOptions| {
            gallery
                .search(&probe, FingerPosition::UNKNOWN, opts)
                .first()
                .map(|h| h.subject)
        };
        rank1 += usize::from(top(&SearchOptions::default()) == Some(u64::from(f)));
        exhaustive_rank1 += usize::from(top(&SearchOptions::exhaustive(1)) == Some(u64::from(f)));
    }
    assert!(
        exhaustive_rank1 >= 9,
        "exhaustive rank-1 {exhaustive_rank1}/10"
    );
    assert!(
        rank1 >= exhaustive_rank1 - 1,
        "pre-selected rank-1 {rank1}/10 vs {exhaustive_rank1}/10 exhaustive"
    );
}

#[test]
fn other_resolutions_are_rescaled() {
    // Upsample a 500 dpi image to 1000 dpi; extraction at dpi=1000 must
    // give a template at 500 dpi geometry that matches the original.
    let path = db(DB).join("104_1.tif");
    let (w, h, px) = fvc::load_gray(&path).expect("decode");
    let img = image::GrayImage::from_raw(w, h, px).expect("buffer");
    let big = image::imageops::resize(&img, w * 2, h * 2, image::imageops::FilterType::Triangle);
    let t_big = ClassicalExtractor
        .extract(&ImageView::new(w * 2, h * 2, big.as_raw(), 1000).expect("view"))
        .expect("extract 1000 dpi");
    assert_eq!(t_big.dpi, 500);
    assert!((i32::from(t_big.width) - w as i32).abs() <= 1);
    let original = template(DB, 104, 1);
    let s = Matcher::new(&original).score_template(&t_big);
    assert!(s >= DEFAULT_THRESHOLD, "score {s}");
}

#[test]
fn fvc_protocol_counts_pairs() {
    let report =
        fvc::evaluate_database(&db("fvc2000/DB4_B"), &ClassicalExtractor, 500).expect("eval");
    assert_eq!(report.images, 80);
    assert_eq!(report.fvc.genuine, 280);
    assert_eq!(report.fvc.impostor, 45);
    assert_eq!(report.extended.impostor, 80 * 72 / 2);
    assert!(report.fvc.eer < 0.25, "EER {}", report.fvc.eer);
    let json = serde_json::to_string(&report).expect("serialise");
    assert!(json.contains("\"extended\""));
}

/// The classical extractor with every minutia moved `shift` pixels right: a
/// stand-in reference whose distance to the classical minutiae is known.
struct Shifted(u16);

impl Extractor for Shifted {
    fn extract(
        &self,
        image: &ImageView<'_>,
    ) -> sinhtrac_finger::Result<sinhtrac_finger::FingerTemplate> {
        let mut t = ClassicalExtractor.extract(image)?;
        for m in &mut t.minutiae {
            m.x += self.0;
        }
        Ok(t)
    }

    fn name(&self) -> &'static str {
        "shifted"
    }
}

#[test]
fn reference_comparison_pairs_minutiae_within_the_distance() {
    let path = db(DB).join("103_2.tif");
    let (w, h, px) = fvc::load_gray(&path).expect("decode");
    let view = ImageView::new(w, h, &px, 500).expect("view");
    let ours = ClassicalExtractor.extract(&view).expect("extract");
    let near = Shifted(5).extract(&view).expect("extract");
    let a = agreement(&ours, &near, 8.0);
    assert_eq!((a.recall(), a.precision()), (1.0, 1.0), "{a:?}");
    let far = Shifted(12).extract(&view).expect("extract");
    let b = agreement(&ours, &far, 8.0);
    // Only minutiae that happen to have a neighbour ~12 px to the left pair up.
    assert!(b.confirmed < ours.minutiae.len() / 2, "{b:?}");

    // Confirmed by itself: the same template; by a far reference: too few left to enrol.
    let same = ConfirmedExtractor::new(&ClassicalExtractor, &ClassicalExtractor, 8.0);
    assert_eq!(same.extract(&view).expect("extract"), ours);
    let none = ConfirmedExtractor::new(&ClassicalExtractor, &Shifted(40), 8.0);
    assert!(
        matches!(none.extract(&view), Err(FingerError::TooFewMinutiae { .. })),
        "a reference that confirms nothing leaves too few minutiae"
    );

    // Summed per database, in evaluate_tree's order and names.
    let root = db("fvc2002");
    let rows = agreement_tree(&root, &ClassicalExtractor, &Shifted(5), 500, 8.0).expect("tree");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "DB1_B");
    assert_eq!(rows[0].1.images, 80);
    assert_eq!(rows[0].1.recall(), 1.0);
}

/// FVC2000 DB3 on the FVC protocol: its EER is set by the top impostor
/// scores (finger 109's small whorl against other first impressions), which
/// under matcher v2 lay above about 30 of the 280 genuine scores. With the
/// ridge-flow descriptors at most 20 genuine pairs may score below the top
/// impostor (14 measured); with the descriptors stripped, as an ISO import
/// would be, more than 25 do (31). The descriptors survive the binary form.
#[test]
fn ridge_flow_descriptors_lift_genuine_pairs_above_the_top_impostor() {
    use rayon::prelude::*;
    const DB3: &str = "fvc2000/DB3_B";
    let keys: Vec<(u32, u32)> = (101..=110)
        .flat_map(|f| (1..=8).map(move |i| (f, i)))
        .collect();
    let with: Vec<_> = keys.par_iter().map(|&(f, i)| template(DB3, f, i)).collect();
    assert!(with.iter().all(|t| t.flow.len() == t.minutiae.len()));
    let back = sinhtrac_finger::FingerTemplate::from_bytes(&with[0].to_bytes().expect("encode"))
        .expect("decode");
    assert_eq!(back.flow, with[0].flow);
    let without: Vec<_> = with
        .iter()
        .map(|t| {
            let mut t = t.clone();
            t.flow.clear();
            t
        })
        .collect();
    let below_top_impostor = |ts: &[sinhtrac_finger::FingerTemplate]| {
        let pairs: Vec<(usize, usize)> = (0..ts.len())
            .flat_map(|a| (a + 1..ts.len()).map(move |b| (a, b)))
            .filter(|&(a, b)| keys[a].0 == keys[b].0 || (keys[a].1 == 1 && keys[b].1 == 1))
            .collect();
        let scored: Vec<(bool, f32)> = pairs
            .par_iter()
            .map(|&(a, b)| {
                (
                    keys[a].0 == keys[b].0,
                    Matcher::new(&ts[a]).score_template(&ts[b]),
                )
            })
            .collect();
        let top = scored
            .iter()
            .filter(|p| !p.0)
            .map(|p| p.1)
            .fold(0.0, f32::max);
        scored.iter().filter(|p| p.0 && p.1 < top).count()
    };
    let (n_with, n_without) = (below_top_impostor(&with), below_top_impostor(&without));
    assert!(
        n_with <= 20,
        "{n_with} of 280 genuine pairs below the top impostor"
    );
    assert!(n_without > 25, "{n_without} of 280 without descriptors");
}
