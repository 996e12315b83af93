//! The store for any S3-compatible server, through `aws-sdk-s3`.
//!
//! Assumptions, each checked against real servers (see `shared/DESIGN.md`): the SDK must
//! compute checksums only when required (its default CRC32 gets signed into presigned URLs
//! and breaks them on S3-compatible servers); each part's SHA-1 is signed into its URL as
//! `x-amz-checksum-sha1` so the server refuses corrupted bytes where it enforces that
//! header; `ListParts` pages at 1,000; browsers can only read `ETag` if the bucket's CORS
//! rule exposes it, so `prepare` writes that rule. Not every server enforces that SHA-1
//! (Ceph RGW 16 ignores it), so `prepare` also finds out, with a deliberately wrong part,
//! which digest the server does refuse, and `Content-MD5` is signed in where it must be.
//!
//! Over 400 lines on purpose: the one `Store` implementation for S3, each method next to
//! the SDK quirk it works around; splitting it would part a call from its reason.

use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation, StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, ChecksumAlgorithm, CompletedMultipartUpload,
    CompletedPart, CorsConfiguration, CorsRule, ExpirationStatus, LifecycleRule, LifecycleRuleFilter,
};
use aws_sdk_s3::Client;
use bytes::Bytes;
use chrono::Utc;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use super::{
    content_disposition, DownloadTarget, ListedObject, ObjectStat, PartCheck, PartTarget, SignedRequest, StorageError,
    Store, StoredPart,
};
use crate::config::{PartCheckSetting, S3Settings};

/// `ListParts` answers at most this many parts a page.
const LIST_PARTS_PAGE: i32 = 1_000;
/// Headers a browser sets itself (and refuses to let scripts set).
const BROWSER_SET_HEADERS: [&str; 2] = ["content-length", "host"];
/// Headers a browser may need to send on a part PUT; Garage matches them case-sensitively,
/// so they are lowercase.
const CORS_ALLOWED_HEADERS: [&str; 8] = [
    "content-type",
    "content-md5",
    "x-amz-checksum-sha1",
    "x-amz-sdk-checksum-algorithm",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
    "authorization",
];

pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    cors_origins: Vec<String>,
    configure_bucket: bool,
    /// Days after which the server itself aborts an unfinished upload (a backstop for the reaper).
    abort_after_days: i32,
    part_check_setting: PartCheckSetting,
    /// What `prepare` found the server enforces.
    part_check: OnceLock<PartCheck>,
}

impl S3Store {
    pub fn new(s: &S3Settings, upload_ttl: Duration) -> Self {
        let credentials = Credentials::new(&s.access_key_id, &s.secret_access_key, None, None, "shardrop-config");
        let config = aws_sdk_s3::Config::builder()
            .region(Region::new(s.region.clone()))
            .endpoint_url(&s.endpoint)
            .credentials_provider(credentials)
            .force_path_style(s.path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            // Verification reads whole objects at the storage's pace; a slow node is not a stall.
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .build();
        // The server's own abort is a backstop: a day past our TTL, at least one day.
        let abort_after_days = i32::try_from(upload_ttl.as_secs().div_ceil(86_400) + 1).unwrap_or(i32::MAX);
        Self {
            client: Client::from_conf(config),
            bucket: s.bucket.clone(),
            prefix: s.prefix.clone(),
            cors_origins: s.cors_origins.clone(),
            configure_bucket: s.configure_bucket,
            abort_after_days,
            part_check_setting: s.part_check,
            part_check: OnceLock::new(),
        }
    }

    /// Finds out which part digest the server enforces by sending it parts with a wrong
    /// one: first `x-amz-checksum-sha1`, then `Content-MD5`. A server that stores a part
    /// whose digest is wrong under both would store corrupted bytes, so it is refused.
    async fn detect_part_check(&self) -> Result<PartCheck, StorageError> {
        let key = self.key(&format!(".shardrop-part-check/{}", uuid::Uuid::new_v4().simple()));
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&key)
            .checksum_algorithm(ChecksumAlgorithm::Sha1)
            .send()
            .await
            .map_err(map_err)?
            .upload_id
            .ok_or_else(|| StorageError::Other("CreateMultipartUpload answered no UploadId".into()))?;
        let result = self.probe_parts(&key, &upload).await;
        if let Err(e) =
            self.client.abort_multipart_upload().bucket(&self.bucket).key(&key).upload_id(&upload).send().await
        {
            tracing::warn!(error = %DisplayErrorContext(&e), "could not abort the part-check upload; the reaper's lifecycle rule will");
        }
        result
    }

