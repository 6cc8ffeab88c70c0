//! Timing and memory.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Runs `program args` to completion, sampling its peak RSS (`VmHWM`) every 20 ms.
/// Returns wall time and peak RSS in bytes.
pub async fn run_sampled(
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    cwd: &Path,
) -> anyhow::Result<(Duration, u64)> {
    let start = Instant::now();
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().unwrap_or(0);
    let mut stderr = child.stderr.take().expect("piped");
    let drain = tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut text).await;
        text
    });
    let mut peak = 0;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            _ = tokio::time::sleep(Duration::from_millis(20)) => peak = peak.max(peak_rss(pid)),
        }
    };
    let elapsed = start.elapsed();
    let stderr = drain.await.unwrap_or_default();
    if !status.success() {
        anyhow::bail!(
            "{} {args:?} failed: {status}\n{}",
            program.display(),
            String::from_utf8_lossy(&stderr)
        );
    }
    Ok((elapsed, peak))
}

/// `VmHWM` of a process, bytes (0 once it is gone).
pub fn peak_rss(pid: u32) -> u64 {
    status_bytes(pid, "VmHWM:")
}

/// `VmRSS` of a process, bytes (0 once it is gone).
pub fn rss(pid: u32) -> u64 {
    status_bytes(pid, "VmRSS:")
}

fn status_bytes(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

pub fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}
