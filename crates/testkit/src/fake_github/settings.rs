//! A repository's Actions settings and security alerts, as GitHub's REST API serves
//! them: Actions variables and secrets (names only, never values), environments with
//! their protection rules, deployment branch policies, variables and secrets, and
//! Dependabot, code scanning and secret scanning alerts; an organization's Actions
//! variables and secrets. Generated deterministically when
//! [`MetadataSpec::settings`](super::MetadataSpec::settings) asks for them.

use std::collections::HashMap;

use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::api::owner_json;
use super::metadata::{decode_segment, encode_segment};
use super::state::OwnerKind;

/// The secret literal the fake's first secret scanning alert reports (a GitHub
/// personal access token's shape, found nowhere else): a backup must not keep it.
pub const FAKE_LEAKED_SECRET: &str = "ghp_RvLeAkEd7x2Q9mTz4WkB8pNs3HdYc6FjUa01";

/// Every secret literal the fake's secret scanning alerts report.
pub const FAKE_LEAKED_SECRETS: [&str; 2] = [FAKE_LEAKED_SECRET, "AKIARVFAKELEAK7Q2X9Z"];

/// One environment: its object, and what is listed beneath it.
#[derive(Debug, Clone)]
pub(crate) struct Environment {
    pub json: Value,
    pub branch_policies: Vec<Value>,
    pub variables: Vec<Value>,
    pub secrets: Vec<Value>,
}

impl Environment {
    fn name(&self) -> &str {
        self.json["name"].as_str().unwrap_or_default()
    }
}

/// A repository's Actions settings and alerts. The default has none, and its
/// security features off.
#[derive(Debug, Clone, Default)]
pub(crate) struct RepoSettings {
    pub variables: Vec<Value>,
    /// Names and times only, as GitHub never serves a secret's value.
    pub secrets: Vec<Value>,
    pub environments: Vec<Environment>,
    /// `None`: Dependabot alerts are disabled.
    pub dependabot_alerts: Option<Vec<Value>>,
    /// `None`: code scanning has no analysis.
    pub code_scanning_alerts: Option<Vec<Value>>,
    /// `None`: secret scanning is disabled.
    pub secret_scanning_alerts: Option<Vec<Value>>,
}

/// An organization's Actions variables and secrets, and whether the token
/// administers it.
#[derive(Debug, Clone, Default)]
pub(crate) struct OrgSettings {
    pub variables: Vec<Value>,
    pub secrets: Vec<Value>,
    pub admin_denied: bool,
}

