//! `slotguard explore`: browse the model's states as pictures of the cluster — one card per
//! node, messages in flight, budgets, history, a sequence diagram of the path so far — and
//! follow the enabled actions, named as counterexample steps are (specs/properties.md).
//!
//! Why a server of our own and not stateright's explorer: stateright serves its page from
//! `./ui/` when the working directory has one, else its own (specs/background.md §S2), so a page
//! of ours could only be shown from one directory, and its page shows a state as text and needs
//! an icon font. Ours is compiled in (`page.rs`) and asks this process for each path
//! (`GET /api/steps/0/4/1`); a path of action indices identifies a state because the model is
//! deterministic, so the answer is recomputed from the model on every request
//! (`slotguard_check::picture::explorer_view`) and nothing is kept between requests. The page
//! keeps the path in its address (`#/steps/0/4/1`, stateright's form), so the browser's back
//! button and the `--path` that `check` prints work. Verdicts come from `slotguard check`; the
//! stock explorer, with its "Run to completion" (a BFS, specs/background.md §S2), is still
//! there with `--stock`.

use std::net::{SocketAddr, TcpListener};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use serde_json::json;
use slotguard_check::picture;
use stateright::Model;

use crate::check_cmd::{describe, load, ConfigArgs};
use crate::page;

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
    /// Serve stateright's own explorer (states as text, "Run to completion") instead.
    #[arg(long)]
    stock: bool,
    /// With --stock: worker threads for "Run to completion".
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// Runs `slotguard explore` (blocks until interrupted).
pub(crate) fn run(args: ExploreArgs) -> Result<()> {
    let config = load(&args.config)?;
    let model = args.config.model(&config)?;
    let start = match &args.path {
        Some(path) => {
            picture::follow(&model, path)
                .map_err(|e| anyhow!("--path {path}: {e}"))?
                .path
        }
        None => "0".to_string(),
    };
    let addr: SocketAddr = args.addr.parse().with_context(|| {
        format!(
            "--addr {}: expected HOST:PORT, e.g. 127.0.0.1:3000",
            args.addr
        )
    })?;
    let title = format!("slotguard explore: {}", config.name);
    if args.stock {
        // stateright's server panics if it cannot bind; find out first, with a clear message.
        match TcpListener::bind(addr) {
            Ok(probe) => drop(probe),
            Err(e) => bail!("cannot serve on {addr}: {e}"),
        }
        eprintln!("exploring {}", describe(&config));
        if std::path::Path::new("ui").is_dir() {
            eprintln!(
                "warning: ./ui exists; stateright's explorer serves its pages from there instead of its own"
            );
        }
        eprintln!(
            "nothing is checked until you press \"Run to completion\" (BFS: small configurations only)"
        );
        println!("explorer: http://{addr}/#/steps/{start}");
        model.checker().threads(args.threads.max(1)).serve(addr);
        return Ok(());
    }
    let server =
        tiny_http::Server::http(addr).map_err(|e| anyhow!("cannot serve on {addr}: {e}"))?;
    eprintln!("exploring {}", describe(&config));
    let html = page::page(
        &title,
        &json!({"mode": "explore", "title": title, "subtitle": describe(&config)}),
    )?;
    println!("explorer: http://{addr}/#/steps/{start}");
    for request in server.incoming_requests() {
        let response = match (request.method(), request.url()) {
            (tiny_http::Method::Get, "/" | "/index.html") => {
                page::response(200, "text/html; charset=utf-8", html.as_bytes())
            }
            (tiny_http::Method::Get, url) if url.starts_with("/api/steps") => {
                let path = url.trim_start_matches("/api/steps");
                match picture::explorer_view(&model, path) {
                    Ok(view) => match serde_json::to_vec(&view) {
                        Ok(body) => page::response(200, "application/json", body),
                        Err(e) => page::response(500, "text/plain; charset=utf-8", e.to_string()),
                    },
                    Err(e) => page::response(
                        404,
                        "text/plain; charset=utf-8",
                        format!("path {}: {e}", path.trim_matches('/')),
                    ),
                }
            }
            _ => page::response(404, "text/plain; charset=utf-8", "not found"),
        };
        // A browser that went away before the answer is no error of ours.
        let _ = request.respond(response);
    }
    Ok(())
}
