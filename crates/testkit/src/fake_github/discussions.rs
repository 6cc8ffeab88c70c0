//! A repository's discussions, as GitHub's GraphQL API serves them: GitHub's six
//! default categories, and discussions numbered in the issues' sequence with
//! comments, replies (one by a bot), labels, upvotes, a chosen answer in the
//! answerable category, a poll, and an image attachment in bodies.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::graphql::{FieldError, World, actor, body_html, body_text, label_node, node_id};
use super::metadata::RepoMeta;
use super::state::RepoEntry;

/// GitHub's default categories: name, slug, emoji, its glyph, description, whether
/// a comment can be chosen as the answer.
const CATEGORIES: [(&str, &str, &str, &str, &str, bool); 6] = [
    (
        "Announcements",
        "announcements",
        ":mega:",
        "📣",
        "Updates from maintainers",
        false,
    ),
    (
        "General",
        "general",
        ":speech_balloon:",
        "💬",
        "Chat about anything and everything here",
        false,
    ),
    (
        "Ideas",
        "ideas",
        ":bulb:",
        "💡",
        "Share ideas for new features",
        false,
    ),
    (
        "Polls",
        "polls",
        ":ballot_box:",
        "🗳️",
        "Take a vote from the community",
        false,
    ),
    (
        "Q&A",
        "q-a",
        ":pray:",
        "🙏",
        "Ask the community for help",
        true,
    ),
    (
        "Show and tell",
        "show-and-tell",
        ":raised_hands:",
        "🙌",
        "Show off something you've made",
        false,
    ),
];
const POLLS: usize = 3;
const QA: usize = 4;

/// One repository's discussions.
#[derive(Debug, Clone, Default)]
pub(crate) struct RepoDiscussions {
    /// `hasDiscussionsEnabled`; when off, `discussions` is empty.
    pub enabled: bool,
    /// Ids of [`CATEGORIES`], in that order.
    pub categories: Vec<u64>,
    pub discussions: Vec<Discussion>,
}

#[derive(Debug, Clone)]
pub(crate) struct Discussion {
    pub id: u64,
    pub number: u64,
    pub title: String,
    pub body: String,
    pub author: String,
    /// Index in [`CATEGORIES`].
    pub category: usize,
    pub labels: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_edited_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub locked: bool,
    pub upvotes: u64,
    /// The comment chosen as the answer, and when.
    pub answer: Option<(u64, Timestamp)>,
    pub poll: Option<Poll>,
    pub comments: Vec<Comment>,
}

#[derive(Debug, Clone)]
pub(crate) struct Comment {
    pub id: u64,
    pub body: String,
    pub author: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub upvotes: u64,
    pub replies: Vec<Comment>,
}

#[derive(Debug, Clone)]
pub(crate) struct Poll {
    pub id: u64,
    pub question: String,
    /// Id, text and votes of each option.
    pub options: Vec<(u64, String, u64)>,
}

/// An attachment's URL as GitHub writes it in a body: `<web>/user-attachments/assets/<uuid>`.
fn attachment(web: &str, id: u64) -> String {
    let h = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!(
        "{web}/user-attachments/assets/{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 20) & 0xfff,
        h.rotate_left(17) & 0xffff_ffff_ffff
    )
}

impl RepoDiscussions {
    /// Turns discussions on, with GitHub's default categories if there are none yet.
    pub(crate) fn enable(meta: &mut RepoMeta) {
        if meta.discussions.categories.is_empty() {
            let ids = CATEGORIES.iter().map(|_| meta.id()).collect();
            meta.discussions.categories = ids;
        }
        meta.discussions.enabled = true;
    }

