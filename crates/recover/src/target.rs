//! The repository being restored into: every creating request paced by the
//! governor, and counted for the report.

use std::collections::BTreeMap;
use std::time::Duration;

use repovault_core::ports::source::{GitHubWriter, SourceError, Write, Written};
use serde_json::Value;

use crate::RecoverError;
use crate::pace::Governor;

/// `owner/name` on GitHub, and the writer that reaches it.
pub struct Target<'a> {
    pub owner: String,
    pub name: String,
    writer: &'a dyn GitHubWriter,
    governor: &'a tokio::sync::Mutex<Governor>,
    /// How long our pacing held this repository's requests.
    held: Duration,
    /// GitHub's own limits waited out (`403`/`429` with `retry-after`).
    pub limited: Duration,
    /// Objects created, by kind.
    pub created: BTreeMap<&'static str, u64>,
}

impl<'a> Target<'a> {
    pub fn new(
        owner: &str,
        name: &str,
        writer: &'a dyn GitHubWriter,
        governor: &'a tokio::sync::Mutex<Governor>,
    ) -> Self {
        Target {
            owner: owner.to_owned(),
            name: name.to_owned(),
            writer,
            governor,
            held: Duration::ZERO,
            limited: Duration::ZERO,
            created: BTreeMap::new(),
        }
    }

    /// `/repos/<owner>/<name>`.
    pub fn api(&self) -> String {
        format!("/repos/{}/{}", self.owner, self.name)
    }

    /// `owner/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// How long pacing held requests: ours, and GitHub's limits.
    pub fn paced(&self) -> Duration {
        self.held + self.limited
    }

    /// Waits for the governor's leave to send one creating request.
    async fn admit(&mut self) {
        self.held += self.governor.lock().await.admit().await;
    }

    /// `request` to `at`, held for the governor first when it `creates`; GitHub's own
    /// wait in it is counted.
    async fn governed(
        &mut self,
        creates: bool,
        at: &str,
        request: impl Future<Output = Result<Written, SourceError>>,
    ) -> Result<Written, RecoverError> {
        if creates {
            self.admit().await;
        }
        let written = request
            .await
            .map_err(|e| RecoverError::GitHub(at.to_owned(), e))?;
        self.limited += written.waited;
        Ok(written)
    }

    /// A creating request, paced: GitHub's answer, a success or a `422`.
    pub async fn send(
        &mut self,
        method: Write,
        path: &str,
        body: &Value,
    ) -> Result<Written, RecoverError> {
        let writer = self.writer;
        self.governed(true, path, writer.write(method, path, body))
            .await
    }

    /// [`send`](Self::send) that must succeed; counts one `kind` created on `201`.
    pub async fn create(
        &mut self,
        kind: &'static str,
        method: Write,
        path: &str,
        body: &Value,
    ) -> Result<Value, RecoverError> {
        let written = self.send(method, path, body).await?;
        if written.status == 422 {
            return Err(RecoverError::Refused(path.to_owned(), written.refusal()));
        }
        if written.status == 201 {
            *self.created.entry(kind).or_default() += 1;
        }
        Ok(written.body)
    }

    pub async fn upload(
        &mut self,
        url: &str,
        content_type: &str,
        bytes: bytes::Bytes,
    ) -> Result<Written, RecoverError> {
        let writer = self.writer;
        self.governed(true, url, writer.upload(url, content_type, bytes))
            .await
    }

    /// A request under a preview media type: paced when it creates (`method`).
    pub async fn preview(
        &mut self,
        method: Option<Write>,
        path: &str,
        body: &Value,
        media_type: &str,
    ) -> Result<Written, RecoverError> {
        let writer = self.writer;
        let request = writer.preview(method, path, body, media_type);
        self.governed(method.is_some(), path, request).await
    }

    pub async fn read(&self, path: &str) -> Result<Option<Value>, RecoverError> {
        self.writer
            .read(path)
            .await
            .map_err(|e| RecoverError::GitHub(path.to_owned(), e))
    }

    pub async fn read_all(&self, path: &str) -> Result<Vec<Value>, RecoverError> {
        match self.writer.read_all(path).await {
            Ok(items) => Ok(items),
            Err(SourceError::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(RecoverError::GitHub(path.to_owned(), e)),
        }
    }
}
