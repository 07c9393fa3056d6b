//! The per-user role table of `users.csv`, laid out for a million lines and for reloads that change a few of them.
//!
//! Users are spread over [`SHARDS`] shards by a hash of their id. Each shard holds its normalised ids in one arena
//! string and a hash table of 16-byte entries (where the id lives in the arena, and its roles) that finds an id by
//! hashing it and comparing against the arena. A `HashMap<Box<str>, RoleSet>` spends a heap allocation per user (its
//! allocator header, rounding, and the 16-byte box pointer on top of the id), about 70 bytes a user; this spends the
//! id's bytes plus 16, in two allocations per shard instead of one per user, so a table dropped after a reload gives
//! its memory back to the system instead of leaving the heap fragmented.
//!
//! Shards are what a reload reuses. Each shard carries the digest of its lines (every user line that falls in it,
//! in file order, as its normalised id and role set), and each shard is an `Arc`: a reload reads `users.csv` once
//! computing the digests only ([`TablePass::digests_only`]), then again building only the shards whose digest
//! changed ([`TablePass::rebuilding`]) and sharing the others with the serving table ([`UserTable::rebuilt`]). An
//! edit of a few lines of a million-line file then holds a few extra shards (1/256 of the table each) instead of a
//! second table; a rewrite of every line still builds every shard while the old table serves.
//!
//! One hash serves both the choice of the shard and the look-up inside it, so a look-up costs what it cost with one
//! table, plus the step to the shard.

use std::{
    hash::BuildHasher,
    sync::{Arc, OnceLock},
};

use foldhash::quality::RandomState;

use hashbrown::HashTable;
use sha2::{Digest, Sha256};

use super::roles::RoleSet;

/// How many shards a table has: a one-line edit of a million-line `users.csv` rebuilds one of them (about 4,000
/// users, 180 KiB), and 256 pointers are all a small table spends on them (its empty shards are one shared shard).
pub(crate) const SHARDS: usize = 256;

/// The digest of one shard's lines.
type ShardDigest = [u8; 32];

/// Normalised user id -> roles, in [`SHARDS`] shards that reloads share.
#[derive(Clone)]
pub(crate) struct UserTable {
    shards: Box<[Arc<Shard>; SHARDS]>,
    /// Distinct users, over every shard.
    len: usize,
}

/// The users whose ids hash to one shard.
#[derive(Default)]
struct Shard {
    ids: String,
    index: HashTable<Entry>,
    /// The digest of the lines it was built from (see [`TablePass`]).
    digest: ShardDigest,
}

/// Where one id lives in its shard's arena, and its roles.
#[derive(Clone, Copy)]
struct Entry {
    start: u32,
    len: u32,
    roles: RoleSet,
}

/// A shard's arena offsets are 32-bit (4 GiB of ids a shard, far beyond any users.csv a policy could load).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("users.csv holds more than 4 GiB of user ids")]
pub(crate) struct TableFull;

/// The hasher of every table of the process: seeded at random per process, and the same for every reload, so an id
/// falls in the same shard in the serving and the reloaded table. foldhash rather than std's SipHash: a look-up on
/// every call hashes an id of 30 to 60 bytes, where SipHash costs several times more. Only the policy's ids are
/// inserted, so the ids callers send cannot make a table's chains longer, whatever the hash.
fn hasher() -> &'static RandomState {
    static HASHER: OnceLock<RandomState> = OnceLock::new();
    HASHER.get_or_init(RandomState::default)
}

fn hash(id: &str) -> u64 {
    hasher().hash_one(id)
}

/// The shard of a hash: bits 48 to 55, which the shard's own table does not use (it takes its bucket from the low
/// bits and its 7-bit tag from the top ones).
fn shard_of(hash: u64) -> usize {
    (hash >> 48) as usize & (SHARDS - 1)
}

/// The digest of a shard no line falls in.
fn empty_digest() -> ShardDigest {
    Sha256::new().finalize().into()
}

/// The one empty shard that every table's empty shards share: a ten-line `users.csv` allocates ten shards, not 256.
fn empty_shard() -> Arc<Shard> {
    static EMPTY: OnceLock<Arc<Shard>> = OnceLock::new();
    EMPTY
        .get_or_init(|| {
            Arc::new(Shard {
                digest: empty_digest(),
                ..Shard::default()
            })
        })
        .clone()
}

impl Default for UserTable {
    fn default() -> Self {
        UserTable {
            shards: Box::new(std::array::from_fn(|_| empty_shard())),
            len: 0,
        }
    }
}

