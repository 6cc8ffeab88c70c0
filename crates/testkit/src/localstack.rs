//! LocalStack (S3 + SQS + SNS + Secrets Manager), started by `scripts/test` (or `scripts/bench`): a fresh
//! bucket, queue and dead-letter queue per user, and helpers to look inside them.

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};

/// Where `scripts/test` started LocalStack.
pub fn endpoint() -> String {
    std::env::var("REPOVAULT_TEST_AWS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

pub struct LocalStack {
    pub endpoint: String,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

/// One test's bucket, prefix, queue and dead-letter queue.
pub struct Stack {
    pub bucket: String,
    pub prefix: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub endpoint: String,
}

impl LocalStack {
    /// Connects, failing the test (never skipping it) if LocalStack is not running.
    /// A new SNS topic whose messages land in a new SQS queue (as SNS's JSON
    /// envelopes): returns the topic's ARN and the queue's URL.
    pub async fn topic_into_queue(&self, name: &str) -> (String, String) {
        let unique = format!("{name}-{:08x}", fastrand::u32(..));
        let topic = self
            .sns
            .create_topic()
            .name(&unique)
            .send()
            .await
            .expect("create topic")
            .topic_arn
            .expect("topic ARN");
        let queue_url = self
            .sqs
            .create_queue()
            .queue_name(&unique)
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue URL");
        let queue_arn = format!("arn:aws:sqs:us-east-1:000000000000:{unique}");
        self.sns
            .subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .expect("subscribe");
        (topic, queue_url)
    }

    pub async fn connect() -> LocalStack {
        match Self::try_connect(&endpoint()).await {
            Ok(ls) => ls,
            Err(e) => panic!("{e}: run the tests with scripts/test, which starts LocalStack"),
        }
    }

    /// Connects to `endpoint`, or says why not.
    pub async fn try_connect(endpoint: &str) -> Result<LocalStack, String> {
        let endpoint = endpoint.to_owned();
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "e2e"))
            .load()
            .await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::new(&config);
        if let Err(e) = sqs.list_queues().send().await {
            return Err(format!("LocalStack is not reachable at {endpoint} ({e})"));
        }
        let sns = aws_sdk_sns::Client::new(&config);
        let secrets = aws_sdk_secretsmanager::Client::new(&config);
        Ok(LocalStack {
            endpoint,
            s3,
            sqs,
            sns,
            secrets,
        })
    }

    /// A new secret in Secrets Manager holding `value`: its ARN.
    pub async fn create_secret(&self, name: &str, value: &str) -> String {
        let name = format!("rv-{name}-{:08x}", fastrand::u32(..));
        let created = self
            .secrets
            .create_secret()
            .name(&name)
            .secret_string(value)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create secret {name}: {e}"));
        created.arn().expect("an ARN").to_owned()
    }

    /// A fresh bucket and a queue whose dead-letter queue takes messages after
    /// `max_receives` deliveries.
    pub async fn stack(&self, name: &str, max_receives: u32) -> Stack {
        let id = format!("rv-{name}-{:08x}", fastrand::u32(..));
        self.s3
            .create_bucket()
            .bucket(&id)
            .send()
            .await
            .expect("create bucket");
        let dlq_url = self
            .sqs
            .create_queue()
            .queue_name(format!("{id}-dlq"))
            .send()
            .await
            .expect("create dlq")
            .queue_url
            .unwrap();
        let dlq_arn = self
            .sqs
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&QueueAttributeName::QueueArn]
            .clone();
        let policy =
            format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{max_receives}"}}"#);
        let queue_url = self
            .sqs
            .create_queue()
            .queue_name(&id)
            .attributes(QueueAttributeName::RedrivePolicy, policy)
            .send()
            .await
            .expect("create queue")
            .queue_url
            .unwrap();
        Stack {
            bucket: id,
            prefix: "github/".into(),
            queue_url,
            dlq_url,
            endpoint: self.endpoint.clone(),
        }
    }
}

