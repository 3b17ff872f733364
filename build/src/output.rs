//! What a build writes (DEST), and where it works meanwhile.
//!
//! A build never writes under DEST's name until it is done: each stage is
//! built in a temporary sibling of DEST, `.NAME.fr-build-PID` (an fr
//! image, which `fr rm` removes), and the result takes DEST's place in one
//! `rename(2)` (`RENAME_EXCHANGE` when `--force` replaces an image, so
//! that DEST is never missing), or, for a tar archive, is exported to
//! `.NAME.fr-build-PID.part` and renamed. A build that fails removes what
//! it made; one that is killed (`kill -9`) cannot, and the next build of
//! the same DEST names what it left and the command that removes it.

use std::path::{Path, PathBuf};

use fr_image::oci::transport::Source;

use crate::error::Error;

/// The kinds of DEST fr writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// A directory holding the root file system: an fr image.
    Sandbox(PathBuf),
    /// A tar archive as `fr export` writes it, compressed as its name says
    /// (`.tar`, `.tar.gz`, `.tar.zst`).
    Tar(PathBuf),
    /// An OCI image, `oci:DIR[:TAG]` (a layout, made or added to) or
    /// `oci-archive:FILE[:TAG]`, as `fr export --format oci` writes it.
    Oci { path: PathBuf, tag: Option<String>, archive: bool },
}

/// Names that make DEST a tar archive.
const TAR_SUFFIXES: [&str; 5] = [".tar", ".tar.gz", ".tgz", ".tar.zst", ".tzst"];

impl Output {
    /// What `dest` asks for: a tar archive by its name, else a sandbox
    /// (always with `--sandbox`).
    pub fn of(dest: &Path, sandbox: bool) -> Result<Output, Error> {
        let shown = dest.display().to_string();
        if Source::is_reference(&shown) && !dest.exists() {
            let bad = |why: String, hint: &str| Error::Dest {
                path: shown.clone(),
                why,
                hint: hint.into(),
            };
            if sandbox {
                return Err(bad(
                    "--sandbox builds a directory, not an OCI image".into(),
                    "drop --sandbox, or name a directory as DEST",
                ));
            }
            let (path, tag, archive) = match Source::parse(&shown) {
                Ok(Source::Layout { dir, tag }) => (dir, tag, false),
                Ok(Source::Archive { file, tag }) => (file, tag, true),
                Ok(Source::Registry(_)) => {
                    return Err(bad(
                        "fr build writes no registry".into(),
                        "build to a sandbox, then fr push DIR docker://REF",
                    ))
                }
                Ok(Source::DockerArchive { .. }) => {
                    return Err(bad(
                        "fr build writes no docker archive".into(),
                        "build to oci-archive:FILE; skopeo copy makes a docker archive of it",
                    ))
                }
                Err(e) => return Err(bad(e.why, "oci:DIR[:TAG] or oci-archive:FILE[:TAG]")),
            };
            let path = absolute(&path).map_err(|e| {
                bad(format!("its directory: {e}"), "its directory must exist and be yours to write")
            })?;
            return Ok(Output::Oci { path, tag, archive });
        }
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.is_empty() || name == "." || name == ".." {
            return Err(Error::Dest {
                path: shown,
                why: "DEST must name the image to make, not a directory to put it in".into(),
                hint: "give the new image's own name: fr build ./myimage SPEC".into(),
            });
        }
        let dest = absolute(dest).map_err(|e| {
            let parent = match dest.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.display().to_string(),
                _ => ".".into(),
            };
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                format!("fr build makes DEST, not the directories above it: mkdir -p {parent}")
            } else {
                format!("DEST goes into {parent}, which must be a directory you can write")
            };
            Error::Dest { path: shown.clone(), why: format!("its directory {parent}: {e}"), hint }
        })?;
        if sandbox {
            return Ok(Output::Sandbox(dest));
        }
        if name.ends_with(".sif") {
            return Err(Error::Dest {
                path: shown,
                why: "fr does not write SIF images".into(),
                hint: "build a sandbox (fr build --sandbox DIR SPEC) or a tar archive \
                       (DEST.tar.zst); apptainer build IMAGE.sif DIR makes a SIF image of a \
                       sandbox"
                    .into(),
            });
        }
        if TAR_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            return Ok(Output::Tar(dest));
        }
        Ok(Output::Sandbox(dest))
    }

    pub fn path(&self) -> &Path {
        match self {
            Output::Sandbox(p) | Output::Tar(p) | Output::Oci { path: p, .. } => p,
        }
    }

    /// "sandbox DEST", "tar archive DEST".
    pub fn describe(&self) -> String {
        match self {
            Output::Sandbox(p) => format!("sandbox {}", p.display()),
            Output::Tar(p) => format!("tar archive {}", p.display()),
            Output::Oci { path, tag, archive } => format!(
                "OCI {} {}:{}",
                if *archive { "archive" } else { "image layout" },
                path.display(),
                tag.as_deref().unwrap_or("latest")
            ),
        }
    }
}

