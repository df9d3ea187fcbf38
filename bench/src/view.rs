//! One node's `CLUSTER NODES`, parsed: both systems print Redis's format, so one parser reads
//! both (specs/background.md §R8).

use anyhow::{anyhow, bail, Result};

/// One line of `CLUSTER NODES`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    /// The node's id.
    pub(crate) id: String,
    /// Its client port.
    pub(crate) port: u16,
    /// The line is the answering node's own.
    pub(crate) myself: bool,
    /// Flagged `master`.
    pub(crate) master: bool,
    /// Flagged `fail?`.
    pub(crate) pfail: bool,
    /// Flagged `fail`.
    pub(crate) fail: bool,
    /// Flagged `handshake` (not yet known by name).
    pub(crate) handshake: bool,
    /// The master it replicates.
    pub(crate) master_id: Option<String>,
    /// Its slot ranges.
    pub(crate) slots: Vec<(u16, u16)>,
}

/// A node's view of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct View {
    /// Every line.
    pub(crate) lines: Vec<Line>,
}

impl View {
    /// Parses `CLUSTER NODES`.
    pub(crate) fn parse(text: &str) -> Result<View> {
        let lines = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                if f.len() < 8 {
                    bail!("CLUSTER NODES line with {} fields: {line:?}", f.len());
                }
                let port = f[1]
                    .split('@')
                    .next()
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| anyhow!("no client port in {:?}", f[1]))?;
                let flags: Vec<&str> = f[2].split(',').collect();
                let mut slots = Vec::new();
                for range in &f[8..] {
                    if range.starts_with('[') {
                        continue; // a slot being migrated: not an owned range
                    }
                    let (a, b) = range.split_once('-').unwrap_or((range, range));
                    match (a.parse(), b.parse()) {
                        (Ok(a), Ok(b)) if a <= b => slots.push((a, b)),
                        _ => bail!("slot range {range:?} in CLUSTER NODES"),
                    }
                }
                Ok(Line {
                    id: f[0].to_string(),
                    port,
                    myself: flags.contains(&"myself"),
                    master: flags.contains(&"master"),
                    pfail: flags.contains(&"fail?"),
                    fail: flags.contains(&"fail"),
                    handshake: flags.contains(&"handshake"),
                    master_id: (f[3] != "-").then(|| f[3].to_string()),
                    slots,
                })
            })
            .collect::<Result<_>>()?;
        Ok(View { lines })
    }

    /// The line of the node on `port`.
    pub(crate) fn by_port(&self, port: u16) -> Option<&Line> {
        self.lines.iter().find(|l| l.port == port)
    }

    /// The line of node `id`.
    pub(crate) fn by_id(&self, id: &str) -> Option<&Line> {
        self.lines.iter().find(|l| l.id == id)
    }

    /// The client port of the owner of `slot` in this view.
    pub(crate) fn owner_port(&self, slot: u16) -> Option<u16> {
        self.lines
            .iter()
            .find(|l| l.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
            .map(|l| l.port)
    }

    /// `(port, ranges)` of every slot owner, sorted: equal for two nodes that agree.
    pub(crate) fn slot_owner_ports(&self) -> Vec<(u16, Vec<(u16, u16)>)> {
        let mut owners: Vec<(u16, Vec<(u16, u16)>)> = self
            .lines
            .iter()
            .filter(|l| !l.slots.is_empty())
            .map(|l| (l.port, l.slots.clone()))
            .collect();
        owners.sort();
        owners
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_systems_lines_parse() {
        let text = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\n\
b2 127.0.0.1:7001@17001,host master,fail - 0 0 2 disconnected 5461-10922 12000\n\
c3 127.0.0.1:7002@17002 slave,fail? a1 0 0 1 connected\n";
        let v = View::parse(text).expect("parses");
        assert_eq!(v.lines.len(), 3);
        assert!(v.lines[0].myself && v.lines[0].master);
        assert!(v.lines[1].fail && !v.lines[1].pfail);
        assert!(v.lines[2].pfail && !v.lines[2].fail);
        assert_eq!(v.owner_port(12000), Some(7001));
        assert_eq!(v.owner_port(100), Some(7000));
        assert_eq!(
            v.by_id("c3").and_then(|l| l.master_id.as_deref()),
            Some("a1")
        );
        assert!(View::parse("nonsense").is_err());
    }
}
