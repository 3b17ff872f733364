//! `/proc/<tid>/status` of a target, read as bytes: its `Name:` line holds
//! whatever bytes the process set with `prctl(PR_SET_NAME)`, unescaped, so
//! the file need not be UTF-8. The fields fr reads are ASCII numbers.

/// A target's status file.
#[derive(Debug)]
pub struct Status(Vec<u8>);

impl Status {
    pub fn read(tid: i32) -> Option<Status> {
        std::fs::read(format!("/proc/{tid}/status")).ok().map(Status)
    }

    /// The text after `key` (for example `"Tgid:"`) on its line, trimmed.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.0
            .split(|&b| b == b'\n')
            .find_map(|line| line.strip_prefix(key.as_bytes()))
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
    }

    /// The last number of a field like `NSpid:` (the innermost namespace's).
    pub fn last(&self, key: &str) -> Option<i32> {
        self.field(key)?.split_whitespace().last()?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_whatever_bytes_the_name_holds() {
        let s = Status(b"Name:\t\xff\xfebad\nUmask:\t0022\nTgid:\t42\nNSpid:\t4242\t7\n".to_vec());
        assert_eq!(s.field("Umask:"), Some("0022"));
        assert_eq!(s.last("Tgid:"), Some(42));
        assert_eq!(s.last("NSpid:"), Some(7));
        assert_eq!(s.field("PPid:"), None);
    }
}
