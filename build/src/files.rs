//! `%files`: files copied into the stage's image.
//!
//! From the host, each `SRC [DST]` as Apptainer's `CopyFromHost()` copies
//! it: SRC a path or a wildcard pattern (a relative one from the directory
//! `fr build` runs in), DST defaulting to SRC (to each path a pattern
//! matched), resolved in the image (its links lead inside it, never to the
//! host), its missing parents made 0755 (`makeParentDir()`), and a DST
//! that is a directory receiving SRC by its own name. The copy is `cp -fLr
//! SRC DST` run by root with the build's umask (002): every symbolic link
//! followed, directories recursively, each new file's mode the source's
//! less the umask, times the copy's, every file root's.
//!
//! fr runs that very `cp`, as fake root on the host tree, but into an
//! empty directory of its own beside DEST, never into the image: run into
//! the image, `cp -f` would write through a link the image holds at DST,
//! out of the image onto the host file the link names (Apptainer's does,
//! as root). That directory is then made an fr image with the session's
//! records, exported, and its members unpacked into the stage's image by
//! `fr import`, which follows no link: a link at DST is replaced, never
//! written through. As `cp` leaves them, a directory the image has keeps
//! its owner and mode, and a directory copied onto a non-directory (a link
//! too) or a file onto a directory is an error.
//!
//! `from STAGE`: the same from an earlier stage's image, as Apptainer's
//! `CopyFromStage()` copies (a tar archive of the source unpacked at DST):
//! a source named, or matched by a pattern, is followed if it is a link
//! (in the earlier stage), the links below it are kept, and each file
//! keeps that stage's fake metadata (owner, mode, device, xattrs).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use fr_emulator::tar::{self, Kind, Member};
use fr_image::def::Files;
use fr_image::layout::{Existing, Image};
use fr_image::oci::apptainer::quote;
use rustix::fs::FileType;

use crate::build::StageRun;
use crate::child::{self, Env, Session};
use crate::error::Error;
use crate::glob;
use crate::tree::Tree;

/// The directories to make for a copy to `dst` (resolved in the image,
/// a trailing `/` meaning a directory): none if it exists, else every
/// missing one up to it, or up to its parent (Apptainer's
/// `makeParentDir()`).
fn missing_parents(tree: &Tree, dst: &str) -> Vec<String> {
    let trimmed = dst.trim_end_matches('/');
    if tree.lookup(trimmed) != Existing::Missing {
        return Vec::new();
    }
    let upto = if dst.ends_with('/') {
        trimmed
    } else {
        trimmed.rsplit_once('/').map_or("", |(parent, _)| parent)
    };
    let mut out = Vec::new();
    let mut at = String::new();
    for part in upto.split('/').filter(|p| !p.is_empty()) {
        if !at.is_empty() {
            at.push('/');
        }
        at.push_str(part);
        if tree.lookup(&at) == Existing::Missing {
            out.push(at.clone());
        }
    }
    out
}

/// One source path into the image: where it lands.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Copy {
    /// The source as matched (host path, or a path in the earlier stage).
    src: String,
    /// Where it lands in the image, from its root.
    dst: String,
    /// Directories to make first, from the root down.
    parents: Vec<String>,
}

/// Where each match of `src` goes for the pair `(src, dst)`; `matched` are
/// the matches (DST defaults to each of them).
fn plan(tree: &Tree, src: &str, dst: &str, matched: &[String]) -> Vec<Copy> {
    matched
        .iter()
        .map(|m| {
            // The parser gives DST as SRC when the line has none.
            let wanted = if dst == src { m.as_str() } else { dst };
            let resolved = tree.resolve(wanted);
            let parents = missing_parents(tree, &resolved);
            let trimmed = resolved.trim_end_matches('/');
            let into_dir = tree.lookup(trimmed) == Existing::Dir
                || (resolved.ends_with('/') && !parents.is_empty())
                || trimmed.is_empty();
            let dst = if into_dir {
                let name = Path::new(m.trim_end_matches('/'))
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if trimmed.is_empty() {
                    name
                } else {
                    format!("{trimmed}/{name}")
                }
            } else {
                trimmed.to_string()
            };
            Copy { src: m.clone(), dst, parents }
        })
        .collect()
}

