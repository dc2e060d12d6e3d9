//! `sinhtrac demo`: the main job on embedded defaults. Liveness on the sample photos, decisions on a few
//! LFW comparisons, then the full LFW evaluation.

use std::process::ExitCode;

use clap::Args;
use sinhtrac_engine::image::decode_file;

use super::{default_dataset, eval, face::describe, GlobalArgs};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Skip the LFW evaluation (minutes on two cores).
    #[arg(long)]
    pub quick: bool,
}

pub fn run(global: &GlobalArgs, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let engine = global.face_engine(global.face_config())?;
    let limits = engine.config().limits;
    println!(
        "sinhtrac demo: detector {}, embedder {} ({}-d), liveness {}",
        engine.detector.model_id(),
        engine.embedder.model_id(),
        engine.embedder.dim(),
        engine.liveness.model_ids().join(" + ")
    );

    println!("\n1. Passive liveness on the sample photos (F = printed/replayed attack, T = live):");
    let pad = sinhtrac_engine::paths::datasets_dir().join("face_pad_samples");
    for file in [
        "minivision_image_F1.jpg",
        "minivision_image_F2.jpg",
        "minivision_image_T1.jpg",
    ] {
        let img = decode_file(&pad.join(file), &limits)?.rgb;
        let (_, r) = engine.liveness(&img)?;
        println!(
            "   {file:<28} {} (score {:.3}, threshold {:.2})",
            if r.live { "LIVE " } else { "SPOOF" },
            r.score,
            r.threshold
        );
    }

    println!(
        "\n2. Face comparisons, decided at FMR {:.0e}:",
        engine.config().target_fmr
    );
    let lfw = default_dataset("lfw").join("images");
    let photo = |name: &str, i: u32| lfw.join(format!("{name}/{name}_{i:04}.jpg"));
    let pairs = [
        (("Aaron_Peirsol", 1), ("Aaron_Peirsol", 3)),
        (("Serena_Williams", 1), ("Serena_Williams", 3)),
        (("Aaron_Peirsol", 1), ("Aaron_Sorkin", 1)),
        (("Serena_Williams", 1), ("Venus_Williams", 2)),
    ];
    for ((n1, i1), (n2, i2)) in pairs {
        let a = engine.extract(&decode_file(&photo(n1, i1), &limits)?.rgb)?;
        let b = engine.extract(&decode_file(&photo(n2, i2), &limits)?.rgb)?;
        let d = engine.decide(a.template.similarity(&b.template)?, None)?;
        println!(
            "   {:<22} vs {:<22} {}",
            format!("{n1}_{i1}"),
            format!("{n2}_{i2}"),
            describe(&d)
        );
    }

    if !args.quick {
        println!("\n3. LFW View-2 evaluation (6000 pairs):");
        drop(engine);
        let report = eval::run_lfw(
            global,
            default_dataset("lfw"),
            sinhtrac_engine::face::MultiFacePolicy::Central,
            None,
        )?;
        eval::print_lfw(&report);
    }
    Ok(ExitCode::SUCCESS)
}
