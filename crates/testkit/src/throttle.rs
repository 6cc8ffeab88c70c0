//! A TCP proxy that slows one direction down, so a test can catch an upload in the
//! middle (and kill the uploader there, or hold it there) against a real server.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

/// Forwards `127.0.0.1:<port>` to `upstream`, passing client→server bytes at no more
/// than `bytes_per_sec` per connection; server→client bytes flow freely. Stops when
/// dropped; [`pause`](ThrottledProxy::pause) holds every upload where it is.
pub struct ThrottledProxy {
    addr: SocketAddr,
    paused: watch::Sender<bool>,
    _stop: oneshot::Sender<()>,
}

impl ThrottledProxy {
    pub async fn start(upstream: SocketAddr, bytes_per_sec: usize) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        let (paused, gate) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    accepted = listener.accept() => {
                        let Ok((client, _)) = accepted else { continue };
                        tokio::spawn(relay(client, upstream, bytes_per_sec, gate.clone()));
                    }
                }
            }
        });
        Ok(ThrottledProxy {
            addr,
            paused,
            _stop: stop,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Passes no more client→server bytes on any connection until
    /// [`resume`](ThrottledProxy::resume): an upload in flight is held where it is.
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.paused.send_replace(false);
    }
}

async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    bytes_per_sec: usize,
    mut gate: watch::Receiver<bool>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // 10 slices a second keep the pace smooth.
    let slice = (bytes_per_sec / 10).max(1);
    let up = async move {
        let mut buf = vec![0u8; slice];
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            if gate.wait_for(|paused| !paused).await.is_err() {
                break;
            }
            match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let down = async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    };
    // When either side goes away the whole connection is closed, as the kernel does
    // for a killed process, so the server stops serving the dead client.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}
