//! `repovault action`: the GitHub Action's entry point (`action.yml`).
//!
//! The runner hands a container Action its inputs as `INPUT_<NAME>` variables (the
//! name upper-cased, spaces as `_`, hyphens kept). Each maps onto one flag or
//! environment variable of `repovault run` (docs/ACTION.md has the table): the run is
//! a child process given exactly those, so the Action has no configuration language
//! of its own. Then the run's reports are read back from the store: each `report.md`
//! is appended to `$GITHUB_STEP_SUMMARY`, the counts go to `$GITHUB_OUTPUT`, every
//! failed repository becomes an `::error` annotation, and the run's exit code is the
//! step's.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use repovault_core::{RunId, Target};
use repovault_reporter::Report;
use repovault_repository::Layout;

use crate::args::load_config_file;
use crate::commands::run::RunArgs;
use crate::exit::{EXIT_CONFIG, InvalidConfig};
use crate::wiring::open_store;

/// GitHub's limit on one step's summary.
const SUMMARY_LIMIT: usize = 1 << 20;

/// Inputs that become a flag: `(input, flag)`, the flag repeated for a list.
const FLAGS: &[(&str, &str)] = &[
    ("dest", "--dest"),
    ("config", "--config"),
    ("concurrency", "--concurrency"),
    ("app-id", "--app-id"),
    ("app-installation-id", "--app-installation-id"),
    ("s3-endpoint", "--s3-endpoint"),
    ("s3-region", "--s3-region"),
    ("s3-compat", "--s3-compat"),
];
/// Inputs listing logins (commas, spaces or newlines between them).
const LOGINS: &[(&str, &str)] = &[("org", "--org"), ("user", "--user")];
/// Inputs listing regular expressions, one a line.
const REGEXES: &[(&str, &str)] = &[("pattern", "--pattern"), ("exclude", "--exclude")];
/// Inputs that are `true` or `false`: `(input, default, flag when not the default)`.
const SWITCHES: &[(&str, bool, &str)] = &[
    ("lfs", false, "--lfs"),
    ("metadata", true, "--no-metadata"),
    ("full", false, "--full"),
];
/// Inputs that become an environment variable of the run.
const VARIABLES: &[(&str, &str)] = &[
    ("token", "GITHUB_TOKEN"),
    ("app-private-key", "GITHUB_APP_PRIVATE_KEY"),
];
/// What a configuration file decides: refused beside `config`.
const DECIDED_BY_CONFIG: &[&str] = &[
    "org", "user", "pattern", "exclude", "dest", "lfs", "metadata", "app-id",
];

/// The run the inputs ask for: its arguments and the variables it is given.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Invocation {
    pub args: Vec<String>,
    pub env: Vec<(&'static str, String)>,
}

