//! `slotguard explore`: serve stateright's explorer for a configuration, with this model's own
//! rendering of states, steps and sequence diagrams (`slotguard_check::render`).
//!
//! The explorer's quirks (specs/background.md §S2) that users must know, and that the command says
//! when it starts: it checks nothing until "Run to completion" is pressed; it serves a `ui/` folder
//! from the working directory instead of its own pages if one exists; and it runs BFS, so running a
//! large configuration to completion needs a lot of memory (use `slotguard check`).

use std::net::{SocketAddr, TcpListener};

use anyhow::{bail, Context, Result};
use clap::Args;
use stateright::Model;

use crate::check_cmd::{describe, load, ConfigArgs};

/// Arguments of `slotguard explore`.
#[derive(Args, Debug)]
pub(crate) struct ExploreArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: String,
    /// Open at this path (action indices as `slotguard check` prints them, e.g. `0/4/1`).
    #[arg(long)]
    path: Option<String>,
    /// Worker threads for "Run to completion".
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// Checks that `path` is a sequence of action indices that the model can follow.
fn validate_path(model: &slotguard_check::ClusterModel, path: &str) -> Result<()> {
    let mut parts = path.trim_matches('/').split('/');
    let init: usize = parts
        .next()
        .unwrap_or_default()
        .parse()
        .with_context(|| format!("--path {path}: expected indices like 0/4/1"))?;
    let mut state = model
        .init_states()
        .into_iter()
        .nth(init)
        .with_context(|| format!("--path {path}: no initial state {init}"))?;
    for (step, part) in parts.enumerate() {
        let index: usize = part
            .parse()
            .with_context(|| format!("--path {path}: {part:?} is not an action index"))?;
        let mut actions = Vec::new();
        model.actions(&state, &mut actions);
        let action = actions
            .into_iter()
            .nth(index)
            .with_context(|| format!("--path {path}: step {} has no action {index}", step + 1))?;
        state = model.next_state(&state, action).with_context(|| {
            format!(
                "--path {path}: action {index} at step {} changes nothing",
                step + 1
            )
        })?;
    }
    Ok(())
}

/// Runs `slotguard explore` (blocks until interrupted).
pub(crate) fn run(args: ExploreArgs) -> Result<()> {
    let config = load(&args.config)?;
    let model = args.config.model(&config)?;
    if let Some(path) = &args.path {
        validate_path(&model, path)?;
    }
    let addr: SocketAddr = args.addr.parse().with_context(|| {
        format!(
            "--addr {}: expected HOST:PORT, e.g. 127.0.0.1:3000",
            args.addr
        )
    })?;
    // The explorer's server panics if it cannot bind; find out first, with a clear message.
    match TcpListener::bind(addr) {
        Ok(probe) => drop(probe),
        Err(e) => bail!("cannot serve on {addr}: {e}"),
    }
    if std::path::Path::new("ui").is_dir() {
        eprintln!(
            "warning: ./ui exists; stateright's explorer serves its pages from there instead of its own"
        );
    }
    let url = match &args.path {
        Some(p) => format!("http://{addr}/#/steps/{}", p.trim_matches('/')),
        None => format!("http://{addr}/"),
    };
    eprintln!("exploring {}", describe(&config));
    eprintln!(
        "nothing is checked until you press \"Run to completion\" (BFS: small configurations only)"
    );
    println!("explorer: {url}");
    model.checker().threads(args.threads.max(1)).serve(addr);
    Ok(())
}
