//! What an image config becomes in an Apptainer image's `/.singularity.d`,
//! as Apptainer's OCI conversion makes it (`conveyorPacker_oci.go`), in
//! fr's own words:
//!
//! - `Env` → `env/10-docker2singularity.sh`: each variable a default the
//!   caller's environment may override (empty counts as unset), `PATH` set
//!   outright;
//! - `Entrypoint` and `Cmd` → `runscript`, run as `podman run` runs them:
//!   the entrypoint with the arguments given, or with `Cmd` when none are;
//!   without an entrypoint the arguments (or `Cmd`) are the command;
//! - `WorkingDir` → the runscript starts there (podman's behaviour;
//!   `fr exec` keeps the caller's directory, as Apptainer does);
//! - `Labels` → `labels.json`;
//! - `User` is not applied: Apptainer runs everything as the calling user,
//!   and fr as fake root. It is kept as the label
//!   `org.opencontainers.image.user`, so that it is not lost.

use std::collections::BTreeMap;

use oci_spec::image::Config;

/// The runscript, as a config names it.
pub const RUNSCRIPT: &str = "/.singularity.d/runscript";

/// The user label a config's `User` is kept in.
pub const USER_LABEL: &str = "org.opencontainers.image.user";

/// A file of the metadata: path below the image root, mode, content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub path: &'static str,
    pub mode: u32,
    pub content: Vec<u8>,
}

/// `s` as one word for `sh`, in single quotes.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn shell_name(name: &str) -> bool {
    let mut b = name.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The environment script; names that are no shell variable are left
/// out and returned, for a warning.
pub fn env_script(env: &[String]) -> (String, Vec<String>) {
    let mut out = String::from(
        "#!/bin/sh\n# The Env of the OCI image's config, written by fr: each a default that\n\
         # the caller's environment overrides, PATH as the image sets it.\n",
    );
    let mut skipped = Vec::new();
    for e in env {
        let (name, value) = e.split_once('=').unwrap_or((e, ""));
        if !shell_name(name) {
            skipped.push(name.to_string());
            continue;
        }
        if name == "PATH" {
            out += &format!("PATH={}\nexport PATH\n", quote(value));
        } else {
            out += &format!("[ -n \"${{{name}:-}}\" ] || {name}={}\nexport {name}\n", quote(value));
        }
    }
    (out, skipped)
}

/// A shell word that is quoted in single quotes (with `'\''` inside),
/// double quotes without `$`, `` ` `` or `\\`, or bare without any of
/// the shell's special characters: its value. Anything else is `None`.
fn unquote(word: &str) -> Option<String> {
    if let Some(inner) = word.strip_prefix('\'').and_then(|w| w.strip_suffix('\'')) {
        let parts: Vec<&str> = inner.split(r"'\''").collect();
        return parts.iter().all(|p| !p.contains('\'')).then(|| parts.join("'"));
    }
    if let Some(inner) = word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        return (!inner.contains(['"', '$', '`', '\\'])).then(|| inner.to_string());
    }
    let special = |c: char| c.is_whitespace() || "'\"$`\\|&;<>()*?[]#~{}".contains(c);
    (!word.contains(special)).then(|| word.to_string())
}

/// The variables an environment script sets, read back without running
/// it: `NAME=VALUE` and `export NAME=VALUE` with a plain or quoted
/// value, and the defaults [`env_script`] writes. Lines that do more
/// (expansions, conditions, functions) are returned apart, for a warning:
/// an OCI config holds values, not scripts.
pub fn parse_env(script: &str) -> (Vec<String>, Vec<String>) {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut skipped = Vec::new();
    for line in script.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let assignment = line
            .strip_prefix("[ -n \"${")
            .and_then(|rest| rest.split_once(":-}\" ] || "))
            .map(|(_, a)| a)
            .or_else(|| line.strip_prefix("export "))
            .unwrap_or(line);
        let parsed = assignment.split_once('=').and_then(|(name, value)| {
            let name = name.trim();
            (shell_name(name)).then_some(())?;
            Some((name.to_string(), unquote(value)?))
        });
        match parsed {
            Some((name, value)) => {
                vars.retain(|(n, _)| *n != name);
                vars.push((name, value));
            }
            None if line
                .strip_prefix("export ")
                .is_some_and(|n| n.split_whitespace().all(shell_name)) => {}
            None => skipped.push(line.to_string()),
        }
    }
    (vars.into_iter().map(|(n, v)| format!("{n}={v}")).collect(), skipped)
}

