//! A set of roles as one machine word: what a subject's roles are once resolved, what the per-user table stores,
//! and what a rule's role condition tests. Its own file because both the resolver (`roles.rs`) and the per-user
//! table (`user_table.rs`) build on it, and neither should import the other for it.

/// At most this many distinct roles: a role set is one machine word.
pub const MAX_ROLES: usize = 64;

/// A set of roles, as bits indexing [`RoleResolver::role_names`](super::roles::RoleResolver::role_names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct RoleSet(u64);

impl RoleSet {
    /// True when role number `index` is in the set.
    pub fn contains(self, index: usize) -> bool {
        index < MAX_ROLES && self.0 & (1 << index) != 0
    }

    /// The set of the first `count` roles.
    pub fn all(count: usize) -> RoleSet {
        RoleSet(if count >= MAX_ROLES {
            u64::MAX
        } else {
            (1 << count) - 1
        })
    }

    pub(crate) fn insert(&mut self, index: usize) {
        self.0 |= 1 << index;
    }

    pub(crate) fn union(self, other: RoleSet) -> RoleSet {
        RoleSet(self.0 | other.0)
    }

    /// The set as bits (for the digests of the per-user table's shards).
    pub(crate) fn bits(self) -> u64 {
        self.0
    }

    /// The set of these bits (tests that need any set, not only the first roles).
    #[cfg(test)]
    pub(crate) fn from_bits(bits: u64) -> RoleSet {
        RoleSet(bits)
    }
}
