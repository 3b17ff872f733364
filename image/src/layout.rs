//! The metadata Apptainer keeps in an image, under `/.singularity.d`, and
//! the few files it puts around it: what `apptainer build` writes, with
//! the same paths and modes, so that Apptainer runs a sandbox fr built
//! (`apptainer exec`, `run`, `test`, `inspect`).
//!
//! Pure: the caller says what the image holds ([`Image`]), and gets the
//! entries to write, which it writes as real root would (fr's builder
//! unpacks them as a tar archive, owned by root). Two batches, as
//! Apptainer writes them: [`base_environment`] once the bootstrap agent is
//! done (its `makeBaseEnv()`: directories, links, the action scripts and
//! the environment scripts), and [`metadata`] after `%post` (its
//! `insertMetadata()`: help, labels, the definition, `%environment`, the
//! run, start and test scripts).
//!
//! The scripts are fr's own words for what Apptainer's do: the action
//! scripts source `/.singularity.d/env/*.sh` in order and run what they
//! run; Apptainer's runtime reads the same files.

use std::collections::BTreeMap;

use crate::def::{Header, Script, Sections};

/// What is at a path of the image (relative to its root, no leading
/// slash), symbolic links not followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Existing {
    Missing,
    Dir,
    /// A regular file, with its contents when the caller could read them.
    File(Option<Vec<u8>>),
    Symlink(String),
    /// A device, fifo or socket.
    Other,
}

/// The image as it is before a batch is written.
pub trait Image {
    fn lookup(&self, path: &str) -> Existing;
}

/// What an entry makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

/// One thing to write, owned by root, with `mode`'s permission bits (a
/// symbolic link's are 0777).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub mode: u32,
    pub content: Content,
}

/// The environment script `%post` appends to (`$APPTAINER_ENVIRONMENT`).
pub const POST_ENVIRONMENT: &str = "/.singularity.d/env/91-environment.sh";
/// Where `%post` may write labels (`$APPTAINER_LABELS`), taken into
/// `labels.json` and removed after it.
pub const POST_LABELS: &str = "/.build.labels";

/// The runscript an agent that bootstraps from nothing leaves (debootstrap,
/// busybox, scratch): one that does nothing.
pub const EMPTY_RUNSCRIPT: &str = "#!/bin/sh\n";

// The scripts, in fr's words. Each sources the environment scripts in
// name order first, as Apptainer's do.
const SOURCE_ENV: &str = "for script in /.singularity.d/env/*.sh; do\n    \
                          if [ -f \"$script\" ]; then\n        . \"$script\"\n    fi\ndone\n";

fn action(body: &str) -> String {
    format!(
        "#!/bin/sh\n# Apptainer's action script, as fr build writes it.\n\n{SOURCE_ENV}\n{body}"
    )
}

fn exec_action() -> String {
    action("exec \"$@\"\n")
}

/// The run and test action scripts: the active SCIF app's `script`, or
/// the image's, or `fallback` (shown as `shown`) when there is none.
fn app_action(script: &str, shown: &str, fallback: &str) -> String {
    action(&format!(
        "if test -n \"${{SINGULARITY_APPNAME:-}}\"; then\n    \
         app=/scif/apps/${{SINGULARITY_APPNAME}}/scif/{script}\n    \
         test -x \"$app\" || app=/scif/apps/singularity/scif/{script}\n    \
         if test -x \"$app\"; then\n        exec \"$app\" \"$@\"\n    fi\n    \
         echo \"No {script} for the app ${{SINGULARITY_APPNAME}}\" >&2\n    exit 1\nfi\n\
         if test -x /.singularity.d/{script}; then\n    exec /.singularity.d/{script} \"$@\"\nfi\n\
         echo \"No {script} in the image: running {shown}\" >&2\nexec {fallback}\n",
    ))
}

fn run_action() -> String {
    app_action("runscript", "/bin/sh", "/bin/sh \"$@\"")
}

