//! Encryption at rest: objects written as standard age files (X25519 or ssh-ed25519
//! recipients), streamed, and read back with the operator's identities. Which objects
//! are sealed is the repository's decision (see `Keys` and the crate's docs); what is
//! sealed is recognised by age's own header line, so a store that holds both (backups
//! from before encryption was turned on) reads as one.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use age::secrecy::ExposeSecret;
use age_core::format::{FileKey, Stanza};
use base64::Engine;
use base64::prelude::{BASE64_STANDARD, BASE64_STANDARD_NO_PAD};
use bytes::Bytes;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use repovault_core::Manifest;
use repovault_core::ports::store::ByteStream;
use serde_json::Value;
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};
use tokio_util::io::{ReaderStream, StreamReader};

use crate::error::RepoError;

/// A sealed manifest's field holding the others below, as an age file in base64.
const SEALED: &str = "sealed";

/// A manifest's fields that say more than key names do: ref names, `HEAD`, the
/// default branch, the repository as GitHub described it.
const SEALED_FIELDS: [&str; 5] = ["refs", "wiki_refs", "head", "default_branch", "source"];

/// The first line of every age file.
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// The flag (and its variable) that gives readers their identities: named in every
/// error about a sealed object.
pub const IDENTITY_FLAG: &str = "--identity (REPOVAULT_AGE_IDENTITY_FILE)";

type DynRecipient = Box<dyn age::Recipient + Send + Sync>;
type DynIdentity = Box<dyn age::Identity + Send + Sync>;

/// Public keys objects are encrypted to, and their fingerprint (what a rekey marks the
/// headers it writes with).
pub struct Recipients(Vec<DynRecipient>, String);

impl Recipients {
    /// Parses `age1…` and `ssh-ed25519 …` public keys; the error names the entry.
    pub fn parse(lines: &[String]) -> Result<Recipients, String> {
        if lines.is_empty() {
            return Err("no recipients".into());
        }
        let parsed: Vec<(DynRecipient, String)> = lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                let line = line.trim();
                if let Ok(r) = line.parse::<age::x25519::Recipient>() {
                    let text = r.to_string();
                    return Ok((Box::new(r) as DynRecipient, text));
                }
                match line.parse::<age::ssh::Recipient>() {
                    Ok(r @ age::ssh::Recipient::SshEd25519(..)) => {
                        let text = r.to_string();
                        Ok((Box::new(r) as DynRecipient, text))
                    }
                    Ok(_) => Err(format!(
                        "recipient {}: only ssh-ed25519 keys are taken",
                        i + 1
                    )),
                    Err(e) => Err(format!("recipient {}: not a valid key ({e:?})", i + 1)),
                }
            })
            .collect::<Result<_, _>>()?;
        // The set's fingerprint: its keys in canonical form (no ssh comment), sorted.
        let mut texts: Vec<&str> = parsed.iter().map(|(_, t)| t.as_str()).collect();
        texts.sort_unstable();
        texts.dedup();
        let digest = <sha2::Sha256 as sha2::Digest>::digest(texts.join("\n"));
        let fingerprint = hex::encode(&digest[..12]);
        Ok(Recipients(
            parsed.into_iter().map(|(r, _)| r).collect(),
            fingerprint,
        ))
    }

    fn encryptor(&self) -> Result<age::Encryptor, String> {
        age::Encryptor::with_recipients(self.0.iter().map(|r| &**r as &dyn age::Recipient))
            .map_err(|e| e.to_string())
    }
}

/// Private keys objects are opened with: an age identity file (`AGE-SECRET-KEY-1…`
/// lines, as `age-keygen` writes) or an OpenSSH ed25519 private key without a
/// passphrase.
pub struct Identities(Vec<DynIdentity>);

