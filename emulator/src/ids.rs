//! How the host's ids appear to the workload for files fr has not faked.
//!
//! Like `fakeroot`, fr shows the invoking user's own uid and gid as 0 and
//! every other id as it is on the host. In subuid mode the user's
//! subordinate ranges are mapped too, as `newuidmap` maps them: the first
//! subordinate id is 1, the next 2, and so on across the ranges in the
//! order `/etc/subuid` lists them. A root-mapped user namespace would show
//! unmapped ids as the overflow id (65534); fr does not, so that a host
//! tree owned by several users keeps its owners visible.

use std::sync::Arc;

/// A run of consecutive host ids: `count` ids from `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub start: u32,
    pub count: u32,
}

impl Range {
    /// Whether host id `id` is one of this run's.
    pub fn contains(&self, id: u32) -> bool {
        id >= self.start && id - self.start < self.count
    }
}

/// Each range with the first id it shows as inside the namespace: the
/// ranges follow 0 (the user's own id) one after another from 1, as the
/// map lines `newuidmap` writes place them.
pub fn placed(ranges: &[Range]) -> impl Iterator<Item = (u32, Range)> + '_ {
    ranges.iter().scan(1u32, |first, &r| {
        let at = *first;
        *first = first.saturating_add(r.count);
        Some((at, r))
    })
}

/// The invoking user's ids on the host, and the subordinate ranges mapped
/// after them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdMap {
    pub host_uid: u32,
    pub host_gid: u32,
    sub_uids: Arc<[Range]>,
    sub_gids: Arc<[Range]>,
}

impl IdMap {
    /// The root-mapped view: only the user's own ids are translated.
    pub fn new(host_uid: u32, host_gid: u32) -> Self {
        Self::with_subordinates(host_uid, host_gid, &[], &[])
    }

    /// The subuid view: 0 is the user, 1.. the ranges in order.
    pub fn with_subordinates(host_uid: u32, host_gid: u32, uids: &[Range], gids: &[Range]) -> Self {
        Self { host_uid, host_gid, sub_uids: uids.into(), sub_gids: gids.into() }
    }

    /// The subordinate uid ranges, in map order.
    pub fn sub_uids(&self) -> &[Range] {
        &self.sub_uids
    }

    /// The subordinate gid ranges, in map order.
    pub fn sub_gids(&self) -> &[Range] {
        &self.sub_gids
    }

    /// The uid the workload sees for a file owned by `host` on the host.
    pub fn uid_inside(&self, host: u32) -> u32 {
        inside(self.host_uid, &self.sub_uids, host)
    }

    /// The gid the workload sees for a file whose host group is `host`.
    pub fn gid_inside(&self, host: u32) -> u32 {
        inside(self.host_gid, &self.sub_gids, host)
    }

    /// The host uid the kernel stores for `inside`, if the namespace maps it.
    pub fn uid_outside(&self, inside: u32) -> Option<u32> {
        outside(self.host_uid, &self.sub_uids, inside)
    }

    /// The host gid the kernel stores for `inside`, if the namespace maps it.
    pub fn gid_outside(&self, inside: u32) -> Option<u32> {
        outside(self.host_gid, &self.sub_gids, inside)
    }
}

fn inside(own: u32, subs: &[Range], host: u32) -> u32 {
    if host == own {
        return 0;
    }
    placed(subs).find(|(_, r)| r.contains(host)).map_or(host, |(first, r)| first + (host - r.start))
}

fn outside(own: u32, subs: &[Range], inside: u32) -> Option<u32> {
    if inside == 0 {
        return Some(own);
    }
    placed(subs)
        .find(|&(first, r)| Range { start: first, count: r.count }.contains(inside))
        .map(|(first, r)| r.start + (inside - first))
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
        assert_eq!(map.uid_outside(0), Some(1001));
        assert_eq!(map.uid_outside(1), None);
    }

    #[test]
    fn subordinate_ranges_follow_one_another_as_newuidmap_maps_them() {
        let uids = [Range { start: 200_000, count: 10 }, Range { start: 300_000, count: 5 }];
        let map = IdMap::with_subordinates(1001, 1001, &uids, &uids[..1]);
        assert_eq!(map.uid_inside(200_000), 1);
        assert_eq!(map.uid_inside(200_009), 10);
        assert_eq!(map.uid_inside(300_000), 11);
        assert_eq!(map.uid_inside(300_004), 15);
        assert_eq!(map.uid_inside(300_005), 300_005);
        assert_eq!(map.gid_inside(300_000), 300_000);
        assert_eq!(map.uid_outside(10), Some(200_009));
        assert_eq!(map.uid_outside(11), Some(300_000));
        assert_eq!(map.uid_outside(16), None);
        assert_eq!(map.gid_outside(11), None);
        for id in 0..16 {
            assert_eq!(map.uid_outside(id).map(|h| map.uid_inside(h)), Some(id));
        }
    }
}
