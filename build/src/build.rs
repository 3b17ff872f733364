//! A whole build: SPEC read, DEST checked, each stage bootstrapped and its
//! sections run in Apptainer's order, the last stage written as DEST.
//!
//! Per stage, as Apptainer's `Build.Full()`: the agent (and the base
//! environment), `%files from` earlier stages, `%setup` (fake root on the
//! host tree, `$APPTAINER_ROOTFS` the stage's image), `%files` from the
//! host, `%post` (fake root in the image, a clean environment, the host's
//! `resolv.conf` and `hosts` bound), the metadata (`%environment`,
//! `%runscript`, `%startscript`, `%test`, `%labels`, `%help`), and `%test`
//! unless `--notest`. Every step that touches an image is an fr session
//! (or an import or export) through the launcher, so the image's store
//! holds, at the end, what real root's build would have left on disk.

use std::cell::Cell;
use std::ffi::OsString;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use fr_image::def::{Files, Script, Stage};
use fr_image::layout::{self, Existing, Image};
use fr_launcher::{Bind, Userns};

use crate::agent;
use crate::child::{self, Env, Outcome, Session};
use crate::error::{signal_name, Error};
use crate::files;
use crate::options::{BuildOptions, SECTIONS};
use crate::output::{self, Names, Output};
use crate::spec::{self, Spec};
use crate::sys;
use crate::tarball::Tarball;
use crate::tree::Tree;

/// What every stage shares.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub opts: &'a BuildOptions,
    pub userns: Userns,
    /// The build's private directory for scripts, state files, archives.
    pub tmp: PathBuf,
    /// Members' times and the build date (`SOURCE_DATE_EPOCH`, else now).
    pub mtime: i64,
    pub spec: &'a Spec,
    /// The temporary names beside DEST.
    pub names: Names,
}

/// One stage being built.
#[derive(Debug)]
pub struct StageRun<'a> {
    pub ctx: &'a Ctx<'a>,
    pub index: usize,
    pub stage: &'a Stage,
    pub rootfs: PathBuf,
    /// Sections to run (`--section`, last stage); `None`: all.
    pub only: Option<Vec<String>>,
    tags: Cell<usize>,
}

/// Sources the image's environment scripts, as Apptainer's runtime does
/// before a section's command, then runs the rest of the arguments.
const WITH_ENVIRONMENT: &str =
    "for f in /.singularity.d/env/*.sh; do if [ -f \"$f\" ]; then . \"$f\"; fi; done; exec \"$@\"";

/// The environment script `%post` appends to, and where it may add labels.
fn post_variables() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for prefix in ["APPTAINER", "SINGULARITY"] {
        v.push((format!("{prefix}_ENVIRONMENT"), layout::POST_ENVIRONMENT.to_string()));
        v.push((format!("{prefix}_LABELS"), layout::POST_LABELS.to_string()));
    }
    v
}

/// Apptainer's arguments for a section's script (`getSectionScriptArgs()`):
/// `/bin/sh -ex SCRIPT`, or with `-c SHELL` `/bin/sh -ex -c "SHELL SCRIPT"`.
pub fn script_command(script: &Script, path: &str) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec!["/bin/sh".into(), "-ex".into()];
    match &script.shell {
        Some(shell) => {
            argv.push("-c".into());
            argv.push(format!("{} {path}", shell.trim()).into());
        }
        None => argv.push(path.into()),
    }
    argv
}

