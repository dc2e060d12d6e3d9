//! The `sinhtrac` command line as a user runs it: real binary, real files, JSON output parsed back.

use std::process::{Command, Output};

use sinhtrac_tests::{datasets, lfw};

fn sinhtrac() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sinhtrac"))
}

/// Runs a command that must succeed; a failure shows its stderr.
trait Succeeds {
    fn succeeds(&mut self) -> Output;
}

impl Succeeds for Command {
    fn succeeds(&mut self) -> Output {
        let run = self.output().expect("run sinhtrac");
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        run
    }
}

#[test]
fn face_extract_and_compare_through_template_files() {
    let out = std::env::temp_dir().join(format!("sinhtrac-cli-{}", std::process::id()));
    let run = sinhtrac()
        .args(["face", "extract", "--json", "--out"])
        .arg(&out)
        .arg(lfw("Aaron_Peirsol", 1))
        .arg(lfw("Aaron_Peirsol", 3))
        .succeeds();
    let rows: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["dim"], 128);
    let cmp = sinhtrac()
        .args(["face", "compare", "--json"])
        .arg(out.join("Aaron_Peirsol_0001.stpl"))
        .arg(out.join("Aaron_Peirsol_0003.stpl"))
        .succeeds();
    let c: serde_json::Value = serde_json::from_slice(&cmp.stdout).unwrap();
    assert!(c["similarity"].as_f64().unwrap() > 0.5);
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn face_errors_are_reported_with_a_reason_and_a_failing_exit_code() {
    let finger = datasets().join("fingerprints/fvc2002/DB1_B/101_1.tif");
    let run = sinhtrac()
        .args(["face", "extract", "--json"])
        .arg(&finger)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let rows: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(rows[0]["reason"], "NO_FACE");
}

#[test]
fn liveness_command_flags_the_spoof_samples() {
    let pad = datasets().join("face_pad_samples");
    let run = sinhtrac()
        .args(["face", "liveness", "--json"])
        .arg(pad.join("minivision_image_F1.jpg"))
        .arg(pad.join("minivision_image_T1.jpg"))
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(rows[0]["liveness"]["live"], false);
    assert_eq!(rows[1]["liveness"]["live"], true);
}

