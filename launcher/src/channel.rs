//! The messages the container sends to fr before the command runs: the
//! seccomp listener (with `SCM_RIGHTS`) and the id of the container's root
//! mount, "ready" when there is no supervisor, or why the setup failed;
//! before those, when fr asks for them, the descriptors of the container's
//! namespaces and root, after which the init waits for fr's go. A
//! `SOCK_SEQPACKET` pair keeps each message whole; end of file means the
//! container died without a word.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    self, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

/// The namespaces the init shares with fr, in this order, then its root.
pub const NAMESPACES: [&str; 6] = ["user", "mnt", "pid", "ipc", "uts", "net"];

/// The container's namespaces and root, as descriptors (see [`NAMESPACES`]).
#[derive(Debug)]
pub struct Shared {
    pub user: OwnedFd,
    pub mnt: OwnedFd,
    pub pid: OwnedFd,
    pub ipc: OwnedFd,
    pub uts: OwnedFd,
    pub net: OwnedFd,
    /// The container's `/` (`O_PATH`).
    pub root: OwnedFd,
}

impl Shared {
    /// In [`NAMESPACES`] order, then the root.
    pub fn fds(&self) -> [&OwnedFd; 7] {
        [&self.user, &self.mnt, &self.pid, &self.ipc, &self.uts, &self.net, &self.root]
    }

    /// From descriptors in [`Shared::fds`] order.
    pub fn from_fds(fds: Vec<OwnedFd>) -> Option<Shared> {
        let [user, mnt, pid, ipc, uts, net, root]: [OwnedFd; 7] = fds.try_into().ok()?;
        Some(Shared { user, mnt, pid, ipc, uts, net, root })
    }
}

/// What fr hears from the container.
#[derive(Debug)]
pub enum Message {
    /// The init's namespaces and root; it waits for [`send_go`].
    Shared(Shared),
    /// The listener, and the id of the mount that is the workload's root
    /// (`statx`'s `stx_mnt_id`) when it could be read.
    Listener {
        fd: OwnedFd,
        root_mount: Option<u64>,
    },
    Ready,
    Failed(String),
    Closed,
}

/// A connected pair: (fr's end, the container's end).
pub fn pair() -> Result<(OwnedFd, OwnedFd), Errno> {
    net::socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)
}

fn send(
    sock: BorrowedFd<'_>,
    tag: &[u8],
    text: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> Result<(), Errno> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds;
    if let Some(fd) = fd {
        fds = [fd];
        control.push(SendAncillaryMessage::ScmRights(&fds));
    }
    net::sendmsg(sock, &[IoSlice::new(tag), IoSlice::new(text)], &mut control, SendFlags::empty())?;
    Ok(())
}

pub fn send_listener(
    sock: BorrowedFd<'_>,
    listener: BorrowedFd<'_>,
    root_mount: Option<u64>,
) -> Result<(), Errno> {
    let mount = root_mount.map(u64::to_le_bytes);
    send(sock, b"L", mount.as_ref().map_or(&[][..], |m| &m[..]), Some(listener))
}

pub fn send_ready(sock: BorrowedFd<'_>) -> Result<(), Errno> {
    send(sock, b"R", b"", None)
}

/// The init's namespaces and root (in [`Shared::fds`] order).
pub fn send_shared(sock: BorrowedFd<'_>, fds: &[OwnedFd]) -> Result<(), Errno> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(8))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
    control.push(SendAncillaryMessage::ScmRights(&borrowed));
    net::sendmsg(sock, &[IoSlice::new(b"N")], &mut control, SendFlags::empty())?;
    Ok(())
}

/// fr's word to the init that waits after [`send_shared`].
pub fn send_go(sock: BorrowedFd<'_>) -> Result<(), Errno> {
    send(sock, b"G", b"", None)
}

/// Waits for [`send_go`]: false on end of file (fr gave up).
pub fn wait_go(sock: BorrowedFd<'_>) -> Result<bool, Errno> {
    let mut buf = [0u8; 16];
    loop {
        match net::recv(sock, &mut buf, RecvFlags::empty()) {
            Err(Errno::INTR) => continue,
            Ok((n, _)) => return Ok(n > 0 && buf[0] == b'G'),
            Err(e) => return Err(e),
        }
    }
}

/// Best effort: the caller is about to exit anyway.
pub fn send_failure(sock: BorrowedFd<'_>, why: &str) {
    let _ = send(sock, b"E", why.as_bytes(), None);
}

pub fn recv(sock: impl AsFd) -> Result<Message, Errno> {
    let mut buf = [0u8; 4096];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(8))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = loop {
        match net::recvmsg(
            &sock,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(Errno::INTR) => continue,
            other => break other?,
        }
    };
    let mut fds: Vec<OwnedFd> = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(got) = msg {
            fds.extend(got);
        }
    }
    if buf.first().filter(|_| got.bytes > 0) == Some(&b'N') {
        return Ok(match Shared::from_fds(fds) {
            Some(shared) => Message::Shared(shared),
            None => Message::Failed("the container's namespaces did not all arrive".into()),
        });
    }
    let fd = fds.into_iter().next();
    Ok(match (buf.first().filter(|_| got.bytes > 0), fd) {
        (None, _) => Message::Closed,
        (Some(b'L'), Some(fd)) => Message::Listener {
            fd,
            root_mount: buf
                .get(1..9)
                .filter(|_| got.bytes == 9)
                .map(|b| u64::from_le_bytes(b.try_into().expect("eight bytes"))),
        },
        (Some(b'R'), _) => Message::Ready,
        (Some(b'E'), _) => {
            Message::Failed(String::from_utf8_lossy(&buf[1..got.bytes]).into_owned())
        }
        _ => Message::Failed("the container sent a message fr does not understand".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_arrives_whole() {
        let (ours, theirs) = pair().unwrap();
        send_ready(theirs.as_fd()).unwrap();
        send_failure(theirs.as_fd(), "mounting proc on /x/proc: Operation not permitted");
        let (r, _w) = rustix::pipe::pipe().unwrap();
        send_listener(theirs.as_fd(), r.as_fd(), Some(0x1234_5678_9abc)).unwrap();
        send_listener(theirs.as_fd(), r.as_fd(), None).unwrap();
        drop(theirs);
        assert!(matches!(recv(&ours).unwrap(), Message::Ready));
        match recv(&ours).unwrap() {
            Message::Failed(why) => {
                assert_eq!(why, "mounting proc on /x/proc: Operation not permitted")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            recv(&ours).unwrap(),
            Message::Listener { root_mount: Some(0x1234_5678_9abc), .. }
        ));
        assert!(matches!(recv(&ours).unwrap(), Message::Listener { root_mount: None, .. }));
        assert!(matches!(recv(&ours).unwrap(), Message::Closed));
    }
}
