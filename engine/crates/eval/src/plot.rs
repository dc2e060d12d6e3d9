//! DET, ROC and score-histogram plots with `plotters`, as PNG and SVG.
//!
//! Text is laid out with `ab_glyph` from an embedded DejaVu Sans
//! (`assets/DejaVuSans.ttf`, Bitstream Vera licence), so no system font,
//! fontconfig or freetype is needed. PNGs are encoded with the `png` crate.
//!
//! The DET plot has log-scaled FMR and FNMR axes (as NIST FRTE draws them),
//! not the normal-deviate axes of Martin et al.; the ROC plot has a log FMR
//! axis and a linear TMR axis. Red dots mark FNMR at the reported target
//! FMRs, a cross the EER.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{EvalError, Result};
use crate::openset::OpenSetResult;
use crate::report::{Histogram, LivenessReport, VerificationReport};

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const SIZE: (u32, u32) = (900, 700);

static FONT_INIT: Once = Once::new();

fn register_fonts() {
    FONT_INIT.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The embedded font is a valid TTF; a failure would show as a
            // plot error below ("font not found"), not a panic.
            let _ = plotters::style::register_font("sans-serif", style, FONT);
        }
    });
}

/// Which verification plot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plot {
    Det,
    Roc,
    Scores,
}

type DrawResult = std::result::Result<(), String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// A plot to draw, on any backend.
enum Job<'a> {
    Det(&'a VerificationReport, &'a str),
    Roc(&'a VerificationReport, &'a str),
    Hist(String, (&'a str, &'a Histogram), (&'a str, &'a Histogram)),
    Cmc(&'a OpenSetResult, &'a str),
    FnirFpir(&'a OpenSetResult, &'a str),
}

impl Job<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        match self {
            Job::Det(v, t) => draw_det(root, v, t),
            Job::Roc(v, t) => draw_roc(root, v, t),
            Job::Hist(c, a, b) => draw_hist(root, c, *a, *b),
            Job::Cmc(o, t) => draw_cmc(root, o, t),
            Job::FnirFpir(o, t) => draw_fnir_fpir(root, o, t),
        }
    }
}

/// Render one plot to (PNG bytes, SVG text).
pub(crate) fn render(kind: Plot, v: &VerificationReport, title: &str) -> Result<(Vec<u8>, String)> {
    let job = match kind {
        Plot::Det => Job::Det(v, title),
        Plot::Roc => Job::Roc(v, title),
        Plot::Scores => Job::Hist(
            format!("{title}: score distributions"),
            ("genuine", &v.genuine_histogram),
            ("impostor", &v.impostor_histogram),
        ),
    };
    both(&format!("{kind:?}").to_lowercase(), &job)
}

/// Render the liveness score histograms.
pub(crate) fn render_liveness(l: &LivenessReport, title: &str) -> Result<(Vec<u8>, String)> {
    let job = Job::Hist(
        format!("{title}: liveness scores"),
        ("bona fide", &l.bona_fide_histogram),
        ("attack", &l.attack_histogram),
    );
    both("liveness", &job)
}

/// Render the open-set plots: (file stem, PNG, SVG) for the CMC and, with non-mated searches, FNIR
/// against FPIR.
pub(crate) fn render_open_set(
    o: &OpenSetResult,
    title: &str,
) -> Result<Vec<(&'static str, Vec<u8>, String)>> {
    let mut out = Vec::new();
    let (png, svg) = both("cmc", &Job::Cmc(o, title))?;
    out.push(("cmc", png, svg));
    if o.curve.iter().any(|p| p.fpir > 0.0) {
        let (png, svg) = both("fnir_fpir", &Job::FnirFpir(o, title))?;
        out.push(("fnir_fpir", png, svg));
    }
    Ok(out)
}

/// Draw a job on a bitmap and on an SVG backend.
fn both(what: &str, job: &Job) -> Result<(Vec<u8>, String)> {
    register_fonts();
    let fail = |reason: String| EvalError::Plot {
        what: what.into(),
        reason,
    };
    let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        job.draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        job.draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok((encode_png(&rgb, SIZE).map_err(fail)?, svg))
}

fn encode_png(rgb: &[u8], (w, h): (u32, u32)) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().map_err(err)?;
        wr.write_image_data(rgb).map_err(err)?;
        wr.finish().map_err(err)?;
    }
    Ok(out)
}