/// A `%files` block that cannot be copied: the definition file, its line,
/// and the source.
fn files_error(run: &StageRun<'_>, block: &Files, why: String, hint: &str) -> Error {
    let what = match &block.from {
        Some(stage) => format!("%files from {stage}"),
        None => "%files".to_string(),
    };
    Error::Files {
        step: format!("{}: line {}: {}", run.ctx.spec.path.display(), block.line, run.name(&what)),
        why,
        hint: hint.into(),
    }
}

/// `%files` from the host.
pub fn from_host(run: &StageRun<'_>, blocks: &[&Files]) -> Result<(), Error> {
    let tree = Tree::open(&run.rootfs)?;
    // Each copy goes to its own name in the staging directory: 0, 1, ...
    let mut copies: Vec<(String, Copy)> = Vec::new();
    let mut script = String::from("set -e\n");
    let staging = run.ctx.names.temp(&format!("-stage{}-files{}", run.index + 1, run.next_tag()));
    for block in blocks {
        for (src, dst) in &block.pairs {
            let matched: Vec<String> =
                glob::expand(src).into_iter().map(|p| p.to_string_lossy().into_owned()).collect();
            let hint = "a relative source is found from the directory fr build runs in";
            if matched.is_empty() {
                return Err(files_error(
                    run,
                    block,
                    format!("{src} matches no file on the host"),
                    hint,
                ));
            }
            for c in plan(&tree, src, dst, &matched) {
                let Ok(meta) = std::fs::metadata(&c.src) else {
                    let why = match std::fs::symlink_metadata(&c.src) {
                        Ok(_) => format!("{} is a symbolic link that leads nowhere", c.src),
                        Err(e) => format!("{}: {e}", c.src),
                    };
                    return Err(files_error(run, block, why, hint));
                };
                if !meta.is_dir() && tree.file_type(&c.dst) == Some(FileType::Directory) {
                    return Err(files_error(
                        run,
                        block,
                        format!(
                            "{} is not a directory, and /{} is one in the image: cp cannot \
                             overwrite a directory with a non-directory",
                            c.src, c.dst
                        ),
                        "give DST the path of a new file, or of a directory to put it in \
                         (a trailing / makes one)",
                    ));
                }
                let name = copies.len().to_string();
                script.push_str(&format!(
                    "cp -fLr -- {} {}\n",
                    quote(&c.src),
                    quote(&staging.join(&name).display().to_string())
                ));
                copies.push((name, c));
            }
        }
    }
    let step = run.name("%files");
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&staging)
        .map_err(Error::io(format!("making {}", staging.display())))?;
    let result = copy_from_host(run, &step, &staging, &script, &copies);
    if let Err(e) = child::remove(&staging) {
        log::warn!("{e}; fr rm {} removes it", staging.display());
    }
    result
}

/// `cp` into `staging` as fake root, then its members into the image.
fn copy_from_host(
    run: &StageRun<'_>,
    step: &str,
    staging: &Path,
    script: &str,
    copies: &[(String, Copy)],
) -> Result<(), Error> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(staging.join(".fr"))
        .map_err(Error::io(format!("making {}/.fr", staging.display())))?;
    let tag = run.next_tag();
    let path = run.ctx.tmp.join(format!("stage{}-files{tag}.sh", run.index));
    std::fs::write(&path, script).map_err(Error::io(format!("writing {}", path.display())))?;
    let state = run.ctx.tmp.join(format!("stage{}-files{tag}.state", run.index));
    let session = Session {
        image: None,
        command: vec!["/bin/sh".into(), "-e".into(), OsString::from(&path)],
        userns: run.ctx.userns,
        binds: Vec::new(),
        env: Env { clean: false, set: vec![("PATH".into(), crate::agent::host_path())] },
        load_state: None,
        save_state: Some(state.clone()),
    };
    let ran = session.must(step, Some("cp's message above says why".into()));
    if state.exists() {
        child::import_state(&format!("{step}: the copy's records"), &state, staging)?;
    }
    ran?;
    transfer(run, step, staging, copies, true)
}