fn shell_action() -> String {
    action(
        "if test -n \"${SINGULARITY_SHELL:-}\" && test -x \"$SINGULARITY_SHELL\"; then\n    \
         exec $SINGULARITY_SHELL \"$@\"\nfi\n\
         if test -x /bin/bash; then\n    SHELL=/bin/bash\n    \
         PS1=\"Apptainer ${APPTAINER_NAME:-}:\\\\w> \"\n    export SHELL PS1\n    \
         exec /bin/bash --norc \"$@\"\nfi\n\
         SHELL=/bin/sh\nexport SHELL\nexec /bin/sh \"$@\"\n",
    )
}

fn start_action() -> String {
    // An instance's init waits for this signal before it goes on.
    format!(
        "#!/bin/sh\n# Apptainer's action script, as fr build writes it.\n\nkill -CONT 1\n\n\
         {SOURCE_ENV}\nif test -x /.singularity.d/startscript; then\n    \
         exec /.singularity.d/startscript\nfi\n"
    )
}

fn test_action() -> String {
    app_action("test", "/bin/sh -c true", "/bin/sh -c true")
}

const ENV_BASE: &str = "#!/bin/sh\n# The base environment, empty: the image's own comes first.\n";
const ENV_DEFINITION: &str = "#!/bin/sh\n# The definition file's %environment follows.\n";
const ENV_APPS: &str = "#!/bin/sh\n# SCIF apps: the active app's directories and environment.\n\n\
    if test -n \"${SINGULARITY_APPNAME:-}\"; then\n    \
    export SINGULARITY_APPNAME\n    \
    SCIF_APPS=/scif/apps\n    SCIF_APPROOT=/scif/apps/${SINGULARITY_APPNAME}\n    \
    export SCIF_APPS SCIF_APPROOT\n    \
    PATH=\"$SCIF_APPROOT:$PATH\"\n    \
    if test -d \"$SCIF_APPROOT/bin\"; then PATH=\"$SCIF_APPROOT/bin:$PATH\"; fi\n    \
    if test -d \"$SCIF_APPROOT/lib\"; then\n        \
    LD_LIBRARY_PATH=\"$SCIF_APPROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\"\n        \
    export LD_LIBRARY_PATH\n    fi\n    \
    for f in 01-base.sh 90-environment.sh; do\n        \
    if test -f \"$SCIF_APPROOT/scif/env/$f\"; then . \"$SCIF_APPROOT/scif/env/$f\"; fi\n    \
    done\n    export PATH\nfi\n";
const ENV_LIBS: &str = "#!/bin/sh\n# Libraries bound in at run time, and the prompt.\n\n\
    LD_LIBRARY_PATH=\"${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/.singularity.d/libs\"\n\
    PS1=\"${PS1:-Apptainer> }\"\nexport LD_LIBRARY_PATH PS1\n";
const ENV_RUNTIME: &str =
    "#!/bin/sh\n# PATH as the caller asked for it (APPTAINERENV_PATH and the like).\n\n\
    if [ -n \"${SING_USER_DEFINED_PREPEND_PATH:-}\" ]; then\n    \
    PATH=\"$SING_USER_DEFINED_PREPEND_PATH:$PATH\"\nfi\n\
    if [ -n \"${SING_USER_DEFINED_APPEND_PATH:-}\" ]; then\n    \
    PATH=\"$PATH:$SING_USER_DEFINED_APPEND_PATH\"\nfi\n\
    if [ -n \"${SING_USER_DEFINED_PATH:-}\" ]; then\n    PATH=\"$SING_USER_DEFINED_PATH\"\nfi\n\
    unset SING_USER_DEFINED_PREPEND_PATH SING_USER_DEFINED_APPEND_PATH SING_USER_DEFINED_PATH\n\
    export PATH\n";
const DEFAULT_RUNSCRIPT: &str =
    "#!/bin/sh\n\necho \"There is no runscript defined for this container\"\n";
