//! The per-user role table of `users.csv`, laid out for a million lines: every normalised user id in one arena
//! string, and a hash table of 16-byte entries (where the id lives in the arena, and its roles) that finds an id by
//! hashing it and comparing against the arena.
//!
//! A `HashMap<Box<str>, RoleSet>` spends a heap allocation per user (its allocator header, rounding, and the
//! 16-byte box pointer on top of the id), about 70 bytes a user; this spends the id's bytes plus 16. It also holds
//! two large allocations instead of a million small ones, so a table dropped after a reload gives its memory back
//! to the system instead of leaving the heap fragmented.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::roles::RoleSet;

/// Normalised user id -> roles.
#[derive(Clone, Default)]
pub(crate) struct UserTable {
    ids: String,
    index: HashTable<Entry>,
    hasher: std::collections::hash_map::RandomState,
}

/// Where one id lives in the arena, and its roles.
#[derive(Clone, Copy)]
struct Entry {
    start: u32,
    len: u32,
    roles: RoleSet,
}

/// The arena's offsets are 32-bit (4 GiB of ids, far beyond any users.csv a policy could load).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("users.csv holds more than 4 GiB of user ids")]
pub(crate) struct TableFull;

impl std::fmt::Debug for UserTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserTable")
            .field("users", &self.index.len())
            .field("arena_bytes", &self.ids.len())
            .finish()
    }
}

impl UserTable {
    /// An empty table sized for about `users` entries holding about `id_bytes` bytes of ids.
    pub(crate) fn with_capacity(users: usize, id_bytes: usize) -> Self {
        UserTable {
            ids: String::with_capacity(id_bytes),
            index: HashTable::with_capacity(users),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Adds `roles` to the user's (a user listed twice has the union).
    pub(crate) fn add(&mut self, id: &str, roles: RoleSet) -> Result<(), TableFull> {
        let hash = self.hasher.hash_one(id);
        let ids = &self.ids;
        if let Some(entry) = self.index.find_mut(hash, |e| slice(ids, e) == id) {
            entry.roles = entry.roles.union(roles);
            return Ok(());
        }
        let start = u32::try_from(self.ids.len()).map_err(|_| TableFull)?;
        let len = u32::try_from(id.len()).map_err(|_| TableFull)?;
        u32::try_from(self.ids.len() + id.len()).map_err(|_| TableFull)?;
        self.ids.push_str(id);
        let (ids, hasher) = (&self.ids, &self.hasher);
        self.index
            .insert_unique(hash, Entry { start, len, roles }, |e| {
                hasher.hash_one(slice(ids, e))
            });
        Ok(())
    }

    /// The user's roles, if listed.
    pub(crate) fn get(&self, id: &str) -> Option<RoleSet> {
        let hash = self.hasher.hash_one(id);
        self.index
            .find(hash, |e| slice(&self.ids, e) == id)
            .map(|e| e.roles)
    }

    /// Distinct users.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no user is listed.
    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Gives back what the estimates over-reserved.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.ids.shrink_to_fit();
        let (ids, hasher) = (&self.ids, &self.hasher);
        self.index.shrink_to_fit(|e| hasher.hash_one(slice(ids, e)));
    }
}

fn slice<'a>(ids: &'a str, entry: &Entry) -> &'a str {
    let start = entry.start as usize;
    ids.get(start..start + entry.len as usize)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids are found by their text, a user listed twice gets the union, and unknown ids are absent.
    #[test]
    fn finds_ids_and_merges_duplicates() {
        let mut table = UserTable::with_capacity(2, 16);
        table.add("@a:x", RoleSet::all(1)).unwrap();
        table.add("@bb:x", RoleSet::default()).unwrap();
        table.add("@a:x", RoleSet::all(2)).unwrap();
        table.shrink_to_fit();
        assert_eq!(table.len(), 2);
        assert_eq!(table.get("@a:x"), Some(RoleSet::all(2)));
        assert_eq!(table.get("@bb:x"), Some(RoleSet::default()));
        assert_eq!(table.get("@c:x"), None);
        assert_eq!(table.get("@a:"), None, "a prefix of an id is not the id");
    }
}