#[test]
fn eval_lfw_1n_and_liveness_write_json_and_report_folders() {
    let out = std::env::temp_dir().join(format!("sinhtrac-cli-eval-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    // 20 identities: 9 enrolled, 22 mated and 11 non-mated searches; a few seconds.
    let run = sinhtrac()
        .args([
            "eval",
            "lfw-1n",
            "--identities",
            "20",
            "--json",
            "-",
            "--cache",
        ])
        .arg(out.join("cache"))
        .arg("--report")
        .arg(out.join("1n"))
        .succeeds();
    let r: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(r["identities"], 20);
    assert_eq!(r["gallery"], r["enrolled"]);
    assert!(r["rank1"]["count"].as_u64().unwrap() > 0);
    for f in ["summary.md", "report.json", "cmc.png", "lfw-1n.json"] {
        assert!(out.join("1n").join(f).is_file(), "{f} missing");
    }
    let md = std::fs::read_to_string(out.join("1n/summary.md")).unwrap();
    assert!(md.contains("rank-1 identification rate"));

    let run = sinhtrac()
        .args([
            "eval",
            "liveness",
            "--bona-fide-sample",
            "4",
            "--no-cache",
            "--json",
            "-",
        ])
        .arg("--report")
        .arg(out.join("live"))
        .succeeds();
    let r: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(r["report"]["n_attacks"], 2);
    assert_eq!(r["report"]["n_bona_fide"], 5);
    // The two spoof samples are refused at the default threshold; BPCER @ APCER is not computable.
    assert_eq!(r["report"]["at_threshold"]["apcer"], 0.0);
    assert_eq!(
        r["report"]["unsupported_apcer"].as_array().unwrap().len(),
        2
    );
    let md = std::fs::read_to_string(out.join("live/summary.md")).unwrap();
    assert!(md.contains("Too few attack presentations"));
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn eval_fvc_writes_a_report_folder_per_database() {
    let out = std::env::temp_dir().join(format!("sinhtrac-cli-fvc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    sinhtrac()
        .args(["eval", "fvc", "--json", "-", "--data"])
        .arg(datasets().join("fingerprints/fvc2002"))
        .arg("--report")
        .arg(&out)
        .succeeds();
    let db = out.join("DB1_B");
    for f in [
        "det.svg",
        "det.png",
        "roc.svg",
        "scores.svg",
        "report.json",
        "summary.md",
    ] {
        assert!(db.join(f).is_file(), "missing {f}");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(db.join("report.json")).unwrap()).unwrap();
    let eer = report["verification"]["eer"]["eer"]
        .as_f64()
        .expect("EER in the report");
    assert!(eer > 0.0 && eer < 0.05, "FVC2002 DB1 EER {eer}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn eval_fvc_compares_minutiae_with_a_reference_extractor() {
    // Against itself every minutia is found and confirmed, and the confirmed templates are the
    // evaluated ones, so their EER is the evaluation's own.
    let run = sinhtrac()
        .args(["eval", "fvc", "--reference", "classical", "--data"])
        .arg(datasets().join("fingerprints/fvc2002"))
        .succeeds();
    let out = String::from_utf8_lossy(&run.stdout);
    let row: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.contains("recall"))
        .find(|l| l.trim_start().starts_with("DB1_B"))
        .unwrap_or_else(|| panic!("no comparison row in:\n{out}"))
        .split_whitespace()
        .collect();
    // database, ours/img, ref/img, recall, precision, ext EER, confirmed EER, confirmed ext EER
    assert_eq!(row.len(), 8, "{row:?}");
    assert_eq!(row[1], row[2], "{row:?}");
    assert!(row[1].parse::<f64>().unwrap() > 20.0, "{row:?}");
    assert_eq!((row[3], row[4]), ("100.0%", "100.0%"), "{row:?}");
    assert_eq!(row[5], row[7], "{row:?}");
    let fvc_eer = out
        .lines()
        .find(|l| l.trim_start().starts_with("DB1_B"))
        .and_then(|l| l.split_whitespace().nth(3))
        .expect("evaluation row");
    assert_eq!(format!("{fvc_eer}%"), row[6], "{out}");

    for (args, says) in [
        (
            &["--reference", "classical", "--reference-distance", "0"][..],
            "--reference-distance must be a positive",
        ),
        (&["--reference-distance", "4"][..], "--reference <"),
        (
            &["--reference", "classical", "--probe-extractor", "classical"][..],
            "cannot be used with",
        ),
    ] {
        let bad = sinhtrac()
            .args(["eval", "fvc"])
            .args(args)
            .output()
            .expect("run sinhtrac");
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert!(
            !bad.status.success() && stderr.contains(says),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn bench_finger_reports_speed_and_the_cost_of_pre_selection() {
    let json =
        std::env::temp_dir().join(format!("sinhtrac-bench-finger-{}.json", std::process::id()));
    sinhtrac()
        .args(["bench", "finger", "--n", "2000", "--queries", "4", "--json"])
        .arg(&json)
        .succeeds();
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    assert!(r["templates"].as_u64().unwrap() >= 390, "{r}");
    // Default cascade (coarse passes, refine, exact), the cascade without refine, and exhaustive, on 1
    // and 2 threads.
    let speed = r["speed"].as_array().unwrap();
    assert_eq!(speed.len(), 6, "{speed:?}");
    for mode in ["pre-selection 30%", "no refine", "exhaustive"] {
        assert!(
            speed
                .iter()
                .any(|s| s["mode"].as_str().unwrap_or("").starts_with(mode)),
            "no {mode} row in {speed:?}"
        );
    }
    assert!(speed
        .iter()
        .all(|s| s["comparisons_per_s"].as_f64().unwrap() > 0.0));
    // Leave-one-out rank-1 over real FVC templates: exhaustive MCC finds the mate for most probes,
    // and a 10% shortlist with the refine stage keeps nearly all of that.
    let exhaustive = r["exhaustive_rank1"].as_f64().unwrap();
    assert!(exhaustive > 0.9, "exhaustive rank-1 {exhaustive}");
    let recall = r["recall"].as_array().unwrap();
    let ten = recall
        .iter()
        .find(|row| {
            row["shortlist_fraction"]
                .as_f64()
                .is_some_and(|f| (f - 0.1).abs() < 1e-6)
                && row["refine"] == true
        })
        .unwrap_or_else(|| panic!("no 10% refine row in {recall:?}"))["rank1"]
        .as_f64()
        .unwrap();
    assert!(ten > exhaustive - 0.03, "10% shortlist rank-1 {ten}");
}

#[test]
fn bench_index_measures_every_scan_and_the_fast_scan_tier_against_exact_truth() {
    // `sinhtrac bench index` as a user runs it (this build has no FAISS peers): every method is
    // measured on the same face-like vectors, exact scans find the exact top 10, int8 with re-rank and
    // the 4-bit PQ fast-scan tier keep recall@10 ≥ 0.99, and the bandwidth bound is reported.
    let json =
        std::env::temp_dir().join(format!("sinhtrac-bench-index-{}.json", std::process::id()));
    sinhtrac()
        .args([
            "bench",
            "index",
            "--n",
            "20000",
            "--queries",
            "32",
            "--batch1-queries",
            "4",
            "--threads",
            "2",
            "--json",
        ])
        .arg(&json)
        .succeeds();
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let rows = r["rows"].as_array().unwrap();
    let row = |name: &str| {
        rows.iter()
            .find(|x| x["method"] == name)
            .unwrap_or_else(|| panic!("no {name} row in {rows:?}"))
    };
    for (name, floor) in [
        ("flat-f32", 1.0),
        ("flat-f16", 0.99),
        ("flat-sq8+rerank4", 0.99),
        ("ours-pq64x4fs,rerank50", 0.99),
        ("ours-pq64x4fs,rerank100", 0.99),
    ] {
        let x = row(name);
        let recall = x["recall_at_10"].as_f64().unwrap();
        assert!(recall >= floor, "{name}: recall@10 {recall}");
        assert!(x["batch1_min_ms"].as_f64().unwrap() > 0.0, "{name}");
        assert!(x["batch_qps"].as_f64().unwrap() > 0.0, "{name}");
    }
    assert!(row("flat-f32")["bandwidth_bound_ms"].as_f64().unwrap() > 0.0);
    assert!(r["bandwidth_threads"].as_f64().unwrap() > 0.0);
    assert!(
        r["notes"].to_string().contains("FAISS peers not run"),
        "{}",
        r["notes"]
    );
}
