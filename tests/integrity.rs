//! No answered change is ever lost: a journal write that fails (a full
//! file system, a file size limit) fails the call that asked for the
//! change and says so at the end; a damaged journal or state file is
//! refused by name and never rewritten, and `fr fsck --repair` keeps every
//! intact entry; a file fr made for a call that then fails is removed.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{cannot_run, harness, install, Harness, Run};

/// In root-mapped mode the store holds every owner.
const F: &[&str] = &["--fakeroot", "--userns=root-mapped"];

/// The header of a version 2 journal: magic, version, root, marker.
const HEADER: usize = 36;
/// A version 2 entry of a record without xattrs: marker, length, kind,
/// device, inode, five attributes, xattr count, CRC-32.
const ENTRY: usize = 8 + 4 + 1 + 16 + 20 + 4 + 4;

/// The header and entry sizes of the journal `bytes`, by its version (1
/// has no marker), so that a test damages the same entry whichever fr
/// wrote it.
fn layout(bytes: &[u8]) -> (usize, usize) {
    match bytes[8] {
        1 => (HEADER - 8, ENTRY - 8),
        _ => (HEADER, ENTRY),
    }
}

fn owner_of(listing: &str) -> HashMap<String, String> {
    listing
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(n, o)| (n.to_string(), o.to_string())))
        .collect()
}

/// `for i in 1..=n: chown i:i /d/i && echo ok i`: the chowns the workload
/// saw succeed.
fn chowns(n: usize) -> String {
    format!("for i in $(seq {n}); do chown $i:$i /d/$i 2>/dev/null && echo ok $i; done; true")
}

fn succeeded(out: &str) -> Vec<String> {
    out.lines().filter_map(|l| l.strip_prefix("ok ")).map(str::to_string).collect()
}

/// Every chown the workload saw succeed shows in a later session.
fn assert_kept(ok: &[String], listing: &str) {
    let owners = owner_of(listing);
    for i in ok {
        assert_eq!(
            owners.get(i).map(String::as_str),
            Some(i.as_str()),
            "the chown of /d/{i} succeeded, and the next session must show it:\n{listing}"
        );
    }
}

/// Whether the test user may make a user and mount namespace with
/// `unshare -Urm` (util-linux), to mount a small tmpfs of its own.
fn unshare_works(h: &Harness) -> bool {
    h.command("unshare").args(["-Urm", "true"]).status().is_ok_and(|s| s.success())
}

/// On a tmpfs with room for some journal entries but not all, every chown
/// the workload saw succeed shows in the next session; those the journal
/// could not keep failed with ENOSPC; fr exits 125 though the command
/// exited 0, says what was not kept, and the failed save leaves no
/// `store.tmp`.
#[test]
fn a_full_file_system_loses_no_answered_change() {
    let Some(h) = harness() else { return };
    if !unshare_works(h) {
        return cannot_run::<()>("unshare -Urm does not work for the test user (util-linux)")
            .unwrap_or(());
    }
    let Some(rootfs) = h.rootfs() else { return };
    let out = h.scratch("full");
    let script = format!(
        r#"set -u
M={out}/mnt; mkdir -p $M
mount -t tmpfs -o size=8m fr-test $M || exit 91
cp -a {rootfs} $M/img || exit 92
{fr} exec {f} $M/img -- sh -c 'mkdir /d && cd /d && seq 300 | xargs touch' || exit 93
# Fill the file system but for two pages.
dd if=/dev/zero of=$M/reserve bs=4096 count=2 2>/dev/null || exit 94
dd if=/dev/zero of=$M/fill bs=4096 2>/dev/null
rm $M/reserve
{fr} exec {f} $M/img -- sh -c '{chowns}' >{out}/first 2>{out}/first.err
echo $? >{out}/first.status
ls -a $M/img/.fr >{out}/fr-dir
rm $M/fill
{fr} exec {f} $M/img -- sh -c 'cd /d && stat -c "%n %u" *' >{out}/second 2>{out}/second.err || exit 95
"#,
        out = out.display(),
        rootfs = rootfs.display(),
        fr = h.fr.display(),
        f = F.join(" "),
        chowns = chowns(300),
    );
    let run = common::run(h.command("unshare").args(["-Urm", "sh", "-c", &script]));
    assert_eq!(run.code, Some(0), "{run:?}");
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    let ok = succeeded(&read("first"));
    let stderr = read("first.err");
    assert!(
        !ok.is_empty() && ok.len() < 300,
        "the journal had room for some chowns, not all: {} succeeded\n{stderr}",
        ok.len()
    );
    assert_kept(&ok, &read("second"));
    assert_eq!(read("first.status").trim(), "125", "{stderr}");
    assert!(stderr.contains(".fr/journal") && stderr.contains("could not be written"), "{stderr}");
    assert!(!stderr.contains("journal keeps this session's changes"), "{stderr}");
    assert!(!read("fr-dir").contains("store.tmp"), "a failed save left store.tmp");
}

