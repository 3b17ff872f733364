//! `fr exec`, `fr run`, `fr shell`, `fr test` and the options they share
//! with `fr instance start` (Apptainer's names and meanings): what each
//! asks of the launcher. The rules of the environment and of the action
//! scripts are `fr_image::action`'s; where the session starts, what it
//! binds and how the image is mounted are decided here.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use fr_image::action::{self, Action};
use fr_launcher::{Bind, ExecOptions, NetHelper, Network, PortMap, Root, Userns};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum UsernsArg {
    /// The best mode the host offers: subuid, root-mapped, else none (without IMAGE)
    Auto,
    /// Root and your subordinate ids from /etc/subuid, mapped by newuidmap
    Subuid,
    /// A user namespace mapping root to you, and nothing else
    RootMapped,
    /// No namespace: emulation alone, like fakeroot (no IMAGE possible)
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NetworkArg {
    /// pasta, from Debian's passt package (the default)
    Pasta,
    /// slirp4netns (the fallback when pasta is not installed)
    Slirp4netns,
    /// Loopback only
    None,
}

/// The options `exec`, `run`, `shell`, `test` and `instance start|run`
/// share, with Apptainer's names.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Run as fake root: ownership calls are emulated, ids read as 0; the image is writable
    #[arg(short = 'f', long)]
    pub fakeroot: bool,

    /// The user namespace to run in
    #[arg(long, value_enum, default_value = "auto", value_name = "MODE")]
    pub userns: UsernsArg,

    /// Bind a host path into the container (repeatable, or a comma list); ro makes it read-only
    #[arg(short = 'B', long = "bind", value_name = "SRC[:DST[:ro|rw]]", value_delimiter = ',')]
    pub binds: Vec<Bind>,

    /// No bind of your home and working directory; an empty home of the container's own
    #[arg(short = 'c', long)]
    pub contain: bool,

    /// --contain and --cleanenv (the pid and ipc namespaces are always the container's own)
    #[arg(short = 'C', long)]
    pub containall: bool,

    /// Pass none of your environment but TERM and the proxy variables (LANG=C)
    #[arg(short = 'e', long)]
    pub cleanenv: bool,

    /// Set NAME to VALUE inside, over the image's environment (repeatable, or a comma list)
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,

    /// Set the variables of FILE (NAME=VALUE lines) inside (repeatable)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,

    /// Start in DIR inside the container
    #[arg(long, value_name = "DIR")]
    pub pwd: Option<PathBuf>,

    /// Bind SRC as the home directory, at DST (default SRC)
    #[arg(short = 'H', long, value_name = "SRC[:DST]")]
    pub home: Option<String>,

    /// Do not bind your home directory
    #[arg(long)]
    pub no_home: bool,

    /// The container's host name
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,

    /// Changes go to the image (without --fakeroot the image is read-only otherwise)
    #[arg(short = 'w', long)]
    pub writable: bool,

    /// Changes go to a tmpfs over the image, gone when the session ends
    #[arg(long, conflicts_with = "writable")]
    pub writable_tmpfs: bool,

    /// A network namespace of the container's own (pasta, else slirp4netns, connects it)
    #[arg(long)]
    pub net: bool,

    /// How --net reaches outside (implies --net)
    #[arg(long, value_enum, value_name = "HELPER")]
    pub network: Option<NetworkArg>,

    /// portmap=HOST:CONTAINER/tcp|udp, as Apptainer's (repeatable, comma list; implies --net)
    #[arg(long = "network-args", value_name = "portmap=H:C/P")]
    pub network_args: Vec<String>,

    /// Publish a container port on the host's addresses, as podman's -p (implies --net)
    #[arg(short = 'p', long = "publish", value_name = "HOST:CONTAINER[/PROTO]")]
    pub publish: Vec<PortMap>,

    /// Reach a docker:// registry by plain HTTP (for one on this host)
    #[arg(long)]
    pub nohttps: bool,

    /// Supervisor worker threads at the start (more are added when all are held up)
    #[arg(long, env = "FR_WORKERS", default_value_t = 1, hide = true)]
    pub workers: usize,

    /// Ask the kernel for synchronous wake-ups on the notification fd (6.6+; 0 turns it off)
    #[arg(long, env = "FR_SYNC_WAKEUP", hide = true, default_value = "1", action = clap::ArgAction::Set,
          value_parser = clap::builder::FalseyValueParser::new())]
    pub sync_wakeup: bool,

    /// Benchmarks only: answer every intercepted call with CONTINUE (no emulation)
    #[arg(long, env = "FR_BENCH_CONTINUE", hide = true, value_parser = clap::builder::FalseyValueParser::new())]
    pub bench_continue: bool,
}