impl StageRun<'_> {
    /// `what`, named with the stage when there are several.
    pub fn name(&self, what: &str) -> String {
        // One stage: messages need not name it.
        match (self.ctx.spec.def.stages.len(), &self.stage.name) {
            (1, _) => what.to_string(),
            (_, Some(n)) => format!("stage {n}: {what}"),
            (_, None) => format!("stage {}: {what}", self.index + 1),
        }
    }

    /// A step starts: one line, unless a signal stopped the build.
    pub fn step(&self, what: &str) -> Result<(), Error> {
        if let Some(signal) = sys::pending() {
            return Err(Error::Interrupted { step: self.name(what), signal: signal_name(signal) });
        }
        log::info!("build: {}", self.name(what));
        Ok(())
    }

    /// A number for this stage's temporary files.
    pub fn next_tag(&self) -> usize {
        let n = self.tags.get();
        self.tags.set(n + 1);
        n
    }

    fn runs(&self, section: &str) -> bool {
        self.only.as_ref().is_none_or(|only| only.iter().any(|s| s == section))
    }

    /// A session on the host tree that works on the stage's image: it
    /// starts from the image's records (so that it sees the image as a
    /// session in it would) and its own go into the image's store, even
    /// when it fails, so that the tree and its store agree.
    pub fn host_session(
        &self,
        what: &str,
        command: Vec<OsString>,
        set: Vec<(String, String)>,
        script: bool,
    ) -> Result<(), Error> {
        let name = self.name(what);
        let tag = format!("stage{}-{}", self.index, self.next_tag());
        let load = self.ctx.tmp.join(format!("{tag}.in.state"));
        let save = self.ctx.tmp.join(format!("{tag}.state"));
        child::export_state(&name, std::slice::from_ref(&self.rootfs), &load)?;
        let mut set = set;
        set.push(("PATH".into(), agent::host_path()));
        let session = Session {
            image: None,
            command,
            userns: self.ctx.userns,
            binds: Vec::new(),
            env: Env { clean: false, set },
            load_state: Some(load),
            save_state: Some(save.clone()),
        };
        let hint = script.then(|| format!("the script's output above says why ({name})"));
        let ran = session.must(&name, hint);
        let kept = if save.exists() {
            child::import_state(&format!("{name}: its records into the image"), &save, &self.rootfs)
        } else {
            Ok(())
        };
        ran.and(kept)
    }

    /// The binds of `%post` and `%test`: copies of the host's `resolv.conf`
    /// and `hosts` (with a newline added, as Apptainer stages them, so that
    /// a package does not take the image's as its own), unless `-B` binds
    /// something there, then the `-B` binds.
    fn binds(&self) -> Result<Vec<Bind>, Error> {
        let tree = Tree::open(&self.rootfs)?;
        let mut binds = Vec::new();
        for (file, lost) in
            [("/etc/resolv.conf", "name resolution"), ("/etc/hosts", "host name resolution")]
        {
            if self.ctx.opts.binds.iter().any(|b| b.dst == Path::new(file)) {
                continue;
            }
            let inside = tree.resolve(file);
            if !matches!(tree.lookup(&inside), Existing::File(_)) {
                log::warn!("{}: the image has no {file}: {lost} may fail", self.name("%post"));
                continue;
            }
            let Ok(mut text) = std::fs::read(file) else {
                log::warn!(
                    "{}: the host's {file} cannot be read: {lost} may fail",
                    self.name("%post")
                );
                continue;
            };
            text.push(b'\n');
            let staged = self.ctx.tmp.join(format!(
                "stage{}-{}",
                self.index,
                Path::new(file).file_name().unwrap_or_default().to_string_lossy()
            ));
            std::fs::write(&staged, text)
                .map_err(Error::io(format!("writing {}", staged.display())))?;
            binds.push(Bind { src: staged, dst: file.into(), read_only: false });
        }
        binds.extend(self.ctx.opts.binds.iter().cloned());
        Ok(binds)
    }

    fn setup(&self, script: &Script) -> Result<(), Error> {
        self.step("%setup")?;
        let path = self.ctx.tmp.join(format!("stage{}-setup", self.index));
        std::fs::write(&path, &script.body)
            .map_err(Error::io(format!("writing {}", path.display())))?;
        let command = script_command(script, &path.display().to_string());
        let root = self.rootfs.display().to_string();
        let mut set = post_variables();
        set.retain(|(k, _)| k.ends_with("_ENVIRONMENT"));
        set.push(("APPTAINER_ROOTFS".into(), root.clone()));
        set.push(("SINGULARITY_ROOTFS".into(), root));
        self.host_session("%setup", command, set, true)
    }

    fn post(&self, script: &Script) -> Result<(), Error> {
        self.step("%post")?;
        let path = self.rootfs.join(".post.script");
        std::fs::write(&path, &script.body)
            .map_err(Error::io(format!("writing {}", path.display())))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(Error::io(format!("chmod {}", path.display())))?;
        }
        let mut command: Vec<OsString> =
            vec!["/bin/sh".into(), "-c".into(), WITH_ENVIRONMENT.into(), "fr-build".into()];
        command.extend(script_command(script, "/.post.script"));
        let mut set = vec![("LANG".to_string(), "C".to_string())];
        set.extend(post_variables());
        let session = Session {
            image: Some(self.rootfs.clone()),
            command,
            userns: self.ctx.userns,
            binds: self.binds()?,
            env: Env { clean: true, set },
            load_state: None,
            save_state: None,
        };
        let ran =
            session.must(&self.name("%post"), Some("the script's output above says why".into()));
        let _ = std::fs::remove_file(&path);
        ran
    }

    fn metadata(&self) -> Result<(), Error> {
        self.step("metadata (/.singularity.d)")?;
        let tree = Tree::open(&self.rootfs)?;
        let post_labels =
            tree.read(layout::POST_LABELS).map(|b| String::from_utf8_lossy(&b).into_owned());
        if matches!(tree.lookup(layout::POST_LABELS.trim_start_matches('/')), Existing::File(_)) {
            let _ =
                std::fs::remove_file(self.rootfs.join(layout::POST_LABELS.trim_start_matches('/')));
        }
        let [created, date] = layout::date_labels(self.ctx.mtime);
        let arch = agent::oci_arch().to_string();
        let build_labels = vec![
            ("org.label-schema.schema-version".to_string(), "1.0".to_string()),
            created,
            date,
            ("org.label-schema.usage.fr.version".into(), env!("CARGO_PKG_VERSION").into()),
            ("org.opencontainers.image.architecture".into(), arch.clone()),
            ("org.label-schema.build-arch".into(), arch),
        ];
        let m = layout::Metadata {
            sections: &self.stage.sections,
            header: &self.stage.header,
            only: self.only.as_deref(),
            definition: &self.ctx.spec.text,
            post_labels: post_labels.as_deref(),
            build_labels,
            force: self.ctx.opts.force,
        };
        let (entries, warnings) = layout::metadata(&tree, &m);
        for w in warnings {
            log::warn!("{}", self.name(&w));
        }
        let tar = self.ctx.tmp.join(format!("stage{}-metadata.tar", self.index));
        let mut t = Tarball::create(&tar, self.ctx.mtime)?;
        t.entries(&entries)?;
        t.finish()?;
        child::import(&self.name("metadata"), &tar, &self.rootfs, false)
    }

    fn test(&self) -> Result<(), Error> {
        self.step("%test")?;
        let command: Vec<OsString> = vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("{WITH_ENVIRONMENT} /.singularity.d/test").into(),
            "fr-build".into(),
        ];
        let session = Session {
            image: Some(self.rootfs.clone()),
            command,
            userns: self.ctx.userns,
            binds: self.binds()?,
            env: Env { clean: false, set: Vec::new() },
            load_state: None,
            save_state: None,
        };
        match session.run(&self.name("%test"))? {
            Outcome::Exited(0) => Ok(()),
            Outcome::Exited(code) => Err(Error::TestFailed {
                code,
                dest: self.ctx.opts.dest.display().to_string(),
                kept: self.rootfs.clone(),
            }),
            Outcome::Failed { why, hint } => {
                Err(Error::Step { step: self.name("%test"), why, hint })
            }
        }
    }

    /// The stage's sections, after its agent.
    fn sections(&self, earlier: &[(Option<String>, PathBuf)]) -> Result<(), Error> {
        let s = &self.stage.sections;
        if self.runs("files") {
            for block in s.files.iter().filter(|f| f.from.is_some()) {
                let name = block.from.as_deref().unwrap_or_default();
                let source = earlier
                    .iter()
                    .find(|(n, _)| n.as_deref() == Some(name))
                    .map(|(_, p)| p)
                    .ok_or_else(|| Error::Unsupported {
                        what: format!("%files from {name}: no earlier stage is named {name}"),
                        hint: "name the stage with Stage: NAME in its header".into(),
                    })?;
                self.step(&format!("%files from {name}"))?;
                files::from_stage(self, block, source)?;
            }
        }
        if let Some(setup) =
            s.setup.as_ref().filter(|x| !x.body.trim().is_empty() && self.runs("setup"))
        {
            self.setup(setup)?;
        }
        let host: Vec<&Files> =
            s.files.iter().filter(|f| f.from.is_none() && !f.pairs.is_empty()).collect();
        if !host.is_empty() && self.runs("files") {
            self.step("%files")?;
            files::from_host(self, &host)?;
        }
        if let Some(post) =
            s.post.as_ref().filter(|x| !x.body.trim().is_empty() && self.runs("post"))
        {
            self.post(post)?;
        }
        self.metadata()?;
        let test = s.test.as_ref().is_some_and(|t| !t.body.trim().is_empty());
        if test && self.runs("test") && !self.ctx.opts.notest {
            self.test()?;
        }
        Ok(())
    }
}

