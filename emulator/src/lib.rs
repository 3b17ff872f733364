//! The pure core of fr: what real root would see, as data and rules.
//!
//! Nothing here makes a system call, reads a clock or touches a global: the
//! supervisor feeds it the real attributes of a file and gets back what the
//! workload must see. That keeps every rule testable, fuzzable and checkable
//! against a model without privileges.
#![forbid(unsafe_code)]

// File modes and the ownership-related part of a stat.
pub mod attrs;
// A file's full status, and the overlay of fake ownership onto it.
pub mod kstat;
// The stat structs of each system call ABI, as the kernel copies them out.
pub mod abi;
// How host ids appear inside: the user's own ids as 0, others as they are.
pub mod ids;
// Fake credentials and the kernel's rules for changing them.
pub mod creds;
// The rules the kernel applies for real root: chown, chmod.
pub mod rules;
// POSIX ACLs in their xattr form and the mode bits they imply.
pub mod acl;
// Extended attributes the kernel refuses the user: names and rules.
pub mod xattr;
// The concurrent inode table that holds what fr has faked.
pub mod table;
// Its persisted form: snapshot by path, journal by inode.
pub mod store;
// Tar headers with pax extended records, for `fr export`.
pub mod tar;

pub use attrs::{Attrs, FileType};
pub use creds::Creds;
pub use ids::IdMap;
pub use kstat::{Kstat, Timestamp};
pub use table::{InodeKey, InodeTable};
