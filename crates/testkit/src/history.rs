//! Large repositories with long histories, generated fast with `git fast-import`:
//! many commits of varied text, binary files, many branches and tags.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// The shape of a generated repository.
#[derive(Debug, Clone, Copy)]
pub struct HistorySpec {
    pub commits: usize,
    /// Text files, each edited now and then.
    pub text_files: usize,
    /// Every n-th commit adds a binary file of `binary_bytes` (0: never).
    pub binary_every: usize,
    pub binary_bytes: usize,
    /// Branches and tags pointing into the history.
    pub branches: usize,
    pub tags: usize,
    pub seed: u64,
}

impl HistorySpec {
    /// About `mb` MiB of pack: binary payload dominates, over `commits` commits.
    pub fn sized(mb: usize, commits: usize, seed: u64) -> Self {
        let binaries = (commits / 10).max(1);
        HistorySpec {
            commits,
            text_files: 40,
            binary_every: 10,
            binary_bytes: (mb << 20) / binaries,
            branches: 200,
            tags: 100,
            seed,
        }
    }
}

/// Creates a bare repository at `path` with the history `spec` describes.
pub fn generate(path: &Path, spec: HistorySpec) -> std::io::Result<()> {
    crate::fixtures::init_bare(path, "main");
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet", "--done"])
        .current_dir(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    let mut out = BufWriter::with_capacity(1 << 20, child.stdin.take().expect("piped"));
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let words = [
        "backup",
        "mirror",
        "archive",
        "stream",
        "verify",
        "restore",
        "queue",
        "worker",
        "planner",
        "report",
        "retention",
        "zstd",
        "tar",
        "refs",
        "commit",
        "branch",
    ];
    let mut texts: Vec<String> = (0..spec.text_files)
        .map(|i| format!("file {i}\n"))
        .collect();
    for n in 1..=spec.commits {
        let mut changes: Vec<(String, Vec<u8>)> = Vec::new();
        for _ in 0..rng.usize(1..4) {
            let i = rng.usize(..spec.text_files.max(1));
            let line: Vec<&str> = (0..rng.usize(5..15))
                .map(|_| words[rng.usize(..words.len())])
                .collect();
            texts[i].push_str(&format!("{} {}\n", n, line.join(" ")));
            changes.push((
                format!("src/file-{i:03}.txt"),
                texts[i].clone().into_bytes(),
            ));
        }
        if spec.binary_every > 0 && n % spec.binary_every == 0 && spec.binary_bytes > 0 {
            let data: Vec<u8> = (0..spec.binary_bytes).map(|_| rng.u8(..)).collect();
            changes.push((format!("assets/blob-{n:06}.bin"), data));
        }
        writeln!(out, "commit refs/heads/main")?;
        writeln!(out, "mark :{n}")?;
        writeln!(
            out,
            "committer Fixture Bot <fixtures@repovault.test> {} +0000",
            1_600_000_000 + n as u64 * 600
        )?;
        let message = format!("change {n}");
        writeln!(out, "data {}\n{message}", message.len())?;
        for (file, data) in &changes {
            writeln!(out, "M 100644 inline {file}")?;
            writeln!(out, "data {}", data.len())?;
            out.write_all(data)?;
            writeln!(out)?;
        }
        writeln!(out)?;
    }
    for b in 0..spec.branches {
        writeln!(
            out,
            "reset refs/heads/feature/{b:04}\nfrom :{}\n",
            1 + rng.usize(..spec.commits)
        )?;
    }
    for t in 0..spec.tags {
        writeln!(
            out,
            "reset refs/tags/v{t}.0.0\nfrom :{}\n",
            1 + rng.usize(..spec.commits)
        )?;
    }
    writeln!(out, "done")?;
    out.flush()?;
    drop(out);
    let status = child.wait()?;
    if !status.success() {
        return Err(std::io::Error::other(format!(
            "git fast-import failed: {status}"
        )));
    }
    Ok(())
}
