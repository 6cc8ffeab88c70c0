//! What restored text says about where it came from, and references kept pointing at
//! the right issue when numbers had to change.
//!
//! Every issue, pull request and comment a restore creates starts with one quoted
//! line naming the original author, date and URL. GitHub cannot keep authors (the
//! restoring account writes everything); the line keeps who wrote it, and its URL is
//! the key by which a rerun recognises an object it created but did not journal. The
//! author is written as code (`` `@octocat` ``), which GitHub does not turn into a
//! mention: a restore notifies nobody by naming them.

use jiff::Timestamp;

/// The first line of a restored body: `> {what} by `@{login}` on {date}: {url}`.
pub fn provenance(what: &str, login: &str, at: Option<Timestamp>, url: &str) -> String {
    let date = at
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "an unknown date".into());
    format!("> {what} by `@{login}` on {date}: {url}")
}

/// The original URL a restored body names on its first line, if it is one of ours.
pub fn origin_of(body: &str) -> Option<&str> {
    let first = body.lines().next()?;
    if !first.starts_with("> ") {
        return None;
    }
    let (_, url) = first.rsplit_once(": ")?;
    (url.starts_with("http://") || url.starts_with("https://")).then_some(url)
}

/// The longest body GitHub takes (characters) for an issue, pull request or comment.
pub const MAX_BODY: usize = 65_536;

/// The longest title GitHub takes (characters).
pub const MAX_TITLE: usize = 256;

/// `text` cut to at most `max` characters, saying so at its end when it was cut.
pub fn within(text: &str, max: usize, cut: &str) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let keep = max.saturating_sub(cut.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(cut);
    out
}

/// `header` lines (quoted), a blank line, then `body` with its `#N` references
/// renumbered by `map`, within GitHub's limit (a longer text is cut, saying where the
/// whole of it is).
pub fn restored_body(header: &[String], body: &str, map: &dyn Fn(u64) -> Option<u64>) -> String {
    let mut text = header.join("\n>\n");
    let body = renumber(body, map);
    if !body.trim().is_empty() {
        text.push_str("\n\n");
        text.push_str(&body);
    }
    within(
        &text,
        MAX_BODY,
        "\n\n> (cut here: GitHub takes 65,536 characters; the whole text is in the backup)",
    )
}

/// `text` with every `#N` reference that `map` moves rewritten (`#N` at the start or
/// after a character that is not a letter, digit, `&` or `/`, and not followed by a
/// letter or digit: not `&#123;`, a URL's `/#12`, or `#12abc`).
pub fn renumber(text: &str, map: &dyn Fn(u64) -> Option<u64>) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] == b'#' {
            let before_ok = i == 0
                || !(bytes[i - 1].is_ascii_alphanumeric()
                    || bytes[i - 1] == b'&'
                    || bytes[i - 1] == b'/');
            let digits = bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let end = i + 1 + digits;
            let after_ok = end >= bytes.len() || !bytes[end].is_ascii_alphanumeric();
            if before_ok && digits > 0 && after_ok {
                if let Some(new) = text[i + 1..end]
                    .parse::<u64>()
                    .ok()
                    .and_then(|old| map(old).filter(|new| *new != old))
                {
                    out.push_str(&text[copied..i]);
                    out.push_str(&format!("#{new}"));
                    copied = end;
                }
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_names_author_date_and_url_and_is_found_again() {
        let at: Timestamp = "2024-03-01T10:20:00Z".parse().unwrap();
        let line = provenance(
            "Originally opened",
            "octocat",
            Some(at),
            "https://github.com/acme/api/issues/5",
        );
        assert_eq!(
            line,
            "> Originally opened by `@octocat` on 2024-03-01 10:20 UTC: https://github.com/acme/api/issues/5"
        );
        let body = restored_body(&[line], "text", &|_| None);
        assert_eq!(
            origin_of(&body),
            Some("https://github.com/acme/api/issues/5")
        );
        assert_eq!(origin_of("a body someone wrote: https://x"), None);
    }

    #[test]
    fn a_body_longer_than_github_takes_is_cut_and_says_so() {
        let long = "x".repeat(70_000);
        let body = restored_body(&["> header".into()], &long, &|_| None);
        assert_eq!(body.chars().count(), MAX_BODY);
        assert!(body.ends_with("the whole text is in the backup)"));
        assert!(body.starts_with("> header\n\nxxx"));
        assert_eq!(within("short", 10, "…"), "short");
    }

    #[test]
    fn only_references_that_moved_are_rewritten() {
        let map = |n: u64| match n {
            3 => Some(4),
            5 => Some(5),
            _ => None,
        };
        assert_eq!(
            renumber("see #3, #5 and (#3). #30 #3a &#3; x/#3 #3", &map),
            "see #4, #5 and (#4). #30 #3a &#3; x/#3 #4"
        );
        assert_eq!(renumber("ünï #3 ✓", &map), "ünï #4 ✓");
    }
}