/// Lower axis bound: the decade at or below the smallest positive value,
/// no lower than `floor`.
fn decade_floor(values: impl Iterator<Item = f64>, floor: f64) -> f64 {
    let m = values.filter(|&x| x > 0.0).fold(1.0, f64::min).max(floor);
    10f64.powf(m.log10().floor()).min(0.1)
}

fn sci(x: &f64) -> String {
    let e = x.log10().round() as i32;
    if (x / 10f64.powi(e) - 1.0).abs() < 1e-6 {
        format!("1e{e}")
    } else {
        format!("{x:.0e}")
    }
}

fn draw_det<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    v: &VerificationReport,
    title: &str,
) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    let n_imp = v.n_impostor.max(1) as f64;
    let n_gen = v.n_genuine.max(1) as f64;
    let x_lo = decade_floor(v.curve.iter().map(|p| p.fmr), 1.0 / n_imp);
    let y_lo = decade_floor(v.curve.iter().map(|p| p.fnmr), 1.0 / n_gen);
    let mut chart = ChartBuilder::on(root)
        .caption(format!("{title}: DET"), ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(75)
        .build_cartesian_2d((x_lo..1.0).log_scale(), (y_lo..1.0).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("FMR (false match rate)")
        .y_desc("FNMR (false non-match rate)")
        .x_label_formatter(&sci)
        .y_label_formatter(&sci)
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(err)?;
    let pts: Vec<(f64, f64)> = v
        .curve
        .iter()
        .filter(|p| p.fmr > 0.0 && p.fnmr > 0.0)
        .map(|p| (p.fmr, p.fnmr))
        .collect();
    chart
        .draw_series(LineSeries::new(pts, BLUE.stroke_width(2)))
        .map_err(err)?
        .label("DET")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    // Operating points at the reported targets.
    let ops: Vec<(f64, f64)> = v
        .fnmr_at_fmr
        .iter()
        .filter_map(|o| o.result)
        .filter(|r| r.fnmr > 0.0 && r.at.observed_fmr > 0.0)
        .map(|r| (r.at.observed_fmr, r.fnmr))
        .collect();
    chart
        .draw_series(ops.into_iter().map(|p| Circle::new(p, 5, RED.filled())))
        .map_err(err)?
        .label("FNMR @ target FMR")
        .legend(|(x, y)| Circle::new((x + 10, y), 5, RED.filled()));
    if v.eer.eer > 0.0 {
        chart
            .draw_series(std::iter::once(Cross::new(
                (v.eer.eer, v.eer.eer),
                7,
                BLACK.stroke_width(2),
            )))
            .map_err(err)?
            .label(format!("EER {:.3}%", 100.0 * v.eer.eer))
            .legend(|(x, y)| Cross::new((x + 10, y), 6, BLACK.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn draw_roc<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    v: &VerificationReport,
    title: &str,
) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    let x_lo = decade_floor(
        v.curve.iter().map(|p| p.fmr),
        1.0 / v.n_impostor.max(1) as f64,
    );
    let y_lo = v
        .curve
        .iter()
        .filter(|p| p.fmr >= x_lo)
        .map(|p| p.tmr())
        .fold(1.0, f64::min);
    let y_lo = ((y_lo * 20.0).floor() / 20.0).clamp(0.0, 0.95);
    let mut chart = ChartBuilder::on(root)
        .caption(format!("{title}: ROC"), ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(75)
        .build_cartesian_2d((x_lo..1.0).log_scale(), y_lo..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("FMR (false match rate)")
        .y_desc("TMR = 1 - FNMR")
        .x_label_formatter(&sci)
        .y_label_formatter(&|y| format!("{y:.2}"))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(err)?;
    let pts: Vec<(f64, f64)> = v
        .curve
        .iter()
        .filter(|p| p.fmr > 0.0)
        .map(|p| (p.fmr, p.tmr()))
        .collect();
    chart
        .draw_series(LineSeries::new(pts, BLUE.stroke_width(2)))
        .map_err(err)?;
    Ok(())
}

fn draw_hist<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    caption: &str,
    a: (&str, &Histogram),
    b: (&str, &Histogram),
) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    let (lo, hi) = (a.1.lo, a.1.hi);
    // Densities, so that sets of very different sizes share an axis.
    let dens = |h: &Histogram| -> Vec<f64> {
        let w = (h.hi - h.lo) / h.counts.len().max(1) as f64;
        let n = h.total().max(1) as f64;
        h.counts
            .iter()
            .map(|&c| if w > 0.0 { c as f64 / (n * w) } else { 0.0 })
            .collect()
    };
    let (da, db) = (dens(a.1), dens(b.1));
    let ymax = da.iter().chain(&db).copied().fold(0.0, f64::max).max(1e-12) * 1.08;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(75)
        .build_cartesian_2d(lo..hi, 0.0..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("score")
        .y_desc("density")
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(err)?;
    for ((name, h), d, colour) in [(a, &da, GREEN), (b, &db, RED)] {
        let w = (h.hi - h.lo) / h.counts.len().max(1) as f64;
        chart
            .draw_series(d.iter().enumerate().map(|(i, &y)| {
                let x0 = h.lo + i as f64 * w;
                Rectangle::new([(x0, 0.0), (x0 + w, y)], colour.mix(0.45).filled())
            }))
            .map_err(err)?
            .label(format!("{name} (n = {})", h.total()))
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 20, y + 6)], colour.mix(0.45).filled())
            });
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn draw_cmc<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    o: &OpenSetResult,
    title: &str,
) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    let k = o.cmc.len().max(2);
    let lo = o.cmc.first().copied().unwrap_or(0.0);
    let y_lo = ((lo * 20.0).floor() / 20.0 - 0.05).clamp(0.0, 0.95);
    let mut chart = ChartBuilder::on(root)
        .caption(format!("{title}: CMC"), ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(75)
        .build_cartesian_2d(1f64..k as f64, y_lo..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("rank")
        .y_desc("identification rate (mated searches)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.2}"))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(err)?;
    let pts: Vec<(f64, f64)> = o
        .cmc
        .iter()
        .enumerate()
        .map(|(i, &r)| ((i + 1) as f64, r))
        .collect();
    chart
        .draw_series(LineSeries::new(pts.clone(), BLUE.stroke_width(2)))
        .map_err(err)?
        .label(format!(
            "rank-1 {:.2}%, rank-10 {:.2}% ({} mated)",
            100.0 * o.rank1,
            100.0 * o.rank10,
            o.n_mated
        ))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, BLUE.filled())))
        .map_err(err)?;
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn draw_fnir_fpir<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    o: &OpenSetResult,
    title: &str,
) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    let x_lo = decade_floor(
        o.curve.iter().map(|p| p.fpir),
        1.0 / o.n_nonmated.max(1) as f64,
    );
    let y_lo = decade_floor(
        o.curve.iter().map(|p| p.fnir),
        1.0 / o.n_mated.max(1) as f64,
    );
    let mut chart = ChartBuilder::on(root)
        .caption(format!("{title}: FNIR vs FPIR"), ("sans-serif", 26))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(75)
        .build_cartesian_2d((x_lo..1.0).log_scale(), (y_lo..1.0).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("FPIR (false positive identification rate)")
        .y_desc("FNIR (false negative identification rate)")
        .x_label_formatter(&sci)
        .y_label_formatter(&sci)
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(err)?;
    let pts: Vec<(f64, f64)> = o
        .curve
        .iter()
        .filter(|p| p.fpir > 0.0 && p.fnir > 0.0)
        .map(|p| (p.fpir, p.fnir))
        .collect();
    chart
        .draw_series(LineSeries::new(pts, BLUE.stroke_width(2)))
        .map_err(err)?
        .label(format!(
            "{} mated, {} non-mated searches",
            o.n_mated, o.n_nonmated
        ))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    let ops: Vec<(f64, f64)> = o
        .fnir_at_fpir
        .iter()
        .filter(|f| f.fnir > 0.0 && f.observed_fpir > 0.0)
        .map(|f| (f.observed_fpir, f.fnir))
        .collect();
    chart
        .draw_series(ops.into_iter().map(|p| Circle::new(p, 5, RED.filled())))
        .map_err(err)?
        .label("FNIR @ target FPIR")
        .legend(|(x, y)| Circle::new((x + 10, y), 5, RED.filled()));
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    Ok(())
}
