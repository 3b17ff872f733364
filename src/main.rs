//! `fr`: fake root for containers and image builds, without LD_PRELOAD.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use fr_image::action::Action;

mod action;
mod instance;
use action::{Common, UsernsArg};

mod build;

/// fr gives an unprivileged user "fake root": the workload's chown, stat
/// and related system calls are intercepted by seccomp user notification
/// and answered as real root would answer them, for static binaries and raw
/// system calls too. The fake ownership is kept in an inode table.
#[derive(Debug, Parser)]
#[command(name = "fr", version, about, long_about)]
struct Cli {
    /// Print errors only
    #[arg(short, long, global = true)]
    quiet: bool,

    /// Print more: -v for debugging, -vv for every intercepted system call
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a command in a container, or on the host tree, as fake root with -f
    ///
    /// With IMAGE (a directory holding a root file system) the command runs
    /// in new user, mount, pid, ipc and uts namespaces with IMAGE as its root,
    /// /proc, /sys, a minimal /dev and a /tmp. Everything after IMAGE is the
    /// command and its arguments, options too, as with `apptainer exec`; a
    /// `--` right after IMAGE is optional. Without IMAGE the command follows
    /// `--` and the host tree stays the root: a drop-in for `fakeroot CMD`.
    ///
    /// Without a command fr starts a shell: in IMAGE its /bin/bash --norc,
    /// else its /bin/sh (as `apptainer shell`); on the host tree $SHELL,
    /// else /bin/sh (as `fakeroot`). It reads commands from stdin when that
    /// is not a terminal.
    ///
    /// Exit status: the command's (128+N if signal N killed it); 125 if fr
    /// itself failed, 126 if the command cannot be run, 127 if it is not
    /// found; 2 for a usage error.
    #[command(
        override_usage = "fr exec [OPTIONS] [IMAGE] [--] [CMD [ARG]...]\n       \
                          fr exec [OPTIONS] -- CMD [ARG]...",
        after_help = "Examples:\n  \
        fr exec --fakeroot ./rootfs sh -c 'chown 123:456 /f; stat -c %u:%g /f'\n  \
        fr exec -f ./rootfs              # a shell in the image, as fake root\n  \
        echo 'id -u' | fr exec -f ./rootfs\n  \
        fr exec -f -- tar --same-owner -xpf image.tar\n  \
        fr exec -f                       # $SHELL on the host tree, as fakeroot"
    )]
    Exec(ExecArgs),

    /// Run IMAGE's runscript with ARGS, as apptainer run
    ///
    /// The runscript is /.singularity.d/runscript (an OCI image's
    /// entrypoint and command, where fr made it from one); without one,
    /// /bin/sh with ARGS. The image's environment scripts
    /// (/.singularity.d/env/*.sh) are sourced first. As every action, it
    /// starts in your working directory with your home and that directory
    /// bound (see --contain, --no-home), and IMAGE is read-only unless
    /// --fakeroot, --writable or --writable-tmpfs. IMAGE may be
    /// instance://NAME, a running instance.
    #[command(
        override_usage = "fr run [OPTIONS] IMAGE [ARG]...",
        after_help = "Examples:\n  \
        fr run ./img a b\n  \
        fr run -f --net -p 8080:80 ./web"
    )]
    Run(ActionArgs),

    /// Start a shell in IMAGE, as apptainer shell
    ///
    /// $SINGULARITY_SHELL (or $APPTAINER_SHELL) if set, else the image's
    /// /bin/bash --norc, else its /bin/sh, after the image's environment
    /// scripts. Interactive with job control on a terminal; it reads
    /// commands from stdin otherwise.
    #[command(
        override_usage = "fr shell [OPTIONS] IMAGE [ARG]...",
        after_help = "Examples:\n  \
        fr shell -f ./img\n  \
        echo 'id -u' | fr shell -f ./img"
    )]
    Shell(ActionArgs),

    /// Run IMAGE's test script (%test), as apptainer test
    #[command(override_usage = "fr test [OPTIONS] IMAGE [ARG]...")]
    Test(ActionArgs),

    /// Long-running containers in the background, each with a small monitor
    #[command(subcommand)]
    Instance(instance::InstanceCommand),

    /// Build an image from an Apptainer definition file, or convert an image, as fake root
    ///
    /// SPEC is a definition file (Bootstrap: debootstrap, localimage, busybox
    /// or scratch; %setup, %files, %post, %environment, %runscript,
    /// %startscript, %test, %labels, %help; several stages), or an image to
    /// convert: a directory (an fr image or any tree) or a tar archive. DEST
    /// is a sandbox directory (an fr image), or a tar archive as fr export
    /// writes it when its name ends in .tar, .tar.gz or .tar.zst.
    ///
    /// Every step is an fr session as fake root, in the mode fr exec -f
    /// picks: debootstrap and %setup on the host tree, %post and %test in
    /// the image, and the image's store keeps what they did, as real root's
    /// build would have left it. The build works in a temporary sibling of
    /// DEST (.DEST.fr-build-PID) and gives it DEST's name only when done; a
    /// failed build removes it (a failed %test keeps it, and says where).
    /// `docs/build.md` has the details.
    #[command(after_help = "Examples:\n  \
        fr build ./debian debian.def            # a sandbox\n  \
        fr build debian.tar.zst debian.def      # a tar archive\n  \
        fr build --section post ./debian debian.def\n  \
        fr build image.tar.zst ./debian         # convert an image")]
    Build(build::BuildArgs),

    /// Write IMAGE as a tar archive (or an OCI image) with its fake owners, modes, devices and xattrs
    ///
    /// The archive is what `tar -C IMAGE -cpf OUT --xattrs .` would write if
    /// real root had built the image: fake owners (named from the image's
    /// /etc/passwd and /etc/group), modes, device nodes, hard links and
    /// extended attributes as pax SCHILY.xattr records. OUT `-` is standard
    /// output; a name ending in .gz/.tgz or .zst/.tzst is compressed so.
    ///
    /// With --format oci or oci-archive (or OUT oci:DIR[:TAG],
    /// oci-archive:FILE[:TAG]) the archive is the one gzip layer of an OCI
    /// image whose config carries the image's Env, runscript and labels;
    /// --base SOURCE keeps the layers of the OCI image IMAGE was made from
    /// and adds IMAGE's changes as one layer.
    #[command(after_help = "Examples:\n  \
        fr export ./rootfs rootfs.tar.zst\n  \
        fr export ./rootfs - | tar -tvv --xattrs")]
    Export(ExportArgs),

    /// Unpack a tar archive into IMAGE, keeping the owners, modes, devices and xattrs
    ///
    /// ARCHIVE (plain, gzip or zstd, `-` for standard input) is unpacked as
    /// you, and what you cannot set for real (other owners, set-id bits,
    /// device nodes, security.* and trusted.* attributes, ACLs) goes into
    /// IMAGE's metadata store, as `tar --same-owner -xpf` would leave it as
    /// real root. IMAGE is made if missing. A member that would land outside
    /// IMAGE (absolute, `..`, through a symbolic link) stops the import.
    ///
    /// With --state FILE and no ARCHIVE, IMAGE is a tree already on disk (one
    /// `fr exec -f -s FILE -- debootstrap ... IMAGE` made) and becomes an fr
    /// image in place: every file of IMAGE that FILE has a record for (by
    /// inode) keeps it in IMAGE/.fr.
    #[command(after_help = "Examples:\n  \
        fr import rootfs.tar.zst ./rootfs\n  \
        fr import rootfs.tar ./rootfs && fr exec -f ./rootfs -- ls -l /dev\n  \
        fr exec -f -s deb.state -- debootstrap bookworm deb && fr import --state deb.state deb")]
    Import(ImportArgs),

    /// Remove IMAGE, with the files a subuid-mode session gave to subordinate ids
    ///
    /// Files a session in subuid mode chowned belong to your subordinate ids
    /// on the host, which you cannot delete there. fr removes the tree from
    /// a user namespace that maps those ids (as `podman unshare rm -rf`
    /// does). A session using IMAGE makes it refuse.
    #[command(after_help = "Example:\n  fr rm ./rootfs")]
    Rm {
        /// The image directory
        image: PathBuf,
    },

    /// Check IMAGE's fake metadata store (or a -s state file) for damage; --repair keeps every intact entry
    ///
    /// Prints what IMAGE/.fr holds: the snapshot (records, checksum), the
    /// journal (intact entries, a torn last entry left by a killed session,
    /// each damaged region with its byte offset and the intact entries
    /// after it, the image root it was written for). A session refuses a
    /// damaged store and rewrites nothing. --repair replays every intact
    /// entry onto the snapshot, writes a new snapshot and starts an empty
    /// journal; the damaged files are kept as journal.damaged or
    /// store.damaged. It takes the image's lock: not during a session.
    /// Exit status: 0 clean, 1 damage repaired, 4 damage left, 8 fsck failed.
    #[command(after_help = "Examples:\n  \
        fr fsck ./rootfs\n  \
        fr fsck --repair ./rootfs")]
    Fsck {
        /// Rebuild the store from every intact part, keeping the damaged files aside
        #[arg(long)]
        repair: bool,
        /// The image directory, or a state file written by fr exec -f -s FILE
        path: PathBuf,
    },

    /// Show what this host offers fr (user namespaces, subordinate ids, seccomp) and the mode fr picks
    Check {
        /// Print JSON, for scripts
        #[arg(long)]
        json: bool,
    },

    /// Settings of the host, for root
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Push IMAGE to a registry as an OCI image: fr push IMAGE docker://REF
    ///
    /// IMAGE is written as `fr export --format oci` writes it (one layer
    /// with the fake owners, modes, devices, hard links and xattrs; a
    /// config with Env, the runscript and Labels) and pushed: the blobs the
    /// registry does not have, then the manifest with REF's tag. Credentials
    /// are read as podman reads them ($XDG_RUNTIME_DIR/containers/auth.json,
    /// ~/.docker/config.json).
    #[command(
        after_help = "Example:\n  fr push --nohttps ./img docker://127.0.0.1:5000/me/img:v1"
    )]
    Push {
        /// Reach the registry by plain HTTP (for one on this host)
        #[arg(long)]
        nohttps: bool,
        /// The image directory
        image: PathBuf,
        /// docker://[HOST[:PORT]/]NAME[:TAG]
        reference: String,
    },

    /// Show or free the cache of OCI images unpacked to run ($XDG_CACHE_HOME/fr)
    ///
    /// `fr exec -f oci-archive:x.tar` (or oci:DIR, docker-archive:FILE)
    /// unpacks the image once into the cache, keyed by its manifest's
    /// digest, each layer once however many images share it, and runs it
    /// read-only from there.
    #[command(subcommand)]
    Cache(CacheCommand),

    /// List every intercepted system call, per ABI, and how fr handles it
    Syscalls,

    /// Print a completion script for SHELL, generated from fr's options
    #[command(after_help = "Install, for your user:\n  \
        fr completions bash > ~/.local/share/bash-completion/completions/fr\n  \
        fr completions zsh > ~/.zfunc/_fr     # with fpath+=(~/.zfunc) before compinit\n  \
        fr completions fish > ~/.config/fish/completions/fr.fish")]
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print fr's manual page (roff), every command in one page
    #[command(after_help = "Install, for your user:\n  \
        mkdir -p ~/.local/share/man/man1 && fr man > ~/.local/share/man/man1/fr.1\n  \
        fr man | man -l -     # to read it without installing")]
    Man,
}