    /// `count` discussions for `meta`'s repository, whose web pages are under `web`:
    /// they take the next numbers of the issues' sequence, one hour apart.
    pub(crate) fn generate(meta: &mut RepoMeta, count: u32, web: &str) {
        Self::enable(meta);
        let labels: Vec<String> = meta
            .labels
            .iter()
            .filter_map(|l| l["name"].as_str().map(str::to_owned))
            .collect();
        let start = Timestamp::from_second(1_700_500_000).expect("valid");
        let minutes = |at: Timestamp, m: i64| at + SignedDuration::from_secs(m * 60);
        for k in 0..u64::from(count) {
            let number = meta.next_number();
            let id = meta.id();
            let created = start + SignedDuration::from_hours(k as i64);
            // Q&A, Polls, General, Ideas, in turn.
            let category = [QA, POLLS, 1, 2][k as usize % 4];
            let mut comments = Vec::new();
            for c in 0..3i64 {
                let comment_id = meta.id();
                let at = minutes(created, 10 * (c + 1));
                let mut replies = Vec::new();
                for r in 0..(2 - c).max(0) {
                    let reply_id = meta.id();
                    let reply_at = minutes(at, r + 1);
                    let author = if r == 1 { "github-actions" } else { "octocat" };
                    replies.push(Comment {
                        id: reply_id,
                        body: format!("Reply {r} to comment {c} on #{number}"),
                        author: author.to_owned(),
                        created_at: reply_at,
                        updated_at: reply_at,
                        upvotes: 0,
                        replies: vec![],
                    });
                }
                let body = if c == 0 {
                    format!(
                        "Comment {c} on #{number}, with a log:\n\n![log]({})",
                        attachment(web, comment_id)
                    )
                } else {
                    format!("Comment {c} on #{number}")
                };
                comments.push(Comment {
                    id: comment_id,
                    body,
                    author: "reviewer".to_owned(),
                    created_at: at,
                    updated_at: at,
                    upvotes: c as u64,
                    replies,
                });
            }
            let updated = comments
                .iter()
                .flat_map(|c| {
                    std::iter::once(c.updated_at).chain(c.replies.iter().map(|r| r.updated_at))
                })
                .max()
                .unwrap_or(created);
            let answer = (category == QA).then(|| (comments[0].id, minutes(created, 40)));
            let poll = (category == POLLS).then(|| Poll {
                id: meta.id(),
                question: "Which release should come next?".to_owned(),
                options: [("v1.1", 3), ("v2.0", 5), ("Neither", 0)]
                    .into_iter()
                    .map(|(o, votes)| (meta.id(), o.to_owned(), votes))
                    .collect(),
            });
            let closed_at = (k % 5 == 4).then(|| minutes(created, 45));
            meta.discussions.discussions.push(Discussion {
                id,
                number,
                title: format!(
                    "{} {number}",
                    ["Question", "Poll", "Thread", "Idea"][k as usize % 4]
                ),
                body: format!(
                    "Body of discussion #{number}: ünïcödé and `code`\n\n![screenshot]({})",
                    attachment(web, id)
                ),
                author: "octocat".to_owned(),
                category,
                labels: labels
                    .iter()
                    .skip(k as usize % 2)
                    .take(1)
                    .cloned()
                    .collect(),
                created_at: created,
                updated_at: [Some(updated), closed_at, answer.map(|a| a.1)]
                    .into_iter()
                    .flatten()
                    .max()
                    .unwrap_or(created),
                last_edited_at: None,
                closed_at,
                locked: k % 7 == 6,
                upvotes: k % 4,
                answer,
                poll,
                comments,
            });
        }
    }

    fn find_mut(&mut self, number: u64) -> &mut Discussion {
        self.discussions
            .iter_mut()
            .find(|d| d.number == number)
            .expect("known discussion")
    }
}

impl super::FakeGitHub {
    /// A new comment by octocat on discussion `number` of `owner/name`, written now:
    /// the discussion's `updatedAt` moves, as on GitHub.
    pub fn touch_discussion(&self, owner: &str, name: &str, number: u64) {
        let mut inner = self.shared.lock();
        let meta = &mut inner.repo_mut(owner, name).expect("known repository").meta;
        let id = meta.id();
        let now = super::metadata::now();
        let discussion = meta.discussions.find_mut(number);
        discussion.comments.push(Comment {
            id,
            body: format!("A new comment on #{number}"),
            author: "octocat".to_owned(),
            created_at: now,
            updated_at: now,
            upvotes: 0,
            replies: vec![],
        });
        discussion.updated_at = now;
    }

