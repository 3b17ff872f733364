//! `fr instance start|run|list|stop`, and `instance://NAME` for the
//! actions: the command line of `fr_launcher::instance`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use fr_image::action::Action;
use fr_launcher::instance;

use crate::action::{self, Common, UsernsArg};

#[derive(Debug, clap::Subcommand)]
pub enum InstanceCommand {
    /// Start IMAGE in the background as instance NAME, with its start script (%startscript)
    ///
    /// The instance runs /.singularity.d/startscript with ARGS, or nothing
    /// (it waits) when the image has none, and stays up until it is
    /// stopped. One small monitor process holds it: its supervisor, the
    /// image's lock, its logs. fr returns once the instance is up. Its
    /// state and logs are in $XDG_RUNTIME_DIR/fr/instances/NAME/.
    #[command(
        override_usage = "fr instance start [OPTIONS] IMAGE NAME [ARG]...",
        after_help = "Examples:\n  \
        fr instance start -f ./img db\n  \
        fr instance start -f --net --network-args portmap=18080:80/tcp ./web web\n  \
        fr exec instance://web -- ps"
    )]
    Start(StartArgs),

    /// Start IMAGE in the background as instance NAME, with its runscript
    #[command(override_usage = "fr instance run [OPTIONS] IMAGE NAME [ARG]...")]
    Run(StartArgs),

    /// List your running instances: NAME, PID (the monitor's), IMAGE, PORTS
    ///
    /// Instances whose monitor is gone (killed, or the machine restarted)
    /// are removed from the list, and said.
    List {
        /// Print JSON, for scripts
        #[arg(long)]
        json: bool,
        /// Show each instance's log files (its stdout and stderr)
        #[arg(long)]
        logs: bool,
        /// Only the instance of this name
        name: Option<String>,
    },

    /// Stop instance NAME (or every one): its processes, its network helper, its monitor
    ///
    /// SIGNAL (TERM by default) goes to every process of the instance; those
    /// still there after TIMEOUT seconds are killed. The image's fake
    /// metadata is saved as at the end of a session, and fr returns once
    /// the monitor has ended.
    Stop {
        /// Stop every instance
        #[arg(short, long, conflicts_with = "name")]
        all: bool,
        /// The signal for the instance's processes (TERM, INT, HUP, KILL, ... or a number)
        #[arg(short, long, default_value = "TERM", value_name = "SIG")]
        signal: String,
        /// Seconds to wait before the processes left are killed
        #[arg(short, long, default_value_t = 10, value_name = "S")]
        timeout: u64,
        /// The instance
        #[arg(required_unless_present = "all")]
        name: Option<String>,
    },
}

/// `fr instance start|run [OPTIONS] IMAGE NAME [ARG]...`
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    #[command(flatten)]
    common: Common,

    /// IMAGE, NAME, then the arguments of the start script (or runscript)
    #[arg(allow_hyphen_values = true, num_args = 2.., required = true,
          value_name = "IMAGE NAME [ARG]...", value_hint = clap::ValueHint::AnyPath)]
    words: Vec<OsString>,
}

fn usage(verb: &str, why: impl std::fmt::Display) -> ! {
    crate::usage_error_of_nested(&["instance", verb], clap::error::ErrorKind::ArgumentConflict, why)
}

fn fail(e: fr_launcher::Error) -> ExitCode {
    crate::report(&e);
    ExitCode::FAILURE
}

pub fn main(cmd: InstanceCommand) -> ExitCode {
    match cmd {
        InstanceCommand::Start(args) => start("start", Action::Start, args),
        InstanceCommand::Run(args) => start("run", Action::Run, args),
        InstanceCommand::List { json, logs, name } => list(json, logs, name.as_deref()),
        InstanceCommand::Stop { all, signal, timeout, name } => stop(all, &signal, timeout, name),
    }
}