#[derive(Debug, Subcommand)]
enum CacheCommand {
    /// List the cached images: digest, layers, when unpacked, source
    List,
    /// Remove every cached image and layer
    Clean,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Give USER a subordinate id range (or take it away, or switch it), as apptainer config fakeroot
    ///
    /// Edits /etc/subuid and /etc/subgid under their lock with an atomic
    /// replace; every other line stays as it is. --add allocates the lowest
    /// free range of 65536 ids from 100000 up; --disable keeps the entry
    /// with a leading `!`.
    #[command(group(clap::ArgGroup::new("action").required(true)))]
    Fakeroot {
        #[arg(long, group = "action")]
        add: bool,
        #[arg(long, group = "action")]
        remove: bool,
        #[arg(long, group = "action")]
        enable: bool,
        #[arg(long, group = "action")]
        disable: bool,
        /// The user's name
        user: String,
        #[arg(long, hide = true, default_value = "/etc/subuid")]
        subuid_file: PathBuf,
        #[arg(long, hide = true, default_value = "/etc/subgid")]
        subgid_file: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// Make IMAGE an image in place from FILE, a state file of fr exec -f -s FILE (no ARCHIVE)
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,

    /// The archive (- for standard input), then the image directory to unpack into
    #[arg(value_name = "[ARCHIVE] IMAGE", num_args = 1..=2, required = true)]
    paths: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CompressArg {
    None,
    Gzip,
    Zstd,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// Compression, instead of the one OUT's name implies (tar only)
    #[arg(short = 'z', long, value_enum, value_name = "KIND")]
    compress: Option<CompressArg>,

    /// What to write: a tar archive, an OCI image layout (OUT is DIR[:TAG]) or an OCI archive (FILE[:TAG])
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<FormatArg>,

    /// The OCI image IMAGE was made from (oci:, oci-archive:, docker-archive:, docker://): its layers are kept as they are, and only IMAGE's changes over them are the new layer
    #[arg(long, value_name = "SOURCE")]
    base: Option<String>,

    /// Reach the --base registry by plain HTTP (for one on this host)
    #[arg(long)]
    nohttps: bool,

    /// The image directory
    image: PathBuf,

    /// The archive to write, - for standard output; oci:DIR[:TAG] or oci-archive:FILE[:TAG] for an OCI image
    out: PathBuf,
}

/// `fr run|shell|test [OPTIONS] IMAGE [ARG]...`
#[derive(Debug, clap::Args)]
struct ActionArgs {
    #[command(flatten)]
    common: Common,

    /// IMAGE (a directory holding a root file system, or instance://NAME),
    /// then the arguments; everything after IMAGE is an argument
    #[arg(allow_hyphen_values = true, num_args = 1.., required = true,
          value_name = "IMAGE [ARG]...", value_hint = clap::ValueHint::AnyPath)]
    words: Vec<OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    Tar,
    Oci,
    OciArchive,
}

