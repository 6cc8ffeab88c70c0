//! A repository's data beyond git, as GitHub's REST API serves it: issues (pull
//! requests among them, as GitHub lists them), issue comments, pull requests with
//! their reviews and review comments, labels, milestones, and releases with binary
//! assets. Generated deterministically from a [`MetadataSpec`]; every object carries
//! GitHub's field names and `updated_at`, which `since=` filters on.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

/// How much data to generate for a repository.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetadataSpec {
    /// Issues (not counting pull requests).
    pub issues: u32,
    /// Comments on each issue and pull request.
    pub comments_per_issue: u32,
    pub pulls: u32,
    /// Reviews on each pull request, each with one review comment.
    pub reviews_per_pull: u32,
    pub releases: u32,
    /// Bytes of the one asset of each release.
    pub asset_bytes: usize,
    /// Actions variables, secrets and environments, and two Dependabot, code scanning
    /// and secret scanning alerts each; without, none, and those alerts are off.
    pub settings: bool,
    /// Discussions (GraphQL only), numbered after the issues and pull requests; with
    /// any, discussions are enabled.
    pub discussions: u32,
}

/// One repository's data. `items` are the objects each list endpoint returns.
#[derive(Debug, Clone, Default)]
pub(crate) struct RepoMeta {
    pub issues: Vec<Value>,
    pub issue_comments: Vec<Value>,
    /// Every issue's events: `labeled`, and `closed` for closed ones.
    pub issue_events: Vec<Value>,
    pub pulls: Vec<Value>,
    /// By pull request number.
    pub reviews: BTreeMap<u64, Vec<Value>>,
    pub review_comments: Vec<Value>,
    pub labels: Vec<Value>,
    pub milestones: Vec<Value>,
    pub releases: Vec<Value>,
    /// Asset bytes by asset id.
    pub assets: BTreeMap<u64, Vec<u8>>,
    pub commit_comments: Vec<Value>,
    /// What a token with admin rights reads: collaborators, teams, webhooks (secrets
    /// masked, as GitHub does), deploy keys (public parts), rulesets.
    pub admin: BTreeMap<&'static str, Vec<Value>>,
    /// The token has no admin rights on this repository: those answer `403`.
    pub admin_denied: bool,
    /// Branch protection by branch name (admin rights to read).
    pub protected_branches: BTreeMap<String, Value>,
    /// Endpoints under `/repos/{o}/{r}/` (say `branches`) answered with this status
    /// whatever the query: a feature disabled on the repository, a server without it.
    pub withheld: BTreeMap<String, u16>,
    /// Actions settings and security alerts: none, features off, unless generated.
    pub settings: super::settings::RepoSettings,
    /// Discussions and their categories, served over GraphQL.
    pub discussions: super::discussions::RepoDiscussions,
    /// Issue imports by id: the issue's number, and when it is processed (pending
    /// until then, as GitHub processes imports in the background).
    pub imports: BTreeMap<u64, (u64, std::time::Instant)>,
    /// The highest issue or pull request number ever given (one sequence for both,
    /// never reused, as on GitHub).
    pub last_number: u64,
    /// The highest milestone number ever given (never reused).
    pub last_milestone: u64,
    next_id: u64,
}

fn user(login: &str) -> Value {
    user_of(login, 583231)
}

/// A user as GitHub embeds one (`user`, `author`, `creator`, `uploader`).
pub(crate) fn user_of(login: &str, id: u64) -> Value {
    json!({ "login": login, "id": id, "type": "User", "site_admin": false })
}

/// Now, to the second, as GitHub writes times.
pub(crate) fn now() -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second()).expect("valid")
}

/// The labels GitHub gives every new repository, with its colours and descriptions.
pub(crate) const DEFAULT_LABELS: [(&str, &str, &str); 9] = [
    ("bug", "d73a4a", "Something isn't working"),
    (
        "documentation",
        "0075ca",
        "Improvements or additions to documentation",
    ),
    (
        "duplicate",
        "cfd3d7",
        "This issue or pull request already exists",
    ),
    ("enhancement", "a2eeef", "New feature or request"),
    ("good first issue", "7057ff", "Good for newcomers"),
    ("help wanted", "008672", "Extra attention is needed"),
    ("invalid", "e4e669", "This doesn't seem right"),
    ("question", "d876e3", "Further information is requested"),
    ("wontfix", "ffffff", "This will not be worked on"),
];

/// A fixed, distinct time for item `n`, so `since=` has something to cut.
fn time(n: u64) -> Timestamp {
    Timestamp::from_second(1_700_000_000).expect("valid") + SignedDuration::from_secs(n as i64 * 60)
}

