//! The compiled rules of one action, indexed so that a decision looks at the few rules that can hold.
//!
//! Each rule gets, when it can, a set of triggers: simple facts about one attribute, at least one of which holds
//! whenever the rule's condition holds. A conjunction takes the triggers of one of its conjuncts; a disjunction the
//! triggers of all its operands; an attribute equal to a literal (`r.sub.user_id == "@u:x"`, either side, integers
//! too), a boolean attribute or role alone or negated (`r.msg.classified`, `!r.room.encrypted`), and an integer
//! attribute compared with a literal (`r.sub.power_level < 50`) are triggers of their own. A decision reads the
//! request's value of each indexed attribute, fires the triggers that hold (one hash look-up for equalities, two
//! binary searches for thresholds) and evaluates only their rules. Compiled conditions cannot fail (see
//! `condition`), so a rule that is not evaluated is exactly a rule that does not hold.
//!
//! Firing a trigger costs about as much as evaluating a few small conditions, so an attribute is only indexed when
//! at least [`MIN_INDEXED`] rules have a trigger on it; the other rules (and those with no triggers, like `true`)
//! are evaluated one by one. Matches are returned by their position in the file, possibly twice (a rule two of whose
//! triggers fired); the caller sorts and deduplicates them.

use std::collections::HashMap;

use crate::policy::engine::{
    attributes::Attributes,
    condition::{Cmp, Condition, Integer, Text},
};

/// Fewer rules with triggers on one attribute than this are evaluated one by one.
pub(crate) const MIN_INDEXED: usize = 8;

/// A rule's position among its action's rules (file order) and its condition.
type Entry = (u32, Condition);

/// The compiled rules of one action.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Rules evaluated on every decision, in file order.
    scan: Vec<Entry>,
    /// Rules evaluated when one of their triggers fires.
    indexed: Vec<Entry>,
    /// The triggers, by attribute; each names rules of `indexed`.
    lookups: Vec<Lookup>,
}

#[derive(Debug)]
enum Lookup {
    Text {
        slot: usize,
        equal: HashMap<Box<str>, Vec<u32>>,
    },
    Integer {
        slot: usize,
        equal: HashMap<i32, Vec<u32>>,
        /// `value >= t`, by ascending `t`.
        at_least: Vec<(i32, u32)>,
        /// `value <= t`, by ascending `t`.
        at_most: Vec<(i32, u32)>,
    },
    /// By the value (`false`, `true`).
    Flag { slot: usize, rules: [Vec<u32>; 2] },
    /// By whether the role is held.
    Role { index: usize, rules: [Vec<u32>; 2] },
}

/// Which attribute a trigger reads: triggers on one attribute share a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Probe {
    Text(usize),
    Integer(usize),
    Flag(usize),
    Role(usize),
}

/// A fact about one attribute that holds whenever some part of a condition holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Trigger {
    TextEq(usize, Box<str>),
    IntegerEq(usize, i32),
    AtLeast(usize, i32),
    AtMost(usize, i32),
    Flag(usize, bool),
    Role(usize, bool),
}

impl Trigger {
    fn probe(&self) -> Probe {
        match self {
            Trigger::TextEq(s, _) => Probe::Text(*s),
            Trigger::IntegerEq(s, _) | Trigger::AtLeast(s, _) | Trigger::AtMost(s, _) => {
                Probe::Integer(*s)
            }
            Trigger::Flag(s, _) => Probe::Flag(*s),
            Trigger::Role(i, _) => Probe::Role(*i),
        }
    }

    /// Equalities single out a few rules; a threshold or a boolean may fire for many.
    fn selective(&self) -> bool {
        matches!(self, Trigger::TextEq(..) | Trigger::IntegerEq(..))
    }
}