impl Identities {
    /// Reads the identities in `path`; the error names the file, never its content.
    pub fn from_file(path: &Path) -> Result<Identities, String> {
        let named = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let text = std::fs::read(path).map_err(|e| named(&e))?;
        if text.starts_with(b"-----BEGIN OPENSSH PRIVATE KEY-----") {
            let key =
                age::ssh::Identity::from_buffer(text.as_slice(), Some(path.display().to_string()))
                    .map_err(|e| named(&e))?;
            return match key {
                age::ssh::Identity::Unencrypted(_) => Ok(Identities(vec![Box::new(key)])),
                age::ssh::Identity::Encrypted(_) => Err(named(
                    &"a passphrase-protected ssh key; decrypt a copy (ssh-keygen -p) or use an age identity",
                )),
                age::ssh::Identity::Unsupported(_) => {
                    Err(named(&"an ssh key type age does not take"))
                }
            };
        }
        let file = age::IdentityFile::from_buffer(text.as_slice()).map_err(|e| named(&e))?;
        let identities = file.into_identities().map_err(|e| named(&e))?;
        if identities.is_empty() {
            return Err(named(&"holds no identity (AGE-SECRET-KEY-1…)"));
        }
        Ok(Identities(identities))
    }

    fn iter(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.0.iter().map(|i| &**i as &dyn age::Identity)
    }
}

/// What a repository seals new objects to and opens sealed ones with. Workers have
/// recipients only: they write what they cannot read back.
#[derive(Clone, Default)]
pub struct Keys {
    recipients: Option<Arc<Recipients>>,
    identities: Option<Arc<Identities>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("recipients", &self.recipients.as_ref().map(|r| r.0.len()))
            .field("identities", &self.identities.as_ref().map(|i| i.0.len()))
            .finish()
    }
}

impl Keys {
    pub fn new(recipients: Option<Recipients>, identities: Option<Identities>) -> Keys {
        Keys {
            recipients: recipients.map(Arc::new),
            identities: identities.map(Arc::new),
        }
    }

    /// Keys that seal to a job's `encryption` recipients (none: nothing is sealed).
    pub fn sealing(recipients: &repovault_core::config::Recipients) -> Result<Keys, String> {
        if recipients.is_empty() {
            return Ok(Keys::default());
        }
        Ok(Keys::new(Some(Recipients::parse(&recipients.0)?), None))
    }

    /// Whether new objects are sealed.
    pub fn seals(&self) -> bool {
        self.recipients.is_some()
    }

    /// Whether sealed objects can be opened (identities were given).
    pub fn opens(&self) -> bool {
        self.identities.is_some()
    }

    /// `body` as written: sealed to the recipients, or as it is.
    pub(crate) fn seal_stream(&self, key: &str, body: ByteStream) -> Result<ByteStream, RepoError> {
        match &self.recipients {
            Some(recipients) => seal_stream(recipients, body).map_err(|e| sealing(key, e)),
            None => Ok(body),
        }
    }

    /// `bytes` as written: sealed to the recipients, or as they are.
    pub(crate) fn seal(&self, key: &str, bytes: Vec<u8>) -> Result<Vec<u8>, RepoError> {
        let Some(recipients) = &self.recipients else {
            return Ok(bytes);
        };
        let written = recipients.encryptor().and_then(|encryptor| {
            let mut out = Vec::with_capacity(bytes.len() + 512);
            let mut writer = encryptor.wrap_output(&mut out).map_err(|e| e.to_string())?;
            writer.write_all(&bytes).map_err(|e| e.to_string())?;
            writer.finish().map_err(|e| e.to_string())?;
            Ok(out)
        });
        written.map_err(|e| sealing(key, e))
    }

    /// `manifest` as stored: with recipients, the fields that name refs, branches and
    /// the repository's description (`SEALED_FIELDS`) move into `sealed`, an age file
    /// (base64); the chain, its digests and the LFS objects stay in the clear, so that
    /// `verify` checks what is stored without a key and by-hand restores read the
    /// links' order with `jq`.
    pub(crate) fn seal_manifest(&self, key: &str, manifest: &Manifest) -> Result<Value, RepoError> {
        let mut value = serde_json::to_value(manifest).expect("manifests serialise");
        if self.recipients.is_none() {
            return Ok(value);
        }
        let fields = value.as_object_mut().expect("a manifest is an object");
        let secret: serde_json::Map<String, Value> = SEALED_FIELDS
            .iter()
            .filter_map(|f| fields.remove(*f).map(|v| ((*f).to_owned(), v)))
            .collect();
        let sealed = self.seal(key, serde_json::to_vec(&secret).expect("JSON serialises"))?;
        fields.insert(SEALED.into(), Value::String(BASE64_STANDARD.encode(sealed)));
        Ok(value)
    }