/// What a build made, for its last line.
#[derive(Debug)]
pub struct Built {
    pub output: Output,
}

/// The paths a build made, removed if it fails.
#[derive(Debug, Default)]
struct Made {
    images: Vec<PathBuf>,
    files: Vec<PathBuf>,
    /// An image kept for inspection (its `%test` failed).
    keep: Option<PathBuf>,
}

impl Made {
    /// Removes the built image once it was written out as DEST in another
    /// form (an OCI image, a tar archive); says so if it could not be.
    fn remove_built(&mut self, image: &Path) {
        if let Err(e) = child::remove(image) {
            log::warn!(
                "{e}; the built image is left at {}: fr rm {} removes it",
                image.display(),
                image.display()
            );
        }
        self.images.retain(|p| p != image);
    }

    /// Removes what the build made; says what could not be removed.
    fn clean(&self, no_cleanup: bool) {
        for image in self.images.iter().rev() {
            if !image.exists() || self.keep.as_ref() == Some(image) {
                continue;
            }
            if no_cleanup {
                log::info!(
                    "build: --no-cleanup: {} is kept (fr rm {} removes it)",
                    image.display(),
                    image.display()
                );
                continue;
            }
            if let Err(e) = child::remove(image) {
                log::warn!(
                    "{e}; {} is left: fr rm {} removes it",
                    image.display(),
                    image.display()
                );
            }
        }
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// A private directory for the build's own files (scripts, state files,
/// small archives), beside DEST as the build's images are, so that the
/// next build names it if this one is killed; removed with it.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new(path: PathBuf) -> Result<TempDir, Error> {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(Error::io(format!("making {}", path.display())))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Checks everything that can be checked before a file is written: the
/// agents and their programs, the sections asked for, DEST.
fn check(spec: &Spec, opts: &BuildOptions, output: &Output) -> Result<output::Existing, Error> {
    for s in &opts.sections {
        if !SECTIONS.contains(&s.as_str()) {
            return Err(Error::Unsupported {
                what: format!("--section {s}: no such section"),
                hint: format!("the sections are {}", SECTIONS.join(", ")),
            });
        }
    }
    let update = !opts.sections.is_empty();
    let last = spec.def.stages.len().saturating_sub(1);
    for (i, stage) in spec.def.stages.iter().enumerate() {
        if !(update && i == last) {
            agent::check(stage)?;
        }
        for (key, _, line) in &stage.header.other {
            if key != "stage" {
                log::warn!(
                    "{}: header key {key} (line {line}) is not used by fr",
                    spec.path.display()
                );
            }
        }
    }
    for unused in spec.def.unused_args(&opts.build_args) {
        log::warn!("build argument {unused} is not used by {}", spec.path.display());
    }
    output::check(output, opts.force, update)
}

/// The build date: `SOURCE_DATE_EPOCH` if set (reproducible builds), else now.
fn build_time() -> i64 {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse().ok()).unwrap_or_else(
        || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        },
    )
}

