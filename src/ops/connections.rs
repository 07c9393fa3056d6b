//! The connections roomguard accepts, before any of them may carry a call.
//!
//! tonic's own incoming stream accepts every socket and waits for it forever: a client that opens a TCP connection
//! and never sends the HTTP/2 preface (or never finishes its TLS handshake) holds a file descriptor until the
//! process runs out of them, and then every new caller waits for a connection that never comes. So roomguard accepts
//! its connections itself:
//!
//! - **a slot per connection**: at most `limits.max_connections` are open at once across every listener; one more is
//!   closed as soon as it is accepted (a client sees a reset at once and can fail over, rather than hang), counted,
//!   and logged once per episode;
//! - **a deadline to get going**: the TLS handshake (when TLS is on) and the 24-byte HTTP/2 connection preface must
//!   arrive within `limits.handshake_timeout_ms`, or the connection is closed. The handshakes run concurrently, so a
//!   slow one never delays the next accept. The preface is read here and replayed to the HTTP/2 server;
//! - **running out of file descriptors** makes `accept` fail at once, again and again: that is logged once per
//!   episode, counted, and the loop backs off instead of spinning a core.
//!
//! Only established connections reach tonic. When the server stops, the accept loop ends and every handshake still
//! under way is dropped with it.

use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream, UnixListener, UnixStream},
    sync::{OwnedSemaphorePermit, Semaphore, mpsc},
    task::JoinSet,
};
use tokio_rustls::{TlsAcceptor, rustls::ServerConfig, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tracing::{debug, info, warn};

use crate::ops::metrics::{AcceptError, ConnectionDrop, Metrics};

/// What every HTTP/2 client sends first (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The first pause after `accept` fails for want of file descriptors; it doubles up to [`MAX_ACCEPT_BACKOFF`].
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The rules every listener of one server applies: one pool of slots, one deadline.
#[derive(Debug, Clone)]
pub struct ConnectionGate {
    slots: Arc<Semaphore>,
    max_connections: usize,
    handshake_timeout: Duration,
    /// TCP keepalive's idle time, when on.
    tcp_keepalive: Option<Duration>,
    metrics: Arc<Metrics>,
}

impl ConnectionGate {
    /// At most `max_connections` open at once; each must be established within `handshake_timeout`.
    pub fn new(max_connections: usize, handshake_timeout: Duration, metrics: Arc<Metrics>) -> Self {
        ConnectionGate {
            slots: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            tcp_keepalive: None,
            handshake_timeout,
            metrics,
        }
    }

    /// TCP connections probed by the kernel after `idle` without traffic (see [`Listener::accept`]).
    pub fn with_tcp_keepalive(self, idle: Option<Duration>) -> Self {
        ConnectionGate {
            tcp_keepalive: idle,
            ..self
        }
    }

    /// The established connections of `listener`, with TLS when `tls` is given, until `stop` completes.
    pub fn incoming(
        &self,
        listener: Listener,
        tls: Option<Arc<ServerConfig>>,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> ReceiverStream<io::Result<Connection>> {
        // A small queue: established connections are handed to the server at once; the slots bound the rest.
        let (tx, rx) = mpsc::channel(16);
        let accept = AcceptLoop {
            gate: self.clone(),
            tls: tls.map(TlsAcceptor::from),
            tx,
        };
        tokio::spawn(accept.run(listener, stop));
        ReceiverStream::new(rx)
    }
}

/// Unanswered TCP keepalive probes after which the kernel closes a connection.
const TCP_KEEPALIVE_PROBES: u32 = 3;

/// Time between two TCP keepalive probes.
const TCP_KEEPALIVE_PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// A listening socket roomguard accepts calls on.
#[derive(Debug)]
pub enum Listener {
    /// TCP, with or without TLS.
    Tcp(TcpListener),
    /// A Unix domain socket (never TLS: the socket file's permissions guard it).
    Unix(UnixListener),
}

impl Listener {
    /// The next connection; a TCP one with Nagle's algorithm off and, when `keepalive` is set, the kernel probing
    /// it after that long idle, so that a peer gone without closing (a host down, a network cut) is found and its
    /// connection closed. The kernel does this at no cost to calls, where HTTP/2 pings cost hyper a lock and a
    /// clock read on every frame received.
    async fn accept(&self, keepalive: Option<Duration>) -> io::Result<Socket> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, _) = listener.accept().await?;
                // Decisions are small request/response exchanges: Nagle's algorithm would only add latency.
                let _ = stream.set_nodelay(true);
                if let Some(idle) = keepalive {
                    let probes = socket2::TcpKeepalive::new()
                        .with_time(idle)
                        .with_interval(TCP_KEEPALIVE_PROBE_INTERVAL)
                        .with_retries(TCP_KEEPALIVE_PROBES);
                    if let Err(err) = socket2::SockRef::from(&stream).set_tcp_keepalive(&probes) {
                        debug!(%err, "cannot turn TCP keepalive on for a connection");
                    }
                }
                Ok(Socket::Tcp(stream))
            }
            Listener::Unix(listener) => Ok(Socket::Unix(listener.accept().await?.0)),
        }
    }
}