    /// The manifest `stored` holds: its `sealed` fields opened and put back.
    pub(crate) fn open_manifest(
        &self,
        key: &str,
        mut stored: Value,
    ) -> Result<Manifest, RepoError> {
        if let Some(fields) = stored.as_object_mut()
            && let Some(sealed) = fields.remove(SEALED)
        {
            let sealed = sealed
                .as_str()
                .and_then(|s| BASE64_STANDARD.decode(s).ok())
                .ok_or_else(|| RepoError::invalid(key, "sealed is not base64"))?;
            if !sealed.starts_with(AGE_MAGIC) {
                return Err(RepoError::invalid(key, "sealed is not an age file"));
            }
            let opened = self.open(key, sealed.into())?;
            let secret: serde_json::Map<String, Value> = serde_json::from_slice(&opened)
                .map_err(|e| RepoError::invalid(key, format!("sealed: {e}")))?;
            for (field, value) in secret {
                if SEALED_FIELDS.contains(&field.as_str()) {
                    fields.insert(field, value);
                }
            }
        }
        serde_json::from_value(stored).map_err(|e| {
            RepoError::invalid(key, format!("not valid JSON for what is stored there: {e}"))
        })
    }

    /// What re-wrapping `stored` (at least its whole header and the 16 bytes after
    /// it) for this repository's recipients gives: see [`Rewrap`]. Needs both keys:
    /// the identities open the old header, the recipients get the new one.
    pub(crate) fn rewrap(&self, key: &str, stored: &[u8]) -> Result<Rewrap, RepoError> {
        let recipients = self
            .recipients
            .as_ref()
            .ok_or_else(|| RepoError::invalid(key, "rekey: no recipients to rewrap for"))?;
        let identities = self.identities(key)?;
        rewrap(key, stored, identities, recipients)
    }

    /// `stored` as it was written: opened when sealed.
    pub(crate) fn open(&self, key: &str, stored: Bytes) -> Result<Bytes, RepoError> {
        if !stored.starts_with(AGE_MAGIC) {
            return Ok(stored);
        }
        let identities = self.identities(key)?;
        let decryptor =
            age::Decryptor::new_buffered(stored.as_ref()).map_err(|e| unmatched(key, e))?;
        let mut reader = decryptor
            .decrypt(identities.iter())
            .map_err(|e| unmatched(key, e))?;
        let mut out = Vec::with_capacity(stored.len());
        std::io::copy(&mut reader, &mut out).map_err(|e| unopened(key, &e))?;
        Ok(out.into())
    }

    /// `stored` as it was written, streamed: opened as it arrives when sealed. A
    /// damaged or truncated sealed object ends the stream in an error.
    pub(crate) async fn open_stream(
        &self,
        key: &str,
        stored: ByteStream,
    ) -> Result<ByteStream, RepoError> {
        let (head, rest) = sniff(stored, AGE_MAGIC.len()).await;
        let whole = futures::stream::iter(head.clone().map(Ok))
            .chain(rest)
            .boxed();
        if !head.is_some_and(|h| h.starts_with(AGE_MAGIC)) {
            return Ok(whole);
        }
        let identities = self.identities(key)?.clone();
        let reader = StreamReader::new(whole).compat();
        let decryptor = age::Decryptor::new_async_buffered(reader)
            .await
            .map_err(|e| unmatched(key, e))?;
        let plain = decryptor
            .decrypt_async(identities.iter())
            .map_err(|e| unmatched(key, e))?;
        Ok(ReaderStream::new(plain.compat()).boxed())
    }

    fn identities(&self, key: &str) -> Result<&Arc<Identities>, RepoError> {
        self.identities.as_ref().ok_or_else(|| RepoError::Sealed {
            key: key.to_owned(),
            reason: format!("encrypted; give the identity to open it with {IDENTITY_FLAG}"),
        })
    }
}

