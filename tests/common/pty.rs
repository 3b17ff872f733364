//! Interactive sessions on a pseudo-terminal, for the tests of what a user
//! at a keyboard does: `tests/tools/pty_session.py` drives an interactive
//! bash with the steps given here.

use std::path::Path;

use super::{run, Harness, Run};

/// The steps of a terminal session, written as JSON by hand (no serde in
/// the test dependencies): see `tests/tools/pty_session.py`.
#[derive(Debug, Default)]
pub struct Steps(Vec<String>);

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Steps {
    /// Types `text` (control characters included: "\u{3}" is ^C).
    pub fn send(mut self, text: &str) -> Self {
        self.0.push(format!("[\"send\", {}]", quote(text)));
        self
    }

    /// Waits up to `seconds` for output matching `regex`.
    pub fn expect(mut self, regex: &str, seconds: u32) -> Self {
        self.0.push(format!("[\"expect\", {}, {seconds}]", quote(regex)));
        self
    }

    /// Waits, as a user does before pressing ^C.
    pub fn pause(mut self, seconds: f32) -> Self {
        self.0.push(format!("[\"pause\", {seconds}]"));
        self
    }

    fn json(&self) -> String {
        format!("[{}]", self.0.join(", "))
    }
}

/// Runs `steps` against an interactive bash on a pseudo-terminal, as the
/// test user; the run's stdout is the terminal's transcript.
pub fn at_the_terminal(h: &Harness, steps: &Steps) -> Run {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/pty_session.py");
    run(h.command("python3").arg(tool).arg(steps.json()))
}