/// Triggers of which at least one holds whenever `c` holds (none at all: `c` never holds), if `c` has such a set.
fn triggers(c: &Condition) -> Option<Vec<Trigger>> {
    use Condition as C;
    match c {
        C::Constant(false) => Some(Vec::new()),
        C::Flag(s) => Some(vec![Trigger::Flag(*s, true)]),
        C::Role(i) => Some(vec![Trigger::Role(*i, true)]),
        C::Not(inner) => match inner.as_ref() {
            C::Flag(s) => Some(vec![Trigger::Flag(*s, false)]),
            C::Role(i) => Some(vec![Trigger::Role(*i, false)]),
            _ => None,
        },
        C::Texts(Cmp::Eq, Text::Attribute(s), Text::Literal(v))
        | C::Texts(Cmp::Eq, Text::Literal(v), Text::Attribute(s)) => {
            Some(vec![Trigger::TextEq(*s, v.clone())])
        }
        C::Integers(op, Integer::Attribute(s), Integer::Literal(v)) => threshold(*op, *s, *v),
        C::Integers(op, Integer::Literal(v), Integer::Attribute(s)) => {
            // `v < attribute` is `attribute > v`.
            let flipped = match op {
                Cmp::Lt => Cmp::Gt,
                Cmp::Le => Cmp::Ge,
                Cmp::Gt => Cmp::Lt,
                Cmp::Ge => Cmp::Le,
                same => *same,
            };
            threshold(flipped, *s, *v)
        }
        // One conjunct's triggers will do: the most selective, then the fewest.
        C::All(cs) => cs
            .iter()
            .filter_map(triggers)
            .max_by_key(|t| (t.iter().all(Trigger::selective), std::cmp::Reverse(t.len()))),
        // Each operand may be the one that holds: all their triggers.
        C::Any(cs) => cs.iter().try_fold(Vec::new(), |mut all, c| {
            all.extend(triggers(c)?);
            Some(all)
        }),
        _ => None,
    }
}

/// The trigger of `attribute op v` (none when it never holds: `attribute > i32::MAX`).
fn threshold(op: Cmp, slot: usize, v: i32) -> Option<Vec<Trigger>> {
    let one = |t: Option<Trigger>| Some(t.into_iter().collect());
    match op {
        Cmp::Eq => one(Some(Trigger::IntegerEq(slot, v))),
        Cmp::Ge => one(Some(Trigger::AtLeast(slot, v))),
        Cmp::Gt => one(v.checked_add(1).map(|v| Trigger::AtLeast(slot, v))),
        Cmp::Le => one(Some(Trigger::AtMost(slot, v))),
        Cmp::Lt => one(v.checked_sub(1).map(|v| Trigger::AtMost(slot, v))),
        Cmp::Ne => None,
    }
}

impl Index {
    /// Indexes `rules` (position, condition), given in file order.
    pub(crate) fn build(rules: Vec<Entry>) -> Index {
        let found: Vec<Option<Vec<Trigger>>> = rules.iter().map(|(_, c)| triggers(c)).collect();
        let mut per_probe: HashMap<Probe, usize> = HashMap::new();
        for triggers in found.iter().flatten() {
            let mut probes: Vec<Probe> = triggers.iter().map(Trigger::probe).collect();
            probes.sort_unstable();
            probes.dedup();
            for probe in probes {
                *per_probe.entry(probe).or_default() += 1;
            }
        }
        let worth = |triggers: &[Trigger]| {
            triggers
                .iter()
                .all(|t| per_probe.get(&t.probe()).is_some_and(|n| *n >= MIN_INDEXED))
        };
        let mut index = Index::default();
        let mut lookups: HashMap<Probe, Lookup> = HashMap::new();
        let mut order: Vec<Probe> = Vec::new();
        for (entry, triggers) in rules.into_iter().zip(found) {
            let Some(triggers) = triggers.filter(|t| worth(t)) else {
                index.scan.push(entry);
                continue;
            };
            let Ok(at) = u32::try_from(index.indexed.len()) else {
                index.scan.push(entry);
                continue;
            };
            index.indexed.push(entry);
            for trigger in triggers {
                let probe = trigger.probe();
                let lookup = lookups.entry(probe).or_insert_with(|| {
                    order.push(probe);
                    match probe {
                        Probe::Text(slot) => Lookup::Text {
                            slot,
                            equal: HashMap::new(),
                        },
                        Probe::Integer(slot) => Lookup::Integer {
                            slot,
                            equal: HashMap::new(),
                            at_least: Vec::new(),
                            at_most: Vec::new(),
                        },
                        Probe::Flag(slot) => Lookup::Flag {
                            slot,
                            rules: Default::default(),
                        },
                        Probe::Role(index) => Lookup::Role {
                            index,
                            rules: Default::default(),
                        },
                    }
                });
                match (lookup, trigger) {
                    (Lookup::Text { equal, .. }, Trigger::TextEq(_, v)) => {
                        equal.entry(v).or_default().push(at)
                    }
                    (Lookup::Integer { equal, .. }, Trigger::IntegerEq(_, v)) => {
                        equal.entry(v).or_default().push(at)
                    }
                    (Lookup::Integer { at_least, .. }, Trigger::AtLeast(_, v)) => {
                        at_least.push((v, at))
                    }
                    (Lookup::Integer { at_most, .. }, Trigger::AtMost(_, v)) => {
                        at_most.push((v, at))
                    }
                    (Lookup::Flag { rules, .. }, Trigger::Flag(_, v))
                    | (Lookup::Role { rules, .. }, Trigger::Role(_, v)) => {
                        rules[usize::from(v)].push(at)
                    }
                    // A trigger's probe picks its lookup, so the kinds always agree; this arm keeps the match total.
                    (_, _) => {}
                }
            }
        }
        index.lookups = order
            .into_iter()
            .filter_map(|probe| lookups.remove(&probe))
            .map(|mut lookup| {
                if let Lookup::Integer {
                    at_least, at_most, ..
                } = &mut lookup
                {
                    at_least.sort_unstable();
                    at_most.sort_unstable();
                }
                lookup
            })
            .collect();
        index
    }

