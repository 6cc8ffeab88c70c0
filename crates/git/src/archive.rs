//! tar + zstd archives, streamed.
//!
//! The writer runs on a blocking thread and hands compressed chunks to an async
//! consumer through a bounded channel, so memory stays at a few chunks whatever the
//! repository's size, and no archive file ever touches the disk.

use std::io::{self, Write};
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use repovault_core::ports::store::ByteStream;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

/// One top-level entry of an archive.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A directory tree, stored under `name/`.
    Dir { name: String, path: PathBuf },
    /// A small file built in memory (manifest, metadata).
    File { name: String, bytes: Vec<u8> },
}

/// Compression and buffering settings.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveOptions {
    /// zstd level. Git packs are already compressed: 1-3 costs little and higher
    /// levels gain nothing.
    pub level: i32,
    /// zstd worker threads; 0 compresses on the writer thread.
    pub workers: u32,
    /// Bytes per chunk handed to the consumer.
    pub chunk_size: usize,
    /// Chunks buffered between writer and consumer.
    pub chunks_in_flight: usize,
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        ArchiveOptions {
            level: 3,
            workers: 0,
            chunk_size: 1 << 20,
            chunks_in_flight: 4,
        }
    }
}

/// Writes `entries` as tar + zstd into `out`; returns `out` when done.
pub fn write_archive<W: Write>(entries: &[Entry], out: W, opts: &ArchiveOptions) -> io::Result<W> {
    let mut encoder = zstd::Encoder::new(out, opts.level)?;
    // A frame checksum lets any zstd reader detect corruption, not only repovault.
    encoder.include_checksum(true)?;
    if opts.workers > 0 {
        encoder.multithread(opts.workers)?;
    }
    let mut tar = tar::Builder::new(encoder);
    tar.follow_symlinks(false);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for entry in entries {
        match entry {
            Entry::Dir { name, path } => tar.append_dir_all(name, path)?,
            Entry::File { name, bytes } => {
                let mut header = tar::Header::new_gnu();
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_mtime(now);
                header.set_entry_type(tar::EntryType::Regular);
                tar.append_data(&mut header, name, bytes.as_slice())?;
            }
        }
    }
    tar.into_inner()?.finish()
}

/// Streams `entries` as tar + zstd. If writing fails or the writer thread panics,
/// the stream's last item is an `Err`, so a store never commits a truncated archive.
pub fn stream_archive(entries: Vec<Entry>, opts: ArchiveOptions) -> ByteStream {
    let (tx, rx) = mpsc::channel(opts.chunks_in_flight.max(1));
    let (done_tx, done_rx) = oneshot::channel::<io::Result<()>>();
    tokio::task::spawn_blocking(move || {
        let sink = ChunkSender {
            tx,
            buf: BytesMut::with_capacity(opts.chunk_size),
            chunk_size: opts.chunk_size,
        };
        let result = write_archive(&entries, sink, &opts).and_then(|mut sink| sink.flush());
        let _ = done_tx.send(result);
    });
    let outcome = futures::stream::once(async move {
        match done_rx.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(Err(e)),
            Err(_) => Some(Err(io::Error::other("archive writer stopped unexpectedly"))),
        }
    })
    .filter_map(futures::future::ready);
    ReceiverStream::new(rx).map(Ok).chain(outcome).boxed()
}

/// A `Write` that sends fixed-size chunks down a channel, blocking when it is full.
struct ChunkSender {
    tx: mpsc::Sender<Bytes>,
    buf: BytesMut,
    chunk_size: usize,
}

impl ChunkSender {
    fn send_buffered(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.buf.reserve(self.chunk_size);
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "archive consumer went away"))
    }
}

impl Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.chunk_size - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= self.chunk_size {
            self.send_buffered()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffered()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_back(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let decoder = zstd::Decoder::new(bytes).unwrap();
        let mut archive = tar::Archive::new(decoder);
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            io::Read::read_to_end(&mut entry, &mut data).unwrap();
            out.push((name, data));
        }
        out
    }

    #[tokio::test]
    async fn streams_an_archive_that_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("r.git/objects")).unwrap();
        std::fs::write(dir.path().join("r.git/HEAD"), "ref: refs/heads/main\n").unwrap();
        let entries = vec![
            Entry::File {
                name: "MANIFEST.json".into(),
                bytes: b"{}".to_vec(),
            },
            Entry::Dir {
                name: "r.git".into(),
                path: dir.path().join("r.git"),
            },
        ];
        let opts = ArchiveOptions {
            chunk_size: 64,
            ..Default::default()
        };
        let chunks: Vec<_> = stream_archive(entries, opts).collect().await;
        assert!(chunks.len() > 1, "expected several small chunks");
        let bytes: Vec<u8> = chunks
            .into_iter()
            .flat_map(|c| c.unwrap().to_vec())
            .collect();
        let files = read_back(&bytes);
        assert_eq!(files[0], ("MANIFEST.json".into(), b"{}".to_vec()));
        assert!(
            files
                .iter()
                .any(|(n, d)| n == "r.git/HEAD" && d == b"ref: refs/heads/main\n")
        );
        assert!(files.iter().any(|(n, _)| n == "r.git/objects"));
    }

    #[tokio::test]
    async fn a_failing_writer_ends_the_stream_with_an_error() {
        let entries = vec![Entry::Dir {
            name: "gone".into(),
            path: "/nonexistent/repovault".into(),
        }];
        let items: Vec<_> = stream_archive(entries, ArchiveOptions::default())
            .collect()
            .await;
        assert!(items.last().unwrap().is_err());
    }
}