fn start(verb: &str, action: Action, args: StartArgs) -> ExitCode {
    let mut words = args.words.into_iter();
    let (Some(image), Some(name)) = (words.next(), words.next()) else {
        usage(verb, "IMAGE and NAME are needed");
    };
    let image = PathBuf::from(image);
    let name = name.to_string_lossy().into_owned();
    if image.as_os_str().as_encoded_bytes().starts_with(b"-") {
        usage(verb, format!("unexpected argument '{}' found", image.display()));
    }
    if name_of(&image).is_some() {
        usage(verb, "an instance starts from an image, not from instance://");
    }
    if matches!(args.common.userns, UsernsArg::None) {
        usage(verb, "--userns=none: an instance needs a user namespace");
    }
    let mut rest: Vec<OsString> = words.collect();
    if rest.first().is_some_and(|w| w == "--") {
        rest.remove(0);
    }
    let (image, shared) = match crate::resolve_image(Some(image), args.common.nohttps) {
        Ok(resolved) => resolved,
        Err(code) => return code,
    };
    let opts = match action::options(&args.common, image, action, rest, Some(&name)) {
        Ok(mut opts) => {
            if shared {
                opts.root = fr_launcher::Root::Shared;
            }
            opts
        }
        Err(action::Usage(why)) => usage(verb, why),
    };
    match instance::start(&name, &opts) {
        Ok(started) => {
            let i = &started.info;
            let ports = if i.ports.is_empty() {
                String::new()
            } else {
                format!(", ports {}", i.ports.join(","))
            };
            log::info!("instance {} started (monitor pid {}{ports})", i.name, i.pid);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn list(json: bool, logs: bool, name: Option<&str>) -> ExitCode {
    let infos = match instance::list() {
        Ok(infos) => infos,
        Err(e) => return fail(e),
    };
    let infos: Vec<_> = infos.into_iter().filter(|i| name.is_none_or(|n| n == i.name)).collect();
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = if json {
        let all: Vec<_> = infos.iter().map(|i| i.to_json()).collect();
        writeln!(out, "{:#}", serde_json::json!({ "instances": all }))
    } else {
        instance::table(&infos, logs, &mut out)
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("writing the list: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A signal by name (`TERM`, `SIGTERM`, `term`) or number.
fn signal(text: &str) -> Option<i32> {
    if let Ok(n) = text.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    Some(match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "ALRM" => libc::SIGALRM,
        "WINCH" => libc::SIGWINCH,
        _ => return None,
    })
}

fn stop(all: bool, sig: &str, timeout: u64, name: Option<String>) -> ExitCode {
    let Some(signal) = signal(sig) else {
        usage(
            "stop",
            format!("--signal {sig}: no such signal (TERM, INT, HUP, KILL, ... or a number)"),
        );
    };
    let targets = if all {
        match instance::list() {
            Ok(infos) => infos,
            Err(e) => return fail(e),
        }
    } else {
        match instance::find(name.as_deref().unwrap_or_default()) {
            Ok(info) => vec![info],
            Err(e) => return fail(e),
        }
    };
    let mut code = ExitCode::SUCCESS;
    for info in targets {
        match instance::stop(&info, signal, Duration::from_secs(timeout)) {
            Ok(()) => log::info!("instance {} stopped", info.name),
            Err(e) => code = fail(e),
        }
    }
    code
}

/// The NAME of `instance://NAME`.
pub fn name_of(image: &Path) -> Option<String> {
    image.to_str()?.strip_prefix("instance://").map(String::from)
}

/// `fr exec|run|shell|test instance://NAME [ARGS]`: the action in the
/// running instance.
pub fn join(common: &Common, name: &str, action: Action, args: Vec<OsString>) -> ExitCode {
    let verb = action.name();
    let refused: [(&str, bool); 9] = [
        ("-B/--bind", !common.binds.is_empty()),
        ("--net, --network, --network-args, -p", common.network().ok().flatten().is_some()),
        ("--hostname", common.hostname.is_some()),
        ("-w/--writable", common.writable),
        ("--writable-tmpfs", common.writable_tmpfs),
        ("-c/--contain, -C/--containall", common.contain || common.containall),
        ("-H/--home", common.home.is_some()),
        ("--no-home", common.no_home),
        ("--userns", !matches!(common.userns, UsernsArg::Auto)),
    ];
    if let Some((what, _)) = refused.iter().find(|(_, given)| *given) {
        crate::usage_error_of(
            verb,
            clap::error::ErrorKind::ArgumentConflict,
            format!(
                "{what}: instance://{name} runs in the instance's mounts, network and user \
                 namespace as they are; give it to fr instance start"
            ),
        );
    }
    let info = match instance::find(name) {
        Ok(info) => info,
        Err(e) => {
            crate::report(&e);
            return ExitCode::from(125);
        }
    };
    let mut common = common.clone();
    common.fakeroot = info.fakeroot;
    let opts = match action::options(&common, Some(info.image.clone()), action, args, Some(name)) {
        Ok(opts) => opts,
        Err(action::Usage(why)) => {
            crate::usage_error_of(verb, clap::error::ErrorKind::ArgumentConflict, why)
        }
    };
    match instance::join(&info, &opts) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            crate::report(&e);
            ExitCode::from(125)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(signal("TERM"), Some(libc::SIGTERM));
        assert_eq!(signal("sigkill"), Some(libc::SIGKILL));
        assert_eq!(signal("2"), Some(2));
        assert_eq!(signal("NOPE"), None);
        assert_eq!(signal("0"), None);
        assert_eq!(name_of(Path::new("instance://web")), Some("web".into()));
        assert_eq!(name_of(Path::new("./web")), None);
    }
}
