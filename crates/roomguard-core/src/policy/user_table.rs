//! The per-user role table of `users.csv`, laid out for a million lines and for reloads that change a few of them.
//!
//! The table keeps no id. It keeps each user's **fingerprint**: 88 bits of a 128-bit SipHash-1-3 of the normalised
//! id, keyed at random once per process (8 of them choose the shard, the shard keeps the other 80), and the user's
//! roles as a one-byte index into a small palette of the role sets the shard holds. That is 11 bytes a user plus
//! about one of bucket directory, where the ids themselves are 30 to 60 bytes: a million users cost about 11.5 MiB, so
//! a reload that rewrites every line (two tables while the old one serves) stays under 1.5x the resident set of one
//! (docs/performance.md, "Memory across reloads"). An id that is not listed matches a listed user's fingerprint only by chance:
//! the chance of a look-up is the number of listed users over 2^88, about 3 x 10^-21 for a million, far below any
//! hardware's error rate. The key is secret (never logged, new each process), so the ids callers send cannot be
//! chosen to collide, whatever they learn from decisions.
//!
//! Users are spread over [`SHARDS`] shards by the fingerprint's top 8 bits. A shard holds its fingerprints sorted,
//! and a directory of where each bucket of the next bits starts (about 4 users a bucket), so a look-up is one hash,
//! two reads of the directory and a scan of a few keys in one or two cache lines. Each shard is a few allocations
//! (keys, directory, roles), so a table dropped after a reload gives its memory back whole instead of fragmenting the
//! heap.
//!
//! Shards are what a reload reuses. Each shard carries the digest of its lines (every user line that falls in it,
//! in file order, as its normalised id and role set), and each shard is an `Arc`: a reload reads `users.csv` once
//! computing the digests only ([`TablePass::digests_only`]), then again building only the shards whose digest
//! changed ([`TablePass::rebuilding`], sized exactly from the first read) and sharing the others with the serving
//! table ([`UserTable::rebuilt`]). An edit of a few lines of a million-line file then holds a few extra shards (1/256
//! of the table each) instead of a second table.

use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};
use siphasher::sip128::SipHasher13;

use super::role_set::RoleSet;

/// How many shards a table has: a one-line edit of a million-line `users.csv` rebuilds one of them (about 4,000
/// users, 47 KiB), and 256 pointers are all a small table spends on them (its empty shards are one shared shard).
pub(crate) const SHARDS: usize = 256;

/// The digest of one shard's lines.
type ShardDigest = [u8; 32];

/// Users a bucket of a shard's directory holds on average, at least: 4 keys of 10 bytes are one or two cache lines
/// to scan, and the directory costs about a byte a user.
const USERS_PER_BUCKET: usize = 4;

/// The most bits a bucket number takes: the bits of the fingerprint's top word below the shard's 8.
const MAX_BUCKET_BITS: u32 = 24;

/// Normalised user id -> roles, in [`SHARDS`] shards that reloads share.
#[derive(Clone)]
pub(crate) struct UserTable {
    shards: Box<[Arc<Shard>; SHARDS]>,
    /// Distinct users, over every shard.
    len: usize,
}

/// The 128-bit keyed hash of a normalised id.
#[derive(Clone, Copy)]
struct Fingerprint {
    high: u64,
    low: u64,
}

/// What a shard keeps of a fingerprint: the 80 bits below the shard's 8 (the other 56 of the top word, the top 24 of
/// the other), as five 16-bit words so that a key is 10 bytes. Ordered as the fingerprint, so a shard's keys sorted
/// are grouped by bucket.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key([u16; 5]);

/// The users whose fingerprints fall in one shard.
struct Shard {
    /// Sorted, one per distinct user.
    keys: Box<[Key]>,
    /// The roles of `keys[i]`.
    roles: RoleColumn,
    /// The keys of bucket `b` are `keys[starts[b]..starts[b + 1]]`.
    starts: Box<[u32]>,
    bucket_bits: u32,
    /// The digest of the lines it was built from (see [`TablePass`]).
    digest: ShardDigest,
}

/// The role sets of a shard's users, in key order.
enum RoleColumn {
    /// A byte a user: an index into the distinct sets of the shard (every policy with at most 256 distinct
    /// combinations of roles among a shard's users, i.e. every real one).
    Palette { sets: Vec<RoleSet>, index: Vec<u8> },
    /// Each user's set, for a shard with more distinct sets than a byte can number.
    Sets(Vec<RoleSet>),
}