/// The tag of the stanza a rekey adds to each header it writes. Its one argument is
/// the fingerprint of the recipients it wrapped the file key for, so a rerun knows
/// what it already did. age skips stanzas it does not know (as it skips its own
/// "grease"): `age -d` reads a rekeyed file like any other.
pub const REKEY_STANZA: &str = "repovault-rekey";

/// The most an age header may take before its payload: more is not one of ours.
const MAX_HEADER: usize = 64 << 10;

/// An age file's header rewritten for new recipients.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rewrap {
    /// Not an age file: stored in the clear (written before encryption was on).
    Plain,
    /// A rekey to the same recipients already wrote this header.
    Done,
    /// Sealed to none of the identities (and not by a rekey to these recipients).
    Foreign,
    /// The new header; the stored bytes from `kept` on (the nonce and the payload)
    /// follow it unchanged.
    Header { header: Vec<u8>, kept: usize },
}

/// The length of the age header `bytes` start with (through the MAC line), once
/// `bytes` hold it whole; an error once they should have and do not.
pub(crate) fn header_len(key: &str, bytes: &[u8]) -> Result<Option<usize>, RepoError> {
    let end = bytes.windows(4).position(|w| w == b"\n---").and_then(|at| {
        let mac = at + 4;
        let newline = bytes[mac..].iter().position(|b| *b == b'\n')?;
        Some(mac + newline + 1)
    });
    match end {
        None if bytes.len() > MAX_HEADER => Err(RepoError::invalid(
            key,
            format!("no age header end in its first {MAX_HEADER} bytes"),
        )),
        found => Ok(found),
    }
}

/// Captures the file key the identities unwrap: the one secret a new header needs.
struct Capture<'a> {
    identities: &'a Identities,
    file_key: std::cell::RefCell<Option<FileKey>>,
}

impl age::Identity for Capture<'_> {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        self.unwrap_stanzas(std::slice::from_ref(stanza))
    }

    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<Result<FileKey, age::DecryptError>> {
        let found = self
            .identities
            .iter()
            .find_map(|identity| identity.unwrap_stanzas(stanzas))?;
        if let Ok(file_key) = &found {
            let copy = FileKey::new(Box::new(*file_key.expose_secret()));
            *self.file_key.borrow_mut() = Some(copy);
        }
        Some(found)
    }
}

/// [`Keys::rewrap`]: age's own parser reads the old header and checks its MAC with
/// the file key the identities unwrap; the new header wraps that key for each
/// recipient, adds the [`REKEY_STANZA`] and a MAC as age computes it. The payload
/// key derives from the file key and the nonce alone, so what follows the header
/// stays valid byte for byte.
fn rewrap(
    key: &str,
    stored: &[u8],
    identities: &Identities,
    recipients: &Recipients,
) -> Result<Rewrap, RepoError> {
    if !stored.starts_with(AGE_MAGIC) {
        return Ok(Rewrap::Plain);
    }
    let kept = header_len(key, stored)?
        .filter(|len| stored.len() >= len + 16)
        .ok_or_else(|| RepoError::invalid(key, "an age file cut short in its header"))?;
    let text = String::from_utf8_lossy(&stored[..kept]);
    let mark = format!("-> {REKEY_STANZA} {}", recipients.1);
    if text.lines().any(|line| line == mark) {
        return Ok(Rewrap::Done);
    }
    let capture = Capture {
        identities,
        file_key: Default::default(),
    };
    let decryptor = age::Decryptor::new(&stored[..kept + 16]).map_err(|e| unmatched(key, e))?;
    match decryptor.decrypt(std::iter::once(&capture as &dyn age::Identity)) {
        Ok(_) => {}
        Err(age::DecryptError::NoMatchingKeys) => return Ok(Rewrap::Foreign),
        Err(e) => return Err(unmatched(key, e)),
    }
    let file_key = capture
        .file_key
        .into_inner()
        .ok_or_else(|| RepoError::invalid(key, "rekey: the file key was not captured"))?;
    let mut stanzas = Vec::new();
    for recipient in &recipients.0 {
        let (wrapped, _labels) = recipient
            .wrap_file_key(&file_key)
            .map_err(|e| sealing(key, e.to_string()))?;
        stanzas.extend(wrapped);
    }
    stanzas.push(Stanza {
        tag: REKEY_STANZA.into(),
        args: vec![recipients.1.clone()],
        body: Vec::new(),
    });
    let mut header = AGE_MAGIC.to_vec();
    for stanza in &stanzas {
        header.extend_from_slice(b"-> ");
        header.extend_from_slice(stanza.tag.as_bytes());
        for arg in &stanza.args {
            header.push(b' ');
            header.extend_from_slice(arg.as_bytes());
        }
        header.push(b'\n');
        // The body in full 64-column lines, then always a shorter (possibly empty) one.
        let body = BASE64_STANDARD_NO_PAD.encode(&stanza.body);
        let full = body.len() - body.len() % 64;
        for line in body.as_bytes()[..full]
            .chunks(64)
            .chain([&body.as_bytes()[full..]])
        {
            header.extend_from_slice(line);
            header.push(b'\n');
        }
    }
    header.extend_from_slice(b"---");
    let mac_key = age_core::primitives::hkdf(&[], b"header", file_key.expose_secret());
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&mac_key).expect("any key length");
    mac.update(&header);
    header.push(b' ');
    header.extend_from_slice(
        BASE64_STANDARD_NO_PAD
            .encode(mac.finalize().into_bytes())
            .as_bytes(),
    );
    header.push(b'\n');
    Ok(Rewrap::Header { header, kept })
}

