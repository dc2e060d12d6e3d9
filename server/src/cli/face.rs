//! `sinhtrac face …`: the face pipeline on image files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;
use sinhtrac_engine::face::{Detection, FaceEngine, FaceQuality, MultiFacePolicy};
use sinhtrac_engine::image::decode_file;
use sinhtrac_engine::template::Template;

use super::GlobalArgs;

#[derive(Debug, Subcommand)]
pub enum FaceCommand {
    /// Detect faces and their landmarks.
    Detect(FaceArgs),
    /// Extract a template from each image (optionally written as .stpl files).
    Extract(ExtractArgs),
    /// Compare two faces (image files or .stpl templates).
    Compare(CompareArgs),
    /// Passive liveness (presentation-attack detection) on each image.
    Liveness(LivenessArgs),
}

#[derive(Debug, Args)]
pub struct FaceArgs {
    /// Image files (JPEG, PNG, TIFF, BMP, WebP).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Refuse images with more than one face (default: use the largest).
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    #[command(flatten)]
    pub face: FaceArgs,
    /// Write each template to DIR/<image stem>.stpl.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Apply the enrolment quality gate.
    #[arg(long)]
    pub enrol: bool,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// First face: image or .stpl template.
    pub a: PathBuf,
    /// Second face: image or .stpl template.
    pub b: PathBuf,
    /// Decide at this false-match rate (must be calibrated; default 1e-4).
    #[arg(long)]
    pub fmr: Option<f64>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LivenessArgs {
    #[command(flatten)]
    pub face: FaceArgs,
    /// Decision threshold on the [0,1] liveness score.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Liveness model ids (default: the manifest's MiniFASNet ensemble).
    #[arg(
        id = "liveness_models",
        long = "liveness-models",
        value_delimiter = ','
    )]
    pub models: Option<Vec<String>>,
}

#[derive(Serialize)]
struct Row<T: Serialize> {
    image: String,
    #[serde(flatten)]
    outcome: Outcome<T>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Outcome<T: Serialize> {
    Ok(T),
    Err { error: String, reason: &'static str },
}

fn outcome<T: Serialize>(r: sinhtrac_engine::Result<T>) -> Outcome<T> {
    match r {
        Ok(v) => Outcome::Ok(v),
        Err(e) => Outcome::Err {
            reason: e.reason(),
            error: e.to_string(),
        },
    }
}

fn load_engine(
    global: &GlobalArgs,
    strict: bool,
    tweak: impl FnOnce(&mut sinhtrac_engine::face::FaceConfig),
) -> anyhow::Result<FaceEngine> {
    let mut config = global.face_config();
    if strict {
        config.multi_face = MultiFacePolicy::Strict;
    }
    tweak(&mut config);
    global.face_engine(config)
}

fn read_image(engine: &FaceEngine, path: &Path) -> sinhtrac_engine::Result<image::RgbImage> {
    Ok(decode_file(path, &engine.config().limits)?.rgb)
}

fn print_rows<T: Serialize>(
    rows: &[Row<T>],
    json: bool,
    line: impl Fn(&T) -> String,
) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
    } else {
        for r in rows {
            match &r.outcome {
                Outcome::Ok(v) => println!("{:<40} {}", r.image, line(v)),
                Outcome::Err { error, reason } => {
                    println!("{:<40} ERROR {reason}: {error}", r.image)
                }
            }
        }
    }
    let failed = rows
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Err { .. }));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Serialize)]
struct Detected {
    faces: Vec<Detection>,
}

#[derive(Serialize)]
struct Extracted {
    model: String,
    dim: usize,
    faces_in_image: usize,
    detection: Detection,
    quality: FaceQuality,
    template_bytes: usize,
    written: Option<String>,
}

#[derive(Serialize)]
struct Live {
    face: Detection,
    liveness: sinhtrac_engine::face::LivenessResult,
}

#[derive(Serialize)]
struct Comparison {
    a: String,
    b: String,
    model: String,
    similarity: f32,
    decision: sinhtrac_engine::decision::Decision,
}

