//! How Apptainer's action commands (`exec`, `run`, `shell`, `test`, an
//! instance's `start`) run in an image, as pure rules: the environment they
//! pass, and the script that sources the image's `/.singularity.d/env/*.sh`
//! and then starts the action, which Apptainer's own action script
//! (`internal/pkg/util/fs/files/action_script.sh`) does in its embedded
//! shell and fr hands to the image's `/bin/sh`.
//!
//! The environment, in Apptainer's order (`internal/pkg/util/env`):
//! - the caller's variables pass, but for `HOME`, `PATH`, `LD_LIBRARY_PATH`,
//!   `APPTAINER_*` and `SINGULARITY_*` (fr's settings) and the working
//!   directories `PWD` and `OLDPWD` (the shell's, set anew inside); with
//!   `--cleanenv` only `TERM` and the proxy variables pass, and `LANG` is
//!   `C`. The image's environment scripts win over them: a variable a
//!   script sets keeps the script's value (Apptainer's `restore_env`).
//! - `APPTAINERENV_K` (and `SINGULARITYENV_K`), `--env-file` and `--env`
//!   (in that order, the later winning) set `K` over the image's scripts;
//!   `HOME` cannot be set so (`--home` does), `PATH` can, and
//!   `PREPEND_PATH`/`APPEND_PATH` add to the `PATH` the scripts leave.
//! - fr's own: `HOME`, `PATH` (the container default), `PS1`, and
//!   `APPTAINER_CONTAINER`, `APPTAINER_NAME`, `APPTAINER_COMMAND` with
//!   their `SINGULARITY_` twins.
#![forbid(unsafe_code)]

/// Apptainer's default `PATH` in a container.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The directory whose `*.sh` the actions source, in order.
pub const ENV_DIR: &str = "/.singularity.d/env";
pub const RUNSCRIPT: &str = "/.singularity.d/runscript";
pub const STARTSCRIPT: &str = "/.singularity.d/startscript";
pub const TEST: &str = "/.singularity.d/test";

/// Which action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The command given.
    Exec,
    /// The runscript with the arguments, else `/bin/sh` with them.
    Run,
    /// `$SINGULARITY_SHELL`, else `/bin/bash --norc`, else `/bin/sh`.
    Shell,
    /// The `%test` script, else nothing (status 0).
    Test,
    /// An instance's start script, else nothing.
    Start,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Exec => "exec",
            Action::Run => "run",
            Action::Shell => "shell",
            Action::Test => "test",
            Action::Start => "start",
        }
    }
}

/// Variables that pass even with `--cleanenv` (Apptainer's `alwaysPassKeys`).
pub const ALWAYS_PASS: [&str; 11] = [
    "TERM",
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "ftp_proxy",
    "FTP_PROXY",
];

/// Variables of the caller that never pass: fr sets its own, or they name
/// the caller's session on the host.
const NEVER_PASS: [&str; 5] = ["HOME", "PATH", "LD_LIBRARY_PATH", "PWD", "OLDPWD"];

/// Prefixes of the caller's variables that configure fr or Apptainer.
const SETTINGS: [&str; 2] = ["APPTAINER_", "SINGULARITY_"];

/// Prefixes that set a variable inside, by name after the prefix.
const FORWARD: [&str; 2] = ["APPTAINERENV_", "SINGULARITYENV_"];

/// What the caller asked of the environment.
#[derive(Debug, Clone, Default)]
pub struct EnvOptions {
    /// `-e/--cleanenv` (or `--containall`).
    pub cleanenv: bool,
    /// `--env-file` contents, in order.
    pub files: Vec<Vec<(String, String)>>,
    /// `--env`, in order.
    pub env: Vec<(String, String)>,
    /// fr's own variables (`HOME`, `PS1`, `APPTAINER_CONTAINER`, ...),
    /// which the caller's never replace.
    pub own: Vec<(String, String)>,
}

/// The environment of an action, in its three layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// The caller's variables that pass; the image's scripts win over them.
    pub passed: Vec<(String, String)>,
    /// fr's own.
    pub own: Vec<(String, String)>,
    /// `APPTAINERENV_*`, `--env-file`, `--env`: win over the image's scripts.
    pub forced: Vec<(String, String)>,
    /// What was asked and not done, for the caller's warnings.
    pub warnings: Vec<String>,
}