/// The mode every session of the build runs in: the one `fr exec -f
/// IMAGE` picks, said as it says it (on a terminal, after a fallback, or
/// with `-v`), once.
fn mode(asked: Userns) -> Result<Userns, Error> {
    use std::io::IsTerminal;
    let host = Path::new("/");
    let (mode, why) =
        fr_launcher::mode::choose(asked, true, true, host).map_err(|e| Error::Step {
            step: "choosing the user namespace".into(),
            hint: e.hint().map(|h| h.to_string()),
            why: e.to_string(),
        })?;
    let userns = match mode {
        fr_launcher::mode::Mode::Subuid(_) => Userns::Subuid,
        fr_launcher::mode::Mode::RootMapped => Userns::RootMapped,
        fr_launcher::mode::Mode::None => {
            return Err(Error::Unsupported {
                what: "a build needs a user namespace (--userns=none runs on the host tree only)"
                    .into(),
                hint: "drop --userns=none".into(),
            })
        }
    };
    let fell_back = asked == Userns::Auto && userns == Userns::RootMapped;
    if fell_back || std::io::stderr().is_terminal() || log::log_enabled!(log::Level::Debug) {
        log::info!("{why}");
    }
    Ok(userns)
}

/// Builds DEST from SPEC as `opts` says.
pub fn build(opts: &BuildOptions) -> Result<Built, Error> {
    let spec = spec::read(&opts.spec, &opts.build_args)?;
    let output = Output::of(&opts.dest, opts.sandbox)?;
    let existing = check(&spec, opts, &output)?;
    let names = Names::new(output.path());
    for (path, how) in names.leftovers() {
        log::warn!(
            "{} is what a build of {} that was killed left: {how} removes it",
            path.display(),
            output.path().display()
        );
    }
    let userns = mode(opts.userns)?;
    // Apptainer builds with umask 002 (build.go: newBuild(), Full()).
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o002));
    sys::block_stopping();
    sys::make_subreaper();
    let tmp = TempDir::new(names.temp(output::TMP))?;
    let ctx = Ctx { opts, userns, tmp: tmp.0.clone(), mtime: build_time(), spec: &spec, names };
    let mut made = Made::default();
    let result = stages(&ctx, &output, existing, &mut made);
    if let Err(e) = &result {
        if let Error::TestFailed { kept, .. } = e {
            made.keep = Some(kept.clone());
        }
        made.clean(opts.no_cleanup);
    }
    result
}