#[derive(Debug, clap::Args)]
struct ExecArgs {
    #[command(flatten)]
    common: Common,

    /// Without IMAGE: load the fake metadata from FILE first (as fakeroot -i)
    #[arg(short = 'i', long = "load", value_name = "FILE")]
    load_state: Option<PathBuf>,

    /// Without IMAGE: keep the fake metadata in FILE, written as it changes (as fakeroot -s)
    #[arg(short = 's', long = "save", value_name = "FILE")]
    save_state: Option<PathBuf>,

    /// IMAGE, a directory holding a root file system or an OCI image
    /// (oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE,
    /// docker://REF: unpacked once into $XDG_CACHE_HOME/fr, run read-only;
    /// omit IMAGE to keep the host tree), then the command and its
    /// arguments; with no command, a shell. Everything after IMAGE belongs
    /// to the command, options too
    #[arg(allow_hyphen_values = true, num_args = 0.., value_name = "IMAGE [CMD [ARG]...]",
          value_hint = clap::ValueHint::AnyPath)]
    words: Vec<OsString>,

    /// The command after `--` with no IMAGE before it: on the host tree
    #[arg(last = true, value_name = "CMD", hide = true)]
    command: Vec<OsString>,
}

impl ExecArgs {
    /// IMAGE and the command: `IMAGE CMD...`, `IMAGE -- CMD...` or `-- CMD...`
    /// (no IMAGE). A `--` after the command's name is the command's.
    fn split(&mut self) -> (Option<PathBuf>, Vec<OsString>) {
        let mut words = std::mem::take(&mut self.words).into_iter();
        let Some(image) = words.next() else {
            return (None, std::mem::take(&mut self.command));
        };
        let dash = |w: &OsString| w.as_encoded_bytes().starts_with(b"-");
        if dash(&image) {
            // Taken as a value because IMAGE accepts them: an option fr
            // does not have (`./-x` names a directory so named).
            usage_error(
                clap::error::ErrorKind::UnknownArgument,
                format!("unexpected argument '{}' found", image.to_string_lossy()),
            );
        }
        let mut command: Vec<OsString> = words.collect();
        if command.first().is_some_and(|w| w == "--") {
            command.remove(0);
        } else if let Some(option) = command.first().filter(|w| dash(w)) {
            // `fr exec IMAGE -f CMD` or `fr exec ls -l`: a command is never
            // named so; the option was meant for fr, or the command for
            // the host tree.
            let shown: Vec<_> =
                std::iter::once(&image).chain(&command).map(|w| w.to_string_lossy()).collect();
            let message = if std::path::Path::new(&image).is_dir() {
                format!(
                    "`{}` after IMAGE would be the command: fr exec's options go before IMAGE, \
                     everything after it is the command and its arguments",
                    option.to_string_lossy()
                )
            } else {
                format!(
                    "`{}` would be IMAGE, which is no directory, and `{}` the command; to run \
                     a command on the host tree put it after --: fr exec [OPTIONS] -- {}",
                    image.to_string_lossy(),
                    option.to_string_lossy(),
                    shown.join(" ")
                )
            };
            usage_error(clap::error::ErrorKind::UnknownArgument, message);
        }
        command.append(&mut self.command);
        (Some(PathBuf::from(image)), command)
    }
}

