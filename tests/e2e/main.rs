//! repovault's end-to-end tests: one binary, a module per area.
//!
//! How they work: each test starts its own [`FakeGitHub`](repovault_testkit::FakeGitHub)
//! on a free loopback port, builds real git repositories under a temp dir with the
//! testkit's fixture builders, and drives repovault against it, in-process or as real
//! child processes (the binaries built by `cargo build --workspace --all-targets`, found
//! beside this test binary). Backups are checked with standard tools only: `tar`,
//! `git clone`, `git fsck`. Nothing is shared between tests, so they run in parallel.
//!
//! Distributed tests also need LocalStack (S3 + SQS), which `scripts/test` starts;
//! each test creates its own bucket, queue and dead-letter queue in it.

mod action;
mod app_auth;
mod attachments;
mod bench;
mod chains;
mod contract;
mod deployment;
mod distributed;
mod encryption;
mod event_feed;
mod fake_github_data;
mod fake_github_graphql;
mod fake_github_writes;
mod git_children;
mod github_source;
mod graphql_data;
mod incremental;
mod lfs;
mod notify;
mod operator_input;

mod procs;
mod proxy;
mod receiver;
mod restore_github;
mod run_local;
mod s3_compat;
mod settings_data;
mod soak;
mod status;
mod support;
mod telemetry;
mod untrusted_store;
mod verify_restore;