    /// Discussion `number` of `owner/name` edited now to `body`: its `updatedAt` and
    /// `lastEditedAt` move.
    pub fn edit_discussion(&self, owner: &str, name: &str, number: u64, body: &str) {
        let mut inner = self.shared.lock();
        let meta = &mut inner.repo_mut(owner, name).expect("known repository").meta;
        let now = super::metadata::now();
        let discussion = meta.discussions.find_mut(number);
        discussion.body = body.to_owned();
        discussion.updated_at = now;
        discussion.last_edited_at = Some(now);
    }

    /// Turns discussions of `owner/name` on (with GitHub's default categories) or off
    /// (`hasDiscussionsEnabled: false`, no discussions listed; they are kept).
    pub fn set_discussions_enabled(&self, owner: &str, name: &str, enabled: bool) {
        let mut inner = self.shared.lock();
        let meta = &mut inner.repo_mut(owner, name).expect("known repository").meta;
        if enabled {
            RepoDiscussions::enable(meta);
        } else {
            meta.discussions.enabled = false;
        }
    }
}

/// `Repository.discussions`, `discussion`, `discussionCategories`, `discussionCategory`.
pub(crate) fn resolve(
    world: &World,
    repo: &RepoEntry,
    field: &str,
    args: &Map<String, Value>,
) -> Result<Value, FieldError> {
    let d = &repo.meta.discussions;
    let full = format!("{}/{}", repo.spec.owner, repo.spec.name);
    let render = Render {
        web: world.web,
        full: &full,
        meta: &repo.meta,
    };
    let shown: &[Discussion] = if d.enabled { &d.discussions } else { &[] };
    match field {
        "discussions" => {
            let category = args.get("categoryId").and_then(Value::as_str);
            let answered = args.get("answered").and_then(Value::as_bool);
            let states: Vec<&str> = args
                .get("states")
                .and_then(Value::as_array)
                .map(|s| s.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            Ok(Value::Array(
                shown
                    .iter()
                    .map(|x| render.discussion(x))
                    .filter(|x| category.is_none_or(|c| x["category"]["id"] == c))
                    .filter(|x| answered.is_none_or(|a| x["isAnswered"] == a))
                    .filter(|x| {
                        let state = if x["closed"] == true {
                            "CLOSED"
                        } else {
                            "OPEN"
                        };
                        states.is_empty() || states.contains(&state)
                    })
                    .collect(),
            ))
        }
        "discussion" => {
            let number = args.get("number").and_then(Value::as_u64).unwrap_or(0);
            shown
                .iter()
                .find(|x| x.number == number)
                .map(|x| render.discussion(x))
                .ok_or_else(|| {
                    FieldError::new(
                        "NOT_FOUND",
                        format!("Could not resolve to a Discussion with the number of {number}."),
                    )
                })
        }
        "discussionCategories" => Ok(Value::Array(if d.enabled {
            (0..d.categories.len())
                .map(|i| render.category(i))
                .collect()
        } else {
            vec![]
        })),
        "discussionCategory" => {
            let slug = args.get("slug").and_then(Value::as_str).unwrap_or_default();
            Ok(CATEGORIES
                .iter()
                .position(|c| c.1 == slug)
                .filter(|_| d.enabled)
                .map_or(Value::Null, |i| render.category(i)))
        }
        _ => Ok(Value::Null),
    }
}

/// Renders one repository's discussions as GraphQL objects.
struct Render<'r> {
    web: &'r str,
    full: &'r str,
    meta: &'r RepoMeta,
}

