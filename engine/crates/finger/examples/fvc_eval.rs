//! Runs the FVC evaluation over a folder tree and prints the JSON report.
//! `cargo run --release -p sinhtrac-finger --example fvc_eval -- <dir>`

use sinhtrac_finger::{fvc, ClassicalExtractor};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: fvc_eval <dir>")?;
    let report = fvc::evaluate_tree(&dir, &ClassicalExtractor, 500)?;
    for d in &report.databases {
        println!(
            "{:<14} FTE {} min {:.1} ext {:.1}ms match {:.0}us t1000 {:.4} | FVC EER {:.2}% FMR100 {:.2}% FMR1000 {:.2}% Zero {:.2}% | ext EER {:.2}% FMR100 {:.2}% FMR1000 {:.2}% Zero {:.2}% thr {:.3}",
            d.name, d.failures_to_enrol, d.minutiae_mean, d.extract_ms_median, d.match_us_mean, d.threshold_fmr1000,
            d.fvc.eer * 100.0, d.fvc.fmr100 * 100.0, d.fvc.fmr1000 * 100.0, d.fvc.zero_fmr * 100.0,
            d.extended.eer * 100.0, d.extended.fmr100 * 100.0, d.extended.fmr1000 * 100.0,
            d.extended.zero_fmr * 100.0, d.extended.eer_threshold
        );
    }
    println!(
        "mean EER {:.2}% extended {:.2}%",
        report.mean_eer * 100.0,
        report.mean_extended_eer * 100.0
    );
    if std::env::var_os("FVC_JSON").is_some() {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}