fn sealing(key: &str, reason: String) -> RepoError {
    RepoError::invalid(key, format!("encrypting: {reason}"))
}

/// Why `key` could not be opened: none of the identities is a recipient of it, or it
/// is damaged (a header or a payload chunk that does not authenticate).
fn unopened(key: &str, e: &dyn std::fmt::Display) -> RepoError {
    RepoError::Sealed {
        key: key.to_owned(),
        reason: format!("cannot be decrypted: {e}"),
    }
}

/// [`unopened`] for what age's header said.
fn unmatched(key: &str, e: age::DecryptError) -> RepoError {
    match e {
        age::DecryptError::NoMatchingKeys => RepoError::Sealed {
            key: key.to_owned(),
            reason: format!("encrypted to none of the identities given with {IDENTITY_FLAG}"),
        },
        other => unopened(key, &other),
    }
}

/// The first `n` bytes of `stream` (fewer if it ends first), and the rest of it.
async fn sniff(mut stream: ByteStream, n: usize) -> (Option<Bytes>, ByteStream) {
    let mut head = Vec::new();
    while head.len() < n {
        match stream.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(e)) => {
                let head = (!head.is_empty()).then(|| Bytes::from(head));
                return (head, futures::stream::once(async { Err(e) }).boxed());
            }
            None => break,
        }
    }
    ((!head.is_empty()).then(|| Bytes::from(head)), stream)
}

/// A writer whose bytes are taken out as they come: the encryptor writes into it, the
/// stream hands on what it wrote after each chunk.
#[derive(Clone, Default)]
struct Taken(Arc<Mutex<Vec<u8>>>);