pub fn run(global: &GlobalArgs, cmd: FaceCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        FaceCommand::Detect(args) => {
            let engine = load_engine(global, args.strict, |_| {})?;
            let rows: Vec<Row<Detected>> = args
                .images
                .iter()
                .map(|p| {
                    let r = read_image(&engine, p).and_then(|img| {
                        let faces = engine.detector.detect(&img)?;
                        if faces.is_empty() {
                            return Err(sinhtrac_engine::face::FaceError::NoFace.into());
                        }
                        engine.select(&faces, img.dimensions())?;
                        Ok(Detected { faces })
                    });
                    Row {
                        image: p.display().to_string(),
                        outcome: outcome(r),
                    }
                })
                .collect();
            print_rows(&rows, args.json, |d| {
                let f = &d.faces[0];
                format!(
                    "{} face(s); best score {:.3} box ({:.0},{:.0}) {:.0}x{:.0}",
                    d.faces.len(),
                    f.score,
                    f.bbox.x,
                    f.bbox.y,
                    f.bbox.width,
                    f.bbox.height
                )
            })
        }
        FaceCommand::Extract(args) => {
            let engine = load_engine(global, args.face.strict, |_| {})?;
            if let Some(dir) = &args.out {
                std::fs::create_dir_all(dir)?;
            }
            let rows: Vec<Row<Extracted>> = args
                .face
                .images
                .iter()
                .map(|p| {
                    let r = read_image(&engine, p).and_then(|img| {
                        let t = if args.enrol {
                            engine.extract_for_enrolment(&img)?
                        } else {
                            engine.extract(&img)?
                        };
                        let bytes = t.template.encode();
                        let written = match &args.out {
                            Some(dir) => {
                                let stem = p
                                    .file_stem()
                                    .map(|s| s.to_string_lossy().to_string())
                                    .unwrap_or_default();
                                let path = dir.join(format!("{stem}.stpl"));
                                std::fs::write(&path, &bytes).map_err(|e| {
                                    sinhtrac_engine::image::ImageError::Corrupt(format!(
                                        "writing {}: {e}",
                                        path.display()
                                    ))
                                })?;
                                Some(path.display().to_string())
                            }
                            None => None,
                        };
                        Ok(Extracted {
                            model: t.template.model_id.clone(),
                            dim: t.vector().len(),
                            faces_in_image: t.faces_in_image,
                            detection: t.detection,
                            quality: t.quality,
                            template_bytes: bytes.len(),
                            written,
                        })
                    });
                    Row {
                        image: p.display().to_string(),
                        outcome: outcome(r),
                    }
                })
                .collect();
            print_rows(&rows, args.face.json, |e| {
                format!(
                    "{}-d {} | det {:.2} eyes {:.0}px sharp {:.0} bright {:.0} yaw {:+.0}° pitch {:+.0}° roll {:+.0}°{}",
                    e.dim,
                    e.model,
                    e.quality.detection_score,
                    e.quality.inter_eye_px,
                    e.quality.sharpness,
                    e.quality.brightness,
                    e.quality.yaw_deg,
                    e.quality.pitch_deg,
                    e.quality.roll_deg,
                    e.written.as_ref().map(|w| format!(" -> {w}")).unwrap_or_default()
                )
            })
        }
        FaceCommand::Compare(args) => {
            let engine = load_engine(global, false, |_| {})?;
            let template_of = |p: &Path| -> anyhow::Result<Template> {
                if p.extension().is_some_and(|e| e == "stpl") {
                    let bytes = std::fs::read(p)?;
                    return Ok(Template::decode(&bytes).map_err(sinhtrac_engine::Error::from)?);
                }
                let img =
                    read_image(&engine, p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                Ok(engine
                    .extract(&img)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
                    .template)
            };
            let (a, b) = (template_of(&args.a)?, template_of(&args.b)?);
            let similarity = a.similarity(&b).map_err(sinhtrac_engine::Error::from)?;
            let decision = engine.decide(similarity, args.fmr)?;
            let c = Comparison {
                a: args.a.display().to_string(),
                b: args.b.display().to_string(),
                model: a.model_id.clone(),
                similarity,
                decision,
            };
            if args.json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                println!("{} vs {}: {}", c.a, c.b, describe(&c.decision));
            }
            Ok(ExitCode::SUCCESS)
        }
        FaceCommand::Liveness(args) => {
            let engine = load_engine(global, args.face.strict, |c| {
                c.liveness_threshold = args.threshold;
                c.liveness = args.models.clone();
            })?;
            let rows: Vec<Row<Live>> = args
                .face
                .images
                .iter()
                .map(|p| {
                    let r = read_image(&engine, p)
                        .and_then(|img| engine.liveness(&img))
                        .map(|(face, liveness)| Live { face, liveness });
                    Row {
                        image: p.display().to_string(),
                        outcome: outcome(r),
                    }
                })
                .collect();
            print_rows(&rows, args.face.json, |l| {
                let per: Vec<String> = l
                    .liveness
                    .models
                    .iter()
                    .map(|m| format!("{} {:.3}", m.model, m.real))
                    .collect();
                format!(
                    "{} score {:.3} (threshold {:.2}) [{}]",
                    if l.liveness.live { "LIVE " } else { "SPOOF" },
                    l.liveness.score,
                    l.liveness.threshold,
                    per.join(", ")
                )
            })
        }
    }
}

/// One line a person can act on: the decision, the score, and what the threshold means.
pub fn describe(d: &sinhtrac_engine::decision::Decision) -> String {
    format!(
        "{} (similarity {:.4}, threshold {:.4} at FMR {:.0e}, {})",
        if d.accept { "MATCH" } else { "NO MATCH" },
        d.score,
        d.threshold,
        d.target_fmr,
        d.model_id
    )
}
