//! Projects (v2), as GitHub's GraphQL API serves them: boards owned by an
//! organization or a user and linked to repositories, with GitHub's built-in fields
//! (Title, Assignees, Status, Labels, Repository) and a text, a number, a date and an
//! iteration field, and items for issues, pull requests and a draft issue with
//! their values.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::graphql::{World, actor, body_html, body_text, label_node, node_id};
use super::state::{OwnerKind, key};

#[derive(Debug, Clone)]
pub(crate) struct Project {
    /// The owner's login, as registered.
    pub owner: String,
    pub owner_kind: OwnerKind,
    pub number: u64,
    pub id: u64,
    pub title: String,
    pub created_at: Timestamp,
    /// Linked repositories, `owner/name` as registered.
    pub linked: Vec<String>,
    /// The fields as GraphQL objects, by position.
    fields: Vec<Value>,
    items: Vec<Item>,
}

#[derive(Debug, Clone)]
struct Item {
    id: u64,
    content: Content,
    created_at: Timestamp,
    /// Values of the fields a person sets (Status, Notes, Estimate, Due, Sprint), with
    /// the field's position; Title, Repository and Labels come from the content.
    values: Vec<(usize, Value)>,
}

#[derive(Debug, Clone)]
enum Content {
    Issue {
        repo: String,
        number: u64,
    },
    Pull {
        repo: String,
        number: u64,
    },
    Draft {
        id: u64,
        title: String,
        body: String,
    },
}

const TITLE: usize = 0;
const STATUS: usize = 2;
const LABELS: usize = 3;
const REPOSITORY: usize = 4;

/// GitHub's Status options: id, name, colour, description.
const STATUS_OPTIONS: [(&str, &str, &str, &str); 3] = [
    ("f75ad846", "Todo", "GREEN", "This item hasn't been started"),
    (
        "47fc9ee4",
        "In Progress",
        "YELLOW",
        "This is actively being worked on",
    ),
    ("98236657", "Done", "PURPLE", "This has been completed"),
];