impl Stack {
    /// `s3://<bucket>/github/`.
    pub fn target(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// The environment every repovault process of this test gets.
    pub fn env(&self) -> Vec<(String, String)> {
        self.env_via(&self.endpoint)
    }

    /// The same, with AWS reached through `endpoint` (a throttling proxy).
    pub fn env_via(&self, endpoint: &str) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), endpoint.into()),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("REPOVAULT_QUEUE_URL".into(), self.queue_url.clone()),
        ]
    }

    pub async fn keys(&self, ls: &LocalStack, under: &str) -> Vec<String> {
        list_keys(&ls.s3, &self.bucket, &format!("{}{under}", self.prefix)).await
    }

    pub async fn get(&self, ls: &LocalStack, key: &str) -> Vec<u8> {
        self.try_get(ls, key)
            .await
            .unwrap_or_else(|e| panic!("get {key}: {e}"))
    }

    /// The object at `key`, or why it could not be read (absent, or a fault).
    pub async fn try_get(&self, ls: &LocalStack, key: &str) -> Result<Vec<u8>, String> {
        let object = ls
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())?;
        let body = object.body.collect().await.map_err(|e| e.to_string())?;
        Ok(body.into_bytes().to_vec())
    }

    /// Writes an object (as a store would; for fixtures).
    pub async fn put(&self, ls: &LocalStack, key: &str, body: Vec<u8>) {
        ls.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e}"));
    }

    /// Downloads an object into `dir` and returns its path.
    pub async fn download(&self, ls: &LocalStack, key: &str, dir: &std::path::Path) -> PathBuf {
        let path = dir.join(key.rsplit('/').next().unwrap());
        std::fs::write(&path, self.get(ls, key).await).unwrap();
        path
    }

    pub async fn multipart_uploads(&self, ls: &LocalStack) -> Vec<String> {
        let listed = ls
            .s3
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .send()
            .await
            .unwrap();
        listed
            .uploads()
            .iter()
            .filter_map(|u| u.key().map(str::to_owned))
            .collect()
    }

    /// Messages in the dead-letter queue: body and `reason` attribute.
    /// Every message in the dead-letter queue with its `reason`, received (hidden for
    /// a minute): read it once, after [`Self::dlq_depth`] says all are there.
    pub async fn dead_letters(&self, ls: &LocalStack) -> Vec<(String, String)> {
        let mut out = Vec::new();
        loop {
            let got = ls
                .sqs
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(60)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .unwrap();
            if got.messages().is_empty() {
                return out;
            }
            for m in got.messages() {
                let reason = m
                    .message_attributes()
                    .and_then(|a| a.get("reason"))
                    .and_then(|v| v.string_value())
                    .unwrap_or_default()
                    .to_owned();
                out.push((m.body().unwrap_or_default().to_owned(), reason));
            }
        }
    }

    /// Visible + in flight + delayed messages in the job queue.
    pub async fn queue_depth(&self, ls: &LocalStack) -> u64 {
        self.depth_of(ls, &self.queue_url).await
    }

    /// Messages in the dead-letter queue, read without receiving them (so it can be
    /// polled while messages are still arriving, unlike [`Self::dead_letters`]).
    pub async fn dlq_depth(&self, ls: &LocalStack) -> u64 {
        self.depth_of(ls, &self.dlq_url).await
    }

    async fn depth_of(&self, ls: &LocalStack, queue_url: &str) -> u64 {
        let attrs = ls
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ]
        .iter()
        .map(|a| {
            attrs
                .get(a)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
    }

    pub async fn send_raw(&self, ls: &LocalStack, body: &str) {
        ls.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
}

/// Polls `check` every 50 ms until it yields, failing after `limit`. For waiting on
/// state another process changes (an upload starting), not as a sleep.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A new, empty bucket named after `name` on the S3 `s3` reaches: its name.
pub async fn create_bucket(s3: &aws_sdk_s3::Client, name: &str) -> String {
    let bucket = format!("rv-{name}-{:08x}", fastrand::u32(..));
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {bucket}: {e}"));
    bucket
}

/// Every key in `bucket` under `prefix`, in key order.
pub async fn list_keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        keys.extend(
            page.unwrap()
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    keys
}