/// Exits 2 with `message` in clap's form, as its own usage errors do, for
/// the command `verb` (`exec`, `run`, ...).
fn usage_error_of(verb: &str, kind: clap::error::ErrorKind, message: impl std::fmt::Display) -> ! {
    use clap::CommandFactory;
    let mut cli = Cli::command();
    cli.build();
    let sub = cli.find_subcommand_mut(verb).cloned().unwrap_or(cli);
    sub.bin_name(format!("fr {verb}")).error(kind, message).exit()
}

fn usage_error(kind: clap::error::ErrorKind, message: impl std::fmt::Display) -> ! {
    usage_error_of("exec", kind, message)
}

/// [`usage_error_of`] for a command below another (`fr instance start`).
fn usage_error_of_nested(
    path: &[&str],
    kind: clap::error::ErrorKind,
    message: impl std::fmt::Display,
) -> ! {
    use clap::CommandFactory;
    let mut cli = Cli::command();
    cli.build();
    let mut sub = cli.clone();
    for name in path {
        match sub.find_subcommand_mut(name) {
            Some(s) => sub = s.clone(),
            None => break,
        }
    }
    sub.bin_name(format!("fr {}", path.join(" "))).error(kind, message).exit()
}

/// What every action refuses before it starts, as usage errors.
fn check_common(verb: &str, common: &Common, image: Option<&std::path::Path>) {
    use clap::error::ErrorKind;
    if matches!(common.userns, UsernsArg::None) && image.is_some() {
        usage_error_of(
            verb,
            ErrorKind::ArgumentConflict,
            "--userns=none cannot make IMAGE the root: entering an image needs a user namespace \
             (drop --userns=none, or IMAGE to work on the host tree)",
        );
    }
    if matches!(common.userns, UsernsArg::Subuid) && !common.fakeroot {
        usage_error_of(
            verb,
            ErrorKind::MissingRequiredArgument,
            "--userns=subuid maps subordinate ids for fake root: it needs --fakeroot",
        );
    }
}

