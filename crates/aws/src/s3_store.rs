//! A [`Store`] on an S3 bucket.

use std::collections::HashMap;
use std::io;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, CompletedPart, Tag, Tagging,
};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use jiff::Timestamp;
use repovault_core::config::{S3Checksum, S3Compat};
use repovault_core::ports::store::{
    ByteStream, Created, ObjectDigest, ObjectInfo, ObjectMetadata, PutReceipt, StaleKeys, Store,
    StoreError, check_key, meta,
};
use tokio::task::JoinSet;

use crate::sdk_message;

/// S3's minimum part size (except the last part).
const MIN_PART_SIZE: usize = 5 << 20;
/// The largest object `CopyObject` copies in one request.
const MAX_COPY_SIZE: u64 = 5 << 30;

/// Objects in one bucket; keys are used as given (the target prefix is part of them).
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    part_size: usize,
    parts_in_flight: usize,
    compat: S3Compat,
}

impl S3Store {
    /// A store on AWS S3 with 8 MiB parts, 3 in flight: about 32 MiB of buffers per
    /// upload.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Store {
            client,
            bucket: bucket.into(),
            part_size: 8 << 20,
            parts_in_flight: 3,
            compat: S3Compat::AWS,
        }
    }

    /// What the service behind the bucket supports (an S3-compatible one may lack
    /// a checksum algorithm, conditional writes or tagging).
    pub fn with_compat(mut self, compat: S3Compat) -> Self {
        self.compat = compat;
        self
    }

    /// Part size (at least 5 MiB) and parts uploaded at once: memory per upload is
    /// about `part_size × (parts_in_flight + 1)`.
    pub fn with_parts(mut self, part_size: usize, parts_in_flight: usize) -> Self {
        self.part_size = part_size.max(MIN_PART_SIZE);
        self.parts_in_flight = parts_in_flight.max(1);
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Part `n`'s size: doubles every 1,000 parts, so 10,000 parts hold ~8 TiB at the
    /// default size, while small archives keep small parts.
    fn part_size_for(&self, part_number: i32) -> usize {
        let doublings = ((part_number.max(1) - 1) / 1000).min(9) as u32;
        self.part_size << doublings
    }

    fn backend<E>(&self, key: &str, err: &SdkError<E, HttpResponse>) -> StoreError
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        store_error(&self.bucket, key, err)
    }

    async fn put_small(
        &self,
        key: &str,
        body: Bytes,
        metadata: &ObjectMetadata,
        sha256: &str,
        mode: Mode,
    ) -> Result<(), StoreError> {
        let size = body.len();
        if mode == Mode::Create {
            self.refuse_existing(key).await?;
        }
        let mut metadata = to_map(metadata);
        let digest = [
            (meta::SIZE_BYTES, size.to_string()),
            (meta::SHA256, sha256.to_owned()),
        ];
        let mut request = self.client.put_object().bucket(&self.bucket).key(key);
        if self.compat.tagging {
            let tags: Vec<String> = digest.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.tagging(tags.join("&"));
        } else {
            metadata.extend(digest.map(|(k, v)| (k.to_owned(), v)));
        }
        // The service rejects the object unless its bytes match what we streamed.
        request = match self.compat.checksum {
            S3Checksum::Crc64Nvme | S3Checksum::Sha256 => {
                request.checksum_sha256(b64(&hex::decode(sha256).expect("our own hex digest")))
            }
            S3Checksum::Crc32 => request.checksum_crc32(b64(&crc32(&body).to_be_bytes())),
            S3Checksum::None => request,
        };
        if mode == Mode::Create && self.compat.conditional_writes {
            request = request.if_none_match("*");
        }
        request
            .body(SdkByteStream::from(body))
            .set_metadata(Some(metadata))
            .send()
            .await
            .map_err(|e| self.backend(key, &e))?;
        Ok(())
    }

    /// Without conditional writes, create-only is a `HEAD` just before the commit
    /// point: [`StoreError::AlreadyExists`] if the key is there.
    async fn refuse_existing(&self, key: &str) -> Result<(), StoreError> {
        if self.compat.conditional_writes || self.object_head(key).await?.is_none() {
            return Ok(());
        }
        Err(StoreError::AlreadyExists {
            key: key.to_owned(),
        })
    }

    async fn object_head(
        &self,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::head_object::HeadObjectOutput>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => Ok(Some(head)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(self.backend(key, &e)),
        }
    }

    /// Attaches a multipart upload's digest, known only at its end: as tags, or
    /// without tagging as metadata, by copying the object onto itself (S3 copies up
    /// to 5 GiB in one request).
    async fn attach_digest(
        &self,
        key: &str,
        size: u64,
        sha256: &str,
        metadata: &ObjectMetadata,
    ) -> Result<(), StoreError> {
        if self.compat.tagging {
            return self.tag_digest(key, size, sha256).await;
        }
        if size > MAX_COPY_SIZE {
            return Err(StoreError::Refused {
                key: key.to_owned(),
                message: format!(
                    "s3://{}/{key}: {size} bytes, over the 5 GiB a copy can take: its digest cannot be attached on a store without object tagging",
                    self.bucket
                ),
            });
        }
        let mut metadata = to_map(metadata);
        metadata.insert(meta::SIZE_BYTES.to_owned(), size.to_string());
        metadata.insert(meta::SHA256.to_owned(), sha256.to_owned());
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(key)
            .copy_source(format!("{}/{}", self.bucket, urlencoding_path(key)))
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .set_metadata(Some(metadata))
            .content_type(content_type(key))
            .send()
            .await
            .map_err(|e| self.backend(key, &e))?;
        Ok(())
    }

    async fn tag_digest(&self, key: &str, size: u64, sha256: &str) -> Result<(), StoreError> {
        let tag = |k: &str, v: String| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value set")
        };
        let tagging = Tagging::builder()
            .tag_set(tag(meta::SIZE_BYTES, size.to_string()))
            .tag_set(tag(meta::SHA256, sha256.to_owned()))
            .build()
            .expect("tag set given");
        self.client
            .put_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| self.backend(key, &e))?;
        Ok(())
    }
}