/// Whether `name` is a shell variable name (only such are set through
/// the action script; others pass as they are).
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn set(list: &mut Vec<(String, String)>, key: &str, value: &str) {
    list.retain(|(k, _)| k != key);
    list.push((key.to_string(), value.to_string()));
}

/// The environment an action gets from the caller's `host` variables and
/// what was asked (see the module doc).
pub fn environment(host: &[(String, String)], opts: &EnvOptions) -> Environment {
    let mut out = Environment::default();
    let own_keys: Vec<&str> = opts.own.iter().map(|(k, _)| k.as_str()).collect();
    let mut forced: Vec<(String, String)> = Vec::new();
    let mut force = |out: &mut Environment, key: &str, value: &str, from: &str| {
        if key == "HOME" {
            out.warnings.push(format!("{from} cannot set HOME inside the container: use --home"));
        } else if !is_name(key) {
            out.warnings.push(format!("{from}: {key:?} is no variable name: not set"));
        } else {
            set(&mut forced, key, value);
        }
    };
    for prefix in FORWARD.iter().rev() {
        for (k, v) in host {
            if let Some(key) = k.strip_prefix(prefix).filter(|k| !k.is_empty()) {
                force(&mut out, key, v, k);
            }
        }
    }
    for file in &opts.files {
        for (k, v) in file {
            force(&mut out, k, v, "--env-file");
        }
    }
    for (k, v) in &opts.env {
        force(&mut out, k, v, "--env");
    }
    for (k, v) in host {
        let setting = SETTINGS.iter().chain(FORWARD.iter()).any(|p| k.starts_with(p));
        let pass = ALWAYS_PASS.contains(&k.as_str())
            || (!opts.cleanenv && !setting && !NEVER_PASS.contains(&k.as_str()));
        if pass && !own_keys.contains(&k.as_str()) && !forced.iter().any(|(f, _)| f == k) {
            set(&mut out.passed, k, v);
        }
    }
    out.own = opts.own.clone();
    if !own_keys.contains(&"PATH") {
        set(&mut out.own, "PATH", DEFAULT_PATH);
    }
    if opts.cleanenv && !own_keys.contains(&"LANG") && !forced.iter().any(|(k, _)| k == "LANG") {
        set(&mut out.own, "LANG", "C");
    }
    out.forced = forced;
    out
}

impl Environment {
    /// The process environment the action starts with: passed, then fr's
    /// own, then the forced variables over both (`PREPEND_PATH` and
    /// `APPEND_PATH` are applied, not set).
    pub fn all(&self) -> Vec<(String, String)> {
        let mut out = self.passed.clone();
        for (k, v) in self.own.iter().chain(&self.forced) {
            if !matches!(k.as_str(), "PREPEND_PATH" | "APPEND_PATH") {
                set(&mut out, k, v);
            }
        }
        let path =
            out.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone()).unwrap_or_default();
        let path = self.path_around(&path);
        set(&mut out, "PATH", &path);
        out
    }

    fn forced_value(&self, key: &str) -> Option<&str> {
        self.forced.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn path_around(&self, path: &str) -> String {
        let mut path = path.to_string();
        if let Some(pre) = self.forced_value("PREPEND_PATH") {
            path = format!("{pre}:{path}");
        }
        if let Some(post) = self.forced_value("APPEND_PATH") {
            path = format!("{path}:{post}");
        }
        path
    }
}

/// `--env` values: `K=V[,K=V...]`, as Apptainer's string-to-string flag
/// reads them (a piece without `=` belongs to the value before it, so
/// `A=x,y` is `A` = `x,y`).
pub fn parse_env_arg(arg: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for piece in arg.split(',') {
        match piece.split_once('=') {
            Some((k, v)) if !k.is_empty() && is_name(k) => out.push((k.into(), v.into())),
            Some((k, _)) if !k.is_empty() => {
                return Err(format!("--env {arg:?}: {k:?} is no variable name"))
            }
            _ => match out.last_mut() {
                Some((_, v)) => {
                    v.push(',');
                    v.push_str(piece);
                }
                None => return Err(format!("--env {arg:?}: the form is NAME=VALUE")),
            },
        }
    }
    Ok(out)
}