impl super::FakeGitHub {
    /// Creates a project (v2) of organization or user `owner` titled `title`, linked
    /// to `linked_repos` (names of `owner`'s repositories, or `owner/name`), and
    /// returns its number. Its items: the first two issues and the first pull request
    /// of each linked repository (see [`add_metadata`](Self::add_metadata)), then a
    /// draft issue; each with a Status, an Estimate and a Sprint, and a Notes text or
    /// a Due date in turn.
    pub fn add_project(&self, owner: &str, title: &str, linked_repos: &[&str]) -> u64 {
        let web = self.shared.base_url.clone();
        let mut inner = self.shared.lock();
        let o = inner
            .owner(owner)
            .expect("add_org or add_user first")
            .clone();
        let number = 1 + inner
            .graphql
            .projects
            .iter()
            .filter(|p| p.owned_by(&o.login))
            .map(|p| p.number)
            .max()
            .unwrap_or(0);
        let now = super::metadata::now();
        let at = now.to_string();
        let mut linked = Vec::new();
        let mut contents = Vec::new();
        for r in linked_repos {
            let (ro, rn) = r.split_once('/').unwrap_or((&o.login, r));
            let repo = inner.repo(ro, rn).expect("linked repositories exist");
            let full = format!("{}/{}", repo.spec.owner, repo.spec.name);
            let numbers = |list: &[Value], pulls: bool| {
                let mut n: Vec<u64> = list
                    .iter()
                    .filter(|i| pulls || i.get("pull_request").is_none())
                    .filter_map(|i| i["number"].as_u64())
                    .collect();
                n.sort_unstable();
                n
            };
            for number in numbers(&repo.meta.issues, false).into_iter().take(2) {
                contents.push(Content::Issue {
                    repo: full.clone(),
                    number,
                });
            }
            for number in numbers(&repo.meta.pulls, true).into_iter().take(1) {
                contents.push(Content::Pull {
                    repo: full.clone(),
                    number,
                });
            }
            linked.push(full);
        }
        let draft_id = inner.next_id();
        contents.push(Content::Draft {
            id: draft_id,
            title: "Draft: plan the next release".to_owned(),
            body: format!("Gather what goes in.\n\n![sketch]({web}/user-attachments/assets/00000000-0000-4000-8000-{draft_id:012x})"),
        });
        let mut field = |name: &str, data_type: &str| {
            let id = inner.next_id();
            let (typename, prefix) = match data_type {
                "SINGLE_SELECT" => ("ProjectV2SingleSelectField", "PVTSSF"),
                "ITERATION" => ("ProjectV2IterationField", "PVTIF"),
                _ => ("ProjectV2Field", "PVTF"),
            };
            json!({
                "__typename": typename, "id": node_id(prefix, id), "databaseId": id, "name": name,
                "dataType": data_type, "createdAt": at, "updatedAt": at,
            })
        };
        let mut fields = vec![
            field("Title", "TITLE"),
            field("Assignees", "ASSIGNEES"),
            field("Status", "SINGLE_SELECT"),
            field("Labels", "LABELS"),
            field("Repository", "REPOSITORY"),
            field("Notes", "TEXT"),
            field("Estimate", "NUMBER"),
            field("Due", "DATE"),
            field("Sprint", "ITERATION"),
        ];
        fields[STATUS]["options"] = STATUS_OPTIONS
            .iter()
            .map(|(id, name, color, description)| {
                json!({ "id": id, "name": name, "nameHTML": name, "color": color, "description": description, "descriptionHTML": description })
            })
            .collect();
        let iteration = |n: u64, start: &str| {
            let title = format!("Sprint {n}");
            json!({ "id": format!("{:08x}", 0x5eed_0000 + n), "title": title, "titleHTML": title, "startDate": start, "duration": 14 })
        };
        let current = [iteration(3, "2024-03-04"), iteration(4, "2024-03-18")];
        let completed = [iteration(2, "2024-02-19"), iteration(1, "2024-02-05")];
        fields[8]["configuration"] = json!({
            "duration": 14, "startDay": 1, "iterations": current, "completedIterations": completed,
        });
        let mut items = Vec::new();
        for (i, content) in contents.into_iter().enumerate() {
            let mut values = Vec::new();
            let (id, name, color, description) = STATUS_OPTIONS[i % 3];
            values.push((STATUS, json!({ "name": name, "nameHTML": name, "optionId": id, "color": color, "description": description, "descriptionHTML": description })));
            if i % 2 == 0 {
                values.push((5, json!({ "text": format!("Note on item {i}") })));
            } else {
                values.push((7, json!({ "date": format!("2024-03-{:02}", 10 + i) })));
            }
            values.push((6, json!({ "number": (i + 1) as f64 * 1.5 })));
            let sprint = if i % 2 == 0 {
                &current[0]
            } else {
                &completed[0]
            };
            values.push((8, json!({
                "title": sprint["title"], "titleHTML": sprint["title"], "iterationId": sprint["id"],
                "startDate": sprint["startDate"], "duration": sprint["duration"],
            })));
            items.push(Item {
                id: inner.next_id(),
                content,
                created_at: now,
                values,
            });
        }
        let id = inner.next_id();
        inner.graphql.projects.push(Project {
            owner: o.login.clone(),
            owner_kind: o.kind,
            number,
            id,
            title: title.to_owned(),
            created_at: now,
            linked,
            fields,
            items,
        });
        number
    }
}

impl Project {
    pub(crate) fn owned_by(&self, login: &str) -> bool {
        self.owner.eq_ignore_ascii_case(login)
    }

    /// Whether the project is linked to repository `owner/name`.
    pub(crate) fn links(&self, full: &str) -> bool {
        let (o, n) = full.split_once('/').unwrap_or_default();
        self.linked.iter().any(|l| {
            let (lo, ln) = l.split_once('/').unwrap_or_default();
            key(lo, ln) == key(o, n)
        })
    }

    /// The project as a GraphQL object, its items' contents as they are now.
    pub(crate) fn node(&self, world: &World) -> Value {
        let web = world.web;
        let at = self.created_at.to_string();
        let kind = if self.owner_kind == OwnerKind::Org {
            "orgs"
        } else {
            "users"
        };
        let path = format!("/{kind}/{}/projects/{}", self.owner, self.number);
        let items: Vec<Value> = self.items.iter().map(|i| self.item(world, i)).collect();
        json!({
            "__typename": "ProjectV2", "id": node_id("PVT", self.id), "databaseId": self.id,
            "number": self.number, "title": self.title,
            "shortDescription": format!("{} board", self.title),
            "readme": format!("# {}\n\nWhat the team works on.", self.title),
            "public": false, "closed": false, "closedAt": null, "template": false,
            "url": format!("{web}{path}"), "resourcePath": path, "createdAt": at, "updatedAt": at,
            "creator": actor(web, super::TOKEN_USER), "owner": { "$owner": self.owner },
            "fields": self.fields, "items": items,
            "repositories": self.linked.iter().map(|r| json!({ "$repo": r })).collect::<Vec<_>>(),
        })
    }

