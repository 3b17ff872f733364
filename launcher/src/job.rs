//! The container as a job of its own: a process group apart from fr's, as
//! `sudo` runs its command, so that a signal the workload sends its whole
//! process group (`kill(0, SIGKILL)`, `kill(0, SIGSTOP)`) reaches the
//! container and never fr, and fr forwards every signal its caller sends
//! it without the workload getting it twice.
//!
//! A job of its own needs the terminal: when fr's process group is the
//! foreground one of fr's controlling terminal, the container's group
//! becomes it (`tcsetpgrp(3)`), so that the workload reads the terminal
//! and gets its ^C and ^Z. When the container stops (^Z, or a stop signal
//! from inside), fr takes the terminal back and stops its own process
//! group as the terminal would have, so that the caller's shell sees the
//! job stopped; when fr is continued (`fg`, `bg`), it gives the terminal
//! back if it is in the foreground again and continues the container.
//!
//! Hazards: `tcsetpgrp` from a background process group sends it `SIGTTOU`
//! unless the caller blocks it (`termios(3)`); fr's processes block it
//! (`sys::block_signals`), and the workload unblocks everything. Without a
//! namespace (`--userns=none`) the workload itself leads the group: a ^Z
//! that comes between a `vfork` and the child's `execve` stops the child
//! while the parent, waiting for it, cannot stop (`vfork(2)`), so fr sees
//! no stop and the caller's shell waits until the job is continued or
//! killed. That happens natively too; fr's round trip on `execve` only
//! makes the window wider. With an image the outer process leads the
//! group and always stops.

use std::os::fd::BorrowedFd;

use rustix::process::{Pid, Signal, WaitOptions};

use crate::init;
use crate::sys;

/// The terminal fr's caller has fr's process group in the foreground of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Terminal {
    /// Which of fr's standard descriptors it is (0, 1 or 2).
    stdio: u8,
}

impl Terminal {
    /// The first of stdin, stdout and stderr that is a terminal on which
    /// fr's process group is in the foreground; `None` for a background
    /// job or without a terminal, where fr leaves the terminal alone.
    pub fn foreground() -> Option<Terminal> {
        let ours = sys::process_group()?;
        (0..3u8).map(|stdio| Terminal { stdio }).find(|t| {
            rustix::termios::isatty(t.fd()) && rustix::termios::tcgetpgrp(t.fd()) == Ok(ours)
        })
    }

    fn fd(&self) -> BorrowedFd<'static> {
        match self.stdio {
            0 => rustix::stdio::stdin(),
            1 => rustix::stdio::stdout(),
            _ => rustix::stdio::stderr(),
        }
    }

    /// Makes `group` the terminal's foreground process group.
    fn give(&self, group: Pid) {
        let _ = rustix::termios::tcsetpgrp(self.fd(), group);
    }

    /// Whether fr's own process group is the foreground one again.
    fn ours(&self) -> bool {
        sys::process_group().is_some_and(|ours| rustix::termios::tcgetpgrp(self.fd()) == Ok(ours))
    }
}

/// In the container's first process, right after the fork: makes it the
/// leader of a process group of its own, in the foreground of `terminal`
/// if fr had it. fr does the same from its side ([`started`]), so that
/// neither waits for the other.
pub fn lead(terminal: Option<Terminal>) {
    let _ = rustix::process::setpgid(None, None);
    if let Some(t) = terminal {
        t.give(rustix::process::getpid());
    }
}

/// fr's side of [`lead`] for its child `pid`.
pub fn started(pid: i32, terminal: Option<Terminal>) {
    let Some(pid) = Pid::from_raw(pid) else { return };
    // EACCES once the child has run execve: it made its group itself.
    let _ = rustix::process::setpgid(Some(pid), Some(pid));
    if let Some(t) = terminal {
        t.give(pid);
    }
}