impl RepoMeta {
    /// A fresh id for an object of this repository.
    pub(crate) fn id(&mut self) -> u64 {
        self.next_id += 1;
        9_000_000 + self.next_id
    }

    /// The next number of the repository's one sequence of issues and pull requests.
    pub(crate) fn next_number(&mut self) -> u64 {
        let highest = self
            .issues
            .iter()
            .chain(&self.pulls)
            .filter_map(|i| i["number"].as_u64())
            .max()
            .unwrap_or(0);
        self.last_number = self.last_number.max(highest) + 1;
        self.last_number
    }

    /// The next milestone number.
    pub(crate) fn next_milestone(&mut self) -> u64 {
        let highest = self
            .milestones
            .iter()
            .filter_map(|m| m["number"].as_u64())
            .max()
            .unwrap_or(0);
        self.last_milestone = self.last_milestone.max(highest) + 1;
        self.last_milestone
    }

    /// Generates `spec`'s data for `owner/name`, with URLs under `api`, `web` and
    /// `uploads` (the release-asset upload origin).
    pub fn generate(
        spec: MetadataSpec,
        api: &str,
        web: &str,
        uploads: &str,
        owner: &str,
        name: &str,
    ) -> Self {
        let repo_api = format!("{api}/repos/{owner}/{name}");
        let repo_web = format!("{web}/{owner}/{name}");
        let mut meta = RepoMeta::default();
        for (i, (label, color)) in [("bug", "d73a4a"), ("enhancement", "a2eeef")]
            .into_iter()
            .enumerate()
        {
            let id = meta.id();
            meta.labels.push(json!({
                "id": id, "node_id": format!("LA_{id}"), "url": format!("{repo_api}/labels/{label}"),
                "name": label, "color": color, "default": i == 0, "description": format!("{label} label"),
            }));
        }
        let id = meta.id();
        meta.milestones.push(json!({
            "id": id, "node_id": format!("MI_{id}"), "number": 1, "title": "v1.0", "state": "open",
            "description": "first release", "url": format!("{repo_api}/milestones/1"),
            "html_url": format!("{repo_web}/milestone/1"), "creator": user("octocat"),
            "open_issues": spec.issues, "closed_issues": 0,
            "created_at": time(0), "updated_at": time(0), "due_on": null, "closed_at": null,
        }));
        meta.last_milestone = 1;
        let mut clock = 1;
        let mut number = 0;
        for i in 0..spec.issues + spec.pulls {
            number += 1;
            let is_pull = i >= spec.issues;
            let id = meta.id();
            let updated = time(clock);
            clock += 1;
            let mut issue = json!({
                "id": id, "node_id": format!("I_{id}"), "number": number,
                "url": format!("{repo_api}/issues/{number}"),
                "html_url": format!("{repo_web}/{}/{number}", if is_pull { "pull" } else { "issues" }),
                "title": format!("{} {number}", if is_pull { "Change" } else { "Problem" }),
                "body": format!("Body of #{number}: ünïcödé and `code`"),
                "user": user("octocat"), "labels": [meta.labels[number as usize % 2].clone()],
                "state": if number % 3 == 0 { "closed" } else { "open" },
                "state_reason": if number % 3 == 0 { json!("completed") } else { Value::Null },
                "locked": false, "assignee": null, "assignees": [], "milestone": meta.milestones[0].clone(),
                "comments": spec.comments_per_issue, "created_at": updated, "updated_at": updated,
                "closed_at": if number % 3 == 0 { json!(updated) } else { Value::Null },
                "author_association": "MEMBER", "reactions": { "total_count": 0 },
            });
            if is_pull {
                issue["pull_request"] = json!({
                    "url": format!("{repo_api}/pulls/{number}"),
                    "html_url": format!("{repo_web}/pull/{number}"),
                });
                let pull_id = meta.id();
                meta.pulls.push(json!({
                    "id": pull_id, "node_id": format!("PR_{pull_id}"), "number": number,
                    "url": format!("{repo_api}/pulls/{number}"), "html_url": format!("{repo_web}/pull/{number}"),
                    "state": issue["state"].clone(),
                    "title": issue["title"].clone(), "body": issue["body"].clone(), "user": user("octocat"),
                    "created_at": updated, "updated_at": updated, "closed_at": issue["closed_at"].clone(),
                    "merged_at": null, "draft": false,
                    "head": { "label": format!("{owner}:feature-{number}"), "ref": format!("feature-{number}"), "sha": format!("{number:040x}") },
                    "base": { "label": format!("{owner}:main"), "ref": "main", "sha": format!("{:040x}", 0) },
                }));
                for r in 0..spec.reviews_per_pull {
                    let review_id = meta.id();
                    let at = time(clock);
                    clock += 1;
                    meta.reviews.entry(number).or_default().push(json!({
                        "id": review_id, "node_id": format!("PRR_{review_id}"), "user": user("reviewer"),
                        "body": format!("Review {r} of #{number}"), "state": "COMMENTED",
                        "submitted_at": at, "commit_id": format!("{number:040x}"),
                        "pull_request_url": format!("{repo_api}/pulls/{number}"),
                        "author_association": "MEMBER",
                    }));
                    let comment_id = meta.id();
                    meta.review_comments.push(json!({
                        "id": comment_id, "node_id": format!("PRRC_{comment_id}"),
                        "pull_request_review_id": review_id, "path": "src/lib.rs", "line": r + 1,
                        "body": format!("Nit {r} on #{number}"), "user": user("reviewer"),
                        "created_at": at, "updated_at": at, "commit_id": format!("{number:040x}"),
                        "url": format!("{repo_api}/pulls/comments/{comment_id}"),
                        "pull_request_url": format!("{repo_api}/pulls/{number}"),
                    }));
                }
            }
            let label = issue["labels"][0]["name"].clone();
            let event_id = meta.id();
            meta.issue_events.push(json!({
                "id": event_id, "node_id": format!("LE_{event_id}"), "event": "labeled",
                "actor": user("octocat"), "label": { "name": label }, "created_at": updated,
                "issue": { "number": number, "title": issue["title"].clone() },
                "url": format!("{repo_api}/issues/events/{event_id}"),
            }));
            if issue["state"] == "closed" {
                let event_id = meta.id();
                meta.issue_events.push(json!({
                    "id": event_id, "node_id": format!("CE_{event_id}"), "event": "closed",
                    "actor": user("octocat"), "commit_id": null, "created_at": updated,
                    "issue": { "number": number, "title": issue["title"].clone() },
                    "url": format!("{repo_api}/issues/events/{event_id}"),
                }));
            }
            meta.issues.push(issue);
            for c in 0..spec.comments_per_issue {
                let comment_id = meta.id();
                let at = time(clock);
                clock += 1;
                meta.issue_comments.push(json!({
                    "id": comment_id, "node_id": format!("IC_{comment_id}"),
                    "url": format!("{repo_api}/issues/comments/{comment_id}"),
                    "issue_url": format!("{repo_api}/issues/{number}"),
                    "body": format!("Comment {c} on #{number}"), "user": user("octocat"),
                    "created_at": at, "updated_at": at, "author_association": "MEMBER",
                }));
            }
        }
        for r in 0..spec.releases {
            let id = meta.id();
            let asset_id = meta.id();
            let tag = format!("v1.{r}.0");
            let bytes: Vec<u8> = (0..spec.asset_bytes)
                .map(|i| {
                    (i as u64)
                        .wrapping_mul(2_654_435_761)
                        .wrapping_add(asset_id) as u8
                })
                .collect();
            let at = time(clock);
            clock += 1;
            meta.releases.push(json!({
                "id": id, "node_id": format!("RE_{id}"), "tag_name": tag, "name": format!("Release {tag}"),
                "body": "Notes", "draft": false, "prerelease": false, "target_commitish": "main",
                "created_at": at, "published_at": at, "author": user("octocat"),
                "url": format!("{repo_api}/releases/{id}"), "html_url": format!("{repo_web}/releases/tag/{tag}"),
                "assets_url": format!("{repo_api}/releases/{id}/assets"),
                "upload_url": format!("{uploads}/repos/{owner}/{name}/releases/{id}/assets{{?name,label}}"),
                "assets": [{
                    "id": asset_id, "node_id": format!("RA_{asset_id}"), "name": format!("app-{tag}.tar.gz"),
                    "label": null, "content_type": "application/gzip", "state": "uploaded",
                    "size": bytes.len(), "download_count": 0, "created_at": at, "updated_at": at,
                    "url": format!("{repo_api}/releases/assets/{asset_id}"),
                    "browser_download_url": format!("{repo_web}/releases/download/{tag}/app-{tag}.tar.gz"),
                    "uploader": user("octocat"),
                }],
            }));
            meta.assets.insert(asset_id, bytes);
        }
        meta.last_number = number;
        let id = meta.id();
        meta.commit_comments.push(json!({
            "id": id, "node_id": format!("CC_{id}"), "body": "Why this change?", "path": null,
            "position": null, "line": null, "commit_id": format!("{:040x}", 1), "user": user("octocat"),
            "created_at": time(0), "updated_at": time(0), "url": format!("{repo_api}/comments/{id}"),
        }));
        let (hook, key, team) = (meta.id(), meta.id(), meta.id());
        meta.admin.insert(
            "collaborators",
            vec![
                json!({ "login": "octocat", "id": 583231, "type": "User", "role_name": "admin",
                    "permissions": { "admin": true, "push": true, "pull": true } }),
                json!({ "login": "reviewer", "id": 583232, "type": "User", "role_name": "write",
                    "permissions": { "admin": false, "push": true, "pull": true } }),
            ],
        );
        meta.admin.insert(
            "teams",
            vec![json!({
                "id": team, "node_id": format!("T_{team}"), "slug": "platform", "name": "Platform",
                "permission": "push", "privacy": "closed",
            })],
        );
        meta.admin.insert("hooks", vec![json!({
            "id": hook, "type": "Repository", "name": "web", "active": true, "events": ["push"],
            // Slack's incoming webhook URLs are credentials, as are `user:pass@` and
            // `?token=`: a backup keeps none of them.
            "config": { "url": "https://ci:hunter2@hooks.slack.com/services/T0001/B0002/XXXXsecretpath?token=s3cr3t", "content_type": "json",
                        "insecure_ssl": "0", "secret": "********" },
            "created_at": time(0), "updated_at": time(0), "url": format!("{repo_api}/hooks/{hook}"),
        })]);
        meta.admin.insert("keys", vec![json!({
            "id": key, "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ9backupkeyforthetests", "title": "deploy",
            "read_only": true, "verified": true, "created_at": time(0), "url": format!("{repo_api}/keys/{key}"),
        })]);
        meta.admin.insert("rulesets", vec![]);
        meta.protect("main", &repo_api);
        if spec.settings {
            meta.settings = super::settings::RepoSettings::generate(api, web, owner, name);
        }
        if spec.discussions > 0 {
            super::discussions::RepoDiscussions::generate(&mut meta, spec.discussions, web);
        }
        meta
    }