/// The runscript for `Entrypoint`, `Cmd` and `WorkingDir`.
pub fn runscript(entrypoint: &[String], cmd: &[String], workdir: Option<&str>) -> String {
    let words = |v: &[String]| v.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ");
    let mut out = String::from(
        "#!/bin/sh\n# The Entrypoint and Cmd of the OCI image's config, written by fr: run as\n\
         # `podman run` runs them, the arguments given replacing Cmd.\n",
    );
    if let Some(dir) = workdir.filter(|d| !d.is_empty()) {
        out += &format!("cd {} || exit 1\n", quote(dir));
    }
    if !cmd.is_empty() {
        out += &format!("[ $# -gt 0 ] || set -- {}\n", words(cmd));
    }
    if entrypoint.is_empty() {
        out += "if [ $# -eq 0 ]; then\n    echo 'the image has no Entrypoint or Cmd: give the command to run' >&2\n    exit 1\nfi\n";
        out += "exec \"$@\"\n";
    } else {
        out += &format!("exec {} \"$@\"\n", words(entrypoint));
    }
    out
}

/// The labels as `labels.json` holds them: the config's, and `User`.
pub fn labels(config: &Config) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> =
        config.labels().clone().unwrap_or_default().into_iter().collect();
    if let Some(user) = config.user().as_ref().filter(|u| !u.is_empty()) {
        labels.insert(USER_LABEL.into(), user.clone());
    }
    labels
}

/// The files for `config`, and the environment names left out.
pub fn metadata(config: &Config) -> (Vec<File>, Vec<String>) {
    let (env, skipped) = env_script(config.env().as_deref().unwrap_or_default());
    let run = runscript(
        config.entrypoint().as_deref().unwrap_or_default(),
        config.cmd().as_deref().unwrap_or_default(),
        config.working_dir().as_deref(),
    );
    let labels = serde_json::to_string_pretty(&labels(config)).unwrap_or_else(|_| "{}".into());
    let mut files = vec![
        File {
            path: ".singularity.d/env/10-docker2singularity.sh",
            mode: 0o755,
            content: env.into_bytes(),
        },
        File {
            path: ".singularity.d/labels.json",
            mode: 0o644,
            content: (labels + "\n").into_bytes(),
        },
    ];
    // An image fr or Apptainer exported runs its own runscript: the one in
    // its layer stays (a new one would run itself).
    let program = config.entrypoint().as_deref().or(config.cmd().as_deref()).unwrap_or_default();
    if program.first().map(String::as_str) != Some(RUNSCRIPT) {
        files.push(File {
            path: ".singularity.d/runscript",
            mode: 0o755,
            content: run.into_bytes(),
        });
    }
    (files, skipped)
}

