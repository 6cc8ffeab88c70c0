//! The human-readable report.

use std::fmt::Write;

use crate::{RepoStatus, Report, human_bytes};

/// Renders `report.md`: totals, then every repository that needs attention, then the
/// rest.
pub fn markdown(report: &Report) -> String {
    let t = &report.totals;
    let mut out = String::new();
    let verdict = if report.exit_code() == 0 {
        "all repositories backed up"
    } else {
        "attention needed"
    };
    let _ = writeln!(out, "# repovault run `{}`: {verdict}\n", report.run_id);
    let _ = writeln!(out, "- target: `{}`", report.target);
    let _ = writeln!(out, "- generated: {}", report.generated_at);
    if let Some(dead) = report.dead_letters {
        let _ = writeln!(out, "- dead-letter queue: {dead} message(s)");
    }
    if t.data_requests > 0 {
        let _ = writeln!(
            out,
            "- data beyond git: {} API request(s), {} answered 304 (free of rate limit), {} repositor(ies) incomplete{}",
            t.data_requests,
            t.data_not_modified,
            t.data_incomplete,
            t.rate_remaining
                .map(|left| format!("; rate-limit budget left: {left}"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(
        out,
        "\n| planned | ok | unchanged | failed | missing | stored |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} |",
        t.planned,
        t.ok,
        t.unchanged,
        t.failed,
        t.missing,
        human_bytes(t.bytes_stored)
    );
    let incomplete: Vec<_> = report
        .repos
        .iter()
        .filter_map(|r| Some((r, r.data.as_ref()?.error.as_ref()?)))
        .collect();
    if !incomplete.is_empty() {
        let _ = writeln!(
            out,
            "\n## Data beyond git incomplete (tried again next run)\n"
        );
        let _ = writeln!(out, "| repository | reason |");
        let _ = writeln!(out, "|---|---|");
        for (r, reason) in incomplete {
            let _ = writeln!(
                out,
                "| {}/{} | {} |",
                r.owner,
                r.name,
                reason.replace('|', "\\|")
            );
        }
    }
    let problems: Vec<_> = report
        .repos
        .iter()
        .filter(|r| matches!(r.status, RepoStatus::Failed | RepoStatus::Missing))
        .collect();
    if !problems.is_empty() {
        let _ = writeln!(out, "\n## Needs attention\n");
        let _ = writeln!(out, "| repository | status | attempts | error |");
        let _ = writeln!(out, "|---|---|---:|---|");
        for r in problems {
            let status = if r.status == RepoStatus::Failed {
                "failed"
            } else {
                "missing"
            };
            let attempts = r.attempt.map_or("-".to_owned(), |a| a.to_string());
            let error = r
                .error
                .as_deref()
                .unwrap_or("no result recorded")
                .replace('|', "\\|")
                .replace('\n', " ");
            let _ = writeln!(
                out,
                "| {}/{} | {status} | {attempts} | {error} |",
                r.owner, r.name
            );
        }
    }
    let done: Vec<_> = report
        .repos
        .iter()
        .filter(|r| matches!(r.status, RepoStatus::Ok | RepoStatus::Unchanged))
        .collect();
    if !done.is_empty() {
        let _ = writeln!(out, "\n## Backed up\n");
        let _ = writeln!(out, "| repository | status | size | backup |");
        let _ = writeln!(out, "|---|---|---:|---|");
        for r in done {
            let status = if r.status == RepoStatus::Ok {
                "ok"
            } else {
                "unchanged"
            };
            let size = r.size.map_or("-".to_owned(), human_bytes);
            let backup = r.backup.as_deref().unwrap_or("-");
            let _ = writeln!(
                out,
                "| {}/{} | {status} | {size} | `{backup}` |",
                r.owner, r.name
            );
        }
    }
    out
}
