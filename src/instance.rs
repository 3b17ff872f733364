//! `fr instance start|run|list|stop` and `instance://NAME`.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use fr_image::action::Action;

use crate::action::Common;

#[derive(Debug, clap::Subcommand)]
pub enum InstanceCommand {}

pub fn main(cmd: InstanceCommand) -> ExitCode {
    match cmd {}
}

/// The NAME of `instance://NAME`.
pub fn name_of(image: &Path) -> Option<String> {
    image.to_str()?.strip_prefix("instance://").map(String::from)
}

pub fn join(_common: &Common, name: &str, _action: Action, _args: Vec<OsString>) -> ExitCode {
    log::error!("instance {name}: not yet");
    ExitCode::from(125)
}
