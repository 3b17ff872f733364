//! How the host's ids appear to the workload for files fr has not faked.
//!
//! Like `fakeroot`, fr shows the invoking user's own uid and gid as 0 and
//! every other id as it is on the host. A root-mapped user namespace would
//! show unmapped ids as the overflow id (65534); fr does not, so that a host
//! tree owned by several users keeps its owners visible.

/// The invoking user's ids on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdMap {
    pub host_uid: u32,
    pub host_gid: u32,
}

impl IdMap {
    pub fn new(host_uid: u32, host_gid: u32) -> Self {
        Self { host_uid, host_gid }
    }

    /// The uid the workload sees for a file owned by `host` on the host.
    pub fn uid_inside(&self, host: u32) -> u32 {
        if host == self.host_uid {
            0
        } else {
            host
        }
    }

    /// The gid the workload sees for a file whose host group is `host`.
    pub fn gid_inside(&self, host: u32) -> u32 {
        if host == self.host_gid {
            0
        } else {
            host
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_ids_show_as_root_and_others_as_they_are() {
        let map = IdMap::new(1001, 1002);
        assert_eq!(map.uid_inside(1001), 0);
        assert_eq!(map.gid_inside(1002), 0);
        assert_eq!(map.uid_inside(0), 0);
        assert_eq!(map.uid_inside(1002), 1002);
        assert_eq!(map.gid_inside(1001), 1001);
        assert_eq!(map.uid_inside(65534), 65534);
    }
}
