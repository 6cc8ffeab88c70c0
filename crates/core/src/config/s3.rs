//! `s3:`: how each S3 bucket is reached and what the service behind it supports.
//!
//! Settings belong to a bucket (every target in it shares them): the endpoint of an
//! S3-compatible service (R2, B2, MinIO, GCS, Wasabi), its region and addressing, the
//! credentials used for it (two tenants' buckets need not share keys), and its
//! compatibility profile: which integrity checksum and which conditional writes
//! repovault may ask of it. A bucket without settings uses the command line's
//! (`--s3-endpoint`, `--s3-region`, `--s3-path-style`, `--s3-compat`), then the AWS
//! SDK's own (`AWS_ENDPOINT_URL`, `AWS_REGION`, the default credential chain).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::Invalid;

/// One bucket's entry, as the file says it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawS3Bucket {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub force_path_style: Option<bool>,
    pub compat: Option<RawCompat>,
    /// A profile of the AWS shared config and credentials files.
    pub profile: Option<String>,
    /// Environment variables holding this bucket's keys.
    pub credentials_env: Option<RawCredentialsEnv>,
}

/// `compat:` — a provider's name, `auto`, or the capabilities spelled out.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawCompat {
    Named(String),
    Explicit(RawCompatExplicit),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawCompatExplicit {
    pub checksum: String,
    pub conditional_writes: bool,
    pub tagging: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawCredentialsEnv {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// The integrity check S3 itself makes of what repovault uploads (repovault's own
/// SHA-256 of every object is recorded in any case, and checked by `verify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Checksum {
    /// CRC64NVME of the whole object, multipart included (AWS S3 since 2025).
    Crc64Nvme,
    /// SHA-256: of the object for single uploads, of each part for multipart ones.
    Sha256,
    /// CRC32: of the object for single uploads, of each part for multipart ones.
    Crc32,
    /// No checksum header at all, and none added by the SDK: TLS and Content-Length
    /// only, then repovault's read-back check of the size and digest.
    None,
}

impl S3Checksum {
    pub fn parse(text: &str) -> Result<S3Checksum, Invalid> {
        Ok(match text {
            "crc64nvme" => S3Checksum::Crc64Nvme,
            "sha256" => S3Checksum::Sha256,
            "crc32" => S3Checksum::Crc32,
            "none" => S3Checksum::None,
            other => {
                return Err(Invalid(format!(
                    "unknown checksum {other:?}: use crc64nvme, sha256, crc32 or none"
                )));
            }
        })
    }
}

impl fmt::Display for S3Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            S3Checksum::Crc64Nvme => "crc64nvme",
            S3Checksum::Sha256 => "sha256",
            S3Checksum::Crc32 => "crc32",
            S3Checksum::None => "none",
        })
    }
}

/// What repovault may ask of an S3-compatible service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S3Compat {
    pub checksum: S3Checksum,
    /// `If-None-Match: *` on `PutObject` and `CompleteMultipartUpload`. Without it a
    /// create-only write asks `HEAD` just before its commit point: two writers of one
    /// key at the same instant could both pass it, the later one winning.
    pub conditional_writes: bool,
    /// Object tags (the digest of a multipart upload, known only at its end). Without
    /// them the digest goes into the object's metadata: by a copy of the object onto
    /// itself after a multipart upload.
    pub tagging: bool,
}

impl S3Compat {
    /// AWS S3: everything repovault uses.
    pub const AWS: S3Compat = S3Compat {
        checksum: S3Checksum::Crc64Nvme,
        conditional_writes: true,
        tagging: true,
    };
}

/// A known S3-compatible service: its name in `compat:`, how its endpoints are
/// recognised and what it supports (docs/STORAGE.md has the sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider {
    pub name: &'static str,
    /// Endpoint host suffixes that identify it.
    pub hosts: &'static [&'static str],
    pub compat: S3Compat,
}

