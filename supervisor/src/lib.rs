//! fr's seccomp side: the filter, the notification workers and the system
//! call handlers. Data flows top to bottom:
#![deny(unsafe_code)]

// The system call ABIs of an x86_64 kernel and how notifications name them.
pub mod arch;
// The Linux ABI numbers the table, the filter and the handlers share.
pub mod linux;
// The table of intercepted calls: handler and note per call and ABI.
pub mod table;
// The seccomp filter built from the table, and its installation.
pub mod filter;
// The worker pool: receive, dispatch, reply.
pub mod notify;
// The -vv line of each call, decoded as strace does.
pub mod trace;
// Each workload thread's fake credentials.
pub mod creds;
// Which files fr changes for real, and which only in its table.
pub mod bounds;
// A target's /proc status, read as bytes.
pub mod procfs;
// One notification decoded, with access to the target's memory.
pub mod request;
// Finding the file a target's path or descriptor names, in its root.
pub mod resolve;
// A target's descriptors, duplicated through a pidfd kept per thread.
pub mod descriptors;
// The handlers, one module per system call family.
pub mod handlers;
// The few raw system calls no safe crate wraps.
pub mod sys;
// Which seccomp notification features the kernel has, by trying them.
pub mod probe;

use std::os::fd::OwnedFd;
use std::sync::Arc;

use fr_emulator::{IdMap, InodeTable};

pub use filter::FilterError;
pub use sys::SockFilter;

/// How the supervisor is set up for one workload.
#[derive(Clone, Debug)]
pub struct Config {
    /// How host ids show inside: the invoking user's, and its subordinate
    /// ranges.
    pub ids: IdMap,
    /// Worker threads receiving notifications at the start (more are
    /// added when all are held up, see [`notify`]).
    pub workers: usize,
    /// Ask for `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (6.6): the worker is
    /// woken on the CPU the target leaves.
    pub sync_wakeup: bool,
    /// Benchmarks only: answer every notification with CONTINUE, so that
    /// the bare round trip, the floor of this design, can be measured.
    pub continue_all: bool,
    /// The workload's user namespace, and where fr stands in it.
    pub namespace: Namespace,
    /// The files behind the descriptors fr's caller passed on to the
    /// workload (see [`bounds`]).
    pub passed_in: Vec<fr_emulator::InodeKey>,
}

/// The user namespace the workload runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Namespace {
    /// None: the kernel shows the workload the host's ids.
    None,
    /// 0 is the invoking user, nothing else is mapped; fr stays outside.
    RootMapped,
    /// 0 is the user, 1..N its subordinate ids; fr has joined it, so the
    /// ids it reads are the namespace's, and owners the namespace maps go
    /// to the real files.
    Subuid,
}

/// A supervisor ready to serve one workload.
#[derive(Debug)]
pub struct Supervisor {
    program: Vec<SockFilter>,
    shared: Arc<notify::Shared>,
    config: Config,
}

impl Supervisor {
    pub fn new(config: Config) -> Result<Self, FilterError> {
        let bound = table::bind();
        let options = filter::Options {
            // Without a pid namespace the workload sees fr's pid.
            shield: (config.namespace == Namespace::None).then(std::process::id),
            // Only in subuid mode does the kernel hold the ids a thread
            // drops to (handlers::ident), and enforce them on writes.
            writes: config.namespace != Namespace::Subuid,
        };
        let program = filter::build(&bound, &options)?;
        let ctx = handlers::Context {
            inodes: Arc::new(InodeTable::new(config.ids.clone())),
            creds: creds::CredsTable::new(
                std::process::id() as i32,
                creds::CredsTable::own_bounding_set(),
            ),
            namespace: config.namespace,
            bounds: bounds::Bounds::new(config.passed_in.iter().copied()),
            pinned: std::sync::Mutex::new(Vec::new()),
        };
        let shared = Arc::new(notify::Shared {
            dispatch: table::Dispatch::new(&bound),
            ctx,
            descriptors: descriptors::Descriptors::default(),
            continue_all: config.continue_all,
        });
        Ok(Self { program, shared, config })
    }

    /// The BPF program the workload installs with [`filter::install`].
    pub fn program(&self) -> &[SockFilter] {
        &self.program
    }

    /// The inode table the workers fill.
    pub fn inodes(&self) -> &Arc<InodeTable> {
        &self.shared.ctx.inodes
    }

    /// The files behind the descriptors of another caller whose workload
    /// joins this supervisor's (`fr exec instance://NAME`): changed only
    /// in the table, as the first caller's are.
    pub fn pass_in(&self, keys: impl IntoIterator<Item = fr_emulator::InodeKey>) {
        self.shared.ctx.bounds.pass_in(keys);
    }

    /// Serves the workload's listener on the worker threads. `image_mount`
    /// is the mount id of the image that is the workload's root, for a
    /// session with an image (see [`bounds`]).
    pub fn serve(&self, listener: OwnedFd, image_mount: Option<u64>) -> std::io::Result<()> {
        self.shared.ctx.bounds.set_image_mount(image_mount);
        if self.config.sync_wakeup {
            use std::os::fd::AsFd;
            if let Err(e) =
                sys::notif_set_flags(listener.as_fd(), sys::SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
            {
                log::info!("SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP is not available: {e}");
            }
        }
        notify::serve(self.shared.clone(), listener, self.config.workers)
    }
}
