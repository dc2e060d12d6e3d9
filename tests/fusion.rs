//! Face + fingerprint fusion on real data: a chimeric subset (30 FVC fingers of three databases, each
//! paired with an LFW identity, 8 samples each) scored with the default face models (through the
//! template cache, cold or warm) and the classical fingerprint extractor; and the shipped fusion model.

use std::path::PathBuf;
use std::sync::OnceLock;

use sinhtrac_engine::finger::FingerEngine;
use sinhtrac_engine::fusion::{FusionError, FusionModel, Inputs, Method};
use sinhtrac_engine::protocols::cache::TemplateCache;
use sinhtrac_engine::protocols::chimeric::{
    self, ChimericProtocol, ChimericScores, FusionReport, IMPRESSIONS,
};
use sinhtrac_engine::protocols::chimeric_1n;
use sinhtrac_engine::protocols::extract::extract_files;
use sinhtrac_tests::{datasets, engine};

const DATABASES: [&str; 3] = ["fvc2000/DB1_B", "fvc2000/DB2_B", "fvc2002/DB1_B"];
const SEED: u64 = 1;

/// The subset's protocol and scores, computed once for the tests of this file.
fn subset() -> &'static (ChimericProtocol, ChimericScores) {
    static SUBSET: OnceLock<(ChimericProtocol, ChimericScores)> = OnceLock::new();
    SUBSET.get_or_init(compute_subset)
}

fn compute_subset() -> (ChimericProtocol, ChimericScores) {
    let root = datasets();
    let fingerprints = root.join("fingerprints");
    let dbs: Vec<PathBuf> = DATABASES.iter().map(|d| fingerprints.join(d)).collect();
    let protocol =
        ChimericProtocol::build(&root.join("lfw"), &dbs, &fingerprints, IMPRESSIONS).unwrap();
    assert_eq!(protocol.subjects(), 30, "protocol construction changed");
    let cache = TemplateCache::open(&TemplateCache::default_dir()).unwrap();
    let extractor: &dyn sinhtrac_finger::Extractor = &sinhtrac_finger::ClassicalExtractor;
    let scores = ChimericScores::compute(
        &protocol,
        engine(),
        extractor,
        500,
        &[SEED],
        Some(&cache),
        &|_, _| {},
    )
    .unwrap();
    (protocol, scores)
}

fn row<'a>(r: &'a FusionReport, name: &str) -> &'a chimeric::Row {
    r.rows.iter().find(|x| x.name == name).unwrap()
}

