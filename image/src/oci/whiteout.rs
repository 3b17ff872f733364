//! Whiteouts in a layer (image-spec `layer.md`): a member named
//! `DIR/.wh.NAME` deletes `DIR/NAME` of the layers below; `DIR/.wh..wh..opq`
//! makes `DIR` opaque, deleting everything the layers below have in it.
//! Both apply only to lower layers: what the same layer adds stays. Other
//! `.wh..wh.` names are aufs's own metadata (hard link directories), not
//! part of the tree.

/// What a member's last name component says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name<'a> {
    /// A file of the tree.
    Plain,
    /// `.wh..wh..opq`: the directory holding it is opaque.
    Opaque,
    /// `.wh.NAME`: NAME in the same directory is deleted.
    Whiteout(&'a [u8]),
    /// `.wh..wh.*` other than the opaque marker: aufs metadata, skipped.
    Meta,
}

pub const PREFIX: &[u8] = b".wh.";
pub const OPAQUE: &[u8] = b".wh..wh..opq";

/// Classifies `last`, a member's last path component. A whiteout of
/// nothing, of `.` or of `..` is refused: it would name no file of the
/// directory, or one outside it.
pub fn classify(last: &[u8]) -> Result<Name<'_>, &'static str> {
    let Some(rest) = last.strip_prefix(PREFIX) else { return Ok(Name::Plain) };
    if last == OPAQUE {
        return Ok(Name::Opaque);
    }
    if rest.starts_with(PREFIX) {
        return Ok(Name::Meta);
    }
    match rest {
        b"" => Err("a whiteout of an empty name"),
        b"." | b".." => Err("a whiteout of `.` or `..` would delete a directory above it"),
        _ if rest.contains(&b'/') || rest.contains(&0) => Err("a whiteout of a name with `/`"),
        _ => Ok(Name::Whiteout(rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteout_names_are_read_as_the_image_spec_says() {
        assert_eq!(classify(b"passwd"), Ok(Name::Plain));
        assert_eq!(classify(b".wh"), Ok(Name::Plain));
        assert_eq!(classify(b".wh.passwd"), Ok(Name::Whiteout(b"passwd")));
        assert_eq!(classify(b".wh..profile"), Ok(Name::Whiteout(b".profile")));
        assert_eq!(classify(b".wh..wh..opq"), Ok(Name::Opaque));
        assert_eq!(classify(b".wh..wh.plnk"), Ok(Name::Meta));
        assert!(classify(b".wh...").is_err());
        assert!(classify(b".wh..").is_err());
        assert!(classify(b".wh.").is_err());
    }
}
