//! What the benchmarks read from the operating system: a process's resident memory and CPU
//! time (/proc), the machine's load, and the bytes and segments of TCP sockets (`ss`).
//!
//! Why /proc and `ss` rather than each system's own counters alone: resident memory and CPU
//! time mean the same for both systems only when the kernel measures them. Bytes on the bus
//! are the exception (see `bus.rs`): Redis's bus is TCP, which `ss` counts per socket; the
//! kernel keeps no per-socket byte counts for UDP, so slotguard's bytes come from its own
//! counter of the payloads it hands to and reads from its socket.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{anyhow, Context, Result};
use serde::Serialize;

/// Resident set size of `pid`, in bytes (VmRSS).
pub(crate) fn rss_bytes(pid: u32) -> Result<u64> {
    status_kb(pid, "VmRSS").map(|kb| kb * 1024)
}

/// Peak resident set size of `pid` so far, in bytes (VmHWM).
pub(crate) fn peak_rss_bytes(pid: u32) -> Result<u64> {
    status_kb(pid, "VmHWM").map(|kb| kb * 1024)
}

fn status_kb(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("process {pid} is gone"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no {field} in /proc/{pid}/status"))
}

/// CPU time each thread of `pid` has had so far, in seconds, by thread id: the first field of
/// /proc/<pid>/task/<tid>/schedstat, nanoseconds on a CPU. (/proc/<pid>/stat counts whole clock
/// ticks, 10 ms: an idle node uses a few of them in a window of seconds, too few to compare.)
pub(crate) fn thread_cpu(pid: u32) -> Result<ThreadCpu> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("process {pid} is gone"))?;
    let mut cpu = ThreadCpu::new();
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // A thread that ended since the listing has no time to count.
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        let ns: u64 = stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("unreadable /proc/{pid}/task/{tid}/schedstat"))?;
        cpu.insert(tid, ns as f64 / 1e9);
    }
    Ok(cpu)
}

/// CPU seconds by thread id ([`thread_cpu`]).
pub(crate) type ThreadCpu = BTreeMap<u32, f64>;

/// CPU seconds the threads alive at `after` had since `before`: a thread new since then counts
/// from zero; one that ended since then (a blocking-pool thread idle for 10 s) loses its time
/// in the window, which was idle time.
pub(crate) fn cpu_between(before: &ThreadCpu, after: &ThreadCpu) -> f64 {
    after
        .iter()
        .map(|(tid, now)| now - before.get(tid).copied().unwrap_or(0.0))
        .sum()
}

/// The load averages over 1, 5 and 15 minutes, as `uptime` shows them.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Load {
    /// 1-minute load average.
    pub(crate) one: f64,
    /// 5-minute load average.
    pub(crate) five: f64,
    /// 15-minute load average.
    pub(crate) fifteen: f64,
}

/// The machine's load now.
pub(crate) fn load() -> Result<Load> {
    let text = std::fs::read_to_string("/proc/loadavg")?;
    let v: Vec<f64> = text
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    match v[..] {
        [one, five, fifteen] => Ok(Load { one, five, fifteen }),
        _ => Err(anyhow!("unreadable /proc/loadavg: {text:?}")),
    }
}

/// Logical CPUs of the machine.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What one TCP socket sent, as `ss` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct TcpSent {
    /// Payload bytes sent (tcp_info bytes_sent, retransmissions included).
    pub(crate) bytes: u64,
    /// Segments sent, pure ACKs included (tcp_info segs_out).
    pub(crate) segments: u64,
}

/// The established TCP sockets of which one end is a port in `ports`, by their two ends
/// (local, peer), with what each sent so far. Both ends of every loopback connection are
/// sockets of this machine, so each socket's own counts, summed, count every byte once.
pub(crate) type TcpSockets = BTreeMap<(String, String), TcpSent>;