    /// Pushes the position of every rule whose condition holds for `r` (not in order, maybe twice).
    pub(crate) fn matching(&self, r: &Attributes<'_>, out: &mut Vec<u32>) {
        for (position, condition) in &self.scan {
            if condition.holds(r) {
                out.push(*position);
            }
        }
        let mut check = |fired: &[u32]| {
            for at in fired {
                if let Some((position, condition)) = self.indexed.get(*at as usize)
                    && condition.holds(r)
                {
                    out.push(*position);
                }
            }
        };
        for lookup in &self.lookups {
            match lookup {
                Lookup::Text { slot, equal } => {
                    if let Some(fired) = equal.get(r.text(*slot)) {
                        check(fired);
                    }
                }
                Lookup::Integer {
                    slot,
                    equal,
                    at_least,
                    at_most,
                } => {
                    let value = r.integer(*slot);
                    if let Some(fired) = equal.get(&value) {
                        check(fired);
                    }
                    let below = at_least.partition_point(|(t, _)| *t <= value);
                    for (_, at) in &at_least[..below] {
                        check(std::slice::from_ref(at));
                    }
                    let above = at_most.partition_point(|(t, _)| *t < value);
                    for (_, at) in &at_most[above..] {
                        check(std::slice::from_ref(at));
                    }
                }
                Lookup::Flag { slot, rules } => check(&rules[usize::from(r.flag(*slot))]),
                Lookup::Role { index, rules } => check(&rules[usize::from(r.role(*index))]),
            }
        }
    }

    /// How many rules are evaluated on every decision, and how many only when a trigger fires.
    pub(crate) fn shape(&self) -> (usize, usize) {
        (self.scan.len(), self.indexed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::request::Action, policy::engine::attributes::Value,
        policy::engine::condition::compile,
    };

    fn index(conditions: &[&str]) -> Index {
        let roles = vec!["agent".to_owned()];
        Index::build(
            (0u32..)
                .zip(conditions)
                .map(|(i, c)| (i, compile(c, &roles).unwrap()))
                .collect(),
        )
    }

    fn matching(index: &Index, set: &[(&str, &str, Value<'_>)]) -> Vec<u32> {
        let roles = vec!["agent".to_owned()];
        let mut r = Attributes::blank(Action::Send, &roles);
        for (o, f, v) in set {
            assert!(r.set(o, f, *v));
        }
        let mut out = Vec::new();
        index.matching(&r, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Equalities, thresholds (either side, strict or not, at the integer limits) and disjunctions are found by
    /// value, and match exactly when their conditions hold.
    #[test]
    fn triggers_find_exactly_the_rules_that_hold() {
        let mut conditions: Vec<String> = (0..10)
            .map(|i| format!("r.sub.user_id == \"@u{i}:x\" && r.msg.classified"))
            .collect();
        conditions.extend(
            (0..10).map(|i| format!("r.sub.power_level > {} || {} >= r.msg.size_kib", 10 * i, i)),
        );
        conditions.push("r.sub.power_level > 2147483647 || r.sub.power_level < -2147483648".into());
        conditions.push("true".into());
        let refs: Vec<&str> = conditions.iter().map(String::as_str).collect();
        let index = index(&refs);
        assert_eq!(index.shape(), (1, 21));
        use Value::*;
        assert_eq!(
            matching(
                &index,
                &[
                    ("sub", "user_id", Text("@u3:x")),
                    ("msg", "classified", Bool(true)),
                    ("msg", "size_kib", Integer(100))
                ]
            ),
            vec![3, 21]
        );
        // power_level 25 passes `> 0`, `> 10`, `> 20`; size_kib 7 passes `7 >=`, `8 >=`, `9 >=`.
        assert_eq!(
            matching(
                &index,
                &[
                    ("sub", "power_level", Integer(25)),
                    ("msg", "size_kib", Integer(7))
                ]
            ),
            vec![10, 11, 12, 17, 18, 19, 21]
        );
        assert_eq!(
            matching(
                &index,
                &[
                    ("sub", "power_level", Integer(i32::MIN)),
                    ("msg", "size_kib", Integer(i32::MAX))
                ]
            ),
            vec![21]
        );
    }
}