impl std::fmt::Debug for UserTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserTable")
            .field("users", &self.len)
            .field(
                "arena_bytes",
                &self.shards.iter().map(|s| s.ids.len()).sum::<usize>(),
            )
            .finish()
    }
}

// === impl UserTable ===

impl UserTable {
    /// The table every shard of which `pass` built.
    pub(crate) fn built(pass: PassResult) -> Self {
        Self::default().rebuilt(pass)
    }

    /// The shards of `pass`'s file whose lines differ from this table's (what [`TablePass::rebuilding`] builds).
    pub(crate) fn changed_shards(&self, pass: &PassResult) -> [bool; SHARDS] {
        std::array::from_fn(|i| self.shards[i].digest != pass.digests[i])
    }

    /// This table with the shards `pass` built replaced, and every other shard shared (not copied).
    pub(crate) fn rebuilt(&self, pass: PassResult) -> Self {
        let mut shards = self.shards.clone();
        for ((slot, built), digest) in shards.iter_mut().zip(pass.built).zip(pass.digests) {
            if let Some(mut shard) = built {
                *slot = if shard.index.is_empty() {
                    empty_shard()
                } else {
                    shard.shrink_to_fit();
                    shard.digest = digest;
                    Arc::new(shard)
                };
            }
        }
        let len = shards.iter().map(|s| s.index.len()).sum();
        UserTable { shards, len }
    }

    /// The user's roles, if listed.
    pub(crate) fn get(&self, id: &str) -> Option<RoleSet> {
        let hash = hash(id);
        self.shards[shard_of(hash)].get(hash, id)
    }

    /// Distinct users.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no user is listed.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many of this table's shards are `other`'s own (the same allocation, not an equal copy).
    #[cfg(test)]
    pub(crate) fn shards_shared_with(&self, other: &UserTable) -> usize {
        self.shards
            .iter()
            .zip(other.shards.iter())
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count()
    }
}

// === impl Shard ===

impl Shard {
    fn with_capacity(users: usize, id_bytes: usize) -> Self {
        Shard {
            ids: String::with_capacity(id_bytes),
            index: HashTable::with_capacity(users),
            digest: empty_digest(),
        }
    }

    /// Adds `roles` to the user's (a user listed twice has the union).
    fn add(&mut self, hash: u64, id: &str, roles: RoleSet) -> Result<(), TableFull> {
        let ids = &self.ids;
        if let Some(entry) = self.index.find_mut(hash, |e| slice(ids, e) == id) {
            entry.roles = entry.roles.union(roles);
            return Ok(());
        }
        let start = u32::try_from(self.ids.len()).map_err(|_| TableFull)?;
        let len = u32::try_from(id.len()).map_err(|_| TableFull)?;
        u32::try_from(self.ids.len() + id.len()).map_err(|_| TableFull)?;
        self.ids.push_str(id);
        let ids = &self.ids;
        self.index
            .insert_unique(hash, Entry { start, len, roles }, |e| {
                self::hash(slice(ids, e))
            });
        Ok(())
    }

    fn get(&self, hash: u64, id: &str) -> Option<RoleSet> {
        self.index
            .find(hash, |e| slice(&self.ids, e) == id)
            .map(|e| e.roles)
    }

    /// Gives back what the estimates over-reserved.
    fn shrink_to_fit(&mut self) {
        self.ids.shrink_to_fit();
        let ids = &self.ids;
        self.index.shrink_to_fit(|e| hash(slice(ids, e)));
    }
}

fn slice<'a>(ids: &'a str, entry: &Entry) -> &'a str {
    let start = entry.start as usize;
    ids.get(start..start + entry.len as usize)
        .unwrap_or_default()
}

// === impl TablePass ===

/// One read of `users.csv`'s user lines, in file order: it computes every shard's digest, and builds the shards it
/// was asked to build.
pub(crate) struct TablePass {
    digests: Vec<Sha256>,
    /// Lines and id bytes per shard, to size a later pass's shards exactly.
    sizes: Vec<(usize, usize)>,
    /// The shards being built; `None` for a shard this pass does not build.
    built: Vec<Option<Shard>>,
}

/// What a [`TablePass`] found.
pub(crate) struct PassResult {
    digests: Vec<ShardDigest>,
    sizes: Vec<(usize, usize)>,
    built: Vec<Option<Shard>>,
}

impl PartialEq for PassResult {
    /// Two passes agree when they found the same lines in every shard (whatever they built).
    fn eq(&self, other: &Self) -> bool {
        self.digests == other.digests
    }
}

impl TablePass {
    fn new(built: Vec<Option<Shard>>) -> Self {
        TablePass {
            digests: vec![Sha256::new(); SHARDS],
            sizes: vec![(0, 0); SHARDS],
            built,
        }
    }

