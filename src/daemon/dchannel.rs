//! The transport of an E1 span's D-channel: HDLC frames, each with its two FCS bytes, as
//! DAHDI delivers them on the span's signalling channel.
//!
//! On a DAHDI card the frames come from the D-channel's file descriptor. On the simulated
//! card the span's D-channel is a Unix `SOCK_SEQPACKET` socket in the data directory, so that
//! any Q.921 peer (libpri in the tests, another PBX through a small bridge) can be the far end
//! while the bearer channels' audio stays simulated. A sequenced-packet socket keeps frame
//! boundaries, exactly like the HDLC channel does.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::socket::{self, AddressFamily, Backlog, MsgFlags, SockFlag, SockType, UnixAddr};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Largest D-channel frame: Q.921's N201 (260 octets of information) plus address, control
/// and the FCS, with room to spare so that an oversized frame is seen as such.
pub const MAX_FRAME: usize = 512;

/// A new non-blocking Unix sequenced-packet socket.
fn seqpacket_socket() -> io::Result<OwnedFd> {
    Ok(socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?)
}

/// A listening socket where the simulated span's far end connects.
pub struct SeqpacketListener {
    fd: AsyncFd<OwnedFd>,
    path: PathBuf,
}

impl SeqpacketListener {
    /// Listens at `path`, replacing a socket file left by an earlier run.
    pub fn bind(path: &Path) -> io::Result<SeqpacketListener> {
        let fd = seqpacket_socket()?;
        let _ = std::fs::remove_file(path);
        let addr = UnixAddr::new(path)?;
        socket::bind(fd.as_raw_fd(), &addr)?;
        socket::listen(&fd, Backlog::new(1).map_err(io::Error::from)?)?;
        // SAFETY: the AsyncFd owns the descriptor, so it stays open for as long as it is
        // registered and is closed only after it is deregistered.
        let fd = unsafe { AsyncFd::register(fd)? };
        Ok(SeqpacketListener { fd, path: path.to_path_buf() })
    }

    /// Where the far end connects.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the far end to connect.
    pub async fn accept(&self) -> io::Result<FrameLink> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| {
                socket::accept4(fd.as_raw_fd(), SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC)
                    .map_err(io::Error::from)
            }) {
                Ok(Ok(raw)) => {
                    // SAFETY: accept4 returned a new descriptor that nothing else owns.
                    let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
                    return FrameLink::new(owned);
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

impl Drop for SeqpacketListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One connected D-channel: frames in, frames out, boundaries kept.
pub struct FrameLink {
    fd: AsyncFd<OwnedFd>,
}

impl FrameLink {
    /// Wraps a non-blocking descriptor that carries one frame per read and write (a connected
    /// `SOCK_SEQPACKET` socket, or a DAHDI D-channel opened with `O_NONBLOCK`).
    pub fn new(fd: OwnedFd) -> io::Result<FrameLink> {
        // SAFETY: the AsyncFd owns the descriptor, so it stays open for as long as it is
        // registered and is closed only after it is deregistered.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE | Interest::WRITABLE)? };
        Ok(FrameLink { fd })
    }

    /// Connects to a listening D-channel socket (the far end's side; used by tests and tools).
    pub fn connect(path: &Path) -> io::Result<FrameLink> {
        let fd = seqpacket_socket()?;
        socket::connect(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
        FrameLink::new(fd)
    }

    /// Receives one frame into `buf`. `Ok(0)` means the far end went away.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| {
                socket::recv(fd.as_fd().as_raw_fd(), buf, MsgFlags::empty()).map_err(io::Error::from)
            }) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends one frame.
    pub async fn send(&self, frame: &[u8]) -> io::Result<()> {
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| {
                socket::send(fd.as_fd().as_raw_fd(), frame, MsgFlags::MSG_NOSIGNAL).map_err(io::Error::from)
            }) {
                Ok(Ok(n)) if n == frame.len() => return Ok(()),
                Ok(Ok(n)) => {
                    return Err(io::Error::other(format!("sent {n} of a {}-byte frame", frame.len())))
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_keep_their_boundaries_both_ways_and_a_closed_peer_reads_as_zero() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("span1.dchan");
        let listener = SeqpacketListener::bind(&path).expect("bind");
        let peer = FrameLink::connect(&path).expect("connect");
        let ours = listener.accept().await.expect("accept");
        peer.send(&[0x00, 0x01, 0x7f, 0xaa, 0xbb]).await.expect("send");
        peer.send(&[0x02]).await.expect("send");
        let mut buf = [0u8; MAX_FRAME];
        assert_eq!(ours.recv(&mut buf).await.expect("recv"), 5);
        assert_eq!(&buf[..5], &[0x00, 0x01, 0x7f, 0xaa, 0xbb]);
        assert_eq!(ours.recv(&mut buf).await.expect("recv"), 1);
        ours.send(&[9, 8, 7]).await.expect("send back");
        assert_eq!(peer.recv(&mut buf).await.expect("recv"), 3);
        drop(peer);
        assert_eq!(ours.recv(&mut buf).await.expect("recv after close"), 0);
        drop(listener);
        assert!(!path.exists(), "the socket file is removed with the listener");
    }
}