/// A shard's keys and its directory are indexed with 32-bit numbers (4 billion users a shard, far beyond any
/// users.csv a policy could load).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("users.csv holds more than 4 billion users")]
pub(crate) struct TableFull;

/// The fingerprint hasher of every table of the process: keyed at random per process, and the same for every
/// reload, so an id falls in the same shard, with the same key, in the serving and the reloaded table.
fn hasher() -> &'static SipHasher13 {
    static HASHER: OnceLock<SipHasher13> = OnceLock::new();
    HASHER.get_or_init(|| SipHasher13::new_with_keys(rand::random(), rand::random()))
}

// === impl Fingerprint ===

impl Fingerprint {
    fn of(id: &str) -> Self {
        let hash = hasher().hash(id.as_bytes());
        Fingerprint {
            high: hash.h1,
            low: hash.h2,
        }
    }

    /// The top 8 bits.
    fn shard(self) -> usize {
        (self.high >> 56) as usize & (SHARDS - 1)
    }

    fn key(self) -> Key {
        let (high, low) = (self.high, self.low);
        Key([
            (high >> 40) as u16,
            (high >> 24) as u16,
            (high >> 8) as u16,
            ((high << 8) | (low >> 56)) as u16,
            (low >> 40) as u16,
        ])
    }
}

impl Key {
    /// The bucket of a shard of `1 << bits` buckets: the key's top `bits` bits (the fingerprint's below the shard's).
    fn bucket(self, bits: u32) -> usize {
        let top = (u32::from(self.0[0]) << 16) | u32::from(self.0[1]);
        if bits == 0 {
            0
        } else {
            (top >> (32 - bits)) as usize
        }
    }
}

/// The digest of a shard no line falls in.
fn empty_digest() -> ShardDigest {
    Sha256::new().finalize().into()
}

/// The one empty shard that every table's empty shards share: a ten-line `users.csv` allocates ten shards, not 256.
fn empty_shard() -> Arc<Shard> {
    static EMPTY: OnceLock<Arc<Shard>> = OnceLock::new();
    EMPTY
        .get_or_init(|| Arc::new(ShardBuilder::with_capacity(0).build(empty_digest())))
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
                "bytes",
                &self.shards.iter().map(|s| s.bytes()).sum::<usize>(),
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
            if let Some(builder) = built {
                *slot = if builder.keys.is_empty() {
                    empty_shard()
                } else {
                    Arc::new(builder.build(digest))
                };
            }
        }
        let len = shards.iter().map(|s| s.keys.len()).sum();
        UserTable { shards, len }
    }

    /// The user's roles, if listed.
    pub(crate) fn get(&self, id: &str) -> Option<RoleSet> {
        let fingerprint = Fingerprint::of(id);
        self.shards[fingerprint.shard()].get(fingerprint.key())
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
    fn get(&self, key: Key) -> Option<RoleSet> {
        let bucket = key.bucket(self.bucket_bits);
        let start = *self.starts.get(bucket)? as usize;
        let end = *self.starts.get(bucket + 1)? as usize;
        let at = self.keys.get(start..end)?.iter().position(|k| *k == key)?;
        self.roles.get(start + at)
    }

    /// What its columns hold on the heap.
    fn bytes(&self) -> usize {
        self.keys.len() * size_of::<Key>()
            + self.starts.len() * size_of::<u32>()
            + self.roles.bytes()
    }
}

// === impl RoleColumn ===

impl RoleColumn {
    fn with_capacity(users: usize) -> Self {
        RoleColumn::Palette {
            sets: Vec::new(),
            index: Vec::with_capacity(users),
        }
    }

    fn get(&self, at: usize) -> Option<RoleSet> {
        match self {
            RoleColumn::Palette { sets, index } => sets.get(usize::from(*index.get(at)?)).copied(),
            RoleColumn::Sets(sets) => sets.get(at).copied(),
        }
    }

    fn push(&mut self, roles: RoleSet) {
        match self {
            RoleColumn::Palette { sets, index } => {
                let at = match sets.iter().position(|s| *s == roles) {
                    Some(at) => at,
                    None => {
                        sets.push(roles);
                        sets.len() - 1
                    }
                };
                match u8::try_from(at) {
                    Ok(at) => index.push(at),
                    Err(_) => {
                        // A 257th distinct set: every user's set in full from here on.
                        let mut full: Vec<RoleSet> = Vec::with_capacity(index.capacity());
                        full.extend(index.iter().filter_map(|i| sets.get(usize::from(*i))));
                        full.push(roles);
                        *self = RoleColumn::Sets(full);
                    }
                }
            }
            RoleColumn::Sets(sets) => sets.push(roles),
        }
    }