/// Whether the member `path` is `prefix` or below it (`prefix` empty: the
/// whole image).
fn below(path: &str, prefix: &str) -> Option<String> {
    if prefix.is_empty() {
        return Some(path.to_string());
    }
    if path == prefix {
        return Some(String::new());
    }
    path.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')).map(String::from)
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// A member name as a path from the root: no `./`, no trailing `/`.
fn normal(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    let parts: Vec<&str> = s.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    parts.join("/")
}

/// The (device, inode) of every regular file at or below `path` that has
/// other names; links are not followed.
fn linked_files(path: &Path, out: &mut HashSet<(u64, u64)>) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else { return };
    if meta.is_file() && meta.nlink() > 1 {
        out.insert((meta.dev(), meta.ino()));
    } else if meta.is_dir() {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            linked_files(&entry.path(), out);
        }
    }
}

/// `%files from STAGE`: `block`'s pairs out of the earlier stage's image
/// at `source`.
pub fn from_stage(run: &StageRun<'_>, block: &Files, source: &Path) -> Result<(), Error> {
    let stage = block.from.clone().unwrap_or_default();
    let step = run.name(&format!("%files from {stage}"));
    let here = Tree::open(&run.rootfs)?;
    let there = Tree::open(source)?;
    // (the source resolved in its stage, the copy)
    let mut copies: Vec<(String, Copy)> = Vec::new();
    for (src, dst) in &block.pairs {
        let pattern = format!("{}/{}", source.display(), src.trim_start_matches('/'));
        let matched: Vec<String> = glob::expand(&pattern)
            .into_iter()
            .filter_map(|p| p.strip_prefix(source).ok().map(|r| r.to_string_lossy().into_owned()))
            .map(|r| format!("/{r}"))
            .collect();
        if matched.is_empty() {
            return Err(files_error(
                run,
                block,
                format!("{src} matches nothing in stage {stage}"),
                "a source of %files from names a path in that stage's image",
            ));
        }
        let src_shown = if glob::has_wildcard(src) {
            src.clone()
        } else {
            format!("/{}", src.trim_start_matches('/'))
        };
        for c in plan(&here, &src_shown, dst, &matched) {
            // Links on the way are followed in the earlier stage, the
            // last one too (Apptainer dereferences the source).
            let resolved = there.resolve(&c.src);
            if there.lookup(&resolved) == Existing::Missing {
                return Err(files_error(
                    run,
                    block,
                    format!("{} is not in stage {stage}", c.src),
                    "a source of %files from names a path in that stage's image",
                ));
            }
            copies.push((resolved.trim_end_matches('/').to_string(), c));
        }
    }
    transfer(run, &step, source, &copies, false)
}

/// The members of the image `source` that `copies` name, renamed to their
/// places in the stage's image and unpacked there (`fr import`), the
/// missing parents first. `cp_rules`: a directory the image has is left
/// as it is, and a directory onto a non-directory or a file onto a
/// directory is an error, as `cp` makes them; else the members replace
/// what is there, as tar does.
fn transfer(
    run: &StageRun<'_>,
    step: &str,
    source: &Path,
    copies: &[(String, Copy)],
    cp_rules: bool,
) -> Result<(), Error> {
    let here = Tree::open(&run.rootfs)?;
    let tar_path =
        run.ctx.names.temp(&format!("-stage{}-files{}.tar", run.index + 1, run.next_tag()));
    let result = write_transfer(run, step, source, copies, cp_rules, &here, &tar_path)
        .and_then(|()| child::import(step, &tar_path, &run.rootfs, false));
    let _ = std::fs::remove_file(&tar_path);
    result
}