fn stages(
    ctx: &Ctx<'_>,
    output: &Output,
    existing: output::Existing,
    made: &mut Made,
) -> Result<Built, Error> {
    let opts = ctx.opts;
    let update = !opts.sections.is_empty();
    let count = ctx.spec.def.stages.len();
    let mut earlier: Vec<(Option<String>, PathBuf)> = Vec::new();
    for (i, stage) in ctx.spec.def.stages.iter().enumerate() {
        let last = i + 1 == count;
        let in_place = last && update;
        let rootfs = if in_place {
            output.path().to_path_buf()
        } else if last {
            ctx.names.temp("")
        } else {
            ctx.names.temp(&format!("-stage{}", i + 1))
        };
        let run = StageRun {
            ctx,
            index: i,
            stage,
            rootfs: rootfs.clone(),
            only: in_place.then(|| opts.sections.clone()),
            tags: Cell::new(0),
        };
        if !in_place {
            // The image's store first: `fr rm` removes it whatever a
            // killed step left in it.
            std::fs::DirBuilder::new()
                .mode(0o755)
                .create(&rootfs)
                .map_err(Error::io(format!("making {}", rootfs.display())))?;
            made.images.push(rootfs.clone());
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(rootfs.join(".fr"))
                .map_err(Error::io(format!("making {}/.fr", rootfs.display())))?;
            agent::bootstrap(&run)?;
        } else {
            log::info!("build: running {} on {}", opts.sections.join(", "), rootfs.display());
        }
        run.sections(&earlier)?;
        earlier.push((stage.name.clone(), rootfs));
    }
    let Some((_, image)) = earlier.last().cloned() else {
        return Err(Error::Unsupported {
            what: "the definition has no stage".into(),
            hint: String::new(),
        });
    };
    if let Some(signal) = sys::pending() {
        return Err(Error::Interrupted {
            step: "writing DEST".into(),
            signal: signal_name(signal),
        });
    }
    if !update {
        finish(ctx, output, existing, &image, made)?;
    }
    // Earlier stages' images are not part of the result.
    for (_, stage_image) in &earlier[..earlier.len() - 1] {
        if let Err(e) = child::remove(stage_image) {
            log::warn!("{e}; fr rm {} removes it", stage_image.display());
        }
    }
    log::info!("build: done: {}", output.describe());
    Ok(Built { output: output.clone() })
}