struct AcceptLoop {
    gate: ConnectionGate,
    tls: Option<TlsAcceptor>,
    tx: mpsc::Sender<io::Result<Connection>>,
}

impl AcceptLoop {
    async fn run(self, listener: Listener, stop: impl Future<Output = ()>) {
        let mut handshakes = JoinSet::new();
        let mut refused_in_episode: u64 = 0;
        let mut backoff: Option<Duration> = None;
        tokio::pin!(stop);
        loop {
            // Reap finished handshakes so that the set only holds those under way.
            while handshakes.try_join_next().is_some() {}
            let accepted = tokio::select! {
                () = &mut stop => break,
                () = self.tx.closed() => break,
                accepted = listener.accept(self.gate.tcp_keepalive) => accepted,
            };
            let socket = match accepted {
                Ok(socket) => {
                    if backoff.take().is_some() {
                        info!("file descriptors available again: accepting connections");
                    }
                    socket
                }
                Err(err) => {
                    backoff = self.accept_failed(&err, backoff).await;
                    continue;
                }
            };
            let Ok(permit) = self.gate.slots.clone().try_acquire_owned() else {
                // Closing at once (dropping the socket) tells the client now, instead of letting it wait in the
                // backlog for a slot that a silent peer may hold for the whole handshake timeout.
                self.gate.metrics.connection_refused_at_limit();
                if refused_in_episode == 0 {
                    warn!(
                        max_connections = self.gate.max_connections,
                        "connection limit reached: closing new connections until one closes (limits.max_connections)"
                    );
                }
                refused_in_episode += 1;
                continue;
            };
            if refused_in_episode > 0 {
                info!(
                    refused = refused_in_episode,
                    "below the connection limit again: accepting connections"
                );
                refused_in_episode = 0;
            }
            let slot = Slot::new(permit, self.gate.metrics.clone());
            handshakes.spawn(establish(
                socket,
                self.tls.clone(),
                self.gate.handshake_timeout,
                slot,
                self.tx.clone(),
            ));
        }
        // Dropping `handshakes` aborts every connection that has not finished its handshake: shutdown never waits
        // for them.
    }

    /// Counts and logs a failed accept; returns the pause to keep for the next failure (None: not an fd shortage).
    async fn accept_failed(&self, err: &io::Error, backoff: Option<Duration>) -> Option<Duration> {
        if is_fd_exhaustion(err) {
            self.gate.metrics.accept_failed(AcceptError::FdLimit);
            let pause = match backoff {
                None => {
                    warn!(%err, "out of file descriptors: cannot accept connections (raise `ulimit -n`, or lower \
                                 limits.max_connections below it)");
                    MIN_ACCEPT_BACKOFF
                }
                Some(pause) => (pause * 2).min(MAX_ACCEPT_BACKOFF),
            };
            tokio::time::sleep(pause).await;
            return Some(pause);
        }
        self.gate.metrics.accept_failed(AcceptError::Other);
        // A connection reset before it was accepted and the like: nothing to do. Anything else, pause a little
        // rather than spin on an error that repeats.
        if !matches!(
            err.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::Interrupted
                | io::ErrorKind::WouldBlock
        ) {
            debug!(%err, "accept failed");
            tokio::time::sleep(MIN_ACCEPT_BACKOFF).await;
        }
        backoff
    }
}

fn is_fd_exhaustion(err: &io::Error) -> bool {
    // EMFILE (the process's limit) and ENFILE (the system's), on Linux and the BSDs alike.
    matches!(err.raw_os_error(), Some(23 | 24))
}

/// Finishes TLS and reads the preface within `timeout`, then hands the connection to the server.
async fn establish(
    socket: Socket,
    tls: Option<TlsAcceptor>,
    timeout: Duration,
    slot: Slot,
    tx: mpsc::Sender<io::Result<Connection>>,
) {
    let peer = socket.peer();
    let metrics = slot.metrics.clone();
    let outcome = match tokio::time::timeout(timeout, handshake(socket, tls)).await {
        Ok(outcome) => outcome,
        Err(_elapsed) => Err(ConnectionDrop::HandshakeTimeout),
    };
    match outcome {
        Ok(transport) => {
            let connection = Connection {
                transport,
                replayed: 0,
                peer,
                _slot: slot,
            };
            // The receiver is gone only when the server is stopping: the connection is closed with it.
            let _ = tx.send(Ok(connection)).await;
        }
        Err(why) => {
            metrics.connection_dropped(why);
            debug!(peer = ?peer, reason = ?why, "connection closed before its first call");
        }
    }
}

