//! The `-vv` line of one intercepted call, as strace writes it: the call
//! with its arguments decoded (paths and attribute names read from the
//! target, descriptors, modes in octal, ids, flags in hex) and fr's
//! answer: a value, `-1 ERRNO`, or `?` and the reason when the kernel
//! runs the call itself. Built only when trace logging is on; the target still waits
//! for the answer, so its memory holds what the handler read.

use std::fmt::Write;

use rustix::io::Errno;

use crate::handlers::{Outcome, Reply};
use crate::request::Request;

/// How one argument is shown.
#[derive(Clone, Copy, Debug)]
enum Arg {
    /// A NUL-terminated path in the target's memory.
    Path,
    /// An extended attribute's name in the target's memory.
    Name,
    /// A directory descriptor: `AT_FDCWD` or a number.
    Fd,
    /// A mode, in octal.
    Mode,
    /// A user or group id (`-1`: unchanged).
    Id,
    Int,
    /// Flags, in hex.
    Hex,
    /// An address, in hex (`NULL`).
    Ptr,
}

/// The arguments of the calls fr intercepts, by name (every ABI alike).
fn signature(name: &str) -> Option<&'static [Arg]> {
    use Arg::*;
    Some(match name {
        "chown" | "lchown" | "chown32" | "lchown32" => &[Path, Id, Id],
        "fchown" | "fchown32" => &[Fd, Id, Id],
        "fchownat" => &[Fd, Path, Id, Id, Hex],
        "stat" | "lstat" | "stat64" | "lstat64" => &[Path, Ptr],
        "fstat" | "fstat64" => &[Fd, Ptr],
        "newfstatat" | "fstatat64" => &[Fd, Path, Ptr, Hex],
        "statx" => &[Fd, Path, Hex, Hex, Ptr],
        "chmod" | "mkdir" | "creat" => &[Path, Mode],
        "fchmod" => &[Fd, Mode],
        "fchmodat" | "mkdirat" => &[Fd, Path, Mode],
        "fchmodat2" => &[Fd, Path, Mode, Hex],
        "open" => &[Path, Hex, Mode],
        "openat" => &[Fd, Path, Hex, Mode],
        "openat2" => &[Fd, Path, Ptr, Int],
        "symlink" | "link" | "rename" => &[Path, Path],
        "symlinkat" => &[Path, Fd, Path],
        "linkat" | "renameat2" => &[Fd, Path, Fd, Path, Hex],
        "renameat" => &[Fd, Path, Fd, Path],
        "unlink" | "rmdir" => &[Path],
        "unlinkat" => &[Fd, Path, Hex],
        "setxattr" | "lsetxattr" => &[Path, Name, Ptr, Int, Hex],
        "fsetxattr" => &[Fd, Name, Ptr, Int, Hex],
        "getxattr" | "lgetxattr" => &[Path, Name, Ptr, Int],
        "fgetxattr" => &[Fd, Name, Ptr, Int],
        "listxattr" | "llistxattr" => &[Path, Ptr, Int],
        "flistxattr" => &[Fd, Ptr, Int],
        "removexattr" | "lremovexattr" => &[Path, Name],
        "fremovexattr" => &[Fd, Name],
        "setxattrat" | "getxattrat" => &[Fd, Path, Hex, Name, Ptr, Int],
        "listxattrat" => &[Fd, Path, Hex, Ptr, Int],
        "removexattrat" => &[Fd, Path, Hex, Name],
        "mknod" => &[Path, Mode, Hex],
        "mknodat" => &[Fd, Path, Mode, Hex],
        "setuid" | "setgid" | "setfsuid" | "setfsgid" | "setuid32" | "setgid32" | "setfsuid32"
        | "setfsgid32" => &[Id],
        "setreuid" | "setregid" | "setreuid32" | "setregid32" => &[Id, Id],
        "setresuid" | "setresgid" | "setresuid32" | "setresgid32" => &[Id, Id, Id],
        "getresuid" | "getresgid" | "getresuid32" | "getresgid32" => &[Ptr, Ptr, Ptr],
        "getgroups" | "setgroups" | "getgroups32" | "setgroups32" => &[Int, Ptr],
        "capget" | "capset" => &[Ptr, Ptr],
        "prctl" => &[Int, Hex, Hex, Hex, Hex],
        "execve" => &[Path, Ptr, Ptr],
        "execveat" => &[Fd, Path, Ptr, Ptr, Hex],
        "seccomp" => &[Int, Hex, Ptr],
        n if n.starts_with("get") && n.ends_with("id") || n.ends_with("id32") => &[],
        _ => return None,
    })
}