    /// Replaces the last set pushed with its union with `roles` (a user listed twice has both lines' roles).
    fn merge_last(&mut self, roles: RoleSet) {
        let Some(last) = self.len().checked_sub(1).and_then(|at| self.get(at)) else {
            return;
        };
        self.pop();
        self.push(last.union(roles));
    }

    fn pop(&mut self) {
        match self {
            RoleColumn::Palette { index, .. } => {
                index.pop();
            }
            RoleColumn::Sets(sets) => {
                sets.pop();
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            RoleColumn::Palette { index, .. } => index.len(),
            RoleColumn::Sets(sets) => sets.len(),
        }
    }

    fn shrink_to_fit(&mut self) {
        match self {
            RoleColumn::Palette { sets, index } => {
                sets.shrink_to_fit();
                index.shrink_to_fit();
            }
            RoleColumn::Sets(sets) => sets.shrink_to_fit(),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            RoleColumn::Palette { sets, index } => sets.len() * size_of::<RoleSet>() + index.len(),
            RoleColumn::Sets(sets) => sets.len() * size_of::<RoleSet>(),
        }
    }
}

// === impl ShardBuilder ===

/// A shard being read: its users' keys and roles in file order, duplicates included, until [`ShardBuilder::build`]
/// sorts them. Sized by the first read of a reload, so the second read never grows it.
struct ShardBuilder {
    keys: Vec<Key>,
    roles: RoleColumn,
}

impl ShardBuilder {
    fn with_capacity(users: usize) -> Self {
        ShardBuilder {
            keys: Vec::with_capacity(users),
            roles: RoleColumn::with_capacity(users),
        }
    }

    fn add(&mut self, key: Key, roles: RoleSet) -> Result<(), TableFull> {
        if u32::try_from(self.keys.len() + 1).is_err() {
            return Err(TableFull);
        }
        self.keys.push(key);
        self.roles.push(roles);
        Ok(())
    }

    /// The shard: keys sorted, a user listed twice merged into one key with both lines' roles, and the directory.
    fn build(self, digest: ShardDigest) -> Shard {
        // `add` keeps the count within u32.
        let mut order: Vec<u32> = (0..self.keys.len() as u32).collect();
        order.sort_unstable_by_key(|&at| self.keys.get(at as usize).copied());
        let mut keys: Vec<Key> = Vec::with_capacity(order.len());
        let mut roles = RoleColumn::with_capacity(order.len());
        for at in order {
            let at = at as usize;
            let (Some(&key), Some(set)) = (self.keys.get(at), self.roles.get(at)) else {
                continue;
            };
            if keys.last() == Some(&key) {
                roles.merge_last(set);
            } else {
                keys.push(key);
                roles.push(set);
            }
        }
        keys.shrink_to_fit();
        roles.shrink_to_fit();
        let buckets = (keys.len() / USERS_PER_BUCKET).next_power_of_two();
        let bucket_bits = buckets.trailing_zeros().min(MAX_BUCKET_BITS);
        // Counts per bucket, then where each starts (the keys are sorted, so each bucket's keys are contiguous).
        let mut starts = vec![0u32; (1 << bucket_bits) + 1];
        for key in &keys {
            if let Some(count) = starts.get_mut(key.bucket(bucket_bits) + 1) {
                *count += 1;
            }
        }
        let mut sum = 0;
        for start in &mut starts {
            sum += *start;
            *start = sum;
        }
        Shard {
            keys: keys.into_boxed_slice(),
            roles,
            starts: starts.into_boxed_slice(),
            bucket_bits,
            digest,
        }
    }
}

// === impl TablePass ===

/// One read of `users.csv`'s user lines, in file order: it computes every shard's digest, and builds the shards it
/// was asked to build.
pub(crate) struct TablePass {
    digests: Vec<Sha256>,
    /// Lines per shard, to size a later pass's shards exactly.
    sizes: Vec<usize>,
    /// The shards being built; `None` for a shard this pass does not build.
    built: Vec<Option<ShardBuilder>>,
}

/// What a [`TablePass`] found.
pub(crate) struct PassResult {
    digests: Vec<ShardDigest>,
    sizes: Vec<usize>,
    built: Vec<Option<ShardBuilder>>,
}

impl PartialEq for PassResult {
    /// Two passes agree when they found the same lines in every shard (whatever they built).
    fn eq(&self, other: &Self) -> bool {
        self.digests == other.digests
    }
}

impl TablePass {
    fn new(built: Vec<Option<ShardBuilder>>) -> Self {
        TablePass {
            digests: vec![Sha256::new(); SHARDS],
            sizes: vec![0; SHARDS],
            built,
        }
    }