const DEFAULT_STARTSCRIPT: &str = "#!/bin/sh\n";

/// The image seen through the entries of the batch so far: a later step
/// of the batch sees what an earlier one wrote, as on disk.
struct Batch<'a> {
    image: &'a dyn Image,
    entries: Vec<Entry>,
}

impl Batch<'_> {
    fn lookup(&self, path: &str) -> Existing {
        match self.entries.iter().rev().find(|e| e.path == path) {
            Some(Entry { content: Content::Dir, .. }) => Existing::Dir,
            Some(Entry { content: Content::File(bytes), .. }) => {
                Existing::File(Some(bytes.clone()))
            }
            Some(Entry { content: Content::Symlink(t), .. }) => Existing::Symlink(t.clone()),
            None => self.image.lookup(path),
        }
    }

    fn push(&mut self, path: &str, mode: u32, content: Content) {
        self.entries.retain(|e| e.path != path);
        self.entries.push(Entry { path: path.to_string(), mode, content });
    }

    /// `mkdir -p` with mode 0755 for what is missing (Apptainer's
    /// `mkdirAllInRootfs()`): what is there stays as it is.
    fn mkdir_all(&mut self, path: &str) {
        let mut at = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(part);
            if self.lookup(&at) == Existing::Missing {
                self.push(&at, 0o755, Content::Dir);
            }
        }
    }

    /// A symbolic link `path` to `target` where nothing is, or in place of
    /// a link to something else; anything else there stays (Apptainer's
    /// `makeSymlink()`).
    fn symlink(&mut self, target: &str, path: &str) {
        let make = match self.lookup(path) {
            Existing::Missing => true,
            Existing::Symlink(t) => t != target,
            _ => false,
        };
        if make {
            self.push(path, 0o777, Content::Symlink(target.into()));
        }
    }

    /// Apptainer's `makeFile()`: a regular file that exists gets `mode`,
    /// and its contents only when `overwrite`; where nothing is, it is
    /// made. A link or a directory in the way is left alone (Apptainer
    /// would write through the link; fr does not follow a link the
    /// image chose).
    fn file(&mut self, path: &str, mode: u32, contents: &str, overwrite: bool) {
        match self.lookup(path) {
            Existing::Missing => self.push(path, mode, Content::File(contents.into())),
            Existing::File(_) if overwrite => self.push(path, mode, Content::File(contents.into())),
            Existing::File(Some(old)) => self.push(path, mode, Content::File(old)),
            _ => {}
        }
    }

    /// A file written whole, whatever was there (a directory excepted).
    fn write(&mut self, path: &str, mode: u32, contents: Vec<u8>) {
        if self.lookup(path) != Existing::Dir {
            self.push(path, mode, Content::File(contents));
        }
    }
}