/// `chown("/etc/shadow", 0, 42) = 0`: the call `name` of `req` and what
/// fr answered.
pub fn line(name: &str, req: &Request<'_>, outcome: &Outcome) -> String {
    let mut out = format!("{name}(");
    match signature(name) {
        Some(args) => {
            for (i, arg) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                argument(&mut out, req, i, *arg);
            }
        }
        None => {
            let args: Vec<String> = req.args.iter().map(|a| format!("{a:#x}")).collect();
            out.push_str(&args.join(", "));
        }
    }
    out.push_str(") = ");
    match outcome {
        Ok(Reply::Value(v)) => {
            let _ = write!(out, "{v}");
        }
        Ok(Reply::Continue(why)) => {
            // The kernel runs the call: its result is not fr's to see.
            let _ = write!(out, "? ({why})");
        }
        Ok(Reply::Fd { .. }) => out.push_str("? (a descriptor of the file fr opened)"),
        Err(e) => {
            let _ = write!(out, "-1 {}", errno(*e));
        }
    }
    out
}

fn argument(out: &mut String, req: &Request<'_>, i: usize, arg: Arg) {
    let string = |max: Option<usize>| {
        let addr = req.ptr(i);
        if addr == 0 {
            return "NULL".to_string();
        }
        let read = match max {
            Some(max) => req.read_string(addr, max),
            None => req.read_path(addr),
        };
        match read {
            Ok(s) => format!("\"{}\"", s.escape_ascii()),
            Err(_) => format!("{addr:#x}"),
        }
    };
    let _ = match arg {
        Arg::Path => write!(out, "{}", string(None)),
        // XATTR_NAME_MAX and its NUL.
        Arg::Name => write!(out, "{}", string(Some(256))),
        Arg::Fd if req.int(i) == libc::AT_FDCWD => write!(out, "AT_FDCWD"),
        Arg::Fd | Arg::Int => write!(out, "{}", req.int(i)),
        Arg::Mode => write!(out, "0{:o}", req.uint(i)),
        Arg::Id => write!(out, "{}", req.int(i)),
        Arg::Hex => write!(out, "{:#x}", req.ulong(i)),
        Arg::Ptr if req.ptr(i) == 0 => write!(out, "NULL"),
        Arg::Ptr => write!(out, "{:#x}", req.ptr(i)),
    };
}

/// `ENOENT (No such file or directory)`, as strace shows an error.
fn errno(e: Errno) -> String {
    let n = e.raw_os_error();
    let name = match n {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::EMLINK => "EMLINK",
        libc::ERANGE => "ERANGE",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ELOOP => "ELOOP",
        libc::ENODATA => "ENODATA",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::E2BIG => "E2BIG",
        libc::EDQUOT => "EDQUOT",
        libc::ETXTBSY => "ETXTBSY",
        _ => "",
    };
    let text = std::io::Error::from_raw_os_error(n).to_string();
    let text = text.split(" (os error").next().unwrap_or_default().to_string();
    match name {
        "" => format!("errno {n} ({text})"),
        name => format!("{name} ({text})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::request::fake::Memory;

    #[test]
    fn paths_are_read_and_arguments_shown_as_strace_does() {
        let mem = Memory::new().put(0x1000, b"/etc/shadow\0").put(0x2000, b"security.capability\0");
        let req = Request::over(&mem, Arch::X86_64, 260, [0x1000, 0, 42, 0, 0, 0]);
        assert_eq!(line("chown", &req, &Ok(Reply::Value(0))), "chown(\"/etc/shadow\", 0, 42) = 0");
        let req = Request::over(
            &mem,
            Arch::X86_64,
            260,
            [(-100i64) as u64, 0x1000, u64::from(u32::MAX), 7, 0x100, 0],
        );
        assert_eq!(
            line("fchownat", &req, &Err(Errno::NOENT)),
            "fchownat(AT_FDCWD, \"/etc/shadow\", -1, 7, 0x100) = -1 ENOENT (No such file or directory)"
        );
        let req = Request::over(&mem, Arch::X86_64, 0, [3, 0x1000, 0o4755, 0, 0, 0]);
        assert_eq!(
            line("fchmodat", &req, &Ok(Reply::Continue("why"))),
            "fchmodat(3, \"/etc/shadow\", 04755) = ? (why)"
        );
        let req = Request::over(&mem, Arch::X86_64, 0, [0x1000, 0x2000, 0, 0, 0, 0]);
        assert_eq!(
            line("lremovexattr", &req, &Err(Errno::NODATA)),
            "lremovexattr(\"/etc/shadow\", \"security.capability\") = -1 ENODATA (No data available)"
        );
        // Unreadable memory: the address, as strace shows it.
        let req = Request::over(&mem, Arch::X86_64, 0, [0x9000, 0, 0, 0, 0, 0]);
        assert_eq!(
            line("unlink", &req, &Err(Errno::FAULT)),
            "unlink(0x9000) = -1 EFAULT (Bad address)"
        );
        let req = Request::over(&mem, Arch::X86_64, 0, [0; 6]);
        assert_eq!(line("getuid", &req, &Ok(Reply::Value(0))), "getuid() = 0");
    }
}