/// Cross-validated on the subset (2 folds of 15 subjects: 420 genuine, 6,720 impostor comparisons per
/// test half): the sum of isotonic LLRs has an FNMR at FMR = 1e-3 no higher than face alone or finger
/// alone. Then the model learned on all 30 subjects round-trips through its file and decides.
#[test]
fn fusion_beats_each_modality_on_a_chimeric_subset() {
    let (protocol, scores) = subset();
    let report = chimeric::evaluate(protocol, scores, &[SEED]).unwrap();
    assert_eq!((report.test_genuine, report.test_impostor), (420, 6720));
    for r in &report.rows {
        eprintln!(
            "{:<14} FNMR@1e-3 {:.4} FNMR@1e-2 {:.4} EER {:.4}",
            r.name, r.fnmr_at_1e3.mean, r.fnmr_at_1e2.mean, r.eer.mean
        );
    }
    eprintln!("seconds {:?}", report.seconds);
    let (face, finger, fused) = (
        row(&report, "face"),
        row(&report, "finger"),
        row(&report, Method::LlrPav.name()),
    );
    for (k, f) in fused.folds.iter().enumerate() {
        assert!(
            f.fnmr_at_1e3 <= face.folds[k].fnmr_at_1e3
                && f.fnmr_at_1e3 <= finger.folds[k].fnmr_at_1e3,
            "fold {k}: fused {:?}, face {:?}, finger {:?}",
            f,
            face.folds[k],
            finger.folds[k]
        );
    }
    assert!(fused.eer.mean <= face.eer.mean.min(finger.eer.mean));

    // The model on every subject: thresholds per configuration, file round trip, decisions.
    let model = chimeric::fit_model(protocol, scores, Method::LlrPav, SEED, "fusion-test").unwrap();
    let path = std::env::temp_dir().join(format!("sinhtrac-fusion-{}.json", std::process::id()));
    model.save(&path).unwrap();
    let back = FusionModel::load(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(back, model);
    let both = Inputs {
        face: true,
        fingers: 1,
    };
    let t = back.threshold_for_fmr(both, 1e-3).unwrap();
    assert!(back.decide(Some(0.9), &[0.5], 1e-3).unwrap().accept);
    assert!(!back.decide(Some(0.0), &[0.0], 1e-3).unwrap().accept);
    assert!(t.is_finite());
}

/// Fused identification with the service's rule, cross-validated on the subset (2 folds: 15 subjects
/// enrolled among 100 face-only LFW fillers, 105 mated and 120 non-mated searches each): at the same
/// FPIR the fused rule finds the right subject at least as often as face or finger alone, and at the
/// nominal thresholds at least as often as the face. The shortlist is 5 per modality here (the service's
/// 50 would hold all 15 fingers, so it could not leave anyone out).
#[test]
fn fused_identification_finds_more_at_the_same_fpir() {
    let (protocol, scores) = subset();
    let names = chimeric_1n::filler_images(protocol, 100).unwrap();
    assert_eq!(names.len(), 100);
    let cache = TemplateCache::open(&TemplateCache::default_dir()).unwrap();
    let fillers = extract_files(
        engine(),
        &protocol.images_dir,
        &names,
        Some(&cache),
        &|_, _| {},
    );
    let r = chimeric_1n::evaluate_identification(
        protocol,
        scores,
        &fillers,
        &[SEED],
        Method::LlrPav,
        1e-3,
        5,
    )
    .unwrap();
    assert_eq!((r.enrolled_subjects, r.searches), (15, (105, 120)));
    assert!(
        r.fillers >= 99,
        "fillers without a face: {}",
        r.filler_failures
    );
    let row = |name: &str| r.rows.iter().find(|x| x.name == name).unwrap();
    let (face, finger, fused, all) = (
        row("face"),
        row("finger"),
        row("fused"),
        row("fused-exhaustive"),
    );
    for x in [face, finger, fused, all] {
        eprintln!(
            "{:<18} TPIR {:.4} FPIR {:.4} TPIR@FPIR {:?}",
            x.name, x.tpir_summary.mean, x.fpir_summary.mean, x.tpir_at_fpir
        );
    }
    for i in 0..chimeric_1n::FPIR_POINTS.len() {
        assert!(
            fused.tpir_at_fpir[i] >= face.tpir_at_fpir[i].max(finger.tpir_at_fpir[i]),
            "at FPIR {}: fused {:?} face {:?} finger {:?}",
            chimeric_1n::FPIR_POINTS[i],
            fused.tpir_at_fpir,
            face.tpir_at_fpir,
            finger.tpir_at_fpir
        );
    }
    assert!(fused.tpir_summary.mean >= face.tpir_summary.mean);
    assert!(fused.tpir_summary.mean > 0.95, "{:?}", fused.tpir);
    assert!(all.tpir_summary.mean > 0.95, "{:?}", all.tpir);
}

/// The LEADER model sits beside the classical one, under the name the service looks for, and says
/// which extractor its finger scores came from.
#[test]
fn the_leader_fusion_model_is_shipped_for_the_leader_pipeline() {
    let path = FusionModel::path_for(engine().embedder.model_id(), "leader");
    let m = FusionModel::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(m.model_id, "fusion-mobilefacenet-128-leader");
    assert_eq!(m.provenance.finger_extractor, "leader");
    assert_eq!(
        m.provenance.face_model_sha256,
        engine().embedder.model_sha256_hex()
    );
    // Learned on LEADER at the served detection threshold (0.45): the space the service checks.
    let served = FingerEngine::leader(&engine().config().runtime, Some(0.45)).unwrap();
    assert_eq!(
        m.provenance.finger_space_sha256.as_deref(),
        Some(served.space().sha256_hex().as_str())
    );
    let other = FingerEngine::leader(&engine().config().runtime, Some(0.55)).unwrap();
    assert_ne!(other.space().sha256_hex(), served.space().sha256_hex());
    assert_eq!(
        FusionModel::path_for("mobilefacenet-128", "classical"),
        FusionModel::default_path()
    );
    for inputs in Inputs::ONE_FINGER_CONFIGURATIONS {
        assert!(m.threshold_for_fmr(inputs, 1e-3).unwrap().is_finite());
    }
}

fn shipped() -> FusionModel {
    FusionModel::load(&FusionModel::default_path())
        .unwrap_or_else(|e| panic!("{}: {e}", FusionModel::default_path().display()))
}

/// The shipped model loads (format, version, checksum, monotone maps, calibrations bound to its
/// parameters), is for the face model the engine loads, and has thresholds at FMR 1e-2, 1e-3, 1e-4
/// for face + finger, face only, finger only, face + two fingers and two fingers only.
#[test]
fn shipped_model_loads_and_matches_the_engine_and_threshold_format() {
    let m = shipped();
    assert_eq!(m.model_id, "fusion-mobilefacenet-128-classical");
    assert_eq!(m.method, Method::LlrPav);
    assert_eq!(m.provenance.face_model_id, engine().embedder.model_id());
    assert_eq!(
        m.provenance.face_model_sha256,
        engine().embedder.model_sha256_hex()
    );
    assert_eq!(m.provenance.finger_extractor, "classical");
    assert_eq!(
        m.provenance.finger_space_sha256,
        Some(FingerEngine::classical().space().sha256_hex())
    );
    assert_eq!(
        (m.provenance.n_genuine, m.provenance.n_impostor),
        (1400, 78_400)
    );
    for inputs in Inputs::ONE_FINGER_CONFIGURATIONS {
        let cal = m.calibration(inputs).unwrap();
        // The same threshold format as the per-model calibration files.
        sinhtrac_eval::Calibration::from_json_str(&cal.to_json_string().unwrap()).unwrap();
        let ts: Vec<f64> = [1e-2, 1e-3, 1e-4]
            .iter()
            .map(|&f| m.threshold_for_fmr(inputs, f).unwrap())
            .collect();
        assert!(ts[0] < ts[1] && ts[1] < ts[2], "{inputs}: {ts:?}");
    }
    // Two fingers: calibrated from 16 disjoint pairings of the one-finger impostor comparisons.
    let one_finger = m
        .calibration(Inputs {
            face: false,
            fingers: 1,
        })
        .unwrap()
        .n_impostor;
    for two in Inputs::TWO_FINGER_CONFIGURATIONS {
        let cal = m.calibration(two).unwrap();
        assert_eq!(cal.n_impostor, one_finger / 2 * 16, "{two}");
        assert!(cal.protocol.contains("overstate the evidence"), "{two}");
        let ts: Vec<f64> = [1e-2, 1e-3, 1e-4]
            .iter()
            .map(|&f| m.threshold_for_fmr(two, f).unwrap())
            .collect();
        assert!(ts[0] < ts[1] && ts[1] < ts[2], "{two}: {ts:?}");
    }
    // Three fingers were not calibrated: refused, not guessed.
    assert!(matches!(
        m.threshold_for_fmr(
            Inputs {
                face: true,
                fingers: 3
            },
            1e-3
        ),
        Err(FusionError::NotCalibrated { .. })
    ));
}

/// Monotone in each input over a grid; missing modalities give that modality's LLR; several fingers add.
#[test]
fn shipped_model_is_monotone_and_handles_missing_modalities() {
    let m = shipped();
    let faces: Vec<f32> = (0..=40).map(|i| -0.2 + 1.1 * i as f32 / 40.0).collect();
    let fingers: Vec<f32> = (0..=40).map(|i| 0.5 * i as f32 / 40.0).collect();
    for &f in &faces {
        for w in fingers.windows(2) {
            assert!(
                m.fused_score(Some(f), &[w[0]]).unwrap()
                    <= m.fused_score(Some(f), &[w[1]]).unwrap()
            );
        }
    }
    for &p in &fingers {
        for w in faces.windows(2) {
            assert!(
                m.fused_score(Some(w[0]), &[p]).unwrap()
                    <= m.fused_score(Some(w[1]), &[p]).unwrap()
            );
        }
    }
    // Strictly informative somewhere: a clear genuine outscores a clear impostor by a wide margin.
    assert!(
        m.fused_score(Some(0.7), &[0.3]).unwrap()
            > m.fused_score(Some(0.05), &[0.01]).unwrap() + 10.0
    );
    assert_eq!(m.fused_score(Some(0.5), &[]).unwrap(), m.face_score(0.5));
    assert_eq!(m.fused_score(None, &[0.2]).unwrap(), m.finger_score(0.2));
    let two = m.fused_score(Some(0.5), &[0.2, 0.1]).unwrap();
    assert!((two - (m.face_score(0.5) + m.finger_score(0.2) + m.finger_score(0.1))).abs() < 1e-9);
    assert!(matches!(
        m.fused_score(None, &[]),
        Err(FusionError::NoInput)
    ));
    // A face-only decision uses the face-only thresholds.
    let d = m.decide(Some(0.6), &[], 1e-3).unwrap();
    assert_eq!(
        d.inputs,
        Inputs {
            face: true,
            fingers: 0
        }
    );
    assert!(d.accept);
}

/// Malformed files give typed errors.
#[test]
fn malformed_fusion_files_are_typed_errors() {
    let text = std::fs::read_to_string(FusionModel::default_path()).unwrap();
    assert!(matches!(
        FusionModel::from_json_str(&text.replacen("\"sha256\"", "\"sha-256\"", 1)),
        Err(FusionError::Json(_))
    ));
    assert!(matches!(
        FusionModel::from_json_str(&text[..text.len() / 2]),
        Err(FusionError::Json(_))
    ));
    let forged = text.replacen("\"face_weight\": 1.0", "\"face_weight\": 3.0", 1);
    assert_ne!(forged, text);
    assert!(matches!(
        FusionModel::from_json_str(&forged),
        Err(FusionError::Checksum { .. })
    ));
    let cal = std::fs::read_to_string(
        sinhtrac_engine::paths::calibration_dir().join("mobilefacenet-128.json"),
    )
    .unwrap();
    assert!(matches!(
        FusionModel::from_json_str(&cal),
        Err(FusionError::Format { .. })
    ));
}
