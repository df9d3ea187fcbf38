//! What the browser tests share (tests/explore_browser.rs, tests/live_view.rs).

use std::path::PathBuf;

/// Debian's Chromium, or `None` (and a message) where a test may be skipped; under CI, a
/// failure.
pub(crate) fn chromium() -> Option<PathBuf> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty() || v == "false"),
            "chromium is not installed; .ci/run installs it"
        );
        eprintln!("SKIPPED: chromium is not installed (apt-get install chromium)");
    }
    found
}