    /// A pass that builds every shard, for about `users` users.
    pub(crate) fn building_all(users: usize) -> Self {
        let users = users / SHARDS;
        Self::new(
            (0..SHARDS)
                .map(|_| Some(ShardBuilder::with_capacity(users)))
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
                .map(|(changed, users)| changed.then(|| ShardBuilder::with_capacity(*users)))
                .collect(),
        )
    }

    /// One user line: its normalised id and roles.
    pub(crate) fn add(&mut self, id: &str, roles: RoleSet) -> Result<(), TableFull> {
        let fingerprint = Fingerprint::of(id);
        let shard = fingerprint.shard();
        if let Some(digest) = self.digests.get_mut(shard) {
            // The id's length first, so that no two sequences of lines hash alike.
            digest.update((id.len() as u64).to_le_bytes());
            digest.update(id.as_bytes());
            digest.update(roles.bits().to_le_bytes());
        }
        if let Some(users) = self.sizes.get_mut(shard) {
            *users += 1;
        }
        match self.built.get_mut(shard) {
            Some(Some(builder)) => builder.add(fingerprint.key(), roles),
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
        let mut pass = TablePass::building_all(lines.len());
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

    /// The table finds what a map of the lines finds: every listed id with the union of its lines' roles, and no
    /// other id. Ids are listed up to several times, in any order; the role sets are mostly a few (every shard then
    /// keeps palette indexes), or mostly any of 2^64 (every shard then keeps full sets).
    #[test]
    fn looks_up_as_a_map_of_the_lines() {
        for (any_set_in, wide_shards) in [(8, 0), (2, SHARDS)] {
            let mut state = 0x2545_f491_4f6c_dd1d_u64;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let mut lines = Vec::new();
            for _ in 0..200_000 {
                let id = format!("@u{}:s{}.example", next() % 100_000, next() % 7);
                let bits = if next() % any_set_in == 0 {
                    next()
                } else {
                    1 << (next() % 6)
                };
                lines.push((id, RoleSet::from_bits(bits)));
            }
            let mut model: std::collections::HashMap<&str, RoleSet> = Default::default();
            for (id, roles) in &lines {
                let merged = model.get(id.as_str()).map_or(*roles, |r| r.union(*roles));
                model.insert(id, merged);
            }
            let lines: Vec<(&str, RoleSet)> =
                lines.iter().map(|(id, r)| (id.as_str(), *r)).collect();
            let table = table(&lines);
            assert_eq!(table.len(), model.len());
            for (id, roles) in &model {
                assert_eq!(table.get(id), Some(*roles), "{id}");
            }
            for n in 0..100_000 {
                let absent = format!("@u{n}:s7.example");
                assert_eq!(table.get(&absent), None, "{absent}");
            }
            let wide = table
                .shards
                .iter()
                .filter(|s| matches!(s.roles, RoleColumn::Sets(_)))
                .count();
            assert_eq!(wide, wide_shards, "one set in {any_set_in} drawn from 2^64");
        }
    }

    /// A shard's column of roles turns from palette indexes into full sets at its 257th distinct set, keeping
    /// every set pushed before; merging a duplicate's roles works in either form.
    #[test]
    fn a_role_column_outgrows_its_palette() {
        let mut column = RoleColumn::with_capacity(0);
        for bits in 0..300u64 {
            column.push(RoleSet::default());
            column.push(RoleSet::from_bits(bits));
            assert_eq!(
                matches!(column, RoleColumn::Sets(_)),
                bits >= 256,
                "at {bits}"
            );
        }
        column.merge_last(RoleSet::from_bits(1 << 40));
        for bits in 0..300u64 {
            let at = bits as usize * 2;
            assert_eq!(column.get(at), Some(RoleSet::default()));
            let last = if bits == 299 { bits | 1 << 40 } else { bits };
            assert_eq!(column.get(at + 1), Some(RoleSet::from_bits(last)));
        }
        assert_eq!(column.get(600), None);
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
