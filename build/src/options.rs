//! What `fr build` was asked for.

use std::collections::BTreeMap;
use std::path::PathBuf;

use fr_launcher::{Bind, Userns};

/// The sections `--section` names (Apptainer's, and the metadata ones),
/// and `none`, which runs none of them.
pub const SECTIONS: [&str; 10] = [
    "setup",
    "files",
    "post",
    "environment",
    "runscript",
    "startscript",
    "test",
    "labels",
    "help",
    "none",
];

#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub dest: PathBuf,
    pub spec: PathBuf,
    /// `--sandbox`: a directory, whatever DEST's name.
    pub sandbox: bool,
    /// `--force`: replace DEST.
    pub force: bool,
    /// `--notest`: skip `%test`.
    pub notest: bool,
    /// `--section`: run only these sections of the last stage, on the
    /// existing sandbox DEST; empty: a whole build.
    pub sections: Vec<String>,
    /// `--build-arg` and `--build-arg-file`, for `{{ VAR }}`.
    pub build_args: BTreeMap<String, String>,
    /// `-B`: binds during `%post` and `%test`.
    pub binds: Vec<Bind>,
    pub userns: Userns,
    /// `--no-cleanup`: a failed build keeps what it made, and says where.
    pub no_cleanup: bool,
    /// Progress bars for long steps (stderr is a terminal, no `-q`).
    pub progress: bool,
    /// `--nohttps`: a `docker://` source's registry by plain HTTP.
    pub nohttps: bool,
}