/// The PATH an image gets when its environment sets none (Apptainer's
/// and docker's default).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The config of an image with this `/.singularity.d`, for an OCI image
/// of it: `read(path)` gives a file's text. Env from the environment
/// scripts (`10-docker2singularity.sh`, then `90-environment.sh`, which
/// `%environment` fills, then `91-environment.sh`, which `%post` appends
/// to through `$APPTAINER_ENVIRONMENT`), the runscript as the entrypoint (so that
/// `podman run IMAGE ARGS` runs it with ARGS, as `fr run` does), the
/// labels of `labels.json`. Returns what could not be carried, for
/// warnings.
pub fn run_config(read: impl Fn(&str) -> Option<String>) -> (super::write::RunConfig, Vec<String>) {
    let mut run = super::write::RunConfig::default();
    let mut warnings = Vec::new();
    for script in [
        ".singularity.d/env/10-docker2singularity.sh",
        ".singularity.d/env/90-environment.sh",
        ".singularity.d/env/91-environment.sh",
    ] {
        let Some(text) = read(script) else { continue };
        let (vars, skipped) = parse_env(&text);
        for v in vars {
            let name = v.split('=').next().unwrap_or_default().to_string();
            run.env.retain(|e| e.split('=').next() != Some(name.as_str()));
            run.env.push(v);
        }
        for line in skipped {
            warnings
                .push(format!("/{script}: `{line}` is not a plain assignment; left out of Env"));
        }
    }
    if !run.env.iter().any(|e| e.starts_with("PATH=")) {
        run.env.insert(0, DEFAULT_PATH.into());
    }
    if read(".singularity.d/runscript").is_some() {
        run.entrypoint = vec![RUNSCRIPT.into()];
    }
    if let Some(text) = read(".singularity.d/labels.json") {
        match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text) {
            Ok(map) => {
                for (k, v) in map {
                    let v = match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    run.labels.insert(k, v);
                }
            }
            Err(e) => warnings.push(format!("/.singularity.d/labels.json: {e}; no labels carried")),
        }
    }
    (run, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(script: &str, args: &[&str]) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("runscript")
            .args(args)
            .env_remove("GREETING")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    #[test]
    fn the_runscript_runs_what_podman_run_would() {
        let s = |v: &[&str]| v.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let ep = s(&["echo", "it's"]);
        let cmd = s(&["a b", "$HOME"]);
        let r = runscript(&ep, &cmd, Some("/"));
        assert_eq!(sh(&r, &[]), "it's a b $HOME\n");
        assert_eq!(sh(&r, &["x"]), "it's x\n");
        let r = runscript(&[], &s(&["echo", "cmd"]), None);
        assert_eq!(sh(&r, &[]), "cmd\n");
        assert_eq!(sh(&r, &["echo", "args"]), "args\n");
        let r = runscript(&[], &[], None);
        assert!(sh(&r, &[]).contains("no Entrypoint or Cmd"));
        assert_eq!(sh(&r, &["echo", "y"]), "y\n");
        let r = runscript(&s(&["pwd"]), &[], Some("/tmp"));
        assert_eq!(sh(&r, &[]), "/tmp\n");
    }

    #[test]
    fn environment_scripts_read_back_as_values() {
        let env = vec![
            "PATH=/usr/bin:/bin".to_string(),
            "GREETING=it's \"$HOME\"".into(),
            "EMPTY=".into(),
        ];
        let (script, _) = env_script(&env);
        assert_eq!(parse_env(&script), (env, vec![]));
        let (vars, skipped) = parse_env(
            "#!/bin/sh\nexport A=1\nB=\"two words\"\nexport C='x'\nexport A B\nD=$HOME/x\nif true; then :; fi\n",
        );
        assert_eq!(vars, ["A=1", "B=two words", "C=x"]);
        assert_eq!(skipped, ["D=$HOME/x", "if true; then :; fi"]);
    }

    #[test]
    fn env_values_are_defaults_the_caller_overrides() {
        let (script, skipped) = env_script(&[
            "PATH=/usr/bin:/bin".into(),
            "GREETING=it's \"$HOME\"".into(),
            "EMPTY".into(),
            "bad-name=1".into(),
        ]);
        assert_eq!(skipped, ["bad-name"]);
        let show = format!("{script}\necho \"$PATH|$GREETING|${{EMPTY-unset}}\"");
        assert_eq!(sh(&show, &[]), "/usr/bin:/bin|it's \"$HOME\"|\n");
        let out = Command::new("sh").arg("-c").arg(&show).env("GREETING", "mine").output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "/usr/bin:/bin|mine|\n");
    }
}