/// What a settings endpoint answers, before paging.
pub(crate) enum Answer {
    /// A JSON array, paged.
    List(Vec<Value>),
    /// `{"total_count": N, "<field>": [...]}`: the array paged, `total_count` all.
    Wrapped(&'static str, Vec<Value>),
    One(Value),
    /// An error status with GitHub's message.
    Refused(StatusCode, &'static str),
}

const NO_ADMIN: &str = "Must have admin rights to Repository.";
const NO_ACCESS: &str = "Resource not accessible by integration";

/// A fixed, distinct time for item `n` (minutes after a fixed instant).
fn at(n: i64) -> Timestamp {
    Timestamp::from_second(1_690_000_000).expect("valid") + SignedDuration::from_secs(n * 60)
}

fn variable(name: &str, value: &str, n: i64) -> Value {
    json!({ "name": name, "value": value, "created_at": at(n), "updated_at": at(n + 1) })
}

fn secret(name: &str, n: i64) -> Value {
    json!({ "name": name, "created_at": at(n), "updated_at": at(n + 1) })
}

/// Sets `name` to `value` in `variables` (created if new), updated now.
pub(crate) fn set_variable(variables: &mut Vec<Value>, name: &str, value: &str) {
    let now = super::metadata::now();
    match variables.iter_mut().find(|v| v["name"] == name) {
        Some(v) => {
            v["value"] = json!(value);
            v["updated_at"] = json!(now);
        }
        None => {
            variables.push(
                json!({ "name": name, "value": value, "created_at": now, "updated_at": now }),
            );
            variables.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        }
    }
}

/// Writes the secret `name` now (created if new): its `updated_at` moves.
pub(crate) fn set_secret(secrets: &mut Vec<Value>, name: &str) {
    let now = super::metadata::now();
    match secrets.iter_mut().find(|s| s["name"] == name) {
        Some(s) => s["updated_at"] = json!(now),
        None => {
            secrets.push(json!({ "name": name, "created_at": now, "updated_at": now }));
            secrets.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        }
    }
}

impl RepoSettings {
    /// Two variables, two secrets, three environments (`production` with required
    /// reviewers, a wait timer and custom branch policies; `staging` on protected
    /// branches; `qa/eu` open to all) and two alerts of each kind, one of them
    /// dismissed or resolved.
    pub fn generate(api: &str, web: &str, owner: &str, name: &str) -> Self {
        let repo_api = format!("{api}/repos/{owner}/{name}");
        let repo_web = format!("{web}/{owner}/{name}");
        let user = |login: &str, id: u64| owner_json(api, web, login, id, OwnerKind::User);
        let mut next_id = 8_000_000u64;
        let mut id = || {
            next_id += 1;
            next_id
        };

        let variables = vec![
            variable("DEPLOY_REGION", "eu-west-1", 0),
            variable("LOG_LEVEL", "info", 2),
        ];
        let secrets = vec![secret("DEPLOY_KEY", 4), secret("NPM_TOKEN", 6)];

        let environment = |id: u64, env: &str, n: i64| {
            let encoded = encode_segment(env);
            json!({
                "id": id, "node_id": format!("EN_{id}"), "name": env,
                "url": format!("{repo_api}/environments/{encoded}"),
                "html_url": format!("{repo_web}/deployments/activity_log?environments_filter={encoded}"),
                "created_at": at(n), "updated_at": at(n + 1), "can_admins_bypass": true,
                "protection_rules": [], "deployment_branch_policy": null,
            })
        };
        let mut production = environment(id(), "production", 10);
        production["can_admins_bypass"] = json!(false);
        let (team, reviewers, timer, branches) = (id(), id(), id(), id());
        let team_url = format!("{api}/orgs/{owner}/teams/platform");
        production["protection_rules"] = json!([
            { "id": reviewers, "node_id": format!("GA_{reviewers}"), "type": "required_reviewers",
              "prevent_self_review": true,
              "reviewers": [
                  { "type": "User", "reviewer": user("octocat", 583231) },
                  { "type": "Team", "reviewer": {
                      "id": team, "node_id": format!("T_{team}"), "name": "Platform", "slug": "platform",
                      "description": "Platform engineers", "privacy": "closed",
                      "notification_setting": "notifications_enabled", "permission": "push",
                      "url": team_url, "html_url": format!("{web}/orgs/{owner}/teams/platform"),
                      "members_url": format!("{team_url}/members{{/member}}"),
                      "repositories_url": format!("{team_url}/repos"), "parent": null } },
              ] },
            { "id": timer, "node_id": format!("GA_{timer}"), "type": "wait_timer", "wait_timer": 30 },
            { "id": branches, "node_id": format!("GA_{branches}"), "type": "branch_policy" },
        ]);
        production["deployment_branch_policy"] =
            json!({ "protected_branches": false, "custom_branch_policies": true });
        let policy = |id: u64, name: &str, kind: &str| json!({ "id": id, "node_id": format!("GBP_{id}"), "name": name, "type": kind });
        let production = Environment {
            json: production,
            branch_policies: vec![
                policy(id(), "main", "branch"),
                policy(id(), "release/*", "branch"),
                policy(id(), "v*", "tag"),
            ],
            variables: vec![variable("URL", "https://example.com", 14)],
            secrets: vec![secret("DB_PASSWORD", 16)],
        };
        let mut staging = environment(id(), "staging", 20);
        staging["deployment_branch_policy"] =
            json!({ "protected_branches": true, "custom_branch_policies": false });
        let staging = Environment {
            json: staging,
            branch_policies: vec![],
            variables: vec![variable("URL", "https://staging.example.com", 22)],
            secrets: vec![],
        };
        let qa = Environment {
            json: environment(id(), "qa/eu", 30),
            branch_policies: vec![],
            variables: vec![variable("URL", "https://qa.example.eu", 32)],
            secrets: vec![secret("API_KEY", 34)],
        };

        let advisory = |ghsa: &str,
                        cve: &str,
                        ecosystem: &str,
                        package: &str,
                        severity: &str,
                        range: &str,
                        patched: &str,
                        summary: &str,
                        n: i64| {
            let vulnerability = json!({
                "package": { "ecosystem": ecosystem, "name": package }, "severity": severity,
                "vulnerable_version_range": range, "first_patched_version": { "identifier": patched },
            });
            json!({
                "ghsa_id": ghsa, "cve_id": cve, "summary": summary,
                "description": format!("{summary}: versions {range} of {package} are affected."),
                "vulnerabilities": [vulnerability.clone()], "severity": severity,
                "cvss": { "vector_string": null, "score": 0.0 }, "cwes": [],
                "identifiers": [{ "type": "GHSA", "value": ghsa }, { "type": "CVE", "value": cve }],
                "references": [{ "url": format!("https://nvd.nist.gov/vuln/detail/{cve}") }],
                "published_at": at(n), "updated_at": at(n), "withdrawn_at": null,
            })
        };
        let dependabot = |number: u64, advisory: Value, manifest: &str, n: i64| {
            let vulnerability = advisory["vulnerabilities"][0].clone();
            json!({
                "number": number, "state": "open",
                "dependency": { "package": vulnerability["package"].clone(), "manifest_path": manifest, "scope": "runtime" },
                "security_advisory": advisory, "security_vulnerability": vulnerability,
                "url": format!("{repo_api}/dependabot/alerts/{number}"),
                "html_url": format!("{repo_web}/security/dependabot/{number}"),
                "created_at": at(n), "updated_at": at(n),
                "dismissed_at": null, "dismissed_by": null, "dismissed_reason": null,
                "dismissed_comment": null, "fixed_at": null, "auto_dismissed_at": null,
            })
        };
        let open = dependabot(
            1,
            advisory(
                "GHSA-jf85-cpcp-j695",
                "CVE-2019-10744",
                "npm",
                "lodash",
                "critical",
                "< 4.17.12",
                "4.17.12",
                "Prototype Pollution in lodash",
                40,
            ),
            "package-lock.json",
            41,
        );
        let mut dismissed = dependabot(
            2,
            advisory(
                "GHSA-7xr5-9hcq-chf9",
                "CVE-2023-36053",
                "pip",
                "django",
                "high",
                ">= 4.2, < 4.2.3",
                "4.2.3",
                "Potential regular expression denial of service in EmailValidator",
                42,
            ),
            "requirements.txt",
            43,
        );
        dismissed["state"] = json!("dismissed");
        dismissed["updated_at"] = json!(at(44));
        dismissed["dismissed_at"] = json!(at(44));
        dismissed["dismissed_by"] = user("reviewer", 583232);
        dismissed["dismissed_reason"] = json!("tolerable_risk");
        dismissed["dismissed_comment"] = json!("Only reachable from the admin UI.");

        let code_scanning = |number: u64, rule: &str, description: &str, path: &str, n: i64| {
            json!({
                "number": number, "created_at": at(n), "updated_at": at(n),
                "url": format!("{repo_api}/code-scanning/alerts/{number}"),
                "html_url": format!("{repo_web}/security/code-scanning/{number}"),
                "instances_url": format!("{repo_api}/code-scanning/alerts/{number}/instances"),
                "state": "open", "fixed_at": null, "dismissed_by": null, "dismissed_at": null,
                "dismissed_reason": null, "dismissed_comment": null,
                "rule": { "id": rule, "severity": "error", "description": description, "name": rule,
                          "tags": ["security", "external/cwe/cwe-089"], "security_severity_level": "high" },
                "tool": { "name": "CodeQL", "guid": null, "version": "2.17.0" },
                "most_recent_instance": {
                    "ref": "refs/heads/main", "analysis_key": ".github/workflows/codeql.yml:analyze",
                    "environment": "{\"language\":\"javascript\"}",
                    "category": ".github/workflows/codeql.yml:analyze/language:javascript",
                    "state": "open", "commit_sha": format!("{:040x}", 1),
                    "message": { "text": format!("{description}.") },
                    "location": { "path": path, "start_line": 12, "end_line": 12, "start_column": 5, "end_column": 40 },
                    "classifications": [],
                },
            })
        };
        let sql = code_scanning(
            1,
            "js/sql-injection",
            "Database query built from user-controlled sources",
            "src/db.js",
            50,
        );
        let mut xss = code_scanning(
            2,
            "js/reflected-xss",
            "Reflected cross-site scripting",
            "test/fixtures/page.js",
            51,
        );
        xss["state"] = json!("dismissed");
        xss["updated_at"] = json!(at(52));
        xss["dismissed_at"] = json!(at(52));
        xss["dismissed_by"] = user("reviewer", 583232);
        xss["dismissed_reason"] = json!("false positive");
        xss["dismissed_comment"] = json!("Input is escaped by the template engine.");
        xss["most_recent_instance"]["state"] = json!("dismissed");
        xss["most_recent_instance"]["classifications"] = json!(["test"]);

        let secret_alert = |number: u64, kind: &str, display: &str, secret: &str, n: i64| {
            json!({
                "number": number, "created_at": at(n), "updated_at": at(n),
                "url": format!("{repo_api}/secret-scanning/alerts/{number}"),
                "html_url": format!("{repo_web}/security/secret-scanning/{number}"),
                "locations_url": format!("{repo_api}/secret-scanning/alerts/{number}/locations"),
                "state": "open", "secret_type": kind, "secret_type_display_name": display,
                "secret": secret, "validity": "active",
                "resolution": null, "resolved_by": null, "resolved_at": null, "resolution_comment": null,
                "push_protection_bypassed": false, "push_protection_bypassed_by": null,
                "push_protection_bypassed_at": null, "publicly_leaked": false, "multi_repo": false,
            })
        };
        let token = secret_alert(
            1,
            "github_personal_access_token",
            "GitHub Personal Access Token",
            FAKE_LEAKED_SECRETS[0],
            60,
        );
        let mut aws = secret_alert(
            2,
            "aws_access_key_id",
            "Amazon AWS Access Key ID",
            FAKE_LEAKED_SECRETS[1],
            61,
        );
        aws["state"] = json!("resolved");
        aws["validity"] = json!("inactive");
        aws["updated_at"] = json!(at(62));
        aws["resolution"] = json!("revoked");
        aws["resolved_by"] = user("octocat", 583231);
        aws["resolved_at"] = json!(at(62));
        aws["resolution_comment"] = json!("Rotated the key.");
        aws["push_protection_bypassed"] = json!(true);
        aws["push_protection_bypassed_by"] = user("reviewer", 583232);
        aws["push_protection_bypassed_at"] = json!(at(61));

        RepoSettings {
            variables,
            secrets,
            environments: vec![production, staging, qa],
            dependabot_alerts: Some(vec![open, dismissed]),
            code_scanning_alerts: Some(vec![sql, xss]),
            secret_scanning_alerts: Some(vec![token, aws]),
        }
    }

    /// The environment named `name` (GitHub's names are case-insensitive).
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        let name = name.to_lowercase();
        self.environments
            .iter()
            .find(|e| e.name().to_lowercase() == name)
    }

    /// The objects of `kind` as served, `kind` being the endpoint's path below
    /// `/repos/{o}/{r}/` with the environment's name unencoded
    /// (`environments/qa/eu/variables`); `None` for another kind.
    pub fn items(&self, kind: &str) -> Option<Vec<Value>> {
        let alerts = |alerts: &Option<Vec<Value>>| alerts.clone().unwrap_or_default();
        Some(match kind {
            "actions/variables" => self.variables.clone(),
            "actions/secrets" => self.secrets.clone(),
            "environments" => self.environments.iter().map(|e| e.json.clone()).collect(),
            "dependabot/alerts" => alerts(&self.dependabot_alerts),
            "code-scanning/alerts" => alerts(&self.code_scanning_alerts),
            "secret-scanning/alerts" => alerts(&self.secret_scanning_alerts),
            other => {
                let rest = other.strip_prefix("environments/")?;
                let (env, what) = rest.rsplit_once('/')?;
                let env = self.environment(env)?;
                match what {
                    "deployment-branch-policies" => env.branch_policies.clone(),
                    "variables" => env.variables.clone(),
                    "secrets" => env.secrets.clone(),
                    _ => return None,
                }
            }
        })
    }

    /// `/repos/{o}/{r}/<rest>` if it is a settings endpoint (`None` otherwise), for a
    /// caller who administers the repository or not.
    pub fn answer(
        &self,
        rest: &[&str],
        admin: bool,
        query: &HashMap<String, String>,
    ) -> Option<Answer> {
        let not_found = Answer::Refused(StatusCode::NOT_FOUND, "Not Found");
        let refused = |message| Answer::Refused(StatusCode::FORBIDDEN, message);
        let answer = match rest {
            ["actions", "variables"] if !admin => refused(NO_ADMIN),
            ["actions", "variables"] => Answer::Wrapped("variables", self.variables.clone()),
            ["actions", "secrets"] if !admin => refused(NO_ADMIN),
            ["actions", "secrets"] => Answer::Wrapped("secrets", self.secrets.clone()),
            ["environments"] => Answer::Wrapped(
                "environments",
                self.environments.iter().map(|e| e.json.clone()).collect(),
            ),
            ["environments", env, more @ ..] if more.len() <= 1 => {
                // Named as a path segment: percent-encoded (`qa%2Feu`).
                let Some(env) = decode_segment(env).and_then(|n| self.environment(&n)) else {
                    return Some(not_found);
                };
                match more {
                    [] => Answer::One(env.json.clone()),
                    // GitHub answers 404 unless the environment has custom policies.
                    ["deployment-branch-policies"]
                        if env.json["deployment_branch_policy"]["custom_branch_policies"]
                            != true =>
                    {
                        not_found
                    }
                    ["deployment-branch-policies"] => {
                        Answer::Wrapped("branch_policies", env.branch_policies.clone())
                    }
                    ["variables" | "secrets"] if !admin => refused(NO_ADMIN),
                    ["variables"] => Answer::Wrapped("variables", env.variables.clone()),
                    ["secrets"] => Answer::Wrapped("secrets", env.secrets.clone()),
                    _ => not_found,
                }
            }
            ["dependabot" | "code-scanning" | "secret-scanning", "alerts"] if !admin => {
                refused(NO_ACCESS)
            }
            ["dependabot", "alerts"] => match &self.dependabot_alerts {
                Some(alerts) => Answer::List(alerts_in(alerts, query)),
                None => refused("Dependabot alerts are disabled for this repository."),
            },
            ["code-scanning", "alerts"] => match &self.code_scanning_alerts {
                Some(alerts) => Answer::List(alerts_in(alerts, query)),
                None => Answer::Refused(StatusCode::NOT_FOUND, "no analysis found"),
            },
            ["secret-scanning", "alerts"] => match &self.secret_scanning_alerts {
                Some(alerts) => {
                    let mut alerts = alerts_in(alerts, query);
                    if query.get("hide_secret").is_some_and(|h| h == "true") {
                        for alert in &mut alerts {
                            if let Some(alert) = alert.as_object_mut() {
                                alert.remove("secret");
                            }
                        }
                    }
                    Answer::List(alerts)
                }
                None => Answer::Refused(
                    StatusCode::NOT_FOUND,
                    "Secret scanning is disabled on this repository.",
                ),
            },
            _ => return None,
        };
        Some(answer)
    }
}

/// `alerts` newest first (`direction=asc`: oldest first), only those in the `state`s
/// the query lists (comma-separated; code scanning's `closed` is dismissed or fixed).
fn alerts_in(alerts: &[Value], query: &HashMap<String, String>) -> Vec<Value> {
    let states: Option<Vec<String>> = query
        .get("state")
        .map(|s| s.replace("%2C", ",").replace("%2c", ","))
        .map(|s| s.split(',').map(str::to_owned).collect());
    let wanted = |alert: &&Value| {
        let state = alert["state"].as_str().unwrap_or_default();
        states.as_ref().is_none_or(|states| {
            states
                .iter()
                .any(|s| s == state || (s == "closed" && matches!(state, "dismissed" | "fixed")))
        })
    };
    let mut items: Vec<Value> = alerts.iter().filter(wanted).cloned().collect();
    items.sort_by_key(|a| std::cmp::Reverse(a["number"].as_u64()));
    if query.get("direction").is_some_and(|d| d == "asc") {
        items.reverse();
    }
    items
}

impl OrgSettings {
    /// Two variables and two secrets, one of each visible to selected repositories.
    pub fn generate(api: &str, org: &str) -> Self {
        let selected =
            |kind: &str, name: &str| format!("{api}/orgs/{org}/actions/{kind}/{name}/repositories");
        let mut region = variable("ORG_REGION", "eu", 0);
        region["visibility"] = json!("all");
        let mut channel = variable("RELEASE_CHANNEL", "stable", 2);
        channel["visibility"] = json!("selected");
        channel["selected_repositories_url"] = json!(selected("variables", "RELEASE_CHANNEL"));
        let mut deploy = secret("ORG_DEPLOY_TOKEN", 4);
        deploy["visibility"] = json!("private");
        let mut signing = secret("SIGNING_KEY", 6);
        signing["visibility"] = json!("selected");
        signing["selected_repositories_url"] = json!(selected("secrets", "SIGNING_KEY"));
        OrgSettings {
            variables: vec![region, channel],
            secrets: vec![deploy, signing],
            admin_denied: false,
        }
    }

    /// `/orgs/{org}/<rest>` if it is a settings endpoint (`None` otherwise), for a
    /// caller with the token (`authed`) or not. An organization without settings
    /// (`None`) has no variables and no secrets.
    pub fn answer(settings: Option<&OrgSettings>, rest: &[&str], authed: bool) -> Option<Answer> {
        let admin = authed && settings.is_none_or(|s| !s.admin_denied);
        let list = |pick: fn(&OrgSettings) -> &Vec<Value>| {
            settings.map(|s| pick(s).clone()).unwrap_or_default()
        };
        Some(match rest {
            ["actions", "variables" | "secrets"] if !admin => {
                Answer::Refused(StatusCode::FORBIDDEN, NO_ADMIN)
            }
            ["actions", "variables"] => Answer::Wrapped("variables", list(|s| &s.variables)),
            ["actions", "secrets"] => Answer::Wrapped("secrets", list(|s| &s.secrets)),
            _ => return None,
        })
    }
}