    async fn probe_parts(&self, key: &str, upload: &str) -> Result<PartCheck, StorageError> {
        const BODY: &[u8] = b"shardrop: does this server check part digests?";
        let part = |number| {
            self.client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload)
                .part_number(number)
                .body(BODY.to_vec().into())
        };
        let wrong_sha1 = shardrop_engine::Sha1B64::from_digest(&shardrop_engine::hashing::sha1(b"other bytes"));
        if refused_digest(part(1).checksum_sha1(wrong_sha1.as_str()).send().await)? {
            return Ok(PartCheck::Sha1);
        }
        let wrong_md5 = shardrop_engine::Md5B64::from_digest(&shardrop_engine::hashing::md5(b"other bytes"));
        if refused_digest(part(2).content_md5(wrong_md5.as_str()).send().await)? {
            return Ok(PartCheck::Md5);
        }
        Err(StorageError::Other(
            "the S3 server stored parts whose x-amz-checksum-sha1 and Content-MD5 were both wrong: it cannot keep \
             corrupted bytes out, so Shardrop will not use it"
                .into(),
        ))
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn ensure_cors(&self) -> Result<(), StorageError> {
        let mut rule = CorsRule::builder()
            .set_allowed_origins(Some(self.cors_origins.clone()))
            .allowed_methods("PUT")
            .allowed_methods("GET")
            .allowed_methods("HEAD")
            .expose_headers("ETag")
            .expose_headers("x-amz-checksum-sha1")
            .max_age_seconds(3600);
        for h in CORS_ALLOWED_HEADERS {
            rule = rule.allowed_headers(h);
        }
        let rule = rule.build().map_err(|e| StorageError::Other(e.to_string()))?;
        let cors =
            CorsConfiguration::builder().cors_rules(rule).build().map_err(|e| StorageError::Other(e.to_string()))?;
        self.client.put_bucket_cors().bucket(&self.bucket).cors_configuration(cors).send().await.map_err(map_err)?;
        Ok(())
    }