/// `path` made absolute from the current directory, its parent's links
/// resolved (the temporary siblings must be on DEST's file system).
fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    let name = path.file_name().unwrap_or_default();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(parent.canonicalize()?.join(name))
}

/// What is at DEST before the build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    Nothing,
    /// A file (or symlink) `--force` replaces.
    File,
    /// An fr image `--force` replaces, or `--section` works on.
    Image,
    /// An empty directory.
    Empty,
}

/// Checks DEST before anything is written: without `--force` it must not
/// exist; with it, it must be something fr may replace (never a
/// directory fr did not build: `fr rm` removes only images). `update`
/// (`--section`): DEST must be a sandbox that exists.
pub fn check(output: &Output, force: bool, update: bool) -> Result<Existing, Error> {
    let path = output.path();
    let shown = path.display().to_string();
    let err = |why: &str, hint: String| Error::Dest { path: shown.clone(), why: why.into(), hint };
    let meta = match path.symlink_metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if update {
                return Err(err(
                    "--section runs sections on an existing sandbox, and there is none",
                    "build it first without --section".into(),
                ));
            }
            return Ok(Existing::Nothing);
        }
        Err(e) => return Err(Error::Io { what: format!("looking at {shown}"), source: e }),
    };
    if let Output::Oci { archive: false, .. } = output {
        // A layout is added to: the tag names the new manifest.
        if !update && meta.is_dir() && path.join("oci-layout").is_file() {
            return Ok(Existing::Nothing);
        }
    }
    let image = meta.is_dir() && path.join(".fr").symlink_metadata().is_ok_and(|m| m.is_dir());
    let empty = meta.is_dir() && std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none());
    if update {
        return match output {
            Output::Sandbox(_) if meta.is_dir() => Ok(Existing::Image),
            _ => Err(err(
                "--section runs sections on an existing sandbox directory",
                "name the sandbox as DEST".into(),
            )),
        };
    }
    if !force {
        return Err(err(
            "it exists",
            format!(
                "--force replaces it; --section NAME runs sections of the definition on an \
                 existing sandbox; or build to another name (fr rm {shown} removes an image)"
            ),
        ));
    }
    match output {
        Output::Tar(_) | Output::Oci { .. } if meta.is_dir() => Err(err(
            "it is a directory, which a tar archive does not replace",
            format!("remove it (fr rm {shown} for an image) or name another archive"),
        )),
        _ if image => Ok(Existing::Image),
        _ if empty => Ok(Existing::Empty),
        _ if meta.is_dir() => Err(err(
            "it is a directory fr did not build (it holds no .fr), which --force does not \
             remove",
            format!("remove it yourself if you mean to (rm -rf {shown}), then build again"),
        )),
        _ => Ok(Existing::File),
    }
}

/// The suffix of the build's private directory, `.NAME.fr-build-PID.tmp`:
/// its files are the user's own, and `rm -r` removes it.
pub const TMP: &str = ".tmp";

/// The temporary names of one build of DEST, beside it.
#[derive(Clone, Debug)]
pub struct Names {
    parent: PathBuf,
    name: String,
    pid: u32,
}

impl Names {
    pub fn new(dest: &Path) -> Names {
        Names {
            parent: dest.parent().map(Path::to_path_buf).unwrap_or_else(|| ".".into()),
            name: dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            pid: std::process::id(),
        }
    }

    fn prefix(&self) -> String {
        format!(".{}.fr-build-", self.name)
    }

    /// `.NAME.fr-build-PID` and `suffix`.
    pub fn temp(&self, suffix: &str) -> PathBuf {
        self.parent.join(format!("{}{}{suffix}", self.prefix(), self.pid))
    }

