//! A secret's value from AWS Secrets Manager, read once when a process starts: the
//! receiver's webhook secret in Lambda, whose environment holds the secret's ARN and
//! never its value (anyone allowed `lambda:GetFunctionConfiguration` reads an
//! environment; reading the secret needs `secretsmanager:GetSecretValue` on it).

use repovault_core::Secret;

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading secret {id} from Secrets Manager: {detail}")]
    Read { id: String, detail: String },
    #[error("secret {id} in Secrets Manager has no string value (binary or empty)")]
    NoString { id: String },
}

pub fn secrets_client(config: &aws_config::SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(config)
}

/// The current value of the secret `id` (its ARN or name), as a string.
pub async fn read_secret(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
) -> Result<Secret, SecretError> {
    let value = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| SecretError::Read {
            id: id.to_owned(),
            detail: crate::sdk_message(&e),
        })?;
    match value.secret_string() {
        Some(text) if !text.trim().is_empty() => Ok(Secret::new(text)),
        _ => Err(SecretError::NoString { id: id.to_owned() }),
    }
}