async fn handshake(socket: Socket, tls: Option<TlsAcceptor>) -> Result<Transport, ConnectionDrop> {
    let mut transport = match tls {
        Some(acceptor) => Transport::Tls(Box::new(
            acceptor
                .accept(socket)
                .await
                .map_err(|_| ConnectionDrop::HandshakeFailed)?,
        )),
        None => Transport::Plain(socket),
    };
    let mut preface = [0u8; PREFACE.len()];
    transport
        .read_exact(&mut preface)
        .await
        .map_err(|_| ConnectionDrop::HandshakeFailed)?;
    if &preface != PREFACE {
        return Err(ConnectionDrop::NotHttp2);
    }
    Ok(transport)
}

/// One of the `limits.max_connections` slots, given back when the connection is dropped.
struct Slot {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit, metrics: Arc<Metrics>) -> Self {
        metrics.connection_opened();
        Slot {
            _permit: permit,
            metrics,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.metrics.connection_closed();
    }
}

/// An accepted socket.
enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    fn peer(&self) -> Option<SocketAddr> {
        match self {
            Socket::Tcp(stream) => stream.peer_addr().ok(),
            Socket::Unix(_) => None,
        }
    }
}

/// The bytes of a connection: the socket itself, or TLS over it.
enum Transport {
    Plain(Socket),
    Tls(Box<TlsStream<Socket>>),
}

/// An established connection: TLS done, HTTP/2 preface received (and replayed to the server first).
pub struct Connection {
    transport: Transport,
    /// How much of [`PREFACE`] the server has read back.
    replayed: usize,
    peer: Option<SocketAddr>,
    _slot: Slot,
}

/// What a call can learn of its connection (`Request::extensions`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionInfo {
    /// The client's address; None on a Unix socket.
    pub peer: Option<SocketAddr>,
}

impl Connected for Connection {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        ConnectionInfo { peer: self.peer }
    }
}

// === impl AsyncRead / AsyncWrite ===

/// Forwards one I/O method to whichever stream is inside.
macro_rules! forward {
    ($self:ident, $stream:ident => $call:expr) => {
        match $self.get_mut() {
            Socket::Tcp($stream) => $call,
            Socket::Unix($stream) => $call,
        }
    };
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        forward!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        forward!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        forward!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Socket::Tcp(s) => s.is_write_vectored(),
            Socket::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        forward!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        forward!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(s) => s.is_write_vectored(),
            Transport::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.replayed < PREFACE.len() {
            // The preface was consumed to check it: give it to the HTTP/2 server before anything else.
            let rest = &PREFACE[this.replayed..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.replayed += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.transport).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().transport).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().transport).poll_write_vectored(cx, bufs)
    }

    /// Says "not vectored", though the socket is, so that the HTTP/2 server copies small payloads into its write
    /// buffer instead of chaining them: h2 chains a DATA payload of 256 bytes or more to a vectored writer (1024 to
    /// another) and buffers nothing more until it is written, which sends every answer (about 270 bytes, a little
    /// over) in a system call of its own, often two (its HEADERS first). Copied, the answers of many calls go out in
    /// one write, as a smaller answer's do: under load that was about three times fewer writes per call, and the
    /// kernel's send path was the largest single cost of the server (issue #12). The bytes on the wire are the same.
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().transport).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().transport).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn accepted(keepalive: Option<Duration>) -> TcpStream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(TcpStream::connect(addr));
        let Socket::Tcp(stream) = Listener::Tcp(listener).accept(keepalive).await.unwrap() else {
            panic!("a TCP listener accepts TCP connections");
        };
        drop(client.await.unwrap().unwrap());
        stream
    }

    /// Accepted TCP connections have Nagle's algorithm off and, when keepalive is configured, the kernel probing
    /// them after that idle time, 3 probes 10 s apart; with keepalive off, no probes.
    #[tokio::test]
    async fn tcp_connections_are_probed_by_the_kernel_when_idle() {
        let stream = accepted(Some(Duration::from_secs(45))).await;
        let socket = socket2::SockRef::from(&stream);
        assert!(stream.nodelay().unwrap());
        assert!(socket.keepalive().unwrap());
        assert_eq!(
            socket.tcp_keepalive_time().unwrap(),
            Duration::from_secs(45)
        );
        assert_eq!(
            socket.tcp_keepalive_interval().unwrap(),
            TCP_KEEPALIVE_PROBE_INTERVAL
        );
        assert_eq!(
            socket.tcp_keepalive_retries().unwrap(),
            TCP_KEEPALIVE_PROBES
        );

        let stream = accepted(None).await;
        assert!(!socket2::SockRef::from(&stream).keepalive().unwrap());
    }
}
