//! The results of one sitting: every sample as measured, the rows of the comparison computed
//! from them (medians, ratios to Redis), the markdown tables, and the sections of README.md and
//! specs/properties.md they replace.
//!
//! Why tables are only ever generated: a figure in the README or the specs must be traceable to
//! the JSON of one run, so the text between the markers is rewritten from that JSON, never
//! edited by hand (`slotguard-bench render`).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

/// One row of the comparison.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Row {
    /// The benchmark (`failover, node_timeout 1000 ms`).
    pub(crate) benchmark: String,
    /// What is measured (`first node marks FAIL, median (p95)`).
    pub(crate) measure: String,
    /// Redis's figure, as shown.
    pub(crate) redis: String,
    /// slotguard's figure, as shown.
    pub(crate) slotguard: String,
    /// slotguard / Redis, of the figures' main numbers.
    pub(crate) ratio: Option<f64>,
    /// The target for the ratio, in words.
    pub(crate) target: String,
    /// The command that reproduces the row.
    pub(crate) command: String,
}

/// A figure and how to show it.
pub(crate) struct Figure {
    value: Option<f64>,
    text: String,
}

impl Figure {
    /// `value` shown with `unit`, to `decimals` places.
    pub(crate) fn new(value: Option<f64>, decimals: usize, unit: &str) -> Figure {
        let text = match value {
            Some(v) => format!("{v:.decimals$}{unit}"),
            None => "not reached".to_string(),
        };
        Figure { value, text }
    }

    /// A median with its 95th percentile beside it.
    pub(crate) fn with_p95(values: &[Option<f64>], unit: &str) -> Figure {
        let seen: Vec<f64> = values.iter().flatten().copied().collect();
        let missed = values.len() - seen.len();
        let (median, p95) = (percentile(&seen, 0.5), percentile(&seen, 0.95));
        let mut f = Figure::new(median, 2, unit);
        if let Some(p) = p95 {
            f.text = format!("{} (p95 {p:.2})", f.text);
        }
        if missed > 0 {
            f.text = format!("{}; {missed} of {} runs not reached", f.text, values.len());
        }
        f
    }
}

/// Builds a row from the two figures.
pub(crate) fn row(
    benchmark: &str,
    measure: &str,
    redis: Figure,
    slotguard: Figure,
    target: &str,
    command: &str,
) -> Row {
    let ratio = match (redis.value, slotguard.value) {
        (Some(r), Some(s)) if r > 0.0 => Some(s / r),
        _ => None,
    };
    Row {
        benchmark: benchmark.to_string(),
        measure: measure.to_string(),
        redis: redis.text,
        slotguard: slotguard.text,
        ratio,
        target: target.to_string(),
        command: command.to_string(),
    }
}

/// The `q` quantile (nearest rank) of `values`.
pub(crate) fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if q == 0.5 && v.len().is_multiple_of(2) {
        let i = v.len() / 2;
        return Some((v[i - 1] + v[i]) / 2.0);
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// The comparison as a markdown table.
pub(crate) fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| benchmark | measure | Redis | slotguard | ratio | target | command |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let ratio = r.ratio.map_or("—".to_string(), |x| format!("{x:.2}"));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | `{}` |\n",
            r.benchmark, r.measure, r.redis, r.slotguard, ratio, r.target, r.command
        ));
    }
    out
}

/// Replaces the text between `<!-- bench:NAME:begin -->` and `<!-- bench:NAME:end -->` in
/// `path` with `text`.
pub(crate) fn replace_section(path: &Path, name: &str, text: &str) -> Result<()> {
    let doc =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let begin = format!("<!-- bench:{name}:begin -->");
    let end = format!("<!-- bench:{name}:end -->");
    let (Some(b), Some(e)) = (doc.find(&begin), doc.find(&end)) else {
        bail!(
            "{} has no `{begin}` ... `{end}` markers to write the table between",
            path.display()
        );
    };
    if e < b {
        return Err(anyhow!(
            "{}: `{end}` comes before `{begin}`",
            path.display()
        ));
    }
    let new = format!("{}{begin}\n{text}{}", &doc[..b], &doc[e..]);
    std::fs::write(path, new).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_p95_are_nearest_rank() {
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 0.5), Some(2.0));
        assert_eq!(percentile(&[4.0, 1.0, 2.0, 3.0], 0.5), Some(2.5));
        let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&twenty, 0.95), Some(19.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn a_section_between_markers_is_replaced_and_missing_markers_are_an_error() {
        let dir = std::env::temp_dir().join(format!("bench-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("doc.md");
        std::fs::write(
            &path,
            "a\n<!-- bench:t:begin -->\nold\n<!-- bench:t:end -->\nb\n",
        )
        .expect("written");
        replace_section(&path, "t", "new\n").expect("replaced");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "a\n<!-- bench:t:begin -->\nnew\n<!-- bench:t:end -->\nb\n"
        );
        assert!(replace_section(&path, "other", "x").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
