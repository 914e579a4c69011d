//! `localglm pull REPO[:QUANT]` (download with progress; Ctrl-C pauses, the same command
//! resumes) and `localglm models` (the library).

use anyhow::Result;
use localglm_models::download::{self, Progress, Stop};
use localglm_models::Library;
use std::io::Write;
use std::sync::Arc;

fn gb(b: u64) -> String {
    format!("{:.2} GB", b as f64 / 1e9)
}

fn line(p: &Progress) -> String {
    let pct = if p.total_bytes > 0 {
        100.0 * p.done_bytes as f64 / p.total_bytes as f64
    } else {
        100.0
    };
    let eta = p
        .eta_s()
        .map(|s| {
            format!(
                "{}:{:02}:{:02}",
                s as u64 / 3600,
                s as u64 / 60 % 60,
                s as u64 % 60
            )
        })
        .unwrap_or_else(|| "–".into());
    format!(
        "\r{pct:5.1}%  {} / {}  {:.1} MB/s  ETA {eta}  file {}/{}   ",
        gb(p.done_bytes),
        gb(p.total_bytes),
        p.bytes_per_s / 1e6,
        p.file + 1,
        p.files
    )
}

pub async fn pull(spec: &str) -> Result<()> {
    let lib = Library::from_env();
    let spec_owned = spec.to_string();
    let plan = tokio::task::spawn_blocking(move || download::resolve(&spec_owned)).await??;
    eprintln!(
        "{}: {} file(s), {} from {}",
        plan.repo,
        plan.files.len(),
        gb(plan.total_bytes()),
        plan.endpoint
    );
    let stop = Arc::new(Stop::default());
    let worker_stop = stop.clone();
    let models = lib.models_dir();
    let mut job = tokio::task::spawn_blocking(move || {
        download::pull(&plan, &models, &worker_stop, |p| {
            eprint!("{}", line(&p));
            let _ = std::io::stderr().flush();
        })
    });
    let result = tokio::select! {
        r = &mut job => r?,
        _ = tokio::signal::ctrl_c() => {
            stop.pause();
            job.await?
        }
    };
    eprintln!();
    let path = result?;
    println!("{}", path.display());
    Ok(())
}

pub fn models(import: Option<&std::path::Path>) -> Result<()> {
    let lib = Library::from_env();
    if let Some(path) = import {
        let m = lib.import(path)?;
        eprintln!("added {} ({})", m.name, m.path);
    }
    let list = lib.installed()?;
    if list.is_empty() {
        println!("No models in {}", lib.models_dir().display());
    }
    for m in list {
        println!(
            "{:<48} {:>10}  {:<10} {:<8} {}",
            m.name,
            gb(m.size_bytes as u64),
            m.architecture.unwrap_or_default(),
            m.quant.unwrap_or_default(),
            m.path
        );
    }
    Ok(())
}