/// Turns the inputs (`input(name)`: the value, empty as none) into a run, or says which
/// input is wrong.
pub fn invocation(input: impl Fn(&str) -> Option<String>) -> Result<Invocation, InvalidConfig> {
    let input = |name: &str| {
        input(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut run = Invocation::default();
    if input("config").is_some()
        && let Some(name) = DECIDED_BY_CONFIG.iter().find(|name| {
            input(name).is_some_and(|value| {
                SWITCHES
                    .iter()
                    .find(|(n, ..)| n == *name)
                    .is_none_or(|(_, default, _)| value != default.to_string())
            })
        })
    {
        return Err(InvalidConfig(format!(
            "input `{name}`: set by the jobs of `config`, not beside it"
        )));
    }
    for (name, flag) in FLAGS {
        if let Some(value) = input(name) {
            run.args.extend([flag.to_string(), value]);
        }
    }
    for (name, flag) in LOGINS {
        for login in input(name).iter().flat_map(|v| {
            v.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        }) {
            run.args.extend([flag.to_string(), login]);
        }
    }
    for (name, flag) in REGEXES {
        for line in input(name).iter().flat_map(|v| {
            v.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        }) {
            run.args.extend([flag.to_string(), line]);
        }
    }
    for (name, default, flag) in SWITCHES {
        let on = match input(name).as_deref() {
            None => *default,
            Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(InvalidConfig(format!(
                    "input `{name}`: {other:?} is not true or false"
                )));
            }
        };
        if on != *default {
            run.args.push(flag.to_string());
        }
    }
    for (name, variable) in VARIABLES {
        if let Some(value) = input(name) {
            run.env.push((variable, value));
        }
    }
    Ok(run)
}

/// `$INPUT_<NAME>` as the runner sets it.
fn from_runner(name: &str) -> Option<String> {
    std::env::var(format!("INPUT_{}", name.to_uppercase().replace(' ', "_"))).ok()
}

#[derive(Debug, Parser)]
#[command(name = "repovault run")]
struct RunCommand {
    #[command(flatten)]
    run: RunArgs,
}

pub async fn action() -> anyhow::Result<ExitCode> {
    let mut run = invocation(from_runner)?;
    // The run's flags, checked here as `repovault run` will read them.
    let parsed = RunCommand::try_parse_from(
        std::iter::once("repovault run".to_owned()).chain(run.args.iter().cloned()),
    )
    .map_err(|e| InvalidConfig(format!("the Action's inputs: {}", e.render())))?
    .run;
    let run_id = RunId::generate(jiff::Timestamp::now());
    run.args.extend(["--run-id".to_owned(), run_id.to_string()]);
    let status = tokio::process::Command::new(std::env::current_exe()?)
        .arg("run")
        .args(&run.args)
        .envs(run.env.iter().map(|(k, v)| (k, v)))
        .status()
        .await
        .context("starting `repovault run`")?;
    let code = status.code().unwrap_or(i32::from(crate::exit::EXIT_FAILED));
    let reports = if code == i32::from(EXIT_CONFIG) {
        Vec::new()
    } else {
        reports(&parsed, &run_id).await?
    };
    publish(&reports, code)?;
    Ok(ExitCode::from(code as u8))
}

/// The run's reports, from each target it wrote to.
async fn reports(args: &RunArgs, run: &RunId) -> anyhow::Result<Vec<(String, Report)>> {
    let cwd = std::env::current_dir()?;
    let config = args
        .select
        .config
        .as_deref()
        .map(load_config_file)
        .transpose()?;
    let targets: Vec<Target> = match &config {
        Some(config) => config.jobs.iter().map(|j| j.target.clone()).collect(),
        None => vec![Target::parse(&args.select.dest, &cwd).map_err(|e| InvalidConfig(e.0))?],
    };
    let mut out = Vec::new();
    for target in dedup(targets) {
        let store = open_store(&target, &args.s3, config.as_ref()).await?;
        let key = Layout::new(&target.prefix).report_json(run);
        if let Some(report) = store.get_json::<Report>(&key).await? {
            out.push((format!("{}/{key}", target.store), report));
        }
    }
    Ok(out)
}

fn dedup(targets: Vec<Target>) -> Vec<Target> {
    let mut seen = Vec::new();
    for t in targets {
        if !seen.contains(&t) {
            seen.push(t);
        }
    }
    seen
}

/// Writes the summary, the outputs and the annotations.
fn publish(reports: &[(String, Report)], code: i32) -> anyhow::Result<()> {
    let mut summary = String::new();
    let (mut ok, mut failed, mut unchanged) = (0, 0, 0);
    for (_, report) in reports {
        let t = &report.totals;
        ok += t.ok;
        unchanged += t.unchanged;
        failed += t.failed + t.missing;
        let md = repovault_reporter::markdown(report);
        if summary.len() + md.len() <= SUMMARY_LIMIT {
            summary.push_str(&md);
        } else {
            summary.push_str("\n_(report cut: the step summary holds 1 MiB; report.md in the store has it all)_\n");
        }
        for repo in report.repos.iter().filter(|r| r.error.is_some()) {
            println!(
                "::error title={}::{}",
                escape_property(&format!("backup of {}/{} failed", repo.owner, repo.name)),
                escape_data(repo.error.as_deref().unwrap_or_default())
            );
        }
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        append(Path::new(&path), &summary)?;
    }
    if let Some(path) = std::env::var_os("GITHUB_OUTPUT") {
        let report_keys: Vec<&str> = reports.iter().map(|(k, _)| k.as_str()).collect();
        let delimiter = format!("repovault_{:016x}", fastrand::u64(..));
        let outputs = format!(
            "report<<{delimiter}\n{}\n{delimiter}\nok={ok}\nfailed={failed}\nunchanged={unchanged}\nexit-code={code}\n",
            report_keys.join("\n")
        );
        append(Path::new(&path), &outputs)?;
    }
    Ok(())
}

fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}

/// A workflow command's message: `%`, CR and LF escaped as the runner reads them.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: also `:` and `,`.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn each_input_becomes_its_flag_or_variable() {
        let run = invocation(inputs(&[
            ("org", "acme, beta\ngamma"),
            ("pattern", "^svc-\n^lib,x$\n"),
            ("dest", "s3://b/p"),
            ("lfs", "true"),
            ("metadata", "false"),
            ("full", "false"),
            ("token", "ghs_x"),
            ("s3-compat", "r2"),
            ("concurrency", ""),
        ]))
        .unwrap();
        assert_eq!(
            run.args,
            [
                "--dest",
                "s3://b/p",
                "--s3-compat",
                "r2",
                "--org",
                "acme",
                "--org",
                "beta",
                "--org",
                "gamma",
                "--pattern",
                "^svc-",
                "--pattern",
                "^lib,x$",
                "--lfs",
                "--no-metadata"
            ]
        );
        assert_eq!(run.env, [("GITHUB_TOKEN", "ghs_x".to_owned())]);
    }

    #[test]
    fn bad_inputs_are_named() {
        let e = invocation(inputs(&[("lfs", "yes")])).unwrap_err().0;
        assert!(e.contains("input `lfs`") && e.contains("\"yes\""), "{e}");
        let e = invocation(inputs(&[("config", "repovault.yml"), ("org", "acme")]))
            .unwrap_err()
            .0;
        assert!(e.contains("input `org`"), "{e}");
        // A switch at its default says nothing a configuration decides.
        assert!(invocation(inputs(&[("config", "r.yml"), ("metadata", "true")])).is_ok());
    }

    #[test]
    fn annotations_escape_what_would_end_them() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(escape_property("a/b: x,y"), "a/b%3A x%2Cy");
    }
}
