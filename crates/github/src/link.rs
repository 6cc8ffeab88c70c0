//! `Link` header pagination.

/// The `rel="next"` URL of a `Link` header, if any.
pub(crate) fn next_link(header: &str) -> Option<&str> {
    header.split(',').find_map(|part| {
        let (url, params) = part.trim().split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        is_next.then(|| url.trim().trim_start_matches('<').trim_end_matches('>'))
    })
}

/// The path and query of a URL. `next` links are absolute; following them by path only
/// keeps requests on the configured API host, where the client sends credentials.
pub(crate) fn path_and_query(url: &str) -> &str {
    match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_next_among_rels() {
        let h = r#"<https://api.github.com/organizations/9/repos?per_page=100&page=2>; rel="next", <https://api.github.com/organizations/9/repos?per_page=100&page=3>; rel="last""#;
        assert_eq!(
            next_link(h),
            Some("https://api.github.com/organizations/9/repos?per_page=100&page=2")
        );
        let last = r#"<https://x/a?page=1>; rel="prev", <https://x/a?page=1>; rel="first""#;
        assert_eq!(next_link(last), None);
        assert_eq!(next_link(""), None);
    }

    #[test]
    fn keeps_path_and_query() {
        assert_eq!(
            path_and_query("https://ghe.example.com/api/v3/organizations/9/repos?page=2"),
            "/api/v3/organizations/9/repos?page=2"
        );
        assert_eq!(path_and_query("/orgs/a/repos"), "/orgs/a/repos");
        assert_eq!(path_and_query("http://h:1"), "/");
    }
}
