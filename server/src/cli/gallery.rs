//! `sinhtrac gallery synth`: fill a gallery file with synthetic face templates of the served model, to
//! measure identification and cold start at national scale (1M+) without a million real faces.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Subcommand;
use sinhtrac_engine::runtime::{Manifest, Role};
use sinhtrac_engine::template::{QualitySummary, Template};
use sinhtrac_store::{NewSubject, NewTemplate, Store};

#[derive(Debug, Subcommand)]
pub enum GalleryCommand {
    /// Add N subjects with one random unit-vector template each (ids SYN-00000000...).
    Synth {
        /// Gallery database file (created if missing).
        #[arg(long)]
        gallery: PathBuf,
        /// Tenant to fill.
        #[arg(long, default_value = "load")]
        tenant: String,
        /// Subjects to add.
        #[arg(long, default_value_t = 1_000_000)]
        count: usize,
        /// Random seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

fn hex32(s: &str) -> anyhow::Result<[u8; 32]> {
    anyhow::ensure!(s.len() == 64, "sha256 must be 64 hex digits");
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)?;
    }
    Ok(out)
}

pub fn run(cmd: GalleryCommand) -> anyhow::Result<ExitCode> {
    let GalleryCommand::Synth {
        gallery,
        tenant,
        count,
        seed,
    } = cmd;
    let manifest = Manifest::embedded();
    let model = manifest.default_for(Role::Embedder)?;
    let sha = hex32(&model.sha256)?;
    let dim = model.param_f32("dim", 0.0)? as usize;
    anyhow::ensure!(dim > 0, "{}: no dim in the manifest", model.id);
    if let Some(dir) = gallery.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let store = Store::open(&gallery)?;
    let started = Instant::now();
    let chunk = 50_000;
    let mut done = 0;
    while done < count {
        let n = chunk.min(count - done);
        let vectors = sinhtrac_index::bench::gen::random_unit(n, dim, seed ^ done as u64);
        let subjects: Vec<NewSubject> = vectors
            .chunks(dim)
            .enumerate()
            .map(|(i, v)| -> anyhow::Result<NewSubject> {
                let t = Template::face_vector(&model.id, sha, v, QualitySummary::default())?;
                Ok(NewSubject {
                    subject_id: format!("SYN-{:08}", done + i),
                    metadata: Default::default(),
                    templates: vec![NewTemplate::face(model.id.clone(), t.encode(), 0.9)],
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let mut failed = 0;
        store.enroll_batch(&tenant, &subjects, 5000, |_, r| {
            if r.is_err() {
                failed += 1;
            }
        })?;
        done += n;
        eprintln!(
            "gallery synth: {done}/{count} ({failed} already present) {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    store.close()?;
    println!(
        "{count} synthetic {} templates ({dim}-d) in tenant {tenant:?} of {} in {:.1} s",
        model.id,
        gallery.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