/// Every known provider; `aws` first (the default without a custom endpoint), `minio`
/// last (any other custom endpoint is assumed to be MinIO since 2025: all of S3's
/// features repovault uses).
pub const PROVIDERS: &[Provider] = &[
    Provider {
        name: "aws",
        hosts: &[".amazonaws.com"],
        compat: S3Compat::AWS,
    },
    Provider {
        name: "r2",
        hosts: &[".r2.cloudflarestorage.com"],
        compat: S3Compat {
            checksum: S3Checksum::Crc64Nvme,
            conditional_writes: true,
            tagging: false,
        },
    },
    Provider {
        name: "b2",
        hosts: &[".backblazeb2.com"],
        compat: S3Compat {
            checksum: S3Checksum::None,
            conditional_writes: false,
            tagging: false,
        },
    },
    Provider {
        name: "gcs",
        hosts: &[".storage.googleapis.com"],
        compat: S3Compat {
            checksum: S3Checksum::None,
            conditional_writes: false,
            tagging: false,
        },
    },
    Provider {
        name: "wasabi",
        hosts: &[".wasabisys.com"],
        compat: S3Compat {
            checksum: S3Checksum::None,
            conditional_writes: false,
            tagging: true,
        },
    },
    Provider {
        name: "minio",
        hosts: &[],
        compat: S3Compat::AWS,
    },
];

/// The provider named `name`.
pub fn provider(name: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.name == name)
}

/// The provider an endpoint belongs to: AWS without one, the provider whose host it
/// is, else `minio` (a self-hosted service).
pub fn provider_for(endpoint: Option<&str>) -> &'static Provider {
    let Some(endpoint) = endpoint else {
        return &PROVIDERS[0];
    };
    let host = url::Url::parse(endpoint)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    PROVIDERS
        .iter()
        .find(|p| {
            p.hosts
                .iter()
                .any(|suffix| host == suffix.trim_start_matches('.') || host.ends_with(suffix))
        })
        .unwrap_or(PROVIDERS.last().expect("providers listed"))
}

/// Whose keys sign requests to a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum S3Credentials {
    /// The AWS SDK's default chain (environment, profile, ECS task role, IMDS).
    #[default]
    Default,
    /// A named profile of the shared AWS config and credentials files.
    Profile(String),
    /// Keys read from these environment variables when the store is opened.
    Env {
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    },
}

/// One bucket's settings, validated. `None` leaves a choice to the next source (the
/// command line, then the SDK; the compatibility profile: by endpoint host).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: Option<bool>,
    pub compat: Option<S3Compat>,
    pub credentials: S3Credentials,
}

impl S3Settings {
    /// These settings, with what they leave open taken from `fallback`.
    pub fn or(self, fallback: &S3Settings) -> S3Settings {
        S3Settings {
            endpoint: self.endpoint.or_else(|| fallback.endpoint.clone()),
            region: self.region.or_else(|| fallback.region.clone()),
            path_style: self.path_style.or(fallback.path_style),
            compat: self.compat.or(fallback.compat),
            credentials: match self.credentials {
                S3Credentials::Default => fallback.credentials.clone(),
                own => own,
            },
        }
    }
}

/// Parses `compat:`'s value (or `--s3-compat`'s): `auto` is `None`.
pub fn parse_compat(raw: &RawCompat) -> Result<Option<S3Compat>, Invalid> {
    match raw {
        RawCompat::Named(name) if name == "auto" => Ok(None),
        RawCompat::Named(name) => provider(name).map(|p| Some(p.compat)).ok_or_else(|| {
            let names: Vec<&str> = PROVIDERS.iter().map(|p| p.name).collect();
            Invalid(format!(
                "unknown provider {name:?}: use auto, {}, or {{checksum, conditional-writes, tagging}}",
                names.join(", ")
            ))
        }),
        RawCompat::Explicit(e) => Ok(Some(S3Compat {
            checksum: S3Checksum::parse(&e.checksum)?,
            conditional_writes: e.conditional_writes,
            tagging: e.tagging,
        })),
    }
}

