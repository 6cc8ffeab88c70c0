#![recursion_limit = "256"]

//! # repovault-testkit
//!
//! Test support for repovault, never used by production code:
//!
//! - [`FakeGitHub`]: the GitHub REST subset repovault uses (and GraphQL for
//!   discussions and Projects v2), with GitHub's shapes, pagination, rate-limit
//!   headers and errors, serving real repositories over git's smart HTTP protocol,
//!   with faults on demand.
//! - [`fixtures`]: builders for real git repositories (standard, empty, wiki, unusual
//!   ref names).
//! - [`history`]: large repositories with long histories, via `git fast-import`.
//! - [`http`]: one HTTP request, for tests that talk to a server.
//! - [`org`]: whole fixture organizations in one call.
//! - [`localstack`]: a fresh bucket and queues on LocalStack, and ways to look inside.
//! - [`ThrottledProxy`]: a slow TCP hop, to catch an upload mid-way.
//! - [`moto`]: a fresh bucket on moto's S3 server, a second S3 implementation.
//! - [`StrictS3`]: a proxy in front of S3 that rejects what a given provider lacks
//!   (checksum algorithms, trailing checksums, conditional writes, tagging).
//! - [`ForwardProxy`]: a counting HTTP forward proxy (`CONNECT` and absolute-form),
//!   to see every outbound request go through `HTTPS_PROXY`/`HTTP_PROXY`.
//! - [`FakeEcsAgent`]: the ECS agent's task-protection endpoint.
//! - [`contract`]: the `Store` and `Queue` contract suites every adapter passes.
//! - [`OtlpReceiver`]: an OTLP/HTTP receiver decoding spans and metrics with the
//!   official protobuf definitions.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use repovault_testkit::{FakeGitHub, FakeGitHubOptions, org};
//!
//! let github = FakeGitHub::start(FakeGitHubOptions { token: Some("t0k3n".into()), ..Default::default() }).await?;
//! let names = org::standard_org(&github, "acme", 5);
//! println!("{} repos at {}", names.len(), github.api_url());
//! # Ok(()) }
//! ```

mod clock;
pub mod contract;
mod counting_store;
mod fake_ecs_agent;
mod fake_github;
pub mod first_format;
pub mod fixtures;
mod forward_proxy;
pub mod history;
pub mod http;
pub mod localstack;
pub mod moto;
pub mod org;
mod otlp;
pub mod strict_s3;
mod throttle;

pub use clock::ManualClock;
pub use counting_store::CountingStore;
pub use fake_ecs_agent::FakeEcsAgent;
pub use fake_github::{
    ContentLimit, FAKE_LEAKED_SECRET, FAKE_LEAKED_SECRETS, FakeApp, FakeGitHub, FakeGitHubOptions,
    FaultStatus, MetadataSpec, RepoSpec, Stats, TEST_APP_PRIVATE_KEY, TOKEN_USER,
};
pub use forward_proxy::{ForwardProxy, ProxiedRequest};
pub use otlp::{OtlpReceiver, ReceivedPoint, ReceivedSpan};
pub use strict_s3::{StrictRules, StrictS3};
pub use throttle::ThrottledProxy;

/// Size of a directory tree in KiB, as GitHub reports `size` (0 if absent).
pub(crate) fn dir_size_kb(path: &std::path::Path) -> u64 {
    repovault_git::dir_size(path).unwrap_or(0).div_ceil(1024)
}