/// Apptainer's `makeBaseEnv()`: the directories an image needs, the links
/// at its top, the action and environment scripts. `overwrite` (every
/// agent but localimage) writes the scripts, `/etc/hosts` and
/// `/etc/resolv.conf` anew, empty for the last two; without it what the
/// image has is kept.
pub fn base_environment(image: &dyn Image, overwrite: bool) -> Vec<Entry> {
    let mut b = Batch { image, entries: Vec::new() };
    for dir in [
        ".singularity.d/libs",
        ".singularity.d/actions",
        ".singularity.d/env",
        "dev",
        "proc",
        "root",
        "var/tmp",
        "tmp",
        "etc",
        "sys",
        "home",
    ] {
        b.mkdir_all(dir);
    }
    for (target, link) in [
        (".singularity.d/runscript", "singularity"),
        (".singularity.d/actions/run", ".run"),
        (".singularity.d/actions/exec", ".exec"),
        (".singularity.d/actions/test", ".test"),
        (".singularity.d/actions/shell", ".shell"),
        (".singularity.d/env/90-environment.sh", "environment"),
    ] {
        b.symlink(target, link);
    }
    let files: [(&str, u32, String); 14] = [
        ("etc/hosts", 0o644, String::new()),
        ("etc/resolv.conf", 0o644, String::new()),
        (".singularity.d/actions/exec", 0o755, exec_action()),
        (".singularity.d/actions/run", 0o755, run_action()),
        (".singularity.d/actions/shell", 0o755, shell_action()),
        (".singularity.d/actions/start", 0o755, start_action()),
        (".singularity.d/actions/test", 0o755, test_action()),
        (".singularity.d/env/01-base.sh", 0o755, ENV_BASE.into()),
        (".singularity.d/env/90-environment.sh", 0o755, ENV_DEFINITION.into()),
        (".singularity.d/env/95-apps.sh", 0o755, ENV_APPS.into()),
        (".singularity.d/env/99-base.sh", 0o755, ENV_LIBS.into()),
        (".singularity.d/env/99-runtimevars.sh", 0o755, ENV_RUNTIME.into()),
        (".singularity.d/runscript", 0o755, DEFAULT_RUNSCRIPT.into()),
        (".singularity.d/startscript", 0o755, DEFAULT_STARTSCRIPT.into()),
    ];
    for (path, mode, contents) in files {
        b.file(path, mode, &contents, overwrite);
    }
    b.entries
}

/// What [`metadata`] writes, besides the sections.
#[derive(Clone, Debug)]
pub struct Metadata<'a> {
    pub sections: &'a Sections,
    pub header: &'a Header,
    /// Which sections run (`--section`); `None`: all.
    pub only: Option<&'a [String]>,
    /// The definition file as given (`/.singularity.d/Singularity`).
    pub definition: &'a [u8],
    /// Labels `%post` wrote to `$APPTAINER_LABELS`, in the file's form.
    pub post_labels: Option<&'a str>,
    /// The labels every build sets (date, architecture, fr's version).
    pub build_labels: Vec<(String, String)>,
    /// `--force`: a label or help text already there is replaced.
    pub force: bool,
}

impl Metadata<'_> {
    fn runs(&self, section: &str) -> bool {
        self.only.is_none_or(|only| only.iter().any(|s| s == section))
    }
}

