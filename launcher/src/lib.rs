//! fr's launcher: it turns `fr exec` into a running workload. Data flows
//! top to bottom:
#![deny(unsafe_code)]

// What `fr exec` was asked for.
pub mod options;
// What can stop it, and the way out.
pub mod error;
// The subordinate id files: one parser for every reader and writer.
pub mod subid;
// Which user namespace: subuid, root-mapped or none, and why.
pub mod mode;
// Mode choice, forks, id maps, the supervisor, signals and exit status.
pub mod run;
// The container as a process group of its own, and the terminal.
pub mod job;
// The container's outer process: the mounts that hold, the inner
// namespaces, signals relayed to the init.
pub mod outer;
// The container's init: /proc, the image as root, the workload's fork,
// signals, reaping.
pub mod init;
// The id maps of the user namespace.
pub mod idmap;
// The container's mounts: the image as root, or the host tree.
pub mod mounts;
// The image's fake metadata on disk: lock, snapshot, journal.
pub mod store;
// What a file given where an image or a tar archive belongs is, for the
// message that says what to do with it.
pub mod sniff;
// `fr export`: the image and its fake metadata as a tar archive.
pub mod export;
// What an image changed over a base tree, as an OCI layer's members.
pub mod diff;
// `fr export --format oci|oci-archive`: the image as an OCI image.
pub mod export_oci;
// `fr import`: a tar archive unpacked into an image, what the user cannot
// set recorded in its store.
pub mod import;
// The per-user cache of OCI images unpacked to run.
pub mod cache;
// A tree umoci --rootless or containers/storage unpacked: the owners
// they keep in user.* xattrs taken into the store.
pub mod adopt;
// An image copied as hard links (the cache's layers and images).
pub mod clone;
// `fr rm`: an image removed, its subordinate-owned files included.
pub mod remove;
// `fr fsck`: a metadata store checked for damage, and repaired.
pub mod fsck;
// `fr check`: what the host offers and the mode fr picks.
pub mod check;
// `fr config fakeroot`: subordinate id ranges for a user, as root.
pub mod config;
// The messages from the container: its namespaces, the listener, ready,
// or why not.
pub mod channel;
// `--net`: the network helpers (pasta, slirp4netns), port maps, DNS.
pub mod net;
// Instances: the monitor, its state and socket, the sessions that join.
pub mod instance;
// The workload: filter, hand-over, execve.
pub mod workload;
// fr's stderr logger.
pub mod log;
// fork-with-namespaces, execve and signal waiting.
mod sys;

pub use error::Error;
pub use options::{Bind, ExecOptions, NetHelper, Network, PortMap, Root, Userns};
pub use run::exec;
/// For the commands whose output is their result (`fr export IMAGE -`,
/// `fr syscalls`): a reader that closed the pipe ends them as it ends
/// `cat` and `tar`, by `SIGPIPE`, quietly.
pub use sys::default_sigpipe;