    /// Protects `branch` (GitHub's usual rules), whatever its name.
    pub fn protect(&mut self, branch: &str, repo_api: &str) {
        self.protected_branches.insert(
            branch.to_owned(),
            json!({
                "url": format!("{repo_api}/branches/{}/protection", encode_segment(branch)),
                "required_status_checks": { "strict": true, "contexts": ["ci"] },
                "enforce_admins": { "enabled": true },
                "required_pull_request_reviews": { "required_approving_review_count": 1, "dismiss_stale_reviews": true, "require_code_owner_reviews": false },
                "restrictions": null,
                "required_linear_history": { "enabled": false },
                "allow_force_pushes": { "enabled": false },
                "allow_deletions": { "enabled": false },
                "required_conversation_resolution": { "enabled": false },
            }),
        );
    }

    /// A new comment by octocat on issue `number`, written now.
    pub fn comment(&mut self, api: &str, owner: &str, name: &str, number: u64, body: &str) {
        self.comment_as(api, owner, name, number, body, user("octocat"), "MEMBER");
    }

    /// A new comment by `author` on issue `number`, written now: it moves the issue's
    /// `updated_at` and `comments`, as on GitHub. Returns the comment.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn comment_as(
        &mut self,
        api: &str,
        owner: &str,
        name: &str,
        number: u64,
        body: &str,
        author: Value,
        association: &str,
    ) -> Value {
        let now = now();
        let id = self.id();
        let comment = json!({
            "id": id, "node_id": format!("IC_{id}"),
            "url": format!("{api}/repos/{owner}/{name}/issues/comments/{id}"),
            "issue_url": format!("{api}/repos/{owner}/{name}/issues/{number}"),
            "body": body, "user": author, "created_at": now, "updated_at": now,
            "author_association": association,
        });
        self.issue_comments.push(comment.clone());
        if let Some(issue) = self.issues.iter_mut().find(|i| i["number"] == number) {
            issue["updated_at"] = json!(now);
            let count = issue["comments"].as_u64().unwrap_or(0) + 1;
            issue["comments"] = json!(count);
        }
        comment
    }

    /// Deletes issue `number` and its comments, as GitHub does (no trace in `since=`).
    pub fn delete_issue(&mut self, number: u64) {
        let issue_url_suffix = format!("/issues/{number}");
        self.issues.retain(|i| i["number"] != number);
        self.issue_comments.retain(|c| {
            !c["issue_url"]
                .as_str()
                .is_some_and(|u| u.ends_with(&issue_url_suffix))
        });
    }
}

/// `segment` percent-encoded for a URL path: every byte but unreserved ones.
pub(crate) fn encode_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A path segment as its client meant it: every `%XX` decoded, as GitHub does.
/// `None` if that is not UTF-8 or an escape is malformed.
pub(crate) fn decode_segment(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