    /// A pass that builds every shard, for about `users` users holding about `id_bytes` bytes of ids in all.
    pub(crate) fn building_all(users: usize, id_bytes: usize) -> Self {
        let (users, id_bytes) = (users / SHARDS, id_bytes / SHARDS);
        Self::new(
            (0..SHARDS)
                .map(|_| Some(Shard::with_capacity(users, id_bytes)))
                .collect(),
        )
    }

    /// A pass that builds nothing: the first read of a reload, which finds the shards whose lines changed.
    pub(crate) fn digests_only() -> Self {
        Self::new((0..SHARDS).map(|_| None).collect())
    }

    /// A pass that builds the shards marked in `changed`, sized from what `first` counted.
    pub(crate) fn rebuilding(first: &PassResult, changed: &[bool; SHARDS]) -> Self {
        Self::new(
            changed
                .iter()
                .zip(&first.sizes)
                .map(|(changed, (users, id_bytes))| {
                    changed.then(|| Shard::with_capacity(*users, *id_bytes))
                })
                .collect(),
        )
    }

    /// One user line: its normalised id and roles.
    pub(crate) fn add(&mut self, id: &str, roles: RoleSet) -> Result<(), TableFull> {
        let hash = hash(id);
        let shard = shard_of(hash);
        if let Some(digest) = self.digests.get_mut(shard) {
            // The id's length first, so that no two sequences of lines hash alike.
            digest.update((id.len() as u64).to_le_bytes());
            digest.update(id.as_bytes());
            digest.update(roles.bits().to_le_bytes());
        }
        if let Some((users, id_bytes)) = self.sizes.get_mut(shard) {
            *users += 1;
            *id_bytes += id.len();
        }
        match self.built.get_mut(shard) {
            Some(Some(table)) => table.add(hash, id, roles),
            _ => Ok(()),
        }
    }

    /// The digests, sizes and shards of the pass.
    pub(crate) fn finish(self) -> PassResult {
        PassResult {
            digests: self
                .digests
                .into_iter()
                .map(|d| d.finalize().into())
                .collect(),
            sizes: self.sizes,
            built: self.built,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(lines: &[(&str, RoleSet)]) -> UserTable {
        let mut pass = TablePass::building_all(lines.len(), 64);
        for (id, roles) in lines {
            pass.add(id, *roles).unwrap();
        }
        UserTable::built(pass.finish())
    }

    /// Ids are found by their text, a user listed twice gets the union, and unknown ids are absent.
    #[test]
    fn finds_ids_and_merges_duplicates() {
        let table = table(&[
            ("@a:x", RoleSet::all(1)),
            ("@bb:x", RoleSet::default()),
            ("@a:x", RoleSet::all(2)),
        ]);
        assert_eq!(table.len(), 2);
        assert_eq!(table.get("@a:x"), Some(RoleSet::all(2)));
        assert_eq!(table.get("@bb:x"), Some(RoleSet::default()));
        assert_eq!(table.get("@c:x"), None);
        assert_eq!(table.get("@a:"), None, "a prefix of an id is not the id");
    }

    /// A small table's empty shards are one shared shard: two users cost two shards, not 256.
    #[test]
    fn empty_shards_are_one_shared_shard() {
        let small = table(&[("@a:x", RoleSet::all(1)), ("@b:x", RoleSet::all(1))]);
        let empty = UserTable::default();
        assert!(small.shards_shared_with(&empty) >= SHARDS - 2);
        assert_eq!(empty.shards_shared_with(&UserTable::default()), SHARDS);
    }

    /// A shard's digest is that of its lines: the same lines give the same digests, a changed role or a removed
    /// line another, and a table built from lines finds none of its shards changed against the same lines.
    #[test]
    fn digests_follow_the_lines() {
        let digests = |lines: &[(&str, usize)]| {
            let mut pass = TablePass::digests_only();
            for (id, roles) in lines {
                pass.add(id, RoleSet::all(*roles)).unwrap();
            }
            pass.finish()
        };
        let a = digests(&[("@a:x", 1), ("@b:x", 2)]);
        assert!(a == digests(&[("@a:x", 1), ("@b:x", 2)]));
        assert!(a != digests(&[("@a:x", 1), ("@b:x", 1)]));
        assert!(a != digests(&[("@a:x", 1)]));
        let built = table(&[("@a:x", RoleSet::all(1)), ("@b:x", RoleSet::all(2))]);
        assert_eq!(built.changed_shards(&a), [false; SHARDS]);
    }
}