/// Checks an endpoint URL: http(s), a host, nothing after the path.
pub fn check_endpoint(endpoint: &str) -> Result<(), Invalid> {
    let url =
        url::Url::parse(endpoint).map_err(|e| Invalid(format!("not a URL ({e}): {endpoint:?}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(Invalid(format!(
            "must be an http(s) URL with a host, got {endpoint:?}"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(Invalid(format!(
            "must not carry a query, fragment or user: {endpoint:?}"
        )));
    }
    Ok(())
}

/// Validates `s3:`, one error per key at fault.
pub(crate) fn resolve_s3(
    raw: BTreeMap<String, RawS3Bucket>,
    err: &mut impl FnMut(String, String),
) -> BTreeMap<String, S3Settings> {
    let mut out = BTreeMap::new();
    for (bucket, entry) in raw {
        let key = |what: &str| format!("s3.{bucket}.{what}");
        if crate::Target::parse(&format!("s3://{bucket}"), std::path::Path::new("/")).is_err() {
            err(
                format!("s3.{bucket}"),
                "not an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)".into(),
            );
            continue;
        }
        if let Some(endpoint) = &entry.endpoint
            && let Err(Invalid(reason)) = check_endpoint(endpoint)
        {
            err(key("endpoint"), reason);
        }
        if let Some(region) = &entry.region
            && (region.is_empty()
                || !region
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            err(
                key("region"),
                format!("{region:?} is not a region name (e.g. eu-west-1, auto)"),
            );
        }
        let compat = match entry.compat.as_ref().map(parse_compat) {
            Some(Ok(c)) => c,
            Some(Err(Invalid(reason))) => {
                err(key("compat"), reason);
                None
            }
            None => None,
        };
        let credentials = match (entry.profile, entry.credentials_env) {
            (Some(_), Some(_)) => {
                err(
                    format!("s3.{bucket}"),
                    "set either `profile` or `credentials-env`, not both".into(),
                );
                S3Credentials::Default
            }
            (Some(profile), None) if profile.is_empty() => {
                err(key("profile"), "must not be empty".into());
                S3Credentials::Default
            }
            (Some(profile), None) => S3Credentials::Profile(profile),
            (None, Some(env)) => {
                for (what, var) in [
                    ("access-key-id", Some(&env.access_key_id)),
                    ("secret-access-key", Some(&env.secret_access_key)),
                    ("session-token", env.session_token.as_ref()),
                ] {
                    if let Some(var) = var
                        && (var.is_empty()
                            || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                    {
                        err(
                            key(&format!("credentials-env.{what}")),
                            format!("{var:?} is not an environment variable's name"),
                        );
                    }
                }
                S3Credentials::Env {
                    access_key_id: env.access_key_id,
                    secret_access_key: env.secret_access_key,
                    session_token: env.session_token,
                }
            }
            (None, None) => S3Credentials::Default,
        };
        out.insert(
            bucket,
            S3Settings {
                endpoint: entry.endpoint,
                region: entry.region,
                path_style: entry.force_path_style,
                compat,
                credentials,
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_recognised_by_their_endpoint_host() {
        let name = |e: Option<&str>| provider_for(e).name;
        assert_eq!(name(None), "aws");
        assert_eq!(name(Some("https://s3.eu-west-1.amazonaws.com")), "aws");
        assert_eq!(
            name(Some("https://0123abcd.r2.cloudflarestorage.com")),
            "r2"
        );
        assert_eq!(name(Some("https://s3.us-west-004.backblazeb2.com")), "b2");
        assert_eq!(name(Some("https://storage.googleapis.com")), "gcs");
        assert_eq!(
            name(Some("https://s3.eu-central-1.wasabisys.com")),
            "wasabi"
        );
        assert_eq!(name(Some("http://127.0.0.1:9000")), "minio");
        // A look-alike host is not the provider.
        assert_eq!(
            name(Some("https://evil-r2.cloudflarestorage.com.example")),
            "minio"
        );
    }

    #[test]
    fn compat_is_a_provider_auto_or_spelled_out() {
        let named = |n: &str| parse_compat(&RawCompat::Named(n.into()));
        assert_eq!(named("aws").unwrap(), Some(S3Compat::AWS));
        assert_eq!(named("auto").unwrap(), None);
        let e = named("s4").unwrap_err().0;
        assert!(
            e.contains("unknown provider \"s4\"") && e.contains("r2"),
            "{e}"
        );
        let explicit = RawCompat::Explicit(RawCompatExplicit {
            checksum: "crc32".into(),
            conditional_writes: false,
            tagging: true,
        });
        assert_eq!(
            parse_compat(&explicit).unwrap(),
            Some(S3Compat {
                checksum: S3Checksum::Crc32,
                conditional_writes: false,
                tagging: true
            })
        );
    }

    #[test]
    fn bad_entries_name_their_key() {
        let yaml = r#"
tenant-a:
  endpoint: ftp://example.com
  region: "eu west"
  compat: s4
  credentials-env: { access-key-id: "A-B", secret-access-key: SECRET }
Bad_Bucket: {}
tenant-b: { profile: b, credentials-env: { access-key-id: A, secret-access-key: B } }
"#;
        let raw: BTreeMap<String, RawS3Bucket> = yaml_serde::from_str(yaml).unwrap();
        let mut keys = Vec::new();
        resolve_s3(raw, &mut |k, _| keys.push(k));
        keys.sort();
        assert_eq!(
            keys,
            [
                "s3.Bad_Bucket",
                "s3.tenant-a.compat",
                "s3.tenant-a.credentials-env.access-key-id",
                "s3.tenant-a.endpoint",
                "s3.tenant-a.region",
                "s3.tenant-b",
            ]
        );
    }

    /// docs/STORAGE.md's examples, as a user would copy them, load (a block without
    /// jobs given one).
    #[test]
    fn the_storage_guide_s_examples_are_valid() {
        let guide = include_str!("../../../../docs/STORAGE.md");
        let blocks: Vec<&str> = guide
            .split("```yaml\n")
            .skip(1)
            .filter_map(|rest| rest.split("```").next())
            .collect();
        assert!(blocks.len() >= 2, "docs/STORAGE.md has its examples");
        for block in blocks {
            let yaml = if block.contains("jobs:") {
                block.to_owned()
            } else {
                format!("{block}jobs:\n  - source: {{ org: acme }}\n    target: ./backups\n")
            };
            let config = crate::config::RawConfig::from_yaml(&yaml)
                .and_then(|raw| raw.validate(std::path::Path::new("/work")))
                .unwrap_or_else(|e| panic!("docs/STORAGE.md example: {e}\n{block}"));
            assert_eq!(block.contains("s3:"), !config.s3.is_empty(), "{block}");
            assert_eq!(block.contains("proxy:"), config.proxy.is_some(), "{block}");
            // The per-provider example: `<provider>-backups`'s endpoint picks it.
            for (bucket, settings) in &config.s3 {
                if let Some(named) = PROVIDERS
                    .iter()
                    .find(|p| *bucket == format!("{}-backups", p.name))
                {
                    let picked = provider_for(settings.endpoint.as_deref()).name;
                    assert_eq!(picked, named.name, "{bucket}");
                }
            }
        }
    }

    #[test]
    fn a_bucket_s_own_settings_come_before_the_command_line_s() {
        let own = S3Settings {
            region: Some("auto".into()),
            credentials: S3Credentials::Profile("tenant-a".into()),
            ..S3Settings::default()
        };
        let flags = S3Settings {
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: Some("us-east-1".into()),
            ..S3Settings::default()
        };
        let merged = own.or(&flags);
        assert_eq!(merged.region.as_deref(), Some("auto"));
        assert_eq!(merged.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(
            merged.credentials,
            S3Credentials::Profile("tenant-a".into())
        );
    }
}
