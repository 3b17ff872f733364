//! `fr build`: an image from an Apptainer definition file, or from another
//! image. It composes `fr-image` (the definition file, the
//! `/.singularity.d` layout) and `fr-launcher` (fr sessions, import,
//! export, removal), and the launcher knows nothing of definition files.
//! Data flows top to bottom:
#![deny(unsafe_code)]

// What `fr build` was asked for.
pub mod options;
// What stops a build, and the way out.
pub mod error;
// SPEC: a definition file parsed, or an image to convert.
pub mod spec;
// DEST: a sandbox or a tar archive, and the temporary siblings meanwhile.
pub mod output;
// The whole build: stages in order, sections in Apptainer's order.
pub mod build;
// Bootstrap agents: debootstrap, localimage, busybox, scratch.
pub mod agent;
// %files, from the host and from earlier stages.
pub mod files;
// Wildcards in %files sources, as a shell expands them.
pub mod glob;
// An image's tree read as the user, its links resolved inside it.
pub mod tree;
// What the builder writes into an image, as a tar archive to import.
pub mod tarball;
// Each step in a child of the builder: sessions, import, export, removal.
pub mod child;
// fork, the signal mask, _exit.
mod sys;

pub use build::{build, Built};
pub use error::Error;
pub use options::{BuildOptions, SECTIONS};
