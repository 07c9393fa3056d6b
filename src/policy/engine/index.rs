//! The compiled rules of one action, indexed so that a decision looks at the few rules that can hold.
//!
//! A rule whose condition is a conjunction holds only if each conjunct does. When one conjunct tests an attribute
//! for equality with a literal (`r.sub.user_id == "@u:x"`, the literal on either side, integers too) or is a boolean
//! attribute or role, alone or negated (`r.msg.classified`, `!r.room.encrypted`), the rule goes into a bucket keyed
//! on that value, and a decision reads the request's value and looks at that bucket only. Compiled conditions cannot
//! fail (see `condition`), so a rule that is not looked at is exactly a rule that does not hold.
//!
//! Looking a value up costs a hash (about as much as evaluating a few small conditions), so a lookup is only built
//! for an attribute that keys at least [`MIN_BUCKETED`] rules; the others are evaluated one by one, as are rules
//! without such a conjunct. Matches are returned by their position in the file, which the caller sorts.

use std::collections::HashMap;

use crate::policy::engine::{
    attributes::Attributes,
    condition::{Cmp, Condition, Integer, Text},
};

/// Fewer rules keyed on one attribute than this are evaluated one by one.
pub(crate) const MIN_BUCKETED: usize = 8;

/// A rule's position among its action's rules (file order) and its condition.
type Entry = (u32, Condition);

/// The compiled rules of one action.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Rules evaluated on every decision, in file order.
    scan: Vec<Entry>,
    /// Rules found by the value of one attribute.
    lookups: Vec<Lookup>,
}

#[derive(Debug)]
enum Lookup {
    Text {
        slot: usize,
        buckets: HashMap<Box<str>, Vec<Entry>>,
    },
    Integer {
        slot: usize,
        buckets: HashMap<i32, Vec<Entry>>,
    },
    /// Indexed by the value (`false`, `true`).
    Flag {
        slot: usize,
        buckets: [Vec<Entry>; 2],
    },
    /// Indexed by whether the role is held.
    Role {
        index: usize,
        buckets: [Vec<Entry>; 2],
    },
}

/// Which attribute a key reads: equal probes share one lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Probe {
    Text(usize),
    Integer(usize),
    Flag(usize),
    Role(usize),
}