/// S3 error codes that retrying cannot fix: the operator must (permissions, bucket).
const PERMANENT_CODES: &[&str] = &[
    "AccessDenied",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "InvalidBucketName",
    "NoSuchBucket",
    "SignatureDoesNotMatch",
    "AccountProblem",
    "KMS.DisabledException",
    "KMS.NotFoundException",
    "NotImplemented",
];

/// An SDK error as a [`StoreError`]: `412`/`409` on a conditional write is
/// [`StoreError::AlreadyExists`]; denials and a missing bucket are
/// [`StoreError::Refused`] (permanent); anything else is retryable.
fn store_error<E>(bucket: &str, key: &str, err: &SdkError<E, HttpResponse>) -> StoreError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    };
    let mut message = format!("s3://{bucket}/{key}: {}", sdk_message(err));
    if code == Some("NotImplemented") {
        message.push_str(
            " (the service lacks a feature this store's profile uses: set its s3-compat, docs/STORAGE.md)",
        );
    }
    if matches!(status, Some(412 | 409)) && code != Some("OperationAborted") {
        StoreError::AlreadyExists {
            key: key.to_owned(),
        }
    } else if code.is_some_and(|c| PERMANENT_CODES.contains(&c)) || status == Some(403) {
        StoreError::Refused {
            key: key.to_owned(),
            message,
        }
    } else {
        StoreError::Backend {
            key: key.to_owned(),
            message,
        }
    }
}

/// A key as `CopyObject`'s source wants it: percent-encoded, `/` kept.
fn urlencoding_path(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The CRC64NVME of `bytes`, big-endian.
fn crc64nvme(bytes: &[u8]) -> [u8; 8] {
    let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme);
    digest.update(bytes);
    digest.finalize().to_be_bytes()
}

/// The CRC32 (ISO-HDLC, S3's `CRC32`) of `bytes`.
fn crc32(bytes: &[u8]) -> u32 {
    let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32IsoHdlc);
    digest.update(bytes);
    digest.finalize() as u32
}

/// The part checksum a profile asks S3 to check (none for `none`).
fn part_algorithm(checksum: S3Checksum) -> Option<ChecksumAlgorithm> {
    match checksum {
        S3Checksum::Crc64Nvme => Some(ChecksumAlgorithm::Crc64Nvme),
        S3Checksum::Sha256 => Some(ChecksumAlgorithm::Sha256),
        S3Checksum::Crc32 => Some(ChecksumAlgorithm::Crc32),
        S3Checksum::None => None,
    }
}

