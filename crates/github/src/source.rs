//! Listing repositories: the [`Source`] implementation.

use async_trait::async_trait;
use repovault_core::ports::source::{Source, SourceError};
use repovault_core::{Owner, RepoRef, RepoSelector};

use crate::GitHubSource;
use crate::model::{GhRepository, GhUser};

const PER_PAGE: u32 = 100;

impl GitHubSource {
    /// The first page to list for an owner. A user's private repositories are only
    /// listed by `/user/repos`, when the token belongs to that user.
    async fn first_page(&self, owner: &Owner) -> Result<String, SourceError> {
        Ok(match owner {
            Owner::Org(org) => format!("/orgs/{org}/repos?type=all&per_page={PER_PAGE}"),
            Owner::User(user) => {
                if self
                    .login()
                    .await?
                    .is_some_and(|me| me.eq_ignore_ascii_case(user))
                {
                    format!("/user/repos?affiliation=owner&per_page={PER_PAGE}")
                } else {
                    format!("/users/{user}/repos?type=owner&per_page={PER_PAGE}")
                }
            }
        })
    }

    /// The token owner's login, if a person's token is used.
    async fn login(&self) -> Result<Option<String>, SourceError> {
        if !self.is_personal() {
            return Ok(None);
        }
        let (user, _): (GhUser, _) = self.get_json("/user").await?;
        Ok(Some(user.login))
    }
}

#[async_trait]
impl Source for GitHubSource {
    async fn list_repos(&self, selector: &RepoSelector) -> Result<Vec<RepoRef>, SourceError> {
        let mut next = Some(self.first_page(&selector.owner).await?);
        let mut listed = 0usize;
        let mut repos = Vec::new();
        let mut pages = 0;
        while let Some(path) = next {
            let (page, following): (Vec<GhRepository>, _) =
                self.get_json(&path).await.map_err(|e| match e {
                    SourceError::NotFound { .. } if pages == 0 => SourceError::NotFound {
                        what: selector.owner.to_string(),
                    },
                    other => other,
                })?;
            pages += 1;
            listed += page.len();
            repos.extend(
                page.into_iter()
                    .map(RepoRef::from)
                    .filter(|r| selector.matches(r)),
            );
            next = following;
        }
        tracing::info!(owner = %selector.owner, pages, listed, selected = repos.len(), "listed repositories");
        Ok(repos)
    }

    async fn repo(&self, owner: &str, name: &str) -> Result<Option<RepoRef>, SourceError> {
        match self
            .get_json::<GhRepository>(&format!("/repos/{owner}/{name}"))
            .await
        {
            Ok((repo, _)) => Ok(Some(repo.into())),
            Err(SourceError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