/// An `--env-file`: `NAME=VALUE` lines (`export ` allowed before), `#`
/// comments, values bare, in single quotes (taken as they are) or double
/// quotes (`\"`, `\\`, `\$` escaped), `$NAME` and `${NAME}` replaced from
/// the lines before and then `host`. Errors name the line.
pub fn parse_env_file(
    text: &str,
    host: &[(String, String)],
) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {}: {raw:?} is not NAME=VALUE", n + 1));
        };
        if !is_name(key) {
            return Err(format!("line {}: {key:?} is no variable name", n + 1));
        }
        let lookup = |name: &str| -> String {
            out.iter()
                .rev()
                .chain(host.iter().rev())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let value = unquote(value, &lookup).map_err(|why| format!("line {}: {why}", n + 1))?;
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// A shell word's value: quotes removed, variables replaced where the
/// shell would replace them.
fn unquote(word: &str, lookup: &dyn Fn(&str) -> String) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = word.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'') | (None, '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => out.push(c),
            (_, '\\') => match chars.next() {
                Some(e) if quote.is_none() || matches!(e, '"' | '\\' | '$' | '`') => out.push(e),
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => out.push('\\'),
            },
            (_, '$') => {
                let mut name = String::new();
                if chars.peek() == Some(&'{') {
                    chars.next();
                    for c in chars.by_ref() {
                        if c == '}' {
                            break;
                        }
                        name.push(c);
                    }
                    if !is_name(&name) {
                        return Err(format!("${{{name}}} is no variable this file can use"));
                    }
                } else {
                    while let Some(&c) = chars.peek() {
                        if c == '_' || c.is_ascii_alphanumeric() {
                            name.push(c);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
                if name.is_empty() {
                    out.push('$');
                } else {
                    out.push_str(&lookup(&name));
                }
            }
            (None, c) if c.is_whitespace() => {
                return Err(format!("{word:?}: a space outside quotes (quote the value)"))
            }
            (_, c) => out.push(c),
        }
    }
    match quote {
        Some(q) => Err(format!("{word:?}: the {q} quote is not closed")),
        None => Ok(out),
    }
}

/// The `sh -c` script of `action`: it sources the image's environment
/// scripts between saving and restoring the caller's variables (see the
/// module doc), then starts the action with the script's arguments.
pub fn script(action: Action, env: &Environment) -> String {
    let names = |list: &[(String, String)]| -> String {
        list.iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| is_name(k) && !matches!(*k, "PREPEND_PATH" | "APPEND_PATH"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = format!(
        "__fr_passed='{passed}'\n__fr_forced='{forced}'\n\
         for __fr_k in $__fr_passed $__fr_forced; do eval \"__fr_v_$__fr_k=\\${{$__fr_k}}\"; done\n\
         for __fr_k in $__fr_passed; do unset \"$__fr_k\"; done\n\
         if [ -d {ENV_DIR} ]; then\n\
         \x20   for __fr_s in {ENV_DIR}/*.sh; do\n\
         \x20       if [ -f \"$__fr_s\" ]; then . \"$__fr_s\"; fi\n\
         \x20   done\n\
         fi\n\
         for __fr_k in $__fr_passed; do\n\
         \x20   eval \"[ -n \\\"\\${{$__fr_k+x}}\\\" ] || export $__fr_k=\\\"\\$__fr_v_$__fr_k\\\"\"\n\
         done\n\
         for __fr_k in $__fr_forced; do eval \"export $__fr_k=\\\"\\$__fr_v_$__fr_k\\\"\"; done\n\
         for __fr_k in $__fr_passed $__fr_forced; do unset \"__fr_v_$__fr_k\"; done\n\
         unset __fr_k __fr_s __fr_passed __fr_forced\n",
        passed = names(&env.passed),
        forced = names(&env.forced),
    );
    if env.forced_value("PREPEND_PATH").is_some() || env.forced_value("APPEND_PATH").is_some() {
        // The values come in the environment, as fr set them.
        let (pre, post) = (env.forced_value("PREPEND_PATH"), env.forced_value("APPEND_PATH"));
        if pre.is_some() {
            s.push_str("PATH=\"$__FR_PREPEND_PATH:$PATH\"\n");
        }
        if post.is_some() {
            s.push_str("PATH=\"$PATH:$__FR_APPEND_PATH\"\n");
        }
        s.push_str("export PATH; unset __FR_PREPEND_PATH __FR_APPEND_PATH\n");
    }
    s.push_str(match action {
        Action::Exec => "exec \"$@\"\n",
        Action::Run => concat!(
            "if [ -x /.singularity.d/runscript ]; then exec /.singularity.d/runscript \"$@\"; fi\n",
            "if [ -x /apptainer ]; then exec /apptainer \"$@\"; fi\n",
            "if [ -x /singularity ]; then exec /singularity \"$@\"; fi\n",
            "echo 'fr: info: the image has no runscript: running /bin/sh' >&2\n",
            "exec /bin/sh \"$@\"\n"
        ),
        Action::Shell => concat!(
            "for __fr_sh in \"${SINGULARITY_SHELL:-}\" \"${APPTAINER_SHELL:-}\"; do\n",
            "    if [ -n \"$__fr_sh\" ] && [ -x \"$__fr_sh\" ]; then export SHELL=\"$__fr_sh\"; exec \"$__fr_sh\" \"$@\"; fi\n",
            "done\n",
            "if [ -x /bin/bash ]; then export SHELL=/bin/bash; exec /bin/bash --norc \"$@\"; fi\n",
            "export SHELL=/bin/sh; exec /bin/sh \"$@\"\n"
        ),
        Action::Test => concat!(
            "if [ -x /.singularity.d/test ]; then exec /.singularity.d/test \"$@\"; fi\n",
            "echo 'fr: info: the image has no test script (%test): nothing to run' >&2\n",
            "exit 0\n"
        ),
        Action::Start => concat!(
            "if [ -x /.singularity.d/startscript ]; then exec /.singularity.d/startscript \"$@\"; fi\n",
            "exit 0\n"
        ),
    });
    s
}

/// The variables the script reads `PREPEND_PATH` and `APPEND_PATH` from
/// (fr adds them to the process environment).
pub fn script_env(env: &Environment) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(v) = env.forced_value("PREPEND_PATH") {
        out.push(("__FR_PREPEND_PATH".to_string(), v.to_string()));
    }
    if let Some(v) = env.forced_value("APPEND_PATH") {
        out.push(("__FR_APPEND_PATH".to_string(), v.to_string()));
    }
    out
}

/// The command line that runs `action` through its script with the
/// image's `/bin/sh`: `$0` names the action, `args` follow.
pub fn argv(action: Action, env: &Environment, args: &[String]) -> Vec<String> {
    let mut out = vec!["/bin/sh".to_string(), "-c".to_string(), script(action, env)];
    out.push(format!("fr-{}", action.name()));
    out.extend(args.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn get<'a>(list: &'a [(String, String)], key: &str) -> Option<&'a str> {
        list.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_callers_variables_pass_as_apptainer_passes_them() {
        let host = kv(&[
            ("MAIL", "/var/mail/u"),
            ("HOME", "/home/u"),
            ("PATH", "/home/u/bin:/usr/bin"),
            ("PWD", "/home/u/src"),
            ("OLDPWD", "/home/u"),
            ("LD_LIBRARY_PATH", "/opt/lib"),
            ("APPTAINER_BIND", "/x"),
            ("TERM", "xterm"),
            ("APPTAINERENV_FOO", "bar"),
            ("SINGULARITYENV_FOO", "old"),
            ("SINGULARITYENV_ZED", "z"),
            ("APPTAINERENV_HOME", "/nope"),
        ]);
        let own = kv(&[("HOME", "/root")]);
        let env = environment(&host, &EnvOptions { own: own.clone(), ..EnvOptions::default() });
        let all = env.all();
        assert_eq!(get(&all, "MAIL"), Some("/var/mail/u"));
        assert_eq!(get(&all, "HOME"), Some("/root"));
        assert_eq!(get(&all, "PATH"), Some(DEFAULT_PATH));
        for gone in ["PWD", "OLDPWD", "LD_LIBRARY_PATH", "APPTAINER_BIND", "APPTAINERENV_FOO"] {
            assert_eq!(get(&all, gone), None, "{gone}");
        }
        assert_eq!(get(&all, "FOO"), Some("bar"), "APPTAINERENV_ wins over SINGULARITYENV_");
        assert_eq!(get(&all, "ZED"), Some("z"));
        assert!(env.warnings.iter().any(|w| w.contains("HOME")), "{:?}", env.warnings);
        let clean =
            environment(&host, &EnvOptions { cleanenv: true, own, ..EnvOptions::default() });
        let all = clean.all();
        assert_eq!(get(&all, "MAIL"), None);
        assert_eq!(get(&all, "TERM"), Some("xterm"));
        assert_eq!(get(&all, "LANG"), Some("C"));
        assert_eq!(get(&all, "FOO"), Some("bar"), "forwarded even with --cleanenv");
    }

    #[test]
    fn env_beats_env_file_beats_apptainerenv() {
        let host = kv(&[("APPTAINERENV_A", "1"), ("APPTAINERENV_B", "1"), ("APPTAINERENV_C", "1")]);
        let opts = EnvOptions {
            files: vec![kv(&[("B", "2"), ("C", "2")])],
            env: kv(&[("C", "3"), ("PREPEND_PATH", "/pre"), ("APPEND_PATH", "/post")]),
            ..EnvOptions::default()
        };
        let env = environment(&host, &opts);
        let all = env.all();
        assert_eq!(
            (get(&all, "A"), get(&all, "B"), get(&all, "C")),
            (Some("1"), Some("2"), Some("3"))
        );
        assert_eq!(get(&all, "PATH"), Some(format!("/pre:{DEFAULT_PATH}:/post").as_str()));
        assert_eq!(get(&all, "PREPEND_PATH"), None);
    }

    #[test]
    fn env_args_split_on_commas_as_apptainer_reads_them() {
        assert_eq!(parse_env_arg("A=1,B=2").unwrap(), kv(&[("A", "1"), ("B", "2")]));
        assert_eq!(parse_env_arg("A=x,y,B=").unwrap(), kv(&[("A", "x,y"), ("B", "")]));
        assert_eq!(parse_env_arg("A==b").unwrap(), kv(&[("A", "=b")]));
        assert!(parse_env_arg("nothing").unwrap_err().contains("NAME=VALUE"));
        assert!(parse_env_arg("A-B=1").unwrap_err().contains("no variable name"));
    }

    #[test]
    fn env_files_read_like_the_shell() {
        let host = kv(&[("USER", "u")]);
        let text = "# comment\n\nA=plain\nexport B='single $USER'\nC=\"double $USER ${A} \\\"q\\\"\"\nD=$A-$NOPE.\n";
        let got = parse_env_file(text, &host).unwrap();
        assert_eq!(
            got,
            kv(&[
                ("A", "plain"),
                ("B", "single $USER"),
                ("C", "double u plain \"q\""),
                ("D", "plain-.")
            ])
        );
        assert_eq!(
            parse_env_file("A=1\nB\n", &host).unwrap_err(),
            "line 2: \"B\" is not NAME=VALUE"
        );
        assert!(parse_env_file("A='open\n", &host).unwrap_err().starts_with("line 1:"));
        assert!(parse_env_file("A=two words\n", &host).unwrap_err().contains("quote the value"));
        assert!(parse_env_file("1A=x\n", &host).unwrap_err().contains("no variable name"));
    }

    #[test]
    fn the_script_names_only_valid_variables_and_each_action() {
        let env = Environment {
            passed: kv(&[("MAIL", "m"), ("weird-name", "w")]),
            forced: kv(&[("FOO", "f")]),
            ..Environment::default()
        };
        let s = script(Action::Run, &env);
        assert!(s.starts_with("__fr_passed='MAIL'\n__fr_forced='FOO'\n"), "{s}");
        assert!(s.contains("exec /.singularity.d/runscript \"$@\""));
        assert!(script(Action::Shell, &env).contains("exec /bin/bash --norc"));
        assert!(script(Action::Test, &env).contains("/.singularity.d/test"));
        assert!(script(Action::Exec, &env).ends_with("exec \"$@\"\n"));
        let argv = argv(Action::Exec, &env, &["id".into(), "-u".into()]);
        assert_eq!(&argv[..2], ["/bin/sh", "-c"]);
        assert_eq!(&argv[3..], ["fr-exec", "id", "-u"]);
    }
}