/// S3's base64 form of a checksum's big-endian bytes.
fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn to_map(metadata: &ObjectMetadata) -> HashMap<String, String> {
    metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// An S3 time, to its full precision.
fn timestamp(t: &aws_sdk_s3::primitives::DateTime) -> Option<Timestamp> {
    Timestamp::new(t.secs(), t.subsec_nanos() as i32).ok()
}

/// An in-progress multipart upload: parts go up a few at a time; if it is dropped
/// before `complete` (error or cancellation), the upload is aborted.
struct Multipart {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    next_part: i32,
    in_flight: JoinSet<Result<(CompletedPart, Bytes), String>>,
    done: Vec<CompletedPart>,
    /// Buffers of parts already uploaded, reused for the next parts: a fixed set of
    /// allocations per upload keeps the allocator from fragmenting (with fresh
    /// buffers per part, glibc's RSS grew with the archive's size).
    spare: Vec<BytesMut>,
    max_in_flight: usize,
    compat: S3Compat,
    finished: bool,
}

impl Multipart {
    async fn create(
        store: &S3Store,
        key: &str,
        metadata: &ObjectMetadata,
    ) -> Result<Multipart, StoreError> {
        let mut request = store
            .client
            .create_multipart_upload()
            .bucket(&store.bucket)
            .key(key)
            .set_metadata(Some(to_map(metadata)))
            .set_checksum_algorithm(part_algorithm(store.compat.checksum));
        if store.compat.checksum == S3Checksum::Crc64Nvme {
            request = request.checksum_type(ChecksumType::FullObject);
        }
        let created = request.send().await.map_err(|e| store.backend(key, &e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        Ok(Multipart {
            client: store.client.clone(),
            bucket: store.bucket.clone(),
            key: key.to_owned(),
            upload_id,
            next_part: 1,
            in_flight: JoinSet::new(),
            done: Vec::new(),
            spare: Vec::new(),
            max_in_flight: store.parts_in_flight,
            compat: store.compat,
            finished: false,
        })
    }

    fn failed(&self, message: String) -> StoreError {
        StoreError::Backend {
            key: self.key.clone(),
            message: format!("s3://{}/{}: {message}", self.bucket, self.key),
        }
    }

    /// Uploads a part, waiting first if too many are in flight.
    async fn send(&mut self, part: Bytes) -> Result<(), StoreError> {
        while self.in_flight.len() >= self.max_in_flight {
            self.join_one().await?;
        }
        let number = self.next_part;
        self.next_part += 1;
        let request = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(SdkByteStream::from(part.clone()));
        let checksum = self.compat.checksum;
        self.in_flight.spawn(async move {
            // The part's checksum, computed here: every header explicit, whatever
            // the SDK's own checksum setting.
            let request = match checksum {
                S3Checksum::Crc64Nvme => request.checksum_crc64_nvme(b64(&crc64nvme(&part))),
                S3Checksum::Sha256 => {
                    use sha2::Digest;
                    request.checksum_sha256(b64(&sha2::Sha256::digest(&part)))
                }
                S3Checksum::Crc32 => request.checksum_crc32(b64(&crc32(&part).to_be_bytes())),
                S3Checksum::None => request,
            };
            let uploaded = request.send().await.map_err(|e| sdk_message(&e))?;
            // The part's checksum, as the completion must repeat it (absent: none).
            let completed = CompletedPart::builder()
                .part_number(number)
                .set_e_tag(uploaded.e_tag().map(str::to_owned))
                .set_checksum_crc64_nvme(uploaded.checksum_crc64_nvme().map(str::to_owned))
                .set_checksum_sha256(uploaded.checksum_sha256().map(str::to_owned))
                .set_checksum_crc32(uploaded.checksum_crc32().map(str::to_owned))
                .build();
            Ok((completed, part))
        });
        Ok(())
    }

    /// An empty buffer for the next part: a spare one when there is one.
    fn buffer(&mut self, capacity: usize) -> BytesMut {
        match self.spare.pop() {
            Some(mut buf) => {
                buf.clear();
                buf.reserve(capacity);
                buf
            }
            None => BytesMut::with_capacity(capacity),
        }
    }

    async fn join_one(&mut self) -> Result<(), StoreError> {
        match self.in_flight.join_next().await {
            Some(Ok(Ok((part, body)))) => {
                self.done.push(part);
                // Ours alone once the SDK is done with it.
                if let Ok(buf) = body.try_into_mut() {
                    self.spare.push(buf);
                }
                Ok(())
            }
            Some(Ok(Err(message))) => Err(self.failed(format!("part upload failed: {message}"))),
            Some(Err(join)) => Err(self.failed(format!("part upload task failed: {join}"))),
            None => Ok(()),
        }
    }

    /// Completes the upload, create-only in [`Mode::Create`] (`If-None-Match: *`, or
    /// a `HEAD` just before on a store without conditional writes), with the whole
    /// object's CRC64NVME where the profile has it: S3 assembles the parts and
    /// rejects the object unless its bytes are exactly the ones we streamed.
    async fn complete(
        mut self,
        store: &S3Store,
        crc64nvme: u64,
        mode: Mode,
    ) -> Result<(), StoreError> {
        while !self.in_flight.is_empty() {
            self.join_one().await?;
        }
        if mode == Mode::Create {
            store.refuse_existing(&self.key).await?;
        }
        let mut parts = std::mem::take(&mut self.done);
        parts.sort_by_key(|p| p.part_number());
        let mut request = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            );
        if self.compat.checksum == S3Checksum::Crc64Nvme {
            request = request
                .checksum_type(ChecksumType::FullObject)
                .checksum_crc64_nvme(b64(&crc64nvme.to_be_bytes()));
        }
        if mode == Mode::Create && self.compat.conditional_writes {
            request = request.if_none_match("*");
        }
        let result = request.send().await;
        match result {
            Ok(_) => {
                self.finished = true;
                Ok(())
            }
            // Dropped unfinished: the upload is aborted.
            Err(e) => Err(store_error(&self.bucket, &self.key, &e)),
        }
    }

    async fn abort(mut self) {
        self.finished = true;
        self.in_flight.abort_all();
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(key = %self.key, error = %sdk_message(&e), "could not abort the multipart upload; the bucket's lifecycle rule will");
        }
    }
}

impl Drop for Multipart {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Cancelled mid-upload (shutdown): abort in the background.
        self.in_flight.abort_all();
        let request = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = request.send().await;
            });
        }
    }
}