impl Render<'_> {
    fn category(&self, i: usize) -> Value {
        let (name, slug, emoji, glyph, description, answerable) = CATEGORIES[i];
        let id = self.meta.discussions.categories[i];
        let at = Timestamp::from_second(1_700_000_000)
            .expect("valid")
            .to_string();
        json!({
            "__typename": "DiscussionCategory", "id": node_id("DIC", id), "name": name, "slug": slug,
            "emoji": emoji, "emojiHTML": format!("<div><g-emoji class=\"g-emoji\" alias=\"{}\">{glyph}</g-emoji></div>", emoji.trim_matches(':')),
            "description": description, "isAnswerable": answerable,
            "createdAt": at, "updatedAt": at, "repository": { "$repo": self.full },
        })
    }

    fn comment(
        &self,
        url: &str,
        c: &Comment,
        answer: Option<u64>,
        parent: Option<&Value>,
    ) -> Value {
        let mut node = json!({
            "__typename": "DiscussionComment", "id": node_id("DC", c.id), "databaseId": c.id,
            "body": c.body, "bodyHTML": body_html(&c.body), "bodyText": body_text(&c.body),
            "url": format!("{url}#discussioncomment-{}", c.id),
            "resourcePath": format!("/{}/discussions/{}#discussioncomment-{}", self.full, url.rsplit('/').next().unwrap_or_default(), c.id),
            "createdAt": c.created_at.to_string(), "updatedAt": c.updated_at.to_string(),
            "publishedAt": c.created_at.to_string(), "lastEditedAt": null,
            "author": actor(self.web, &c.author), "authorAssociation": if c.author == "github-actions" { "NONE" } else { "MEMBER" },
            "isAnswer": answer == Some(c.id), "upvoteCount": c.upvotes,
            "deletedAt": null, "isMinimized": false, "minimizedReason": null,
            "replyTo": parent, "replies": [],
        });
        let replies: Vec<Value> = c
            .replies
            .iter()
            .map(|r| self.comment(url, r, answer, Some(&node)))
            .collect();
        node["replies"] = Value::Array(replies);
        node
    }

    fn discussion(&self, d: &Discussion) -> Value {
        let url = format!("{}/{}/discussions/{}", self.web, self.full, d.number);
        let answer_id = d.answer.map(|(id, _)| id);
        let comments: Vec<Value> = d
            .comments
            .iter()
            .map(|c| self.comment(&url, c, answer_id, None))
            .collect();
        let answer = comments
            .iter()
            .find(|c| c["isAnswer"] == true)
            .cloned()
            .unwrap_or(Value::Null);
        let labels: Vec<Value> = d
            .labels
            .iter()
            .filter_map(|name| self.meta.labels.iter().find(|l| l["name"] == name.as_str()))
            .map(|l| label_node(self.web, self.full, l))
            .collect();
        let poll = d.poll.as_ref().map(|p| {
            let options: Vec<Value> = p
                .options
                .iter()
                .map(|(id, option, votes)| json!({ "__typename": "DiscussionPollOption", "id": node_id("DPO", *id), "option": option, "totalVoteCount": votes }))
                .collect();
            json!({
                "__typename": "DiscussionPoll", "id": node_id("DP", p.id), "question": p.question,
                "totalVoteCount": p.options.iter().map(|o| o.2).sum::<u64>(), "options": options,
            })
        });
        let at = |t: Option<Timestamp>| t.map(|t| t.to_string());
        json!({
            "__typename": "Discussion", "id": node_id("D", d.id), "databaseId": d.id, "number": d.number,
            "title": d.title, "body": d.body, "bodyHTML": body_html(&d.body), "bodyText": body_text(&d.body),
            "url": url, "resourcePath": format!("/{}/discussions/{}", self.full, d.number),
            "createdAt": d.created_at.to_string(), "updatedAt": d.updated_at.to_string(),
            "publishedAt": d.created_at.to_string(), "lastEditedAt": at(d.last_edited_at),
            "closed": d.closed_at.is_some(), "closedAt": at(d.closed_at),
            "stateReason": d.closed_at.map(|_| "RESOLVED"), "locked": d.locked,
            "isAnswered": d.answer.is_some(), "answer": answer,
            "answerChosenAt": at(d.answer.map(|a| a.1)),
            "answerChosenBy": d.answer.map(|_| actor(self.web, "octocat")),
            "author": actor(self.web, &d.author), "authorAssociation": "MEMBER",
            "category": self.category(d.category), "labels": labels, "upvoteCount": d.upvotes,
            "poll": poll, "comments": comments, "repository": { "$repo": self.full },
        })
    }
}
