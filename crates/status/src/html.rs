//! The pages: plain HTML, a little CSS, no script; tables that scroll sideways on a
//! phone.

use jiff::Timestamp;
use repovault_reporter::RepoStatus;

use crate::{BackupLine, RepoLine, RunLine};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1rem;color:#1b1f24}\
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}\
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.9rem}\
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #d0d7de;white-space:nowrap}\
td.reason{white-space:normal}.failed,.missing{color:#b3261e;font-weight:600}\
.ok{color:#1a7f37}.unchanged{color:#57606a}small{color:#57606a}";

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    )
}

/// `3 h`, `2 d`: how long ago.
fn age(then: Timestamp, now: Timestamp) -> String {
    let secs = now.duration_since(then).as_secs().max(0);
    match secs {
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

fn status_name(status: Option<RepoStatus>) -> &'static str {
    match status {
        Some(RepoStatus::Ok) => "ok",
        Some(RepoStatus::Unchanged) => "unchanged",
        Some(RepoStatus::Failed) => "failed",
        Some(RepoStatus::Missing) => "missing",
        None => "-",
    }
}

pub fn index(runs: &[RunLine], repos: &[RepoLine], now: Timestamp) -> String {
    let mut body = String::from("<h1>repovault</h1><h2>Runs</h2>");
    if runs.is_empty() {
        body.push_str("<p>No run yet.</p>");
    } else {
        body.push_str(
            "<div class=\"scroll\"><table><tr><th>Run</th><th>Started</th><th>Planned</th>\
<th>OK</th><th>Unchanged</th><th>Failed</th><th>Missing</th></tr>",
        );
        for run in runs {
            let counts = match &run.totals {
                Some(t) => format!(
                    "<td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td class=\"{}\">{}</td>",
                    t.planned,
                    t.ok,
                    t.unchanged,
                    if t.failed > 0 { "failed" } else { "" },
                    t.failed,
                    if t.missing > 0 { "missing" } else { "" },
                    t.missing
                ),
                None => "<td colspan=\"5\"><small>not reported yet</small></td>".into(),
            };
            body.push_str(&format!(
                "<tr><td>{}<br><small>{}</small></td><td>{} ago</td>{counts}</tr>",
                escape(&run.run_id),
                escape(&run.target),
                age(run.planned_at, now)
            ));
        }
        body.push_str("</table></div>");
    }
    body.push_str(&format!("<h2>Repositories ({})</h2>", repos.len()));
    body.push_str(
        "<div class=\"scroll\"><table><tr><th>Repository</th><th>Status</th>\
<th>Last backup</th><th>Why</th></tr>",
    );
    for repo in repos {
        let status = status_name(repo.status);
        let last = repo
            .last_backup
            .map_or_else(|| "never".to_owned(), |t| format!("{} ago", age(t, now)));
        let why = repo
            .error
            .as_deref()
            .or(repo.gone.as_deref())
            .unwrap_or_default();
        body.push_str(&format!(
            "<tr><td><a href=\"/repo/{0}\">{0}</a></td><td class=\"{status}\">{status}</td>\
<td>{last}</td><td class=\"reason\">{1}</td></tr>",
            escape(&repo.repository),
            escape(why)
        ));
    }
    body.push_str("</table></div>");
    page("repovault", &body)
}

pub fn repo(full_name: &str, target: &str, backups: &[BackupLine]) -> String {
    let mut body = format!(
        "<p><a href=\"/\">&larr; all repositories</a></p><h1>{}</h1><p><small>{}</small></p>\
<div class=\"scroll\"><table><tr><th>Backup</th><th>Refs</th><th>Added</th><th>Link</th><th></th></tr>",
        escape(full_name),
        escape(target)
    );
    for b in backups {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{} KiB</td><td>{}</td><td>{}</td></tr>",
            b.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            b.refs,
            b.bytes_added.div_ceil(1024),
            b.link
                .map_or_else(|| "archive".to_owned(), |n| n.to_string()),
            if b.latest { "latest" } else { "" }
        ));
    }
    body.push_str("</table></div>");
    page(full_name, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_github_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
    }
}