impl Probe {
    /// Equality on a text or an integer singles out a few rules; a boolean only halves them.
    fn selective(self) -> bool {
        matches!(self, Probe::Text(_) | Probe::Integer(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Text(Box<str>),
    Integer(i32),
    Bool(bool),
}

/// The attribute and value a conjunct requires, if it is an equality the index can look up.
fn key(conjunct: &Condition) -> Option<(Probe, Key)> {
    use Condition as C;
    match conjunct {
        C::Texts(Cmp::Eq, Text::Attribute(s), Text::Literal(v))
        | C::Texts(Cmp::Eq, Text::Literal(v), Text::Attribute(s)) => {
            Some((Probe::Text(*s), Key::Text(v.clone())))
        }
        C::Integers(Cmp::Eq, Integer::Attribute(s), Integer::Literal(v))
        | C::Integers(Cmp::Eq, Integer::Literal(v), Integer::Attribute(s)) => {
            Some((Probe::Integer(*s), Key::Integer(*v)))
        }
        C::Flag(s) => Some((Probe::Flag(*s), Key::Bool(true))),
        C::Role(i) => Some((Probe::Role(*i), Key::Bool(true))),
        C::Not(inner) => match inner.as_ref() {
            C::Flag(s) => Some((Probe::Flag(*s), Key::Bool(false))),
            C::Role(i) => Some((Probe::Role(*i), Key::Bool(false))),
            _ => None,
        },
        _ => None,
    }
}

impl Index {
    /// Indexes `rules` (position, condition), given in file order.
    pub(crate) fn build(rules: Vec<Entry>) -> Index {
        // How many rules each attribute could key: a rule is filed under the most selective, most shared one.
        let mut shared: HashMap<Probe, usize> = HashMap::new();
        for (_, condition) in &rules {
            for (probe, _) in condition.conjuncts().iter().filter_map(key) {
                *shared.entry(probe).or_default() += 1;
            }
        }
        let mut chosen: Vec<Option<(Probe, Key)>> = Vec::with_capacity(rules.len());
        let mut filed: HashMap<Probe, usize> = HashMap::new();
        for (_, condition) in &rules {
            let best = condition
                .conjuncts()
                .iter()
                .filter_map(key)
                .max_by_key(|(probe, _)| (probe.selective(), shared.get(probe).copied()));
            if let Some((probe, _)) = &best {
                *filed.entry(*probe).or_default() += 1;
            }
            chosen.push(best);
        }
        let mut index = Index::default();
        let mut lookups: HashMap<Probe, Lookup> = HashMap::new();
        let mut order: Vec<Probe> = Vec::new();
        for (entry, choice) in rules.into_iter().zip(chosen) {
            let Some((probe, key)) =
                choice.filter(|(probe, _)| filed.get(probe).is_some_and(|n| *n >= MIN_BUCKETED))
            else {
                index.scan.push(entry);
                continue;
            };
            let lookup = lookups.entry(probe).or_insert_with(|| {
                order.push(probe);
                match probe {
                    Probe::Text(slot) => Lookup::Text {
                        slot,
                        buckets: HashMap::new(),
                    },
                    Probe::Integer(slot) => Lookup::Integer {
                        slot,
                        buckets: HashMap::new(),
                    },
                    Probe::Flag(slot) => Lookup::Flag {
                        slot,
                        buckets: Default::default(),
                    },
                    Probe::Role(index) => Lookup::Role {
                        index,
                        buckets: Default::default(),
                    },
                }
            });
            match (lookup, key) {
                (Lookup::Text { buckets, .. }, Key::Text(v)) => {
                    buckets.entry(v).or_default().push(entry)
                }
                (Lookup::Integer { buckets, .. }, Key::Integer(v)) => {
                    buckets.entry(v).or_default().push(entry)
                }
                (Lookup::Flag { buckets, .. } | Lookup::Role { buckets, .. }, Key::Bool(v)) => {
                    buckets[usize::from(v)].push(entry)
                }
                // A probe's kind decides its key's kind; this arm only keeps the match total.
                (_, _) => index.scan.push(entry),
            }
        }
        index.lookups = order
            .into_iter()
            .filter_map(|probe| lookups.remove(&probe))
            .collect();
        index
    }

    /// Pushes the position of every rule whose condition holds for `r` (not in order).
    pub(crate) fn matching(&self, r: &Attributes<'_>, out: &mut Vec<u32>) {
        let mut check = |entries: &[Entry]| {
            for (position, condition) in entries {
                if condition.holds(r) {
                    out.push(*position);
                }
            }
        };
        check(&self.scan);
        for lookup in &self.lookups {
            let bucket = match lookup {
                Lookup::Text { slot, buckets } => buckets.get(r.text(*slot)),
                Lookup::Integer { slot, buckets } => buckets.get(&r.integer(*slot)),
                Lookup::Flag { slot, buckets } => buckets.get(usize::from(r.flag(*slot))),
                Lookup::Role { index, buckets } => buckets.get(usize::from(r.role(*index))),
            };
            if let Some(bucket) = bucket {
                check(bucket);
            }
        }
    }

    /// How many rules are evaluated on every decision, and how many are found by value.
    pub(crate) fn shape(&self) -> (usize, usize) {
        let bucketed = self
            .lookups
            .iter()
            .map(|l| match l {
                Lookup::Text { buckets, .. } => buckets.values().map(Vec::len).sum::<usize>(),
                Lookup::Integer { buckets, .. } => buckets.values().map(Vec::len).sum::<usize>(),
                Lookup::Flag { buckets, .. } | Lookup::Role { buckets, .. } => {
                    buckets.iter().map(Vec::len).sum()
                }
            })
            .sum();
        (self.scan.len(), bucketed)
    }
}