/// The sockets of `ports`, as `ss -tinH` reports them.
pub(crate) fn tcp_sockets(ports: std::ops::Range<u16>) -> Result<TcpSockets> {
    let out = Command::new("ss")
        .args(["-tinH", "state", "established"])
        .output()
        .context("cannot run ss (Debian: apt-get install iproute2)")?;
    if !out.status.success() {
        return Err(anyhow!(
            "ss failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(parse_ss(&String::from_utf8_lossy(&out.stdout), &ports))
}

/// What the sockets open at `after` sent since `before`: a socket new since then counts from
/// zero; a socket closed since then (a link to a killed node) counts nothing.
pub(crate) fn sent_since(before: &TcpSockets, after: &TcpSockets) -> TcpSent {
    let mut sent = TcpSent::default();
    for (ends, now) in after {
        let then = before.get(ends).copied().unwrap_or_default();
        sent.bytes += now.bytes.saturating_sub(then.bytes);
        sent.segments += now.segments.saturating_sub(then.segments);
    }
    sent
}

fn parse_ss(text: &str, ports: &std::ops::Range<u16>) -> TcpSockets {
    let port_of = |addr: &str| addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
    let mut sockets = TcpSockets::new();
    let mut counting = None;
    for line in text.lines() {
        if !line.starts_with(|c: char| c.is_whitespace()) {
            // `Recv-Q Send-Q Local:Port Peer:Port [Process]` (with `state`, no state column).
            let f: Vec<&str> = line.split_whitespace().collect();
            counting = match f.get(2..4) {
                Some([local, peer])
                    if [local, peer]
                        .iter()
                        .any(|a| port_of(a).is_some_and(|p| ports.contains(&p))) =>
                {
                    Some((local.to_string(), peer.to_string()))
                }
                _ => None,
            };
            continue;
        }
        let Some(ends) = counting.take() else {
            continue;
        };
        let value = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let sent = TcpSent {
            bytes: value("bytes_sent:"),
            segments: value("segs_out:"),
        };
        sockets.insert(ends, sent);
    }
    sockets
}

/// The process whose command line contains every one of `words`, if one runs.
pub(crate) fn pid_with_args(words: &[&str]) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        words
            .iter()
            .all(|w| args.iter().any(|a| a == w))
            .then_some(pid)
    })
}

/// Whether `path` is an executable file.
pub(crate) fn executable(path: &Path) -> bool {
    path.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ss_sockets_of_the_bus_ports_are_summed_and_others_ignored() {
        let text = "\
0 0 127.0.0.1:20100 127.0.0.1:45678 \n\t cubic bytes_sent:100 bytes_acked:101 segs_out:4 segs_in:3\n\
0 0 127.0.0.1:45678 127.0.0.1:20100 \n\t cubic bytes_sent:50 segs_out:2\n\
0 0 127.0.0.1:6379 127.0.0.1:40000 \n\t cubic bytes_sent:999 segs_out:9\n";
        let sockets = parse_ss(text, &(20100..20106));
        assert_eq!(sockets.len(), 2);
        assert_eq!(
            sent_since(&TcpSockets::new(), &sockets),
            TcpSent {
                bytes: 150,
                segments: 6,
            }
        );
    }

    #[test]
    fn cpu_counts_threads_alive_at_the_end_from_their_time_at_the_start() {
        let before = ThreadCpu::from([(1, 2.0), (2, 5.0)]);
        let after = ThreadCpu::from([(1, 2.5), (3, 0.25)]);
        assert_eq!(cpu_between(&before, &after), 0.75);
        let me = thread_cpu(std::process::id()).expect("own threads");
        assert!(!me.is_empty() && me.values().all(|&s| s >= 0.0), "{me:?}");
    }

    #[test]
    fn a_socket_closed_in_the_window_counts_nothing_and_a_new_one_counts_from_zero() {
        let sent = |bytes, segments| TcpSent { bytes, segments };
        let ends = |a: &str, b: &str| (a.to_string(), b.to_string());
        let before = TcpSockets::from([
            (ends("h:1", "h:2"), sent(100, 10)),
            (ends("h:3", "h:4"), sent(500, 50)),
        ]);
        let after = TcpSockets::from([
            (ends("h:1", "h:2"), sent(160, 13)),
            (ends("h:5", "h:6"), sent(7, 2)),
        ]);
        assert_eq!(sent_since(&before, &after), sent(67, 5));
    }
}