/// The last stage's image written as DEST.
fn finish(
    ctx: &Ctx<'_>,
    output: &Output,
    existing: output::Existing,
    image: &Path,
    made: &mut Made,
) -> Result<(), Error> {
    match output {
        Output::Sandbox(dest) => {
            log::info!("build: the sandbox to {}", dest.display());
            let flags = if existing == output::Existing::Nothing {
                rustix::fs::RenameFlags::NOREPLACE
            } else {
                // DEST is never missing: the new image and the old one
                // change places, and the old one goes.
                rustix::fs::RenameFlags::EXCHANGE
            };
            rustix::fs::renameat_with(rustix::fs::CWD, image, rustix::fs::CWD, dest, flags)
                .map_err(|e| Error::Io {
                    what: format!("moving {} to {}", image.display(), dest.display()),
                    source: e.into(),
                })?;
            made.images.retain(|p| p != image);
            match existing {
                output::Existing::Nothing => {}
                output::Existing::Image => {
                    if let Err(e) = child::remove(image) {
                        log::warn!(
                            "{e}; the image {} replaced is left at {}: fr rm {} removes it",
                            dest.display(),
                            image.display(),
                            image.display()
                        );
                    }
                }
                output::Existing::Empty => {
                    let _ = std::fs::remove_dir(image);
                }
                output::Existing::File => {
                    let _ = std::fs::remove_file(image);
                }
            }
        }
        Output::Oci { path, tag, archive } => {
            log::info!("build: writing the {}", output.describe());
            // Built on an OCI image: its layers stay as they are, and the
            // build's changes are one layer over them.
            let base = ctx.spec.def.stages.last().and_then(|stage| {
                let h = &stage.header;
                match (&h.bootstrap, &h.from) {
                    (fr_image::def::Agent::Other(agent), Some(from))
                        if crate::agent::OCI_AGENTS.contains(&agent.as_str()) =>
                    {
                        crate::agent::oci_source(agent, from).ok()
                    }
                    _ => None,
                }
            });
            let opts = fr_launcher::export_oci::OciExportOptions {
                image: image.to_path_buf(),
                dest: path.clone(),
                tag: tag.clone(),
                format: if *archive {
                    fr_launcher::export_oci::OciFormat::Archive
                } else {
                    fr_launcher::export_oci::OciFormat::Layout
                },
                progress: ctx.opts.progress,
                base,
                pull: fr_image::oci::registry::Options {
                    plain_http: ctx.opts.nohttps,
                    progress: ctx.opts.progress,
                },
            };
            child::must("writing the OCI image", move || {
                fr_launcher::export_oci::export_oci(&opts).map(|_| 0)
            })?;
            made.remove_built(image);
        }
        Output::Tar(dest) => {
            log::info!("build: exporting to {}", dest.display());
            let part = ctx.names.temp(".part");
            made.files.push(part.clone());
            let compression = fr_launcher::export::Compression::for_path(dest);
            child::export(
                "exporting the image",
                image,
                &part,
                None,
                ctx.opts.progress,
                Some(compression),
            )?
            .must()?;
            std::fs::rename(&part, dest).map_err(Error::io(format!(
                "moving {} to {}",
                part.display(),
                dest.display()
            )))?;
            made.files.retain(|p| p != &part);
            made.remove_built(image);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_run_as_apptainer_runs_them() {
        let plain = Script { body: "echo".into(), ..Script::default() };
        assert_eq!(script_command(&plain, "/.post.script"), ["/bin/sh", "-ex", "/.post.script"]);
        let bash = Script { body: "echo".into(), shell: Some("/bin/bash".into()), line: 3 };
        assert_eq!(
            script_command(&bash, "/.post.script"),
            ["/bin/sh", "-ex", "-c", "/bin/bash /.post.script"]
        );
        let vars: Vec<String> =
            post_variables().into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert!(
            vars.contains(&"APPTAINER_ENVIRONMENT=/.singularity.d/env/91-environment.sh".into())
        );
        assert!(vars.contains(&"SINGULARITY_LABELS=/.build.labels".into()));
    }
}
