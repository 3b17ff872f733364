//! `fr build`: the command line of the builder (`fr-build`).

use std::path::PathBuf;
use std::process::ExitCode;

use fr_launcher::Bind;

use crate::UsernsArg;

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Build a sandbox directory, whatever DEST's name
    #[arg(short = 's', long)]
    sandbox: bool,

    /// Replace DEST if it exists (an image fr built, or a file)
    #[arg(short = 'F', long)]
    force: bool,

    /// Skip the %test section
    #[arg(short = 'T', long)]
    notest: bool,

    /// Run only this section of the definition on the existing sandbox DEST (repeatable)
    #[arg(long = "section", value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(fr_build::SECTIONS))]
    sections: Vec<String>,

    /// Set a {{ KEY }} of the definition file (repeatable)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_args: Vec<String>,

    /// Read build arguments from FILE, KEY=VALUE lines (--build-arg wins)
    #[arg(long, value_name = "FILE")]
    build_arg_file: Option<PathBuf>,

    /// Bind a host path during %post and %test (repeatable); ro makes it read-only
    #[arg(short = 'B', long = "bind", value_name = "SRC[:DST[:ro|rw]]")]
    binds: Vec<Bind>,

    /// The user namespace every step runs in
    #[arg(long, value_enum, default_value = "auto", value_name = "MODE")]
    userns: UsernsArg,

    /// Reach a docker:// source's registry by plain HTTP (for one on this host)
    #[arg(long)]
    nohttps: bool,

    /// Keep what a failed build made (fr rm removes it), and say where
    #[arg(long)]
    no_cleanup: bool,

    /// Implied: a build by a user without root is a fake-root build (accepted as Apptainer's -f)
    #[arg(short = 'f', long, hide = true)]
    fakeroot: bool,

    /// The image to write: a sandbox directory, a tar archive when its
    /// name ends in .tar, .tar.gz or .tar.zst, or an OCI image:
    /// oci:DIR[:TAG] or oci-archive:FILE[:TAG]
    #[arg(value_name = "DEST", value_hint = clap::ValueHint::AnyPath)]
    dest: PathBuf,

    /// A definition file, or an image to convert (a directory, a tar archive, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE, docker://REF)
    #[arg(value_name = "SPEC", value_hint = clap::ValueHint::AnyPath)]
    spec: PathBuf,
}

pub fn build(args: BuildArgs, quiet: bool) -> ExitCode {
    use std::io::IsTerminal;
    let _ = args.fakeroot;
    let build_args =
        match fr_build::spec::build_args(&args.build_args, args.build_arg_file.as_deref()) {
            Ok(a) => a,
            Err(e) => return fail(&e),
        };
    let opts = fr_build::BuildOptions {
        dest: args.dest,
        spec: args.spec,
        sandbox: args.sandbox,
        force: args.force,
        notest: args.notest,
        sections: args.sections,
        build_args,
        binds: args.binds,
        userns: args.userns.into(),
        no_cleanup: args.no_cleanup,
        progress: !quiet && std::io::stderr().is_terminal(),
        nohttps: args.nohttps,
    };
    match fr_build::build(&opts) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &fr_build::Error) -> ExitCode {
    log::error!("{e}");
    if let Some(hint) = e.hint().filter(|h| !h.is_empty()) {
        fr_launcher::log::hint(hint);
    }
    ExitCode::from(e.code())
}