/// Runs a session and turns its outcome into fr's exit status.
fn run_session(opts: &fr_launcher::ExecOptions) -> ExitCode {
    match fr_launcher::exec(opts) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            report(&e);
            ExitCode::from(125)
        }
    }
}

fn exec(mut args: ExecArgs) -> ExitCode {
    use clap::error::ErrorKind;
    let (image, command) = args.split();
    if let Some(name) = image.as_deref().and_then(instance::name_of) {
        return instance::join(&args.common, &name, Action::Exec, command);
    }
    // What fr's library would refuse too, said here as usage errors.
    check_common("exec", &args.common, image.as_deref());
    if args.load_state.is_some() || args.save_state.is_some() {
        if !args.common.fakeroot {
            usage_error(
                ErrorKind::MissingRequiredArgument,
                "-i and -s keep fake metadata: they need --fakeroot",
            );
        }
        if image.is_some() {
            usage_error(
                ErrorKind::ArgumentConflict,
                "-i and -s are for the host tree: an image keeps its fake metadata in IMAGE/.fr",
            );
        }
    }
    // An OCI image is run from the cache, unpacked there first if it is
    // not yet; shared and read-only, since its files are its layers'.
    let (image, shared) = match resolve_image(image, args.common.nohttps) {
        Ok(resolved) => resolved,
        Err(code) => return code,
    };
    let mut opts = match action::options(&args.common, image, Action::Exec, command, None) {
        Ok(opts) => opts,
        Err(action::Usage(why)) => usage_error(ErrorKind::ArgumentConflict, why),
    };
    if shared {
        opts.root = fr_launcher::Root::Shared;
    }
    opts.load_state = args.load_state;
    opts.save_state = args.save_state;
    run_session(&opts)
}

/// IMAGE as a directory: an OCI reference (`oci:`, `oci-archive:`,
/// `docker-archive:`, `docker://`) is unpacked into the cache if it is
/// not there yet, and run from there, shared (see [`fr_launcher::Root`]).
/// Whether it is a cached image; fr's failure status on error.
pub(crate) fn resolve_image(
    image: Option<PathBuf>,
    nohttps: bool,
) -> Result<(Option<PathBuf>, bool), ExitCode> {
    match image {
        Some(spec) if fr_image::oci::transport::Source::is_reference(&spec.to_string_lossy()) => {
            match cached(&spec.to_string_lossy(), nohttps) {
                Ok(path) => Ok((Some(path), true)),
                Err(e) => {
                    report(&e);
                    Err(ExitCode::from(125))
                }
            }
        }
        other => Ok((other, false)),
    }
}

/// `fr run`, `fr shell`, `fr test`: the image's own action, with ARGS.
fn act(verb: &str, action: Action, common: Common, mut words: Vec<OsString>) -> ExitCode {
    use clap::error::ErrorKind;
    if words.is_empty() {
        usage_error_of(verb, ErrorKind::MissingRequiredArgument, "IMAGE is missing");
    }
    let image = PathBuf::from(words.remove(0));
    if words.first().is_some_and(|w| w == "--") {
        words.remove(0);
    }
    if image.as_os_str().as_encoded_bytes().starts_with(b"-") {
        usage_error_of(
            verb,
            ErrorKind::UnknownArgument,
            format!("unexpected argument '{}' found", image.display()),
        );
    }
    if let Some(name) = instance::name_of(&image) {
        return instance::join(&common, &name, action, words);
    }
    check_common(verb, &common, Some(&image));
    let (image, shared) = match resolve_image(Some(image), common.nohttps) {
        Ok(resolved) => resolved,
        Err(code) => return code,
    };
    match action::options(&common, image, action, words, None) {
        Ok(mut opts) => {
            if shared {
                opts.root = fr_launcher::Root::Shared;
            }
            run_session(&opts)
        }
        Err(action::Usage(why)) => usage_error_of(verb, ErrorKind::ArgumentConflict, why),
    }
}

