//! fr's image formats: what an image is made from and written as, pure
//! data and parsers, with no namespace, mount or system call of fr's. The
//! launcher runs workloads; `fr-build` composes the two. Data flows top to
//! bottom:
#![forbid(unsafe_code)]

// Apptainer definition files: header, sections, stages, templates.
pub mod civil;
pub mod def;
// The metadata Apptainer keeps in an image (/.singularity.d), as a build
// writes it.
pub mod layout;
// OCI images: transports, index, manifest, config, layers, digests.
pub mod oci;
// How Apptainer's actions (exec, run, shell, test, start) run in an image:
// the environment they pass and the script that sources the image's own.
pub mod action;
