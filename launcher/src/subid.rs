//! The subordinate id files, `/etc/subuid` and `/etc/subgid` (`subuid(5)`:
//! `OWNER:START:COUNT` a line, the owner a user name or uid): the one
//! parser that `fr check`, the mode choice and `fr config fakeroot` read
//! them with. A line `!OWNER:...` is an entry `fr config fakeroot
//! --disable` turned off, as Apptainer writes it: no user is named `!...`,
//! so `newuidmap` grants nothing from it either.

/// One line of a subordinate id file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// Empty, or a comment.
    Blank,
    Entry(Entry<'a>),
    /// Not three fields of an owner and two numbers.
    Bad,
}

/// An entry: `count` ids from `start`, for `owner`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub disabled: bool,
    pub owner: &'a str,
    pub start: u64,
    pub count: u64,
}

impl Entry<'_> {
    /// Whether the entry names the user `name` or `uid`, enabled or not.
    pub fn names(&self, name: Option<&str>, uid: u32) -> bool {
        Some(self.owner) == name || self.owner == uid.to_string()
    }

    /// Whether the entry gives the user its ids: it names it and is on.
    pub fn gives(&self, name: Option<&str>, uid: u32) -> bool {
        !self.disabled && self.names(name, uid)
    }
}

/// Parses one line (its end of line included or not).
pub fn line(text: &str) -> Line<'_> {
    let text = text.trim_end_matches(['\n', '\r']).trim();
    if text.is_empty() || text.starts_with('#') {
        return Line::Blank;
    }
    let (disabled, body) = match text.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let mut f = body.split(':');
    let parsed = (|| {
        let (owner, start, count) = (f.next()?, f.next()?.parse().ok()?, f.next()?.parse().ok()?);
        (f.next().is_none() && !owner.is_empty()).then_some(Entry { disabled, owner, start, count })
    })();
    parsed.map_or(Line::Bad, Line::Entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_comments_disabled_and_bad_lines() {
        let e =
            |disabled, owner, start, count| Line::Entry(Entry { disabled, owner, start, count });
        assert_eq!(line("alice:100000:65536\n"), e(false, "alice", 100000, 65536));
        assert_eq!(line("1005:300000:1000"), e(false, "1005", 300000, 1000));
        assert_eq!(line("!bob:165536:65536"), e(true, "bob", 165536, 65536));
        assert_eq!(line("  # ranges"), Line::Blank);
        assert_eq!(line(""), Line::Blank);
        assert_eq!(line("alice:100000"), Line::Bad);
        assert_eq!(line("alice:x:1"), Line::Bad);
        assert_eq!(line("alice:1:2:3"), Line::Bad);
        assert_eq!(line(":1:2"), Line::Bad);
        let Line::Entry(bob) = line("!bob:1:2") else { unreachable!() };
        assert!(bob.names(Some("bob"), 7) && !bob.gives(Some("bob"), 7));
        let Line::Entry(num) = line("1005:1:2") else { unreachable!() };
        assert!(num.gives(None, 1005) && !num.gives(Some("1005x"), 1006));
    }
}
