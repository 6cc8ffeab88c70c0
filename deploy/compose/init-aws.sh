#!/bin/sh
# One-shot init for docker-compose: the bucket, the job queue and its dead-letter
# queue (5 receives, then the DLQ), as infra/ creates them on AWS.
set -eu
# LocalStack is reached by a plain host name: S3 needs path-style addressing.
aws configure set default.s3.addressing_style path
aws s3api create-bucket --bucket "$BUCKET" >/dev/null 2>&1 || true
DLQ_URL=$(aws sqs create-queue --queue-name "$QUEUE-dlq" --query QueueUrl --output text)
DLQ_ARN=$(aws sqs get-queue-attributes --queue-url "$DLQ_URL" --attribute-names QueueArn --query Attributes.QueueArn --output text)
aws sqs create-queue --queue-name "$QUEUE" \
  --attributes "{\"VisibilityTimeout\":\"300\",\"ReceiveMessageWaitTimeSeconds\":\"20\",\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":\\\"$DLQ_ARN\\\",\\\"maxReceiveCount\\\":\\\"5\\\"}\"}" >/dev/null
echo "bucket $BUCKET, queue $QUEUE (+ $QUEUE-dlq) ready"