/// Apptainer's `insertMetadata()`: the help text, `labels.json`, the
/// definition file (an earlier one moved to `bootstrap_history`),
/// `%environment` appended to `90-environment.sh`, and the start, run and
/// test scripts. Returns the entries and warnings to show.
pub fn metadata(image: &dyn Image, m: &Metadata<'_>) -> (Vec<Entry>, Vec<String>) {
    let mut b = Batch { image, entries: Vec::new() };
    let mut warnings = Vec::new();
    let s = m.sections;

    if let Some(help) = s.help.as_deref().filter(|h| !h.is_empty() && m.runs("help")) {
        let path = ".singularity.d/runscript.help";
        if b.lookup(path) == Existing::Missing || m.force {
            b.write(path, 0o644, format!("{}\n", help.trim_end()).into_bytes());
        } else {
            warnings
                .push("the image has a help text already: it is kept (--force replaces it)".into());
        }
    }

    let mut labels = match b.lookup(".singularity.d/labels.json") {
        Existing::File(Some(bytes)) => match parse_labels_json(&bytes) {
            Ok(l) => l,
            Err(why) => {
                warnings.push(format!("the image's labels.json is not kept: {why}"));
                BTreeMap::new()
            }
        },
        _ => BTreeMap::new(),
    };
    if let Some(text) = m.post_labels {
        labels.extend(parse_labels(text));
    }
    labels.extend(m.build_labels.iter().cloned());
    if s.help.as_deref().is_some_and(|h| !h.is_empty()) && m.runs("help") {
        for key in ["org.label-schema.usage", "org.label-schema.usage.apptainer.runscript.help"] {
            labels.insert(key.into(), "/.singularity.d/runscript.help".into());
        }
    }
    for (key, value) in header_labels(m.header) {
        labels.insert(format!("org.label-schema.usage.singularity.deffile.{key}"), value);
    }
    if m.runs("labels") {
        for (key, value) in &s.labels {
            if labels.contains_key(key) && !m.force {
                warnings.push(format!(
                    "label {key} is in the image already: it is kept (--force replaces it)"
                ));
                continue;
            }
            labels.insert(key.clone(), value.clone());
        }
    }
    b.write(".singularity.d/labels.json", 0o644, labels_json(&labels));

    let definition = ".singularity.d/Singularity";
    if matches!(b.lookup(definition), Existing::File(_)) {
        let history = ".singularity.d/bootstrap_history";
        let mut n = 0;
        if b.lookup(history) == Existing::Dir {
            while b.lookup(&format!("{history}/Apptainer{n}")) != Existing::Missing {
                n += 1;
            }
        } else {
            b.push(history, 0o755, Content::Dir);
        }
        if let Existing::File(Some(old)) = b.lookup(definition) {
            b.push(&format!("{history}/Apptainer{n}"), 0o644, Content::File(old));
        }
    }
    b.write(definition, 0o644, m.definition.to_vec());

    if let Some(env) = s.environment.as_deref().filter(|e| !e.is_empty() && m.runs("environment")) {
        let path = ".singularity.d/env/90-environment.sh";
        match b.lookup(path) {
            Existing::File(Some(mut old)) => {
                old.extend_from_slice(format!("\n{}\n", env.trim_end()).as_bytes());
                b.write(path, 0o755, old);
            }
            _ => b.write(path, 0o755, format!("#!/bin/sh\n\n{}\n", env.trim_end()).into_bytes()),
        }
    }

    for (name, script) in
        [("startscript", &s.startscript), ("runscript", &s.runscript), ("test", &s.test)]
    {
        if let Some(script) = script.as_ref().filter(|x| !x.body.is_empty() && m.runs(name)) {
            b.write(&format!(".singularity.d/{name}"), 0o755, with_shebang(script).into_bytes());
        }
    }
    (b.entries, warnings)
}

/// A run, start or test script as Apptainer writes it
/// (`handleShebangScript()`): the body's own `#!` line if it starts with
/// one, else `#!/bin/sh`, or the interpreter `-c` names; a blank line;
/// the body. A body ends where its last line does (Apptainer trims the
/// section's trailing blank lines).
pub fn with_shebang(script: &Script) -> String {
    let body = script.body.trim_end();
    let (mut shebang, rest) = if body.trim_start().starts_with("#!") {
        let body = body.trim_start();
        match body.split_once('\n') {
            Some((first, rest)) => (first.trim().to_string(), rest),
            None => (body.trim().to_string(), ""),
        }
    } else {
        ("#!/bin/sh".to_string(), body)
    };
    if let Some(shell) = &script.shell {
        shebang = format!("#!{}", shell.trim());
    }
    format!("{shebang}\n\n{rest}\n")
}

/// The header keys as written, for the `deffile.*` labels.
fn header_labels(h: &Header) -> Vec<(String, String)> {
    use crate::def::Agent;
    let agent = match &h.bootstrap {
        Agent::Scratch => "scratch".to_string(),
        Agent::Debootstrap => "debootstrap".to_string(),
        Agent::LocalImage => "localimage".to_string(),
        Agent::Busybox => "busybox".to_string(),
        Agent::Other(name) => name.clone(),
    };
    let mut out = vec![("bootstrap".to_string(), agent)];
    let mut add = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            out.push((k.to_string(), v.clone()));
        }
    };
    add("from", &h.from);
    add("osversion", &h.os_version);
    add("mirrorurl", &h.mirror_url);
    if !h.include.is_empty() {
        out.push(("include".into(), h.include.join(" ")));
    }
    for (k, v, _) in &h.other {
        out.push((k.clone(), v.clone()));
    }
    out
}