/// Whether a streamed write may replace an object at its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Replace,
}

impl S3Store {
    /// `put_stream` and `replace_stream`: one upload path, create-only or not.
    async fn upload(
        &self,
        key: &str,
        mut body: ByteStream,
        metadata: &ObjectMetadata,
        mode: Mode,
    ) -> Result<PutReceipt, StoreError> {
        check_key(key)?;
        let mut digest = ObjectDigest::default();
        let mut crc = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme);
        let mut part = BytesMut::with_capacity(self.part_size);
        let mut upload: Option<Multipart> = None;
        let mut streamed = 0u64;
        let streamed: Result<(), StoreError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|source| StoreError::Aborted {
                    key: key.to_owned(),
                    source,
                })?;
                digest.update(&chunk);
                crc.update(&chunk);
                streamed += chunk.len() as u64;
                if !self.compat.tagging && streamed > MAX_COPY_SIZE {
                    // Refused now, not after the upload: the digest could not be
                    // attached (see `attach_digest`).
                    return Err(StoreError::Refused {
                        key: key.to_owned(),
                        message: format!(
                            "s3://{}/{key}: over 5 GiB, the most a store without object tagging can hold with its digest (a copy attaches it)",
                            self.bucket
                        ),
                    });
                }
                part.extend_from_slice(&chunk);
                // Parts of exactly the part size (R2 wants every part but the last
                // the same size): what a chunk brings beyond it starts the next part.
                loop {
                    let next_number = upload.as_ref().map_or(1, |u| u.next_part);
                    let part_size = self.part_size_for(next_number);
                    if part.len() < part_size {
                        break;
                    }
                    if upload.is_none() {
                        upload = Some(Multipart::create(self, key, metadata).await?);
                    }
                    let upload = upload.as_mut().expect("created above");
                    let mut next = upload.buffer(part_size);
                    next.extend_from_slice(&part[part_size..]);
                    part.truncate(part_size);
                    let full = std::mem::replace(&mut part, next);
                    upload.send(full.freeze()).await?;
                }
            }
            Ok(())
        }
        .await;
        let receipt = digest.finish();
        let finished = match (streamed, upload) {
            (Err(e), Some(upload)) => {
                upload.abort().await;
                Err(e)
            }
            (Err(e), None) => Err(e),
            (Ok(()), None) => {
                self.put_small(key, part.freeze(), metadata, &receipt.sha256, mode)
                    .await
            }
            (Ok(()), Some(mut upload)) => {
                let last = part.freeze();
                let sent = if last.is_empty() {
                    Ok(())
                } else {
                    upload.send(last).await
                };
                match sent {
                    // A failed completion drops the upload, which aborts it.
                    Ok(()) => match upload.complete(self, crc.finalize(), mode).await {
                        Ok(()) => {
                            self.attach_digest(key, receipt.size, &receipt.sha256, metadata)
                                .await
                        }
                        Err(e) => Err(e),
                    },
                    Err(e) => {
                        upload.abort().await;
                        Err(e)
                    }
                }
            }
        };
        finished.map(|()| receipt)
    }
}

