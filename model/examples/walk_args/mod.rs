//! The arguments the walk examples share: `[CONFIG] [STATES] [--seed N] [REST...]`.

/// An embedded configuration, how many states the walks visit, the seed, and what is left.
pub(crate) struct WalkArgs {
    pub(crate) config: String,
    pub(crate) states: usize,
    pub(crate) seed: u64,
    pub(crate) rest: Vec<String>,
}

/// Reads the command line, with these defaults for the configuration and the states; the seed
/// is 0 unless `--seed N` is given anywhere after them.
pub(crate) fn parse(default_config: &str, default_states: usize) -> WalkArgs {
    let mut args = std::env::args().skip(1);
    let config = args.next().unwrap_or_else(|| default_config.into());
    let states = args
        .next()
        .map_or(Ok(default_states), |n| n.parse())
        .expect("a number of states");
    let mut rest: Vec<String> = args.collect();
    let seed = match rest.iter().position(|a| a == "--seed") {
        Some(i) => {
            let seed = rest.get(i + 1).map_or("", String::as_str).parse();
            rest.drain(i..(i + 2).min(rest.len()));
            seed.expect("--seed takes a number")
        }
        None => 0,
    };
    WalkArgs {
        config,
        states,
        seed,
        rest,
    }
}