/// A request that cannot be met as given: a usage error (exit 2).
#[derive(Debug)]
pub struct Usage(pub String);

impl From<UsernsArg> for Userns {
    fn from(arg: UsernsArg) -> Self {
        match arg {
            UsernsArg::Auto => Userns::Auto,
            UsernsArg::Subuid => Userns::Subuid,
            UsernsArg::RootMapped => Userns::RootMapped,
            UsernsArg::None => Userns::None,
        }
    }
}

impl Common {
    pub fn userns(&self) -> Userns {
        self.userns.into()
    }

    /// `--net` and what implies it.
    pub fn network(&self) -> Result<Option<Network>, Usage> {
        let mut ports = self.publish.clone();
        for arg in &self.network_args {
            for item in arg.split(',').filter(|s| !s.is_empty()) {
                match item.split_once('=') {
                    Some(("portmap", spec)) => ports.push(spec.parse().map_err(Usage)?),
                    _ => {
                        return Err(Usage(format!(
                            "--network-args {item:?}: fr knows portmap=HOST:CONTAINER/tcp|udp \
                             (Apptainer's CNI arguments beyond it have no meaning here)"
                        )))
                    }
                }
            }
        }
        let wanted = self.net
            || self.network.is_some()
            || !ports.is_empty()
            || !self.network_args.is_empty();
        if !wanted {
            return Ok(None);
        }
        let helper = match self.network {
            None => NetHelper::Auto,
            Some(NetworkArg::Pasta) => NetHelper::Pasta,
            Some(NetworkArg::Slirp4netns) => NetHelper::Slirp4netns,
            Some(NetworkArg::None) => NetHelper::None,
        };
        Ok(Some(Network { helper, ports }))
    }

    fn contained(&self) -> bool {
        self.contain || self.containall
    }
}

/// The caller's environment, as text (variables that are not are left out).
fn host_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// The caller's home directory: `$HOME`, else `/`.
fn host_home() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| Path::new(h).is_absolute())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// Directories the working directory is never bound from: the operating
/// system's own, which would hide the image's (Apptainer's list).
fn system_dir(p: &Path) -> bool {
    const OS: [&str; 10] =
        ["/", "/etc", "/bin", "/mnt", "/usr", "/var", "/opt", "/sbin", "/lib", "/lib64"];
    OS.iter().any(|d| p == Path::new(d))
        || ["/proc", "/sys", "/dev"].iter().any(|d| p.starts_with(d))
}

