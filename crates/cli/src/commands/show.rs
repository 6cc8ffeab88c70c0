//! `repovault show KIND OWNER/NAME`: a repository's backed-up issues, pull requests,
//! comments, reviews, discussions, releases, settings, alerts… (any kind of its data
//! snapshot), one line each.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use serde_json::Value;

use crate::args::{FromArgs, owner_and_name, parse_at};
use crate::out::outln;
use crate::wiring::open_from;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// What to list: a kind of a repository's data snapshot.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(repovault_data::repo_kinds()))]
    pub kind: String,
    #[arg(value_name = "OWNER/NAME")]
    pub repo: String,
    /// The newest backup at or before this time [default: the latest].
    #[arg(long, value_name = "DATE")]
    pub at: Option<String>,
    /// Print the objects as GitHub wrote them (JSON Lines) instead of one line each.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub from: FromArgs,
}

pub async fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let (owner, name) = owner_and_name(&args.repo)?;
    let at = args.at.as_deref().map(parse_at).transpose()?;
    for target in args.from.targets()? {
        let store = open_from(&args.from, &target).await?;
        let repo = args.from.repository(store.as_ref(), &target)?;
        let Some((key, index)) = repo.data_snapshot(&owner, &name, at).await? else {
            continue;
        };
        let Some(file) = index.kinds.get(&args.kind) else {
            bail!("{key} has no {}", args.kind);
        };
        let items = repo.read_file(file).await?;
        eprintln!(
            "{} {} of {owner}/{name} as of {}",
            items.len(),
            args.kind,
            index.fetched_at
        );
        for item in &items {
            if args.json {
                // JSON escapes every control character.
                outln!("{item}");
            } else {
                outln!("{}", printable(&line(&args.kind, item)));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    bail!("no backup of {owner}/{name}'s data beyond git matches")
}

/// `text` with every control character (an escape sequence from an issue's title could
/// repaint or rewrite the terminal) replaced by `�`.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// One readable line for an item of `kind`.
fn line(kind: &str, item: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let first_line = |v: &Value| text(v).lines().next().unwrap_or_default().to_owned();
    let who = text(&item["user"]["login"]);
    match kind {
        "issues" | "pulls" => {
            let pr = if item.get("pull_request").is_some() || kind == "pulls" {
                " (pull request)"
            } else {
                ""
            };
            format!(
                "#{} [{}] {}{pr} by {who}, {} comment(s)",
                item["number"],
                text(&item["state"]),
                text(&item["title"]),
                item["comments"].as_u64().unwrap_or(0)
            )
        }
        "labels" => format!("{} #{}", text(&item["name"]), text(&item["color"])),
        "collaborators" => format!("{} {}", text(&item["login"]), text(&item["role_name"])),
        "teams" => format!("{} {}", text(&item["slug"]), text(&item["permission"])),
        "hooks" => format!("{} {}", text(&item["config"]["url"]), item["events"]),
        "deploy-keys" => format!("{} read-only: {}", text(&item["title"]), item["read_only"]),
        "rulesets" => format!("{} {}", text(&item["name"]), text(&item["enforcement"])),
        "milestones" => format!("{} [{}]", text(&item["title"]), text(&item["state"])),
        "releases" => format!(
            "{} {} ({} asset(s))",
            text(&item["tag_name"]),
            text(&item["name"]),
            item["assets"].as_array().map_or(0, Vec::len)
        ),
        "reviews" => format!(
            "{} {}: {}",
            text(&item["state"]),
            who,
            first_line(&item["body"])
        ),
        "discussions" => format!(
            "#{} [{}] {} by {}, {} comment(s)",
            item["number"],
            if item["closed"] == true {
                "closed"
            } else {
                "open"
            },
            text(&item["title"]),
            text(&item["author"]["login"]),
            item["comments"]["totalCount"].as_u64().unwrap_or(0)
        ),
        "discussion-categories" => format!("{} {}", text(&item["emoji"]), text(&item["name"])),
        "projects" => format!(
            "#{} {} ({}): {}",
            item["number"],
            text(&item["title"]),
            text(&item["owner"]["login"]),
            item["items"]["totalCount"]
                .as_u64()
                .map_or("kept with the organization's data".into(), |n| format!(
                    "{n} item(s)"
                ))
        ),
        "actions-variables"
        | "environment-variables"
        | "actions-secrets"
        | "environment-secrets" => {
            let value = match item.get("value") {
                Some(value) => format!("={}", text(value)),
                None => format!(" (updated {})", text(&item["updated_at"])),
            };
            let scope = match item.get("environment") {
                Some(environment) => format!("{}: ", text(environment)),
                None => String::new(),
            };
            format!("{scope}{}{value}", text(&item["name"]))
        }
        "environments" => format!(
            "{} {} protection rule(s)",
            text(&item["name"]),
            item["protection_rules"].as_array().map_or(0, Vec::len)
        ),
        "environment-branch-policies" => format!(
            "{}: {} {}",
            text(&item["environment"]),
            text(&item["type"]),
            text(&item["name"])
        ),
        "dependabot-alerts" | "code-scanning-alerts" | "secret-scanning-alerts" => format!(
            "#{} [{}] {}",
            item["number"],
            text(&item["state"]),
            [
                &item["security_advisory"]["summary"],
                &item["rule"]["description"],
                &item["secret_type_display_name"],
            ]
            .into_iter()
            .find_map(Value::as_str)
            .unwrap_or_default()
        ),
        _ => format!(
            "{} {who}: {}",
            text(&item["updated_at"]),
            first_line(&item["body"])
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_github_cannot_drive_the_terminal() {
        let issue = serde_json::json!({
            "number": 7, "state": "open", "comments": 0,
            "title": "\u{1b}]0;pwned\u{7}\u{1b}[2Jfine\rtitle",
            "user": {"login": "mallory\u{1b}[31m"},
        });
        let shown = printable(&line("issues", &issue));
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.contains("fine") && shown.contains("title"), "{shown}");
    }
}