fn write_transfer(
    run: &StageRun<'_>,
    step: &str,
    source: &Path,
    copies: &[(String, Copy)],
    cp_rules: bool,
    here: &Tree,
    tar_path: &PathBuf,
) -> Result<(), Error> {
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(tar_path)
            .map_err(Error::io(format!("writing {}", tar_path.display())))?,
    );
    let write_err = |e: std::io::Error| Error::Io {
        what: format!("writing {}", tar_path.display()),
        source: e,
    };
    let mut made: Vec<String> = Vec::new();
    for (_, c) in copies {
        for dir in &c.parents {
            if made.contains(dir) {
                continue;
            }
            made.push(dir.clone());
            let m = Member {
                path: format!("./{dir}").into_bytes(),
                kind: Some(Kind::Directory),
                mode: 0o755,
                uname: b"root".to_vec(),
                gname: b"root".to_vec(),
                mtime: run.ctx.mtime,
                ..Member::default()
            };
            out.write_all(&tar::header(&m)).map_err(write_err)?;
        }
    }

    // A file with other names is exported once with its data, under its
    // first name, and as hard links to it under the others; a copy that
    // takes only some of the names needs the data of one it leaves out.
    // So the files chosen that have other names are known before, and the
    // data of their names outside the copy kept when they pass.
    let mut linked: HashSet<(u64, u64)> = HashSet::new();
    for (src, _) in copies {
        linked_files(&source.join(src), &mut linked);
    }
    let mut held: HashMap<String, (Member, Vec<u8>)> = HashMap::new();
    let mut moved: HashMap<String, String> = HashMap::new();

    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::Io { what: "a pipe".into(), source: e.into() })?;
    let export = child::export(step, source, Path::new("-"), Some(write), false, None)?;
    let pipe = std::fs::File::from(read);
    let mut reader = tar::Reader::new(&pipe);
    let mut problem: Option<(String, &str)> = None;
    let reading = "reading the export of the source";
    'members: loop {
        let entry = match reader.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => {
                problem = Some((format!("{reading}: {e}"), ""));
                break;
            }
        };
        let name = normal(&entry.member.path);
        let chosen = copies.iter().any(|(src, _)| below(&name, src).is_some());
        let kind = entry.member.kind.unwrap_or(Kind::Regular);
        let mut data: Option<Vec<u8>> = None;
        if !chosen && kind == Kind::Regular && !linked.is_empty() {
            use std::os::unix::fs::MetadataExt;
            let st = std::fs::symlink_metadata(source.join(&name));
            if st.is_ok_and(|m| linked.contains(&(m.dev(), m.ino()))) {
                let mut bytes = Vec::new();
                if let Err(e) = reader.data(&mut bytes) {
                    problem = Some((format!("{reading}: {e}"), ""));
                    break;
                }
                held.insert(name.clone(), (entry.member.clone(), bytes));
            }
            continue;
        }
        for (src, c) in copies {
            let Some(rest) = below(&name, src) else { continue };
            let mut m = entry.member.clone();
            let new_name = join(&c.dst, &rest);
            if cp_rules {
                let there = here.file_type(&new_name);
                let is_dir = kind == Kind::Directory;
                match there {
                    Some(FileType::Directory) if is_dir => continue,
                    Some(FileType::Directory) => {
                        problem = Some((
                            format!(
                                "/{new_name} is a directory in the image, and {} copies a \
                                 non-directory there: cp cannot overwrite a directory with a \
                                 non-directory",
                                c.src
                            ),
                            "copy it to another path, or remove the directory in %setup",
                        ));
                        break 'members;
                    }
                    Some(_) if is_dir => {
                        problem = Some((
                            format!(
                                "/{new_name} is not a directory in the image (a symbolic link \
                                 is not followed), and {} copies a directory there: cp cannot \
                                 overwrite a non-directory with a directory",
                                c.src
                            ),
                            "copy it to another path, or remove what is there in %setup",
                        ));
                        break 'members;
                    }
                    _ => {}
                }
            }
            m.path = format!("./{new_name}").into_bytes();
            let mut bytes_of_held = None;
            if m.kind == Some(Kind::HardLink) {
                let target = normal(&m.link);
                let inside =
                    copies.iter().find_map(|(s, cc)| below(&target, s).map(|r| join(&cc.dst, &r)));
                if let Some(t) = inside {
                    m.link = format!("./{t}").into_bytes();
                } else if let Some(first) = moved.get(&target) {
                    m.link = format!("./{first}").into_bytes();
                } else if let Some((first, bytes)) = held.get(&target) {
                    // The first name copied takes the file's data.
                    m = Member { path: m.path.clone(), ..first.clone() };
                    moved.insert(target.clone(), new_name.clone());
                    bytes_of_held = Some(bytes.clone());
                } else {
                    problem = Some((
                        format!(
                            "/{name} is a hard link to /{target}, which the export did not \
                             give first"
                        ),
                        "copy the directory that holds both names",
                    ));
                    break 'members;
                }
            }
            if data.is_none() && bytes_of_held.is_none() {
                let mut bytes = Vec::new();
                if let Err(e) = reader.data(&mut bytes) {
                    problem = Some((format!("{reading}: {e}"), ""));
                    break 'members;
                }
                data = Some(bytes);
            }
            let bytes = bytes_of_held.as_deref().or(data.as_deref()).unwrap_or_default();
            let is_regular = m.kind.unwrap_or(Kind::Regular) == Kind::Regular;
            m.size = if is_regular { bytes.len() as u64 } else { 0 };
            out.write_all(&tar::header(&m)).map_err(write_err)?;
            if m.size > 0 {
                out.write_all(bytes).map_err(write_err)?;
                out.write_all(&vec![0u8; tar::padding(m.size)]).map_err(write_err)?;
            }
        }
    }
    // The rest of the stream (the end blocks), so that the export never
    // waits on a full pipe.
    let _ = std::io::copy(&mut &pipe, &mut std::io::sink());
    drop(pipe);
    export.must()?;
    if let Some((why, hint)) = problem {
        return Err(Error::Files { step: step.to_string(), why, hint: hint.to_string() });
    }
    out.write_all(&tar::END).map_err(write_err)?;
    out.flush().map_err(write_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_follow_apptainers_rules() {
        let root = std::env::temp_dir().join(format!("fr-build-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("opt/app")).unwrap();
        std::os::unix::fs::symlink("/opt", root.join("o")).unwrap();
        let t = Tree::open(&root).unwrap();
        let one = |src: &str, dst: &str| plan(&t, src, dst, &[src.to_string()]).remove(0);
        // Into an existing directory, by the source's name.
        let c = one("/host/conf", "/opt/app");
        assert_eq!((c.dst.as_str(), c.parents.len()), ("opt/app/conf", 0));
        // To a new name: its missing parents made.
        let c = one("/host/conf", "/new/dir/conf.txt");
        assert_eq!(c.dst, "new/dir/conf.txt");
        assert_eq!(c.parents, ["new", "new/dir"]);
        // A trailing slash makes the directory, and the file goes in it.
        let c = one("/host/conf", "/made/");
        assert_eq!((c.dst.as_str(), c.parents.clone()), ("made/conf", vec!["made".to_string()]));
        // DST as SRC (no DST given); through the image's own link.
        let c = one("/o/app/x", "/o/app/x");
        assert_eq!(c.dst, "opt/app/x");
        // DST defaults to each match of a pattern.
        let cs = plan(&t, "/h/*.c", "/h/*.c", &["/h/a.c".into(), "/h/b.c".into()]);
        assert_eq!(cs.iter().map(|c| c.dst.as_str()).collect::<Vec<_>>(), ["h/a.c", "h/b.c"]);
        assert_eq!(cs[0].parents, ["h"]);
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(below("a/b/c", "a/b"), Some("c".into()));
        assert_eq!(below("a/bc", "a/b"), None);
        assert_eq!(below("a/b", "a/b"), Some(String::new()));
        assert_eq!(below("x", ""), Some("x".into()));
        assert_eq!(normal(b"./usr/bin/"), "usr/bin");
        std::fs::remove_dir_all(root).unwrap();
    }
}