/// Whether the image holds environment scripts, or may (a directory fr
/// cannot read from outside, as a subuid-mode session may leave it).
fn may_have(image: &Path, rel: &str) -> bool {
    match std::fs::symlink_metadata(image.join(rel)) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

/// What a session in `image` (none: the host tree) running `action` with
/// `args` asks of the launcher, as `common` says.
pub fn options(
    common: &Common,
    image: Option<PathBuf>,
    action: Action,
    args: Vec<OsString>,
    instance: Option<&str>,
) -> Result<ExecOptions, Usage> {
    let net = common.network()?;
    let mut opts = ExecOptions {
        image: image.clone(),
        command: args.clone(),
        fakeroot: common.fakeroot,
        userns: common.userns(),
        binds: common.binds.clone(),
        workers: common.workers,
        sync_wakeup: common.sync_wakeup,
        continue_all: common.bench_continue,
        hostname: common.hostname.clone(),
        net,
        ..ExecOptions::default()
    };
    let Some(image) = image else {
        // The host tree, fakeroot's use: the caller's environment and
        // working directory, nothing bound but what -B asks.
        for (what, given) in [
            ("--contain", common.contained()),
            ("--pwd", common.pwd.is_some()),
            ("--home", common.home.is_some()),
            ("--writable-tmpfs", common.writable_tmpfs),
            ("--cleanenv", common.cleanenv),
            ("--env", !common.env.is_empty() || !common.env_file.is_empty()),
        ] {
            if given {
                return Err(Usage(format!(
                    "{what} is for a container: without IMAGE the command runs on the host tree \
                     with your environment and working directory"
                )));
            }
        }
        return Ok(opts);
    };
    let image_real = image.canonicalize().unwrap_or_else(|_| image.clone());
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join("fr"));
    let hidden: Vec<PathBuf> = std::iter::once(image_real.join(".fr")).chain(runtime).collect();

    // The home directory: yours, at /root for fake root, or --home's.
    let (home_src, home_dst, custom) = match &common.home {
        Some(spec) => {
            let (src, dst) = spec.split_once(':').unwrap_or((spec, spec));
            let (src, dst) = (PathBuf::from(src), PathBuf::from(dst));
            if !src.is_absolute() || !dst.is_absolute() {
                return Err(Usage(format!("--home {spec}: SRC and DST must be absolute paths")));
            }
            (src, dst, true)
        }
        None => {
            let src = host_home();
            let dst = if common.fakeroot { PathBuf::from("/root") } else { src.clone() };
            (src, dst, false)
        }
    };
    let bind_home =
        !common.no_home && (custom || !common.contained()) && home_src != Path::new("/");
    if bind_home {
        if custom && !home_src.is_dir() {
            return Err(Usage(format!("--home {}: no such directory", home_src.display())));
        }
        if home_src.is_dir() {
            opts.binds
                .insert(0, Bind { src: home_src.clone(), dst: home_dst.clone(), read_only: false });
        }
    } else if common.contained() && !custom {
        opts.tmpfs.push(home_dst.clone());
    }

    // Where it starts.
    if let Some(pwd) = &common.pwd {
        if !pwd.is_absolute() {
            return Err(Usage(format!(
                "--pwd {}: give an absolute path inside the container",
                pwd.display()
            )));
        }
        opts.cwd = vec![pwd.clone()];
        opts.strict_cwd = true;
    } else if common.contained() {
        opts.cwd = vec![home_dst.clone()];
    } else if let Ok(cwd) = std::env::current_dir() {
        if let Ok(rel) = cwd.strip_prefix(&image_real) {
            // A working directory inside the image: the same directory,
            // seen from the image's root.
            opts.cwd = vec![Path::new("/").join(rel)];
        } else {
            let seen_at_home = bind_home && home_src == home_dst && cwd.starts_with(&home_src);
            let under_home = cwd.starts_with(&home_src) && home_src != Path::new("/");
            let skip = system_dir(&cwd)
                || seen_at_home
                || (common.no_home && under_home)
                || hidden.iter().any(|h| cwd.starts_with(h));
            if !skip {
                opts.binds.push(Bind { src: cwd.clone(), dst: cwd.clone(), read_only: false });
            }
            opts.cwd = vec![cwd];
        }
        opts.cwd.push(home_dst.clone());
    }

    opts.root = if common.writable_tmpfs {
        Root::Tmpfs
    } else if common.writable || common.fakeroot {
        Root::Writable
    } else {
        Root::ReadOnly
    };

    // The environment.
    let host = host_env();
    let mut files = Vec::new();
    for file in &common.env_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Usage(format!("--env-file {}: {e}", file.display())))?;
        files.push(
            action::parse_env_file(&text, &host)
                .map_err(|why| Usage(format!("--env-file {}: {why}", file.display())))?,
        );
    }
    let mut env = Vec::new();
    for arg in &common.env {
        env.extend(action::parse_env_arg(arg).map_err(Usage)?);
    }
    let shown = image.display().to_string();
    let name = image_real.file_name().map_or(shown.clone(), |n| n.to_string_lossy().into_owned());
    let mut own: Vec<(String, String)> = vec![
        ("HOME".into(), home_dst.display().to_string()),
        ("APPTAINER_CONTAINER".into(), image_real.display().to_string()),
        ("APPTAINER_NAME".into(), name.clone()),
        ("APPTAINER_COMMAND".into(), action.name().into()),
        ("SINGULARITY_CONTAINER".into(), image_real.display().to_string()),
        ("SINGULARITY_NAME".into(), name),
        ("SINGULARITY_COMMAND".into(), action.name().into()),
        ("PS1".into(), "fr> ".into()),
    ];
    if let Some(name) = instance {
        own.push(("APPTAINER_INSTANCE".into(), name.into()));
    }
    if common.fakeroot {
        own.push(("USER".into(), "root".into()));
        own.push(("LOGNAME".into(), "root".into()));
    }
    for var in ["APPTAINER_SHELL", "SINGULARITY_SHELL"] {
        if let Some(shell) = std::env::var_os(var).and_then(|s| s.into_string().ok()) {
            own.push(("SINGULARITY_SHELL".into(), shell));
            break;
        }
    }
    let shell_given = own.iter().any(|(k, _)| k == "SINGULARITY_SHELL");
    let environment = action::environment(
        &host,
        &action::EnvOptions { cleanenv: common.cleanenv || common.containall, files, env, own },
    );
    for w in &environment.warnings {
        log::warn!("{w}");
    }
    let mut vars = environment.all();
    vars.extend(action::script_env(&environment));
    opts.env = Some(vars);

    // The command: through the action script when the image has scripts
    // to source or the action is the image's own.
    let args: Vec<String> = args
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| Usage(format!("{a:?}: an argument fr cannot pass on is not text")))
        })
        .collect::<Result<_, _>>()?;
    let env_scripts = may_have(&image_real, ".singularity.d/env");
    let action = match action {
        Action::Exec if args.is_empty() => Action::Shell,
        a => a,
    };
    let scripted = match action {
        Action::Exec => env_scripts,
        Action::Shell => env_scripts || shell_given || !args.is_empty(),
        Action::Start => may_have(&image_real, ".singularity.d/startscript"),
        Action::Run | Action::Test => true,
    };
    // Without /bin/sh in the image the script cannot run: what it would
    // have started, directly.
    if scripted {
        let direct = |path: &str| -> Vec<OsString> {
            std::iter::once(path.to_string())
                .chain(args.iter().cloned())
                .map(OsString::from)
                .collect()
        };
        opts.fallback = match action {
            Action::Exec => args.iter().map(OsString::from).collect(),
            Action::Shell => vec!["/bin/bash".into(), "--norc".into()],
            Action::Run => direct(action::RUNSCRIPT),
            Action::Test => direct(action::TEST),
            Action::Start => direct(action::STARTSCRIPT),
        };
    }
    opts.command = match (scripted, action) {
        (true, _) => {
            action::argv(action, &environment, &args).into_iter().map(OsString::from).collect()
        }
        // The launcher's own shell (bash --norc, else sh), or nothing.
        (false, Action::Shell | Action::Start) => Vec::new(),
        (false, _) => args.into_iter().map(OsString::from).collect(),
    };
    Ok(opts)
}