/// `KEY VALUE` lines (`%labels`, `$APPTAINER_LABELS`): the key up to the
/// first space, the rest trimmed; blank lines and `#` comments skipped.
pub fn parse_labels(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(' ') {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

fn parse_labels_json(bytes: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let serde_json::Value::Object(map) = value else {
        return Err("it is not a JSON object".into());
    };
    Ok(map
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect())
}

/// `labels.json` as Apptainer writes it: keys sorted, a tab per level.
pub fn labels_json(labels: &BTreeMap<String, String>) -> Vec<u8> {
    use serde::Serialize;
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    // A map of strings always serializes.
    let _ = labels.serialize(&mut ser);
    out
}

/// The date labels of a build at `secs` since the epoch (UTC):
/// `org.opencontainers.image.created` in RFC 3339 and
/// `org.label-schema.build-date` in Apptainer's own form
/// (`Monday_2_January_2006_15:4:5_UTC`).
pub fn date_labels(secs: i64) -> [(String, String); 2] {
    let crate::civil::Civil { year: y, month: m, day: d, hour: h, minute: mi, second: s, days } =
        crate::civil::Civil::from_unix(secs);
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] =
        ["Thursday", "Friday", "Saturday", "Sunday", "Monday", "Tuesday", "Wednesday"];
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let month = MONTHS[(m - 1) as usize];
    [
        (
            "org.opencontainers.image.created".into(),
            format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        ),
        (
            "org.label-schema.build-date".into(),
            format!("{weekday}_{d}_{month}_{y}_{h}:{mi}:{s}_UTC"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Fake(HashMap<String, Existing>);

    impl Image for Fake {
        fn lookup(&self, path: &str) -> Existing {
            self.0.get(path).cloned().unwrap_or(Existing::Missing)
        }
    }

    fn find<'a>(entries: &'a [Entry], path: &str) -> Option<&'a Entry> {
        entries.iter().find(|e| e.path == path)
    }

    #[test]
    fn an_empty_image_gets_apptainers_whole_base_environment() {
        let entries = base_environment(&Fake::default(), true);
        for dir in [".singularity.d", ".singularity.d/env", "var", "var/tmp", "home", "dev"] {
            assert_eq!(
                find(&entries, dir).map(|e| (&e.content, e.mode)),
                Some((&Content::Dir, 0o755))
            );
        }
        let link = find(&entries, "environment").unwrap();
        assert_eq!(link.content, Content::Symlink(".singularity.d/env/90-environment.sh".into()));
        for (path, mode) in [
            (".singularity.d/actions/exec", 0o755),
            (".singularity.d/env/99-runtimevars.sh", 0o755),
            (".singularity.d/runscript", 0o755),
            ("etc/hosts", 0o644),
            ("etc/resolv.conf", 0o644),
        ] {
            let e = find(&entries, path).unwrap_or_else(|| panic!("{path}"));
            assert_eq!(e.mode, mode, "{path}");
        }
        // Parents come before what is in them.
        let at = |p: &str| entries.iter().position(|e| e.path == p).unwrap();
        assert!(at(".singularity.d") < at(".singularity.d/env"));
        assert!(at(".singularity.d/env") < at(".singularity.d/env/01-base.sh"));
        // /tmp's mode is not Apptainer's to set when it is there.
        let mut there = Fake::default();
        there.0.insert("tmp".into(), Existing::Dir);
        assert!(find(&base_environment(&there, true), "tmp").is_none());
    }

    #[test]
    fn without_overwrite_the_images_files_are_kept_with_apptainers_modes() {
        let mut img = Fake::default();
        img.0.insert(
            ".singularity.d/runscript".into(),
            Existing::File(Some(b"#!/bin/sh\nmine\n".to_vec())),
        );
        img.0.insert("etc/hosts".into(), Existing::Symlink("/run/hosts".into()));
        img.0.insert("singularity".into(), Existing::Symlink("elsewhere".into()));
        img.0.insert(".run".into(), Existing::Symlink(".singularity.d/actions/run".into()));
        let entries = base_environment(&img, false);
        let run = find(&entries, ".singularity.d/runscript").unwrap();
        assert_eq!(run.content, Content::File(b"#!/bin/sh\nmine\n".to_vec()));
        assert!(find(&entries, "etc/hosts").is_none());
        assert_eq!(
            find(&entries, "singularity").unwrap().content,
            Content::Symlink(".singularity.d/runscript".into())
        );
        assert!(find(&entries, ".run").is_none());
    }

    #[test]
    fn metadata_appends_the_environment_and_moves_an_old_definition_aside() {
        let mut img = Fake::default();
        img.0.insert(
            ".singularity.d/env/90-environment.sh".into(),
            Existing::File(Some(b"#!/bin/sh\n".to_vec())),
        );
        img.0.insert(".singularity.d/Singularity".into(), Existing::File(Some(b"old".to_vec())));
        img.0.insert(".singularity.d/bootstrap_history".into(), Existing::Dir);
        img.0.insert(".singularity.d/bootstrap_history/Apptainer0".into(), Existing::File(None));
        img.0.insert(
            ".singularity.d/labels.json".into(),
            Existing::File(Some(b"{\"a\": \"1\", \"keep\": \"me\"}".to_vec())),
        );
        let sections = Sections {
            environment: Some("export A=1".into()),
            runscript: Some(Script { body: "#!/bin/bash\necho $A".into(), ..Script::default() }),
            test: Some(Script { body: "true".into(), shell: Some("/bin/bash".into()), line: 1 }),
            labels: vec![("a".into(), "2".into()), ("b".into(), "3".into())],
            ..Sections::default()
        };
        let header = Header::default();
        let m = Metadata {
            sections: &sections,
            header: &header,
            definition: b"new",
            post_labels: Some("c from post\n# no\n"),
            only: None,
            build_labels: Vec::new(),
            force: false,
        };
        let (entries, warnings) = metadata(&img, &m);
        let content = |p: &str| match &find(&entries, p).unwrap_or_else(|| panic!("{p}")).content {
            Content::File(b) => String::from_utf8(b.clone()).unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(content(".singularity.d/env/90-environment.sh"), "#!/bin/sh\n\nexport A=1\n");
        assert_eq!(content(".singularity.d/bootstrap_history/Apptainer1"), "old");
        assert_eq!(content(".singularity.d/Singularity"), "new");
        assert_eq!(content(".singularity.d/runscript"), "#!/bin/bash\n\necho $A\n");
        assert_eq!(content(".singularity.d/test"), "#!/bin/bash\n\ntrue\n");
        let labels = content(".singularity.d/labels.json");
        assert!(labels.starts_with("{\n\t\"a\": \"1\",\n"), "{labels}");
        assert!(
            labels.contains("\"b\": \"3\"") && labels.contains("\"c\": \"from post\""),
            "{labels}"
        );
        assert!(labels.contains("\"keep\": \"me\""), "{labels}");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        // --section runscript alone writes no test and no environment.
        let only = ["runscript".to_string()];
        let (entries, _) = metadata(&img, &Metadata { only: Some(&only), ..m.clone() });
        assert!(find(&entries, ".singularity.d/test").is_none());
        assert!(find(&entries, ".singularity.d/env/90-environment.sh").is_none());
        assert!(find(&entries, ".singularity.d/runscript").is_some());
    }

    #[test]
    fn dates_are_apptainers() {
        let [created, date] = date_labels(1_136_214_245);
        assert_eq!(created.1, "2006-01-02T15:04:05Z");
        assert_eq!(date.1, "Monday_2_January_2006_15:4:5_UTC");
        assert_eq!(date_labels(0)[1].1, "Thursday_1_January_1970_0:0:0_UTC");
        assert_eq!(date_labels(951_782_400)[0].1, "2000-02-29T00:00:00Z");
    }
}