#[async_trait]
impl Store for S3Store {
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        metadata: &ObjectMetadata,
    ) -> Result<PutReceipt, StoreError> {
        self.upload(key, body, metadata, Mode::Create).await
    }

    async fn replace_stream(
        &self,
        key: &str,
        body: ByteStream,
        metadata: &ObjectMetadata,
    ) -> Result<PutReceipt, StoreError> {
        self.upload(key, body, metadata, Mode::Replace).await
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        check_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(SdkByteStream::from(body))
            .content_type(content_type(key))
            .send()
            .await
            .map_err(|e| self.backend(key, &e))?;
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<Created, StoreError> {
        check_key(key)?;
        if let Err(StoreError::AlreadyExists { .. }) = self.refuse_existing(key).await {
            return Ok(Created::AlreadyExists);
        }
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(SdkByteStream::from(body))
            .content_type(content_type(key));
        if self.compat.conditional_writes {
            request = request.if_none_match("*");
        }
        let result = request.send().await;
        match result {
            Ok(_) => Ok(Created::Created),
            // 412: the key exists. 409: a concurrent conditional write won the race.
            Err(e)
                if matches!(
                    e.raw_response().map(|r| r.status().as_u16()),
                    Some(412 | 409)
                ) =>
            {
                Ok(Created::AlreadyExists)
            }
            Err(e) => Err(self.backend(key, &e)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let Some(mut stream) = self.get_stream(key).await? else {
            return Ok(None);
        };
        let mut out = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.map_err(|source| StoreError::Io {
                key: key.to_owned(),
                source,
            })?);
        }
        Ok(Some(out.freeze()))
    }

    async fn get_stream(&self, key: &str) -> Result<Option<ByteStream>, StoreError> {
        check_key(key)?;
        let object = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(object) => object,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(self.backend(key, &e)),
        };
        let stream = futures::stream::unfold(object.body, |mut body| async move {
            body.next()
                .await
                .map(|item| (item.map_err(io::Error::other), body))
        });
        Ok(Some(stream.boxed()))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        check_key(key)?;
        let Some(head) = self.object_head(key).await? else {
            return Ok(None);
        };
        let mut metadata: ObjectMetadata = head
            .metadata()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        if self.compat.tagging {
            let tags = self
                .client
                .get_object_tagging()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| self.backend(key, &e))?;
            for tag in tags.tag_set() {
                metadata.insert(tag.key().to_owned(), tag.value().to_owned());
            }
        }
        Ok(Some(ObjectInfo {
            key: key.to_owned(),
            size: head.content_length().unwrap_or(0).max(0) as u64,
            last_modified: head.last_modified().and_then(timestamp),
            metadata,
        }))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.backend(prefix, &e))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                out.push(ObjectInfo {
                    key: key.to_owned(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                    last_modified: object.last_modified().and_then(timestamp),
                    metadata: ObjectMetadata::new(),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn abort_stale_uploads(
        &self,
        prefix: &str,
        stale: &StaleKeys<'_>,
    ) -> Result<usize, StoreError> {
        let listed = self
            .client
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .prefix(prefix)
            .send()
            .await
            .map_err(|e| self.backend(prefix, &e))?;
        let mut aborted = 0;
        for upload in listed.uploads() {
            let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                continue;
            };
            if !stale(key) {
                continue;
            }
            self.client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(id)
                .send()
                .await
                .map_err(|e| self.backend(key, &e))?;
            tracing::info!(key, upload_id = id, "aborted a stale multipart upload");
            aborted += 1;
        }
        Ok(aborted)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.backend(key, &e))?;
        Ok(())
    }
}

fn content_type(key: &str) -> &'static str {
    if key.ends_with(".json") {
        "application/json"
    } else if key.ends_with(".md") {
        "text/markdown; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}