impl Write for Taken {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Taken {
    fn take(&self) -> Bytes {
        std::mem::take(&mut *self.0.lock().expect("not poisoned")).into()
    }
}

/// `body` encrypted to `recipients` as it streams (age's 64 KiB chunks): nothing is
/// held whole. An error of `body` ends the sealed stream in that error, never in a
/// shorter file that looks finished.
fn seal_stream(recipients: &Recipients, body: ByteStream) -> Result<ByteStream, String> {
    let out = Taken::default();
    let writer = recipients
        .encryptor()?
        .wrap_output(out.clone())
        .map_err(|e| e.to_string())?;
    let state = (Some(writer), body, out);
    Ok(
        futures::stream::unfold(state, |(writer, mut body, out)| async move {
            let mut writer = writer?;
            loop {
                match body.next().await {
                    Some(Ok(chunk)) => {
                        if let Err(e) = writer.write_all(&chunk) {
                            return Some((Err(e), (None, body, out)));
                        }
                        let sealed = out.take();
                        if !sealed.is_empty() {
                            return Some((Ok(sealed), (Some(writer), body, out)));
                        }
                    }
                    Some(Err(e)) => return Some((Err(e), (None, body, out))),
                    None => {
                        let last = writer.finish().map(|_| out.take());
                        return Some((last, (None, body, out)));
                    }
                }
            }
        })
        .boxed(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    fn pair() -> (Recipients, Identities, String) {
        let identity = age::x25519::Identity::generate();
        let public = identity.to_public().to_string();
        let secret = identity.to_string().expose_secret().to_owned();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), format!("# test\n{secret}\n")).unwrap();
        (
            Recipients::parse(&[public]).unwrap(),
            Identities::from_file(file.path()).unwrap(),
            secret,
        )
    }

    fn stream_of(chunks: Vec<Vec<u8>>) -> ByteStream {
        futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c)))).boxed()
    }

    async fn collect(stream: ByteStream) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut stream = stream;
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn a_sealed_stream_opens_to_what_went_in_and_is_an_age_file() {
        let (recipients, identities, _) = pair();
        let keys = Keys::new(Some(recipients), Some(identities));
        let plain: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let chunks = plain.chunks(7_000).map(<[u8]>::to_vec).collect();
        let sealed = collect(keys.seal_stream("k", stream_of(chunks)).unwrap())
            .await
            .unwrap();
        assert!(sealed.starts_with(AGE_MAGIC));
        assert!(
            !sealed
                .windows(64)
                .any(|w| plain.windows(64).take(1).any(|p| p == w))
        );
        // Read back in odd chunk sizes: the header may arrive split.
        let back = stream_of(sealed.chunks(5).map(<[u8]>::to_vec).collect());
        let opened = collect(keys.open_stream("k", back).await.unwrap())
            .await
            .unwrap();
        assert_eq!(opened, plain);
        assert_eq!(keys.open("k", sealed.clone().into()).unwrap(), plain);
    }

    #[tokio::test]
    async fn a_failing_body_fails_the_sealed_stream() {
        let (recipients, _, _) = pair();
        let keys = Keys::new(Some(recipients), None);
        let body = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"some")),
            Err(std::io::Error::other("pack check failed")),
        ])
        .boxed();
        let err = collect(keys.seal_stream("k", body).unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "pack check failed");
    }

    #[tokio::test]
    async fn plaintext_passes_and_sealed_needs_the_right_identity() {
        let (recipients, _, _) = pair();
        let (_, other, _) = pair();
        let writer = Keys::new(Some(recipients), None);
        let sealed = writer.seal("k", b"refs/heads/secret".to_vec()).unwrap();
        assert_eq!(
            writer.open("plain", Bytes::from_static(b"{}")).unwrap(),
            &b"{}"[..]
        );
        let none = writer
            .open("repos/a/b/m.json", sealed.clone().into())
            .unwrap_err();
        assert!(matches!(none, RepoError::Sealed { .. }));
        assert!(
            none.to_string().contains("repos/a/b/m.json")
                && none.to_string().contains("--identity"),
            "{none}"
        );
        let wrong = Keys::new(None, Some(other));
        let err = wrong
            .open("repos/a/b/m.json", sealed.clone().into())
            .unwrap_err();
        assert!(err.to_string().contains("none of the identities"), "{err}");
        let err = wrong
            .open_stream("repos/a/b/l.bundle", stream_of(vec![sealed]))
            .await
            .err()
            .expect("refused");
        assert!(
            err.to_string()
                .starts_with("repos/a/b/l.bundle: encrypted to none"),
            "{err}"
        );
    }

    #[test]
    fn ssh_ed25519_and_age_recipients_parse_and_others_are_named() {
        let ssh =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAFuDLHVPrOcga/f6rWmnHbmj3gV516fxyec0vofzct6 test";
        let age = age::x25519::Identity::generate().to_public().to_string();
        assert!(Recipients::parse(&[age, ssh.into()]).is_ok());
        let err = Recipients::parse(&["age1bad".into()]).err().unwrap();
        assert!(err.starts_with("recipient 1"), "{err}");
    }
}
