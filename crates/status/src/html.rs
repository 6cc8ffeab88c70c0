//! The pages: plain HTML, a little CSS, no script; tables that scroll sideways on a
//! phone.

use jiff::Timestamp;
use repovault_reporter::{RepoStatus, human_bytes};

use crate::{BackupLine, RepoLine, RunLine};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1rem;color:#1b1f24}\
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}\
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.9rem}\
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #d0d7de;white-space:nowrap}\
td.reason{white-space:normal;word-break:break-word}.failed,.missing{color:#b3261e;font-weight:600}\
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
        body.push_str("<div class=\"scroll\"><table><tr><th>Run</th><th>Result</th></tr>");
        for run in runs {
            let result = match &run.totals {
                Some(t) => {
                    let bad = |n: usize, what: &str| {
                        let class = if n > 0 { "failed" } else { "" };
                        format!("<span class=\"{class}\">{n} {what}</span>")
                    };
                    format!(
                        "{} planned<br>{} ok, {} unchanged<br>{}, {}",
                        t.planned,
                        t.ok,
                        t.unchanged,
                        bad(t.failed, "failed"),
                        bad(t.missing, "missing")
                    )
                }
                None => "<small>not reported yet</small>".into(),
            };
            body.push_str(&format!(
                "<tr><td>{}<br><small>{} ago &middot; {}</small></td><td class=\"reason\">{result}</td></tr>",
                escape(&run.run_id),
                age(run.planned_at, now),
                escape(&run.target)
            ));
        }
        body.push_str("</table></div>");
    }
    body.push_str(&format!("<h2>Repositories ({})</h2>", repos.len()));
    body.push_str(
        "<div class=\"scroll\"><table><tr><th>Repository</th><th>Status</th><th>Last backup</th></tr>",
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
            .map(|why| format!("<br><small>{}</small>", escape(why)))
            .unwrap_or_default();
        body.push_str(&format!(
            "<tr><td class=\"reason\"><a href=\"/repo/{0}\">{0}</a>{why}</td>\
<td class=\"{status}\">{status}</td><td>{last}</td></tr>",
            escape(&repo.repository),
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
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            b.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            b.refs.map_or("-".to_owned(), |n| n.to_string()),
            human_bytes(b.bytes_added),
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