    fn item(&self, world: &World, item: &Item) -> Value {
        let web = world.web;
        let at = item.created_at.to_string();
        let (kind, content) = match &item.content {
            Content::Issue { repo, number } => ("ISSUE", issue(world, repo, *number, false)),
            Content::Pull { repo, number } => ("PULL_REQUEST", issue(world, repo, *number, true)),
            Content::Draft { id, title, body } => (
                "DRAFT_ISSUE",
                Some(json!({
                    "__typename": "DraftIssue", "id": node_id("DI", *id), "title": title, "body": body,
                    "bodyHTML": body_html(body), "bodyText": body_text(body), "createdAt": at, "updatedAt": at,
                    "creator": actor(web, "octocat"), "assignees": [],
                })),
            ),
        };
        let mut values = item.values.clone();
        if let Some(c) = &content {
            values.push((TITLE, json!({ "text": c["title"] })));
            if c["__typename"] != "DraftIssue" {
                values.push((REPOSITORY, json!({ "repository": c["repository"] })));
                if !c["labels"].as_array().is_none_or(Vec::is_empty) {
                    values.push((LABELS, json!({ "labels": c["labels"] })));
                }
            }
        }
        values.sort_by_key(|(position, _)| *position);
        let field_values: Vec<Value> = values
            .into_iter()
            .map(|(position, mut v)| {
                let field = &self.fields[position];
                let (typename, prefix, common) =
                    match field["dataType"].as_str().unwrap_or_default() {
                        "SINGLE_SELECT" => ("ProjectV2ItemFieldSingleSelectValue", "PVTFSV", true),
                        "ITERATION" => ("ProjectV2ItemFieldIterationValue", "PVTFIT", true),
                        "NUMBER" => ("ProjectV2ItemFieldNumberValue", "PVTFNV", true),
                        "DATE" => ("ProjectV2ItemFieldDateValue", "PVTFDV", true),
                        "REPOSITORY" => ("ProjectV2ItemFieldRepositoryValue", "", false),
                        "LABELS" => ("ProjectV2ItemFieldLabelValue", "", false),
                        _ => ("ProjectV2ItemFieldTextValue", "PVTFTV", true),
                    };
                v["__typename"] = json!(typename);
                v["field"] = field.clone();
                if common {
                    let id = item.id * 16 + position as u64;
                    v["id"] = json!(node_id(prefix, id));
                    v["databaseId"] = json!(id);
                    v["createdAt"] = json!(at);
                    v["updatedAt"] = json!(at);
                    v["creator"] = actor(web, "octocat");
                }
                v
            })
            .collect();
        json!({
            "__typename": "ProjectV2Item", "id": node_id("PVTI", item.id), "databaseId": item.id,
            "type": if content.is_some() { kind } else { "REDACTED" }, "isArchived": false,
            "createdAt": at, "updatedAt": at, "creator": actor(web, "octocat"),
            "content": content, "fieldValues": field_values,
        })
    }
}

/// Issue or pull request `number` of `repo` as a GraphQL object, from its REST data;
/// `None` if it is gone.
fn issue(world: &World, repo: &str, number: u64, pull: bool) -> Option<Value> {
    let (owner, name) = repo.split_once('/')?;
    let meta = &world.inner.repo(owner, name)?.meta;
    let i = meta.issues.iter().find(|i| i["number"] == number)?;
    let web = world.web;
    let labels: Vec<Value> = i["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| label_node(web, repo, l))
        .collect();
    let state = i["state"].as_str().unwrap_or("open").to_uppercase();
    let mut node = json!({
        "__typename": "Issue", "id": i["node_id"], "databaseId": i["id"], "number": number,
        "title": i["title"], "body": i["body"], "url": i["html_url"], "state": state,
        "closed": state == "CLOSED", "closedAt": i["closed_at"], "createdAt": i["created_at"],
        "updatedAt": i["updated_at"], "author": actor(web, i["user"]["login"].as_str().unwrap_or("ghost")),
        "repository": { "$repo": repo }, "labels": labels,
    });
    if pull {
        let p = meta.pulls.iter().find(|p| p["number"] == number)?;
        let merged = !p["merged_at"].is_null();
        node["__typename"] = json!("PullRequest");
        node["id"] = p["node_id"].clone();
        node["databaseId"] = p["id"].clone();
        node["merged"] = json!(merged);
        node["isDraft"] = p["draft"].clone();
        if merged {
            node["state"] = json!("MERGED");
        }
    }
    Some(node)
}