    async fn ensure_lifecycle(&self) -> Result<(), StorageError> {
        let rule = LifecycleRule::builder()
            .id("shardrop-abort-incomplete-uploads")
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix(&self.prefix).build())
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder().days_after_initiation(self.abort_after_days).build(),
            )
            .build()
            .map_err(|e| StorageError::Other(e.to_string()))?;
        let lifecycle = BucketLifecycleConfiguration::builder()
            .rules(rule)
            .build()
            .map_err(|e| StorageError::Other(e.to_string()))?;
        self.client
            .put_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .lifecycle_configuration(lifecycle)
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl Store for S3Store {
    async fn prepare(&self) -> Result<(), StorageError> {
        self.ping().await?;
        let check = match self.part_check_setting {
            PartCheckSetting::Auto => self.detect_part_check().await?,
            PartCheckSetting::Sha1 => PartCheck::Sha1,
            PartCheckSetting::Md5 => PartCheck::Md5,
        };
        if check == PartCheck::Md5 {
            tracing::info!("this S3 server ignores x-amz-checksum-sha1: parts are signed with their Content-MD5 too");
        }
        let _ = self.part_check.set(check);
        if !self.configure_bucket {
            return Ok(());
        }
        self.ensure_cors().await?;
        // Not every server has lifecycle rules (and MinIO ignores this one); the reaper
        // aborts abandoned uploads either way.
        if let Err(e) = self.ensure_lifecycle().await {
            tracing::warn!(error = %e, "could not set the bucket's abort-incomplete-uploads rule; the reaper still aborts them");
        }
        Ok(())
    }

    fn part_check(&self) -> PartCheck {
        // Before `prepare` has looked, ask for both digests: the stricter choice.
        self.part_check.get().copied().unwrap_or(PartCheck::Md5)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.client.head_bucket().bucket(&self.bucket).send().await.map_err(map_err)?;
        Ok(())
    }

    async fn create_multipart(&self, key: &str, content_type: &str) -> Result<String, StorageError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(self.key(key))
            .content_type(content_type)
            .checksum_algorithm(ChecksumAlgorithm::Sha1)
            .send()
            .await
            .map_err(map_err)?;
        out.upload_id.ok_or_else(|| StorageError::Other("CreateMultipartUpload answered no UploadId".into()))
    }

    async fn sign_part(&self, part: PartTarget<'_>, ttl: Duration) -> Result<SignedRequest, StorageError> {
        let config = PresigningConfig::expires_in(ttl).map_err(|e| StorageError::Other(e.to_string()))?;
        let size = i64::try_from(part.size).map_err(|_| StorageError::Other("part too large".into()))?;
        let number = i32::try_from(part.number).map_err(|_| StorageError::Other("part number too large".into()))?;
        // An empty body is often sent with no Content-Length at all, and a signed length
        // that is absent fails the signature; the signed SHA-1 of "" pins it just as well.
        let signed_length = (size > 0).then_some(size);
        let presigned = match part.upload {
            Some(upload) => self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(self.key(part.key))
                .upload_id(upload)
                .part_number(number)
                .set_content_length(signed_length)
                .checksum_sha1(part.sha1.as_str())
                .set_content_md5(part.md5.map(|m| m.as_str().to_owned()))
                .presigned(config)
                .await
                .map_err(map_err)?,
            // Only the empty object is ever a single PUT (see `PartTarget::upload`).
            None if part.size == 0 && part.number == 1 => self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(self.key(part.key))
                .content_type(part.content_type)
                .checksum_sha1(part.sha1.as_str())
                .set_content_md5(part.md5.map(|m| m.as_str().to_owned()))
                .presigned(config)
                .await
                .map_err(map_err)?,
            None => return Err(StorageError::Other("only an empty object is signed as a single PUT".into())),
        };
        Ok(signed_request(&presigned, ttl))
    }

    async fn list_parts(&self, key: &str, upload: &str) -> Result<Vec<StoredPart>, StorageError> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(self.key(key))
                .upload_id(upload)
                .max_parts(LIST_PARTS_PAGE)
                .set_part_number_marker(marker.take())
                .send()
                .await
                .map_err(upload_err)?;
            for p in page.parts() {
                let (Some(number), Some(etag)) = (p.part_number, p.e_tag.clone()) else { continue };
                parts.push(StoredPart {
                    number: u32::try_from(number).unwrap_or(0),
                    etag,
                    size: u64::try_from(p.size.unwrap_or(0)).unwrap_or(0),
                    sha1: p.checksum_sha1.clone(),
                });
            }
            match (page.is_truncated, page.next_part_number_marker) {
                (Some(true), Some(next)) => marker = Some(next),
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.number);
        parts.dedup_by_key(|p| p.number);
        Ok(parts)
    }

    async fn complete(&self, key: &str, upload: &str, parts: &[StoredPart]) -> Result<(), StorageError> {
        let completed = parts
            .iter()
            .map(|p| {
                CompletedPart::builder()
                    .part_number(i32::try_from(p.number).unwrap_or(i32::MAX))
                    .e_tag(&p.etag)
                    .set_checksum_sha1(p.sha1.clone())
                    .build()
            })
            .collect::<Vec<_>>();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(self.key(key))
            .upload_id(upload)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
            .send()
            .await
            .map_err(upload_err)?;
        Ok(())
    }

    async fn abort(&self, key: &str, upload: &str) -> Result<(), StorageError> {
        let result =
            self.client.abort_multipart_upload().bucket(&self.bucket).key(self.key(key)).upload_id(upload).send().await;
        match result.map_err(map_err) {
            Ok(_) | Err(StorageError::NoSuchUpload | StorageError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn stat(&self, key: &str) -> Result<Option<ObjectStat>, StorageError> {
        match self.client.head_object().bucket(&self.bucket).key(self.key(key)).send().await.map_err(map_err) {
            Ok(out) => Ok(Some(ObjectStat {
                size: u64::try_from(out.content_length.unwrap_or(0)).unwrap_or(0),
                etag: out.e_tag.unwrap_or_default(),
            })),
            Err(StorageError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list_objects(&self, prefix: &str) -> Result<Vec<ListedObject>, StorageError> {
        let mut found = Vec::new();
        let mut pages =
            self.client.list_objects_v2().bucket(&self.bucket).prefix(self.key(prefix)).into_paginator().send();
        while let Some(page) = pages.next().await {
            for o in page.map_err(map_err)?.contents() {
                let Some(key) = o.key().and_then(|k| k.strip_prefix(&self.prefix)) else { continue };
                let modified = o
                    .last_modified()
                    .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
                    .unwrap_or_else(Utc::now);
                found.push(ListedObject { key: key.to_owned(), modified });
            }
        }
        Ok(found)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.client.delete_object().bucket(&self.bucket).key(self.key(key)).send().await.map_err(map_err) {
            Ok(_) | Err(StorageError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn sign_download(&self, target: DownloadTarget<'_>) -> Result<String, StorageError> {
        let config = PresigningConfig::expires_in(target.ttl).map_err(|e| StorageError::Other(e.to_string()))?;
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(target.key))
            .response_content_disposition(content_disposition(target.file_name))
            .response_content_type(target.content_type)
            .presigned(config)
            .await
            .map_err(map_err)?;
        Ok(presigned.uri().to_owned())
    }

    async fn read(&self, key: &str) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        self.get(key, None).await
    }

    async fn read_range(
        &self,
        key: &str,
        offset: u64,
        len: u64,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        if len == 0 {
            return Ok(futures_util::stream::empty().boxed());
        }
        self.get(key, Some(format!("bytes={offset}-{}", offset + len - 1))).await
    }
}

impl S3Store {
    async fn get(
        &self,
        key: &str,
        range: Option<String>,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(key))
            .set_range(range)
            .send()
            .await
            .map_err(map_err)?;
        let stream = futures_util::stream::unfold(out.body, |mut body| async move {
            match body.next().await {
                Some(Ok(bytes)) => Some((Ok(bytes), body)),
                Some(Err(e)) => Some((Err(StorageError::Unavailable(e.to_string())), body)),
                None => None,
            }
        });
        Ok(stream.boxed())
    }
}

fn signed_request(presigned: &PresignedRequest, ttl: Duration) -> SignedRequest {
    let headers = presigned
        .headers()
        .filter(|(name, _)| !BROWSER_SET_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .collect();
    SignedRequest {
        url: presigned.uri().to_owned(),
        method: presigned.method().to_owned(),
        headers,
        expires_at: Utc::now() + ttl,
    }
}

/// Whether the server refused a part for its digest (any 400: Garage says `InvalidDigest`,
/// RGW `BadDigest`, AWS `XAmzContentChecksumMismatch`). Stored means `false`; any other
/// failure (unreachable, forbidden) is an error, since it says nothing about digests.
fn refused_digest<T, E>(result: Result<T, SdkError<E, HttpResponse>>) -> Result<bool, StorageError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(false),
        Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 400 => {
            tracing::debug!(code = ?e.err().code(), "the server refused a part with a wrong digest");
            Ok(true)
        }
        Err(e) => Err(map_err(e)),
    }
}

/// For calls on a multipart upload: a 404 means the upload is gone, whatever the code says
/// (Garage and AWS say `NoSuchUpload`; Ceph RGW 16 says `NoSuchKey` once it was aborted).
fn upload_err<E>(err: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match map_err(err) {
        StorageError::NotFound => StorageError::NoSuchUpload,
        other => other,
    }
}

/// Sorts an SDK error into what the control plane must tell apart.
fn map_err<E>(err: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let SdkError::ServiceError(service) = &err {
        match service.err().code() {
            Some("NoSuchUpload") => return StorageError::NoSuchUpload,
            Some("NoSuchKey" | "NotFound") => return StorageError::NotFound,
            Some("InvalidPart" | "InvalidPartOrder") => {
                return StorageError::InvalidPart(service.err().message().unwrap_or_default().to_owned())
            }
            _ => {}
        }
        // HEAD answers carry no error code, only a status.
        if service.raw().status().as_u16() == 404 {
            return StorageError::NotFound;
        }
    }
    match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            StorageError::Unavailable(DisplayErrorContext(&err).to_string())
        }
        _ => StorageError::Other(DisplayErrorContext(&err).to_string()),
    }
}