/// Waits until the job led by fr's child `pid` ends and returns its exit
/// status, forwarding to it every signal fr is sent and following its
/// stops (see the module doc). The terminal is fr's group's again at the
/// end.
///
/// The container is never in fr's group, so a signal fr gets did not
/// reach it: a process's, and a terminal's too (^C while fr's group is in
/// the foreground). The caller's shell may give the terminal back to
/// fr's group after fr gave it to the container (it sets the foreground
/// group from its side of the fork as well, in no order with fr): a
/// terminal's signal to fr, or the container stopped for reading or
/// writing the terminal from the background (`SIGTTIN`, `SIGTTOU`) while
/// fr's group has it, says so, and fr hands the terminal on again.
pub fn wait(pid: i32, terminal: Option<Terminal>) -> i32 {
    let child = Pid::from_raw(pid);
    // A terminal is only ever taken with fr's group in the foreground.
    let ours = sys::process_group();
    let end = |code: i32| {
        if let (Some(t), Some(ours)) = (terminal, ours) {
            t.give(ours);
        }
        code
    };
    let handed = terminal.zip(child).zip(ours);
    let mut signals = sys::FORWARDED.to_vec();
    signals.push(libc::SIGCONT);
    let options = WaitOptions::NOHANG | WaitOptions::UNTRACED | WaitOptions::CONTINUED;
    loop {
        match sys::wait_signal_of(&signals) {
            Ok(c) if c.signal == libc::SIGCHLD => {
                while let Ok(Some((_, status))) = rustix::process::waitpid(child, options) {
                    if status.continued() {
                        continue;
                    }
                    let Some(stop) = status.stopping_signal() else {
                        return end(init::exit_code(status));
                    };
                    let Some(((t, leader), ours)) = handed else { continue };
                    if matches!(stop, libc::SIGTTIN | libc::SIGTTOU) && t.ours() {
                        // Stopped for the terminal fr's shell took back.
                        t.give(leader);
                        let _ = rustix::process::kill_process_group(leader, Signal::CONT);
                    } else {
                        stop_with(t, leader, ours);
                    }
                }
            }
            Ok(c) if c.signal == libc::SIGCONT => {
                // fr was continued (fg, bg): so is the container.
                if let Some(((t, leader), _)) = handed {
                    if t.ours() {
                        t.give(leader);
                    }
                    let _ = rustix::process::kill_process_group(leader, Signal::CONT);
                }
            }
            Ok(c) => {
                if let Some(((t, leader), _)) = handed.filter(|_| !c.sent_by_process) {
                    if t.ours() {
                        t.give(leader);
                    }
                }
                init::forward(pid, c.signal);
            }
            Err(_) => {
                return end(rustix::process::waitpid(child, WaitOptions::empty())
                    .ok()
                    .flatten()
                    .map_or(125, |(_, status)| init::exit_code(status)))
            }
        }
    }
}

/// The container's job stopped: fr's group takes the terminal back and
/// stops too (the caller's shell then reports the job stopped). When fr is
/// continued, the `SIGCONT` it then finds pending ([`wait`]) hands the
/// terminal on and continues the container. A group the kernel considers
/// orphaned ignores `SIGTSTP` (`kernel/signal.c: do_signal_stop()` is never
/// reached for it): fr then goes on at once and continues the container
/// itself.
fn stop_with(terminal: Terminal, leader: Pid, ours: Pid) {
    terminal.give(ours);
    let _ = rustix::process::kill_current_process_group(Signal::TSTP);
    if !sys::continue_pending() {
        if terminal.ours() {
            terminal.give(leader);
        }
        let _ = rustix::process::kill_process_group(leader, Signal::CONT);
    }
}

/// Makes fr the reaper of the processes its command leaves behind when
/// their parents end (`PR_SET_CHILD_SUBREAPER`), so that [`end`] can find
/// them. With a container, its pid namespace does that already: they go
/// with its init.
pub fn adopt_leftovers() {
    if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        log::debug!("PR_SET_CHILD_SUBREAPER: {e}; a daemon may outlive the session");
    }
}

/// The session ends with its command, as a container's does: every process
/// the command left behind (a daemon that double-forked, now fr's child,
/// see [`adopt_leftovers`]) is killed and reaped, their own orphans in
/// turn, before fr saves the table, so that nothing changes it meanwhile
/// and nothing is left to call a supervisor that is gone (its notified
/// calls would fail with `ENOSYS`).
pub fn end() {
    let fr = std::process::id().to_string();
    for _ in 0..64 {
        let left: Vec<i32> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
                    s.lines().find_map(|l| l.strip_prefix("PPid:")).map(str::trim) == Some(&fr)
                })
            })
            .collect();
        if left.is_empty() {
            return;
        }
        log::debug!("ending {} processes the command left behind", left.len());
        for pid in &left {
            init::forward(*pid, libc::SIGKILL);
        }
        for pid in left {
            let _ = rustix::process::waitpid(Pid::from_raw(pid), WaitOptions::empty());
        }
    }
}