/// `prlimit --fsize`: the journal's write fails with EFBIG (fr must not
/// die of SIGXFSZ); every chown that succeeded shows in the next session,
/// and fr exits 125.
#[test]
fn a_file_size_limit_loses_no_answered_change() {
    let Some(h) = harness() else { return };
    let Some(img) = h.rootfs() else { return };
    h.exec(Some(&img), F, &["sh", "-c", "mkdir /d && cd /d && seq 300 | xargs touch"]).ok();
    let limit = (HEADER + 70 * ENTRY).to_string();
    let run = common::run(
        h.command("prlimit")
            .arg(format!("--fsize={limit}"))
            .arg(&h.fr)
            .arg("exec")
            .args(F)
            .arg(&img)
            .args(["--", "sh", "-c", &chowns(300)]),
    );
    let ok = succeeded(&run.stdout);
    assert!(!ok.is_empty() && ok.len() < 300, "{} chowns succeeded: {run:?}", ok.len());
    assert_eq!(run.code, Some(125), "{run:?}");
    assert!(run.stderr.contains("File too large"), "{}", run.stderr);
    let listing = h.exec(Some(&img), F, &["sh", "-c", "cd /d && stat -c '%n %u' *"]).ok();
    assert_kept(&ok, &listing);
}

/// A snapshot save that fails (here the file size limit: the snapshot,
/// by path, outgrows it while the journal fits) removes its `store.tmp`,
/// says the journal keeps every answered change, exits 125, and the next
/// session shows every change.
#[test]
fn a_failed_save_leaves_no_store_tmp_and_the_journal_keeps_the_session() {
    let Some(h) = harness() else { return };
    let Some(img) = h.rootfs() else { return };
    let long = "l".repeat(200);
    h.exec(
        Some(&img),
        F,
        &[
            "sh",
            "-c",
            &format!("mkdir /d && cd /d && for i in $(seq 30); do touch ${{i}}{long}; done"),
        ],
    )
    .ok();
    let limit = (HEADER + 40 * ENTRY).to_string();
    let fr = h.fr.display().to_string();
    let img_s = img.display().to_string();
    let script = format!("for i in $(seq 30); do chown $i:$i /d/${{i}}{long} || exit 1; done");
    let run = common::run(
        h.command("sh")
            .arg("-c")
            // Ignored, SIGXFSZ cannot kill even an fr that does not block it.
            .arg(format!("trap '' XFSZ; exec prlimit --fsize={limit} \"$@\""))
            .args(["sh", &fr, "exec"])
            .args(F)
            .args([&img_s, "--", "sh", "-c", &script]),
    );
    assert_eq!(run.code, Some(125), "{run:?}");
    assert!(run.stderr.contains("nothing this session answered is lost"), "{}", run.stderr);
    let fr_dir: Vec<String> = std::fs::read_dir(img.join(".fr"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!fr_dir.contains(&"store.tmp".to_string()), "{fr_dir:?}");
    let listing = h.exec(Some(&img), F, &["sh", "-c", "cd /d && stat -c '%u %n' *"]).ok();
    for l in listing.lines() {
        let (uid, name) = l.split_once(' ').unwrap();
        assert_eq!(name, format!("{uid}{long}"), "{listing}");
    }
    assert_eq!(listing.lines().count(), 30);
}

/// A session that chowns /d/1..=n and is then killed, so that the journal
/// keeps its changes; returns the journal's path.
fn killed_session(h: &Harness, img: &Path, n: usize) -> PathBuf {
    h.exec(Some(img), F, &["sh", "-c", &format!("mkdir /d && cd /d && seq {n} | xargs touch")])
        .ok();
    let script = format!("{} echo done; sleep 600", chowns(n).trim_end_matches("true"));
    let mut child = h
        .exec_command(Some(img), F, &["sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut out = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        out.push_str(&line);
        if line == "done\n" {
            break;
        }
        line.clear();
    }
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::KILL,
    );
    child.wait().unwrap();
    assert_eq!(succeeded(&out).len(), n, "{out}");
    let journal = img.join(".fr/journal");
    let bytes = std::fs::read(&journal).unwrap();
    let (header, entry) = layout(&bytes);
    assert_eq!(bytes.len(), header + n * entry);
    journal
}

fn fr_dir_bytes(img: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(img.join(".fr"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "lock")
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

/// One flipped byte mid-journal: the session is refused with the file,
/// the offset and the entry named, and nothing in `.fr` is rewritten;
/// `fr fsck` reports it; `fr fsck --repair` keeps every other change.
#[test]
fn a_damaged_journal_is_reported_not_rewritten_and_repaired_by_fsck() {
    let Some(h) = harness() else { return };
    let Some(img) = h.rootfs() else { return };
    let journal = killed_session(h, &img, 50);
    // Entry 21 (chown 21:21 /d/21): a byte of its inode number.
    let entry = 21;
    let mut bytes = std::fs::read(&journal).unwrap();
    let (header, size) = layout(&bytes);
    let at = header + (entry - 1) * size;
    bytes[at + size - 30] ^= 0x40;
    std::fs::write(&journal, &bytes).unwrap();
    let before = fr_dir_bytes(&img);

    let run = h.exec(Some(&img), F, &["true"]);
    assert_eq!(run.code, Some(125), "{run:?}");
    for want in [
        journal.display().to_string(),
        format!("at byte {at} (entry {entry})"),
        format!("{} intact entries after", 50 - entry),
        "fr fsck".to_string(),
    ] {
        assert!(run.stderr.contains(&want), "{want:?} in {}", run.stderr);
    }
    assert_eq!(fr_dir_bytes(&img), before, "the refused session rewrote .fr");

    let check: Run = h.fr(["fsck".as_ref(), img.as_os_str()]);
    assert_eq!(check.code, Some(4), "{check:?}");
    assert!(
        check.stdout.contains(&format!("at byte {at} (entry {entry}), 29 intact entries after")),
        "{}",
        check.stdout
    );
    assert_eq!(fr_dir_bytes(&img), before, "fsck without --repair changed .fr");

    let repair = h.fr(["fsck".as_ref(), "--repair".as_ref(), img.as_os_str()]);
    assert_eq!(repair.code, Some(1), "{repair:?}");
    assert_eq!(std::fs::read(img.join(".fr/journal.damaged")).unwrap(), bytes);
    assert_eq!(h.fr(["fsck".as_ref(), img.as_os_str()]).code, Some(0));
    let listing = h.exec(Some(&img), F, &["sh", "-c", "cd /d && stat -c '%n %u' *"]).ok();
    let owners = owner_of(&listing);
    for i in 1..=50 {
        let want = if i == entry { "0".to_string() } else { i.to_string() };
        assert_eq!(owners.get(&i.to_string()), Some(&want), "/d/{i}:\n{listing}");
    }
}

/// `-i FILE` of a state file with one flipped byte is an error naming
/// the file (fr used to load nothing and exit 0); `fr fsck --repair
/// FILE` keeps every other record.
#[test]
fn a_damaged_state_file_is_refused_by_name_and_repaired_by_fsck() {
    let Some(h) = harness() else { return };
    let dir = h.scratch("damaged-state");
    for i in 1..=10 {
        std::fs::write(dir.join(i.to_string()), b"").unwrap();
        if let Some(u) = &h.user {
            std::os::unix::fs::chown(dir.join(i.to_string()), Some(u.uid), Some(u.gid)).unwrap();
        }
    }
    let script = "for i in $(seq 10); do chown $i:$i $i || exit 1; done";
    h.exec_in(&dir, None, &["-f", "-s", "state"], &["sh", "-c", script]).ok();
    let state = dir.join("state");
    let mut bytes = std::fs::read(&state).unwrap();
    let (header, entry) = layout(&bytes);
    assert_eq!(bytes.len(), header + 10 * entry);
    bytes[header + 30] ^= 1;
    std::fs::write(&state, &bytes).unwrap();
    let run = h.exec_in(&dir, None, &["-f", "-i", "state"], &["true"]);
    assert_eq!(run.code, Some(125), "{run:?}");
    assert!(
        run.stderr.contains("state file state: it is damaged") && run.stderr.contains("at byte 36"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(&state).unwrap(), bytes);
    let repair = h.fr_in(&dir, ["fsck", "--repair", "state"]);
    assert_eq!(repair.code, Some(1), "{repair:?}");
    let listing =
        h.exec_in(&dir, None, &["-f", "-i", "state"], &["sh", "-c", "stat -c '%n %u' $(seq 10)"]);
    let owners = owner_of(&listing.ok());
    assert_eq!(owners.len(), 10);
    assert_eq!(owners.values().filter(|&o| o == "0").count(), 1, "{owners:?}");
}

/// `open(O_CREAT)` by a process whose descriptor table is full fails with
/// EMFILE and leaves no file, under fr as for real root (fr made the
/// file, then could not hand the descriptor over).
#[test]
fn an_open_that_cannot_take_a_descriptor_leaves_no_file() {
    let Some(h) = harness() else { return };
    let Some(img) = h.rootfs() else { return };
    let Some(probe) = h.compile("emfile.c", "emfile-static", &["-static"]) else { return };
    install(h, &probe, &img.join("bin"), "emfile");
    let want = "open Too many open files, no file\n";
    if common::is_root() {
        let dir = h.scratch("emfile-root");
        let real = common::run(std::process::Command::new(&probe).arg(dir.join("new")));
        assert_eq!(real.stdout, want, "real root: {real:?}");
    }
    let out = h.exec(Some(&img), F, &["emfile", "/tmp/new"]).ok();
    assert_eq!(out, want);
    assert!(!img.join("tmp/new").exists());
}
