//! The printed table.

use crate::scenarios::Results;

fn opt(value: Option<f64>, digits: usize) -> String {
    value.map_or("-".to_owned(), |v| format!("{v:.digits$}"))
}

pub fn render(r: &Results) -> String {
    let mut out = format!(
        "repovault bench — {} cores, {}, {} repositories ({:.0} MiB: large {:?} MiB × {} commits + {} tiny), concurrency {}, median of {} run(s)\n\n",
        r.machine.cores,
        r.machine.git,
        r.fixture.repos,
        r.fixture.bytes as f64 / (1 << 20) as f64,
        r.fixture.large_mb,
        r.fixture.commits_per_large_repo,
        r.fixture.tiny_repos,
        r.concurrency,
        r.runs
    );
    out.push_str(
        "| scenario | wall (s) | × floor | × baseline | MB/s | peak RSS (MiB) | stored (MiB) |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for s in &r.scenarios {
        out.push_str(&format!(
            "| {} | {:.2} | {} | {} | {} | {} | {} |\n",
            s.name,
            s.median_secs,
            opt(s.vs_floor, 2),
            opt(s.vs_baseline, 2),
            opt(s.mb_per_sec, 0),
            opt(s.peak_rss_mb, 0),
            opt(s.stored_bytes.map(|b| b as f64 / (1 << 20) as f64), 0),
        ));
    }
    out.push_str(&format!(
        "\nfixture bytes fetched per full run: {:.0} MiB\n",
        r.fixture.bytes as f64 / (1 << 20) as f64
    ));
    for s in &r.scenarios {
        if !s.note.is_empty() {
            out.push_str(&format!("- {}: {}\n", s.name, s.note));
        }
    }
    out
}