/// The cached image of the OCI reference `spec`, unpacked if needed.
fn cached(spec: &str, nohttps: bool) -> Result<PathBuf, fr_launcher::Error> {
    use std::io::IsTerminal;
    let source = fr_image::oci::transport::Source::parse(spec)
        .map_err(|e| fr_launcher::Error::Setup(e.to_string()))?;
    let opts = fr_image::oci::registry::Options {
        plain_http: nohttps,
        progress: std::io::stderr().is_terminal(),
    };
    fr_launcher::cache::Cache::open()?.image(&source, &opts)
}

/// `fr push IMAGE docker://REF`.
fn push(image: &std::path::Path, reference: &str, nohttps: bool, quiet: bool) -> ExitCode {
    use fr_image::oci::transport::Source;
    use std::io::IsTerminal;
    let reference = match Source::parse(reference) {
        Ok(Source::Registry(r)) => r,
        Ok(other) => {
            use clap::CommandFactory;
            Cli::command()
                .error(
                    clap::error::ErrorKind::InvalidValue,
                    format!(
                        "fr push sends to a registry (docker://REF); {other} is written by fr \
                         export IMAGE {other}"
                    ),
                )
                .exit()
        }
        Err(e) => {
            use clap::CommandFactory;
            Cli::command().error(clap::error::ErrorKind::InvalidValue, e).exit()
        }
    };
    let opts = fr_image::oci::registry::Options {
        plain_http: nohttps,
        progress: !quiet && std::io::stderr().is_terminal(),
    };
    match fr_launcher::export_oci::push(image, &reference, &opts) {
        Ok(digest) => {
            log::info!("pushed docker://{reference} ({digest})");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `fr cache list|clean`.
fn cache(command: CacheCommand) -> ExitCode {
    use fr_launcher::cache::Cache;
    let cache = match Cache::open() {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    match command {
        CacheCommand::List => match cache.list() {
            Ok(images) => {
                println!("{:<19}  {:>6}  {:<20}  SOURCE", "IMAGE", "LAYERS", "UNPACKED");
                for i in &images {
                    println!(
                        "{:<19}  {:>6}  {:<20}  {}",
                        &i.digest[..19.min(i.digest.len())],
                        i.layers,
                        date(i.created),
                        i.source
                    );
                }
                println!(
                    "{} images, {} layers in {}",
                    images.len(),
                    cache.layer_count(),
                    cache.root().display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        CacheCommand::Clean => match cache.clean() {
            Ok(n) => {
                log::info!("removed {n} images and their layers from {}", cache.root().display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS` (UTC).
fn date(secs: u64) -> String {
    let c = fr_image::civil::Civil::from_unix(secs as i64);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// `fr: error: ...` and, if there is one, `fr: hint: ...`.
fn report(e: &fr_launcher::Error) {
    log::error!("{e}");
    if let Some(hint) = e.hint() {
        fr_launcher::log::hint(hint);
    }
}

fn fail(e: fr_launcher::Error) -> ExitCode {
    report(&e);
    ExitCode::FAILURE
}

/// `fr export --format oci|oci-archive IMAGE DEST[:TAG]`.
fn export_oci(args: ExportArgs, quiet: bool) -> ExitCode {
    use fr_image::oci::transport::Source;
    use fr_launcher::export_oci::{export_oci, OciExportOptions, OciFormat};
    use std::io::IsTerminal;
    let out = args.out.to_string_lossy().into_owned();
    let spec = match args.format {
        _ if Source::is_reference(&out) => out.clone(),
        Some(FormatArg::Oci) => format!("oci:{out}"),
        _ => format!("oci-archive:{out}"),
    };
    let (format, dest, tag) = match Source::parse(&spec) {
        Ok(Source::Layout { dir, tag }) => (OciFormat::Layout, dir, tag),
        Ok(Source::Archive { file, tag }) => (OciFormat::Archive, file, tag),
        Ok(other) => {
            use clap::CommandFactory;
            Cli::command()
                .error(
                    clap::error::ErrorKind::InvalidValue,
                    format!(
                        "fr export writes oci:DIR[:TAG] or oci-archive:FILE[:TAG], not {other}"
                    ),
                )
                .exit()
        }
        Err(e) => {
            use clap::CommandFactory;
            Cli::command().error(clap::error::ErrorKind::InvalidValue, e).exit()
        }
    };
    let base = match args.base.as_deref().map(Source::parse) {
        None => None,
        Some(Ok(source)) => Some(source),
        Some(Err(e)) => {
            use clap::CommandFactory;
            Cli::command().error(clap::error::ErrorKind::InvalidValue, e).exit()
        }
    };
    let opts = OciExportOptions {
        image: args.image,
        dest,
        tag,
        format,
        progress: !quiet && std::io::stderr().is_terminal(),
        base,
        pull: fr_image::oci::registry::Options {
            plain_http: args.nohttps,
            progress: !quiet && std::io::stderr().is_terminal(),
        },
    };
    match export_oci(&opts) {
        Ok(s) => {
            log::debug!(
                "{} members, {} bytes of file data; manifest {} tagged {}",
                s.layer.members,
                s.layer.bytes,
                s.manifest.digest,
                s.tag
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn export(args: ExportArgs, quiet: bool) -> ExitCode {
    use fr_launcher::export::{Compression, ExportOptions};
    use std::io::IsTerminal;
    let oci = matches!(args.format, Some(FormatArg::Oci | FormatArg::OciArchive))
        || (args.format.is_none()
            && fr_image::oci::transport::Source::is_reference(&args.out.to_string_lossy()));
    if oci {
        return export_oci(args, quiet);
    }
    let opts = ExportOptions {
        progress: !quiet && std::io::stderr().is_terminal(),
        image: args.image,
        out: args.out,
        compression: args.compress.map(|c| match c {
            CompressArg::None => Compression::None,
            CompressArg::Gzip => Compression::Gzip,
            CompressArg::Zstd => Compression::Zstd,
        }),
    };
    match fr_launcher::export::export(&opts) {
        Ok(summary) => {
            log::debug!("{} members, {} bytes of file data", summary.members, summary.bytes);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn import(args: ImportArgs, quiet: bool) -> ExitCode {
    use fr_launcher::import::ImportOptions;
    use std::io::IsTerminal;
    let mut paths = args.paths;
    let usage = |why: &str| -> ExitCode {
        use clap::CommandFactory;
        Cli::command().error(clap::error::ErrorKind::WrongNumberOfValues, why).exit()
    };
    if let Some(state) = args.state {
        let [image] = paths.as_slice() else {
            return usage("fr import --state FILE takes the image directory alone, no archive");
        };
        return match fr_launcher::import::import_state(&state, image) {
            Ok(s) => {
                log::info!(
                    "{}: {} of the {} records of {} name its files ({} paths), kept in {}/.fr",
                    image.display(),
                    s.kept,
                    s.records,
                    state.display(),
                    s.paths,
                    image.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        };
    }
    if paths.len() != 2 {
        return usage("fr import takes an archive and an image directory (or --state FILE IMAGE)");
    }
    let image = paths.pop().unwrap_or_default();
    let archive = paths.pop().unwrap_or_default();
    let opts =
        ImportOptions { progress: !quiet && std::io::stderr().is_terminal(), archive, image };
    match fr_launcher::import::import(&opts) {
        Ok(summary) => {
            log::debug!("{} members, {} bytes of file data", summary.members, summary.bytes);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn syscalls() -> ExitCode {
    println!("{:<14} {:<14} HANDLING", "SYSCALL", "ABI");
    for s in fr_supervisor::table::TABLE {
        let abis: Vec<&str> = s.abis.iter().map(|a| a.name()).collect();
        println!("{:<14} {:<14} {}", s.name, abis.join(","), s.note);
    }
    ExitCode::SUCCESS
}

/// `fr completions SHELL`: the script clap_complete writes for fr's
/// definitions.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    use clap::CommandFactory;
    clap_complete::generate(shell, &mut Cli::command(), "fr", &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// `fr man`: fr(1) from the definitions, by clap_mangen, with each command
/// as a section of the one page (as git's `fr-exec(1)` pages would be
/// separate files to install), and the exit statuses.
fn man() -> ExitCode {
    use clap::CommandFactory;
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    let page = clap_mangen::Man::new(cli.clone());
    let mut out: Vec<u8> = Vec::new();
    let rendered = (|| -> std::io::Result<()> {
        use std::io::Write;
        page.render_title(&mut out)?;
        page.render_name_section(&mut out)?;
        page.render_synopsis_section(&mut out)?;
        page.render_description_section(&mut out)?;
        page.render_options_section(&mut out)?;
        out.write_all(b".SH COMMANDS\n")?;
        let mut commands: Vec<clap::Command> = Vec::new();
        for c in cli.get_subcommands() {
            match c.has_subcommands() {
                false => commands.push(c.clone()),
                true => commands.extend(c.get_subcommands().cloned()),
            }
        }
        for mut c in commands.into_iter().filter(|c| !c.is_hide_set()) {
            let name = c.get_bin_name().unwrap_or(c.get_name()).to_string();
            // The global options are said once, at the top.
            for id in ["quiet", "verbose", "help"] {
                if c.get_arguments().any(|a| a.get_id() == id) {
                    c = c.mut_arg(id, |a| a.hide(true));
                }
            }
            writeln!(out, ".SS \"{name}\"")?;
            let sub = clap_mangen::Man::new(c.clone());
            let mut part = Vec::new();
            sub.render_synopsis_section(&mut part)?;
            part.extend_from_slice(b".PP\n");
            sub.render_description_section(&mut part)?;
            if c.get_arguments().any(|a| !a.is_hide_set()) {
                sub.render_options_section(&mut part)?;
            }
            if c.get_after_help().is_some() {
                part.extend_from_slice(b".PP\n");
                sub.render_extra_section(&mut part)?;
            }
            // The sections of a command's own page become paragraphs of
            // its section here.
            for line in part.split_inclusive(|&b| b == b'\n') {
                if !line.starts_with(b".SH ") {
                    out.write_all(line)?;
                }
            }
        }
        out.write_all(EXIT_STATUS.as_bytes())?;
        page.render_version_section(&mut out)
    })();
    match rendered {
        Ok(()) => {
            use std::io::Write;
            // Each piece begins with the same two lines defining \*(Aq:
            // once is enough.
            let mut seen = std::collections::HashSet::new();
            let page: Vec<&[u8]> = out
                .split_inclusive(|&b| b == b'\n')
                .filter(|l| {
                    !(l.starts_with(b".ie \\n(.g .ds Aq") || l.starts_with(b".el .ds Aq"))
                        || seen.insert(l.to_vec())
                })
                .collect();
            let _ = std::io::stdout().write_all(&page.concat());
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("rendering the manual page: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The manual's EXIT STATUS section (the README says the same).
const EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
\fBfr exec\fR
The command's status; 128+N if signal N killed it; 125 if fr itself failed (or the command exited 0 but a change could not be kept); 126 if the command cannot be run (a directory, not executable); 127 if it is not found; 2 for a usage error.
.TP
\fBfr build\fR
0 built; 1 failed; 128+N if signal N stopped it; 2 for a usage error.
.TP
\fBfr fsck\fR
0 clean, 1 damage repaired, 4 damage left, 8 fsck failed.
.TP
other commands
0 on success, 1 on failure, 2 for a usage error.
.PP
A command whose output is its result (\fBfr export IMAGE -\fR, \fBfr syscalls\fR, \fBfr check\fR, \fBfr man\fR) ends by SIGPIPE, quietly, when the reader of its output goes away, as \fBcat\fR does (141 in a shell).
"#;

fn main() -> ExitCode {
    let cli = Cli::parse();
    fr_launcher::log::init(cli.quiet, cli.verbose);
    // What fr prints on stdout is the command's output: a reader that
    // went away (`fr syscalls | head -1`) ends fr by SIGPIPE, as it ends
    // coreutils and tar (status 141 in a shell), not with an error blaming
    // the disk or a panic. Not for exec, whose supervisor must outlive a
    // closed stderr, and whose workload gets the default again anyway.
    if matches!(
        cli.command,
        Command::Export(_)
            | Command::Syscalls
            | Command::Check { .. }
            | Command::Fsck { .. }
            | Command::Completions { .. }
            | Command::Man
            | Command::Instance(instance::InstanceCommand::List { .. })
    ) {
        fr_launcher::default_sigpipe();
    }
    match cli.command {
        Command::Exec(args) => exec(args),
        Command::Run(a) => act("run", Action::Run, a.common, a.words),
        Command::Shell(a) => act("shell", Action::Shell, a.common, a.words),
        Command::Test(a) => act("test", Action::Test, a.common, a.words),
        Command::Instance(cmd) => instance::main(cmd),
        Command::Build(args) => build::build(args, cli.quiet),
        Command::Export(args) => export(args, cli.quiet),
        Command::Import(args) => import(args, cli.quiet),
        Command::Check { json } => {
            let report = fr_launcher::check::check(std::path::Path::new("/"));
            print!("{}", if json { report.json() } else { report.text() });
            ExitCode::SUCCESS
        }
        Command::Config(ConfigCommand::Fakeroot {
            add,
            remove,
            enable,
            disable: _,
            user,
            subuid_file,
            subgid_file,
        }) => {
            use fr_launcher::config::Action;
            let action = match (add, remove, enable) {
                (true, _, _) => Action::Add,
                (_, true, _) => Action::Remove,
                (_, _, true) => Action::Enable,
                _ => Action::Disable,
            };
            match fr_launcher::config::fakeroot(action, &user, &subuid_file, &subgid_file) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log::error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Syscalls => syscalls(),
        Command::Completions { shell } => completions(shell),
        Command::Man => man(),
        Command::Fsck { repair, path } => match fr_launcher::fsck::fsck(&path, repair) {
            Ok(outcome) => ExitCode::from(outcome.code()),
            Err(e) => {
                fail(e);
                ExitCode::from(8)
            }
        },
        Command::Cache(c) => cache(c),
        Command::Push { nohttps, image, reference } => push(&image, &reference, nohttps, cli.quiet),
        Command::Rm { image } => match fr_launcher::remove::remove(&image) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        },
    }
}