    /// What builds of DEST that are gone left beside it (killed before
    /// they could clean up), with the command that removes each.
    pub fn leftovers(&self) -> Vec<(PathBuf, String)> {
        let prefix = self.prefix();
        let Ok(dir) = std::fs::read_dir(&self.parent) else { return Vec::new() };
        let mut found: Vec<(PathBuf, String)> = dir
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let rest = name.strip_prefix(&prefix)?;
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let pid: u32 = digits.parse().ok()?;
                if pid == self.pid || building(pid) {
                    return None;
                }
                let path = e.path();
                let how = match e.file_type() {
                    Ok(t) if t.is_dir() && rest.ends_with(TMP) => {
                        format!("rm -r {}", path.display())
                    }
                    Ok(t) if t.is_dir() => format!("fr rm {}", path.display()),
                    _ => format!("rm {}", path.display()),
                };
                Some((path, how))
            })
            .collect();
        found.sort();
        found
    }
}

/// Whether `pid` is a running fr (the build that owns those names).
fn building(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "fr")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dest_names_say_what_is_written() {
        let tar = |n: &str| matches!(Output::of(Path::new(n), false), Ok(Output::Tar(_)));
        assert!(tar("out.tar") && tar("out.tar.gz") && tar("out.tar.zst") && tar("x.tgz"));
        assert!(matches!(Output::of(Path::new("out.tar"), true), Ok(Output::Sandbox(_))));
        assert!(matches!(Output::of(Path::new("img"), false), Ok(Output::Sandbox(_))));
        let sif = Output::of(Path::new("img.sif"), false).unwrap_err().to_string();
        assert!(sif.contains("fr does not write SIF images"), "{sif}");
        assert!(Output::of(Path::new("."), false).is_err());
        let p = Output::of(Path::new("img"), false).unwrap();
        assert!(p.path().is_absolute());
    }

    #[test]
    fn an_existing_dest_is_replaced_only_when_fr_may() {
        let base = std::env::temp_dir().join(format!("fr-build-output-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("image/.fr")).unwrap();
        std::fs::create_dir_all(base.join("plain/x")).unwrap();
        std::fs::create_dir_all(base.join("empty")).unwrap();
        std::fs::write(base.join("file.tar"), "").unwrap();
        let out = |n: &str| Output::of(&base.join(n), false).unwrap();
        assert_eq!(check(&out("new"), false, false).unwrap(), Existing::Nothing);
        assert!(check(&out("image"), false, false).unwrap_err().to_string().contains("it exists"));
        assert_eq!(check(&out("image"), true, false).unwrap(), Existing::Image);
        assert_eq!(check(&out("empty"), true, false).unwrap(), Existing::Empty);
        assert_eq!(check(&out("file.tar"), true, false).unwrap(), Existing::File);
        let plain = check(&out("plain"), true, false).unwrap_err();
        assert!(plain.to_string().contains("fr did not build"), "{plain}");
        assert!(check(&out("new"), false, true).is_err());
        assert_eq!(check(&out("plain"), false, true).unwrap(), Existing::Image);
        let tar_over_dir = Output::Tar(base.join("image"));
        assert!(check(&tar_over_dir, true, false).is_err());
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn leftovers_of_gone_builds_are_found_with_the_way_to_remove_them() {
        let base = std::env::temp_dir().join(format!("fr-build-left-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let names = Names::new(&base.join("img.tar"));
        // pid 2^22+1 is above the kernel's pid_max limit: never running.
        std::fs::create_dir(base.join(".img.tar.fr-build-4194305")).unwrap();
        std::fs::write(base.join(".img.tar.fr-build-4194305.part"), "").unwrap();
        std::fs::create_dir(base.join(".img.tar.fr-build-4194305.tmp")).unwrap();
        std::fs::create_dir(names.temp("")).unwrap();
        std::fs::create_dir(base.join(".other.fr-build-4194305")).unwrap();
        let left = names.leftovers();
        assert_eq!(left.len(), 3, "{left:?}");
        assert!(left[0].1.starts_with("fr rm ") && left[1].1.starts_with("rm "), "{left:?}");
        assert!(left[2].1.starts_with("rm -r "), "{left:?}");
        std::fs::remove_dir_all(base).unwrap();
    }
}
