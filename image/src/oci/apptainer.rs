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
    let files = vec![
        File {
            path: ".singularity.d/env/10-docker2singularity.sh",
            mode: 0o755,
            content: env.into_bytes(),
        },
        File { path: ".singularity.d/runscript", mode: 0o755, content: run.into_bytes() },
        File {
            path: ".singularity.d/labels.json",
            mode: 0o644,
            content: (labels + "\n").into_bytes(),
        },
    ];
    (files, skipped)
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
