//! fr's messages on stderr: `fr: LEVEL: message`.

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let level = match record.level() {
                Level::Error => "error",
                Level::Warn => "warning",
                Level::Info => "info",
                Level::Debug => "debug",
                Level::Trace => "trace",
            };
            // Never `eprintln!`, which panics when stderr is a closed pipe
            // (`fr -vv ... 2>&1 | head -1`): a supervisor worker logging
            // would die with its notification unanswered and the workload
            // blocked. A message that cannot be written is dropped.
            // One write(2) per message: fr's processes (fr, the container's
            // outer process, an instance's monitor) share stderr, and a
            // message written in pieces would be cut by another's.
            use std::io::Write;
            let line = format!("fr: {level}: {}\n", record.args());
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// `-q` shows errors only; the default adds warnings and INFO lines; `-v`
/// adds debugging, `-vv` every intercepted system call.
pub fn init(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => LevelFilter::Error,
        (false, 0) => LevelFilter::Info,
        (false, 1) => LevelFilter::Debug,
        (false, _) => LevelFilter::Trace,
    };
    static LOGGER: Stderr = Stderr;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

/// `fr: hint: ...`, the way out that follows an error: printed with the
/// error, `-q` or not, and dropped if stderr is closed.
pub fn hint(hint: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "fr: hint: {hint}");
}
