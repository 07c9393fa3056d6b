//! The engine decides exactly as casbin: random requests are fed both to the engine a snapshot builds (typed rules,
//! indexed, casbin for the rest) and to casbin alone with the model's literal `eval(p.cond)` per row, and the rules
//! that match (ids, in file order) must be the same, or both must fail.
//!
//! Requests are random records over every attribute of the schema (and every role): text attributes take the
//! literals the rules use (as written and as casbin rewrites them), near misses and random strings; integers take
//! the literals, their neighbours, zero and the extremes; booleans either value. The generator is seeded, so a
//! failure names the seed and the case to replay.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use std::path::Path;

use roomguard::{
    domain::request::Action,
    policy::{
        POLICY_FILES, PolicySnapshot,
        engine::{
            Conditions, Engine, Shape,
            attributes::{Attributes, Kind, SCHEMA, Value},
        },
    },
};

/// splitmix64: a small seeded generator, so a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Values requests draw from: the rules' literals and their neighbours.
struct Pool {
    texts: Vec<String>,
    integers: Vec<i32>,
}

impl Pool {
    fn from_conditions<'a>(conditions: impl Iterator<Item = &'a str>, rng: &mut Rng) -> Pool {
        let mut texts: Vec<String> =
            vec![String::new(), "x".into(), "send".into(), "publish".into()];
        let mut integers: Vec<i32> = vec![0, 1, -1, i32::MIN, i32::MAX];
        for condition in conditions {
            let mut parts = condition.split('"');
            let mut outside = parts.next();
            while let (Some(before), Some(literal)) = (outside, parts.next()) {
                integers.extend(integer_literals(before));
                texts.push(literal.to_owned());
                // casbin compares with the literal as its rewrite of `r.` and `p.` left it.
                texts.push(literal.replace("r.", "r_").replace("p.", "p_"));
                texts.push(format!("{literal}x"));
                texts.push(literal.to_uppercase());
                outside = parts.next();
            }
            if let Some(rest) = outside {
                integers.extend(integer_literals(rest));
            }
        }
        for _ in 0..8 {
            let len = rng.below(6);
            texts.push(
                (0..len)
                    .map(|_| *rng.pick(&['a', 'b', '@', ':', '.', 'é']))
                    .collect(),
            );
        }
        let near: Vec<i32> = integers
            .iter()
            .flat_map(|v| [v.saturating_sub(1), *v, v.saturating_add(1)])
            .collect();
        Pool {
            texts,
            integers: near,
        }
    }
}

fn integer_literals(text: &str) -> Vec<i32> {
    text.split(|c: char| !c.is_ascii_digit() && c != '-')
        .filter_map(|t| t.parse().ok())
        .collect()
}

/// A random request of `action`.
fn random_attributes<'a>(
    rng: &mut Rng,
    action: Action,
    pool: &'a Pool,
    roles: &'a [String],
) -> Attributes<'a> {
    let mut attributes = Attributes::blank(action, roles);
    for (object, field, kind, _) in SCHEMA {
        for object in [*object, if *object == "room" { "next" } else { *object }] {
            let value = match kind {
                Kind::Text => Value::Text(rng.pick(&pool.texts).as_str()),
                Kind::Integer => Value::Integer(*rng.pick(&pool.integers)),
                Kind::Bool => Value::Bool(rng.chance(50)),
            };
            assert!(attributes.set(object, field, value), "r.{object}.{field}");
        }
    }
    for role in roles {
        assert!(attributes.set("role", role, Value::Bool(rng.chance(40))));
    }
    attributes
}

/// A copy of the shipped policy whose rules.csv is `rules` (the shipped rules, when `None`).
fn policy_dir(rules: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in POLICY_FILES {
        let from = Path::new("policies").join(name);
        if from.exists() {
            std::fs::copy(&from, dir.path().join(name)).unwrap();
        }
    }
    if let Some(rules) = rules {
        let shipped = std::fs::read_to_string("policies/rules.csv").unwrap();
        std::fs::write(dir.path().join("rules.csv"), format!("{shipped}\n{rules}")).unwrap();
    }
    dir
}

/// Feeds `cases` random requests of every action to the snapshot's engine and to casbin's literal model, and
/// requires the same matched rules (or a failure from both). Returns the engine's shape.
fn agree(dir: &Path, cases: usize, seed: u64) -> Shape {
    let snapshot = PolicySnapshot::load(dir).unwrap_or_else(|e| panic!("{e}"));
    let model = std::fs::read_to_string(dir.join("model.conf")).unwrap();
    let casbin = futures_executor::block_on(Engine::build_with(
        &model,
        &snapshot.rules,
        Conditions::Eval,
    ))
    .unwrap();
    let mut rng = Rng(seed);
    let pool = Pool::from_conditions(
        snapshot.rules.iter().map(|r| r.condition.as_str()),
        &mut rng,
    );
    let roles = snapshot.roles.role_names();
    let (mut matches, mut failures) = (0, 0);
    for case in 0..cases {
        let action = Action::ALL[case % Action::ALL.len()];
        let attributes = random_attributes(&mut rng, action, &pool, roles);
        let ours = snapshot.engine.evaluate(action, &attributes);
        let theirs = casbin.evaluate(action, &attributes);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => {
                let a: Vec<&str> = a.iter().map(|m| m.rule.as_str()).collect();
                let b: Vec<&str> = b.iter().map(|m| m.rule.as_str()).collect();
                assert_eq!(a, b, "seed {seed}, case {case}: {attributes:?}");
                matches += a.len();
            }
            (Err(_), Err(_)) => failures += 1,
            _ => panic!("seed {seed}, case {case}: {ours:?} vs casbin {theirs:?}\n{attributes:?}"),
        }
    }
    // The comparison must have compared something: rules that hold, not only empty lists.
    assert!(
        matches > cases / 2,
        "only {matches} matches in {cases} cases"
    );
    assert!(failures < cases, "every case failed");
    snapshot.engine.shape()
}

// === Generated conditions ===

const TEXT_FIELDS: &[&str] = &[
    "r.sub.user_id",
    "r.sub.server_name",
    "r.room.join_rule",
    "r.room.access_rule",
    "r.next.join_rule",
    "r.next.history_visibility",
    "r.msg.event_type",
    "r.msg.msgtype",
    "r.state.event_type",
    "r.media.format",
    "r.act",
];
const TEXT_LITERALS: &[&str] = &[
    "public",
    "invite",
    "unrestricted",
    "",
    "m.room.message",
    "@a:r.example.org",
    "r.example.org",
    "send",
    "pdf",
    "p.x",
];
const INTEGER_FIELDS: &[&str] = &[
    "r.sub.power_level",
    "r.sub.public_joins_1h",
    "r.msg.size_kib",
    "r.msg.size_mib",
    "r.media.size_mib",
];
const BOOL_FIELDS: &[&str] = &[
    "r.room.encrypted",
    "r.room.is_public",
    "r.next.is_public",
    "r.msg.classified",
    "r.msg.has_text",
    "r.join.invited",
    "r.media.remote",
    "r.sub.server_admin",
    "r.role.agent",
    "r.role.external",
    "r.role.admin",
];
const OPERATORS: &[&str] = &["==", "!=", "<", "<=", ">", ">="];

/// A boolean atom: an attribute, a comparison (literal on either side, two attributes, two booleans), a constant.
fn atom(rng: &mut Rng) -> String {
    match rng.below(9) {
        0 | 1 => rng.pick(BOOL_FIELDS).to_string(),
        2 => format!(
            "{} {} \"{}\"",
            rng.pick(TEXT_FIELDS),
            rng.pick(OPERATORS),
            rng.pick(TEXT_LITERALS)
        ),
        3 => format!(
            "\"{}\" {} {}",
            rng.pick(TEXT_LITERALS),
            rng.pick(OPERATORS),
            rng.pick(TEXT_FIELDS)
        ),
        4 => {
            let n = *rng.pick(&[0, 1, 20, 50, 100, -5]);
            if rng.chance(50) {
                format!("{} {} {n}", rng.pick(INTEGER_FIELDS), rng.pick(OPERATORS))
            } else {
                format!("{n} {} {}", rng.pick(OPERATORS), rng.pick(INTEGER_FIELDS))
            }
        }
        5 => format!(
            "{} {} {}",
            rng.pick(TEXT_FIELDS),
            rng.pick(&["==", "!="]),
            rng.pick(TEXT_FIELDS)
        ),
        6 => format!(
            "{} {} {}",
            rng.pick(INTEGER_FIELDS),
            rng.pick(OPERATORS),
            rng.pick(INTEGER_FIELDS)
        ),
        7 => format!(
            "({}) {} ({})",
            rng.pick(BOOL_FIELDS),
            rng.pick(OPERATORS),
            rng.pick(&["true", "false", "r.room.published"])
        ),
        _ => rng.pick(&["true", "false"]).to_string(),
    }
}

/// A well-typed condition: atoms under `!`, joined by `&&` and `||` with and without parentheses (so precedence
/// decides), nested up to `depth`.
fn condition(rng: &mut Rng, depth: usize) -> String {
    let terms = 1 + rng.below(4);
    let mut out = String::new();
    for i in 0..terms {
        if i > 0 {
            let joiner: &&str = rng.pick(&[" && ", " || ", " && "]);
            out.push_str(joiner);
        }
        let term = if depth > 0 && rng.chance(30) {
            format!("({})", condition(rng, depth - 1))
        } else {
            atom(rng)
        };
        if rng.chance(20) {
            // `!` binds tighter than any comparison: `!a == b` is `(!a) == b`, so only a boolean atom may follow it bare.
            if term.starts_with('(') || BOOL_FIELDS.contains(&term.as_str()) {
                out.push('!');
                out.push_str(&term);
            } else {
                out.push_str(&format!("!({term})"));
            }
        } else {
            out.push_str(&term);
        }
    }
    out
}

/// Conditions the typed evaluator leaves to casbin, and that load (they do not fail on the load's samples).
const CASBIN_ONLY: &[&str] = &[
    // Arithmetic (division: rhai, built unchecked, panics on overflow in a debug build and the values reach the extremes).
    "r.sub.power_level / 2 > 25",
    "r.msg.size_kib % 7 == 3 || r.room.encrypted",
    "r.room.join_rule in [\"public\", \"knock\"]",
    "r.sub.power_level == r.sub.user_id",
    "50 != r.sub.user_id && r.room.is_public",
    "r.room.encrypted & r.room.published",
    "if r.room.encrypted { r.room.published } else { r.msg.classified }",
    "r.sub.power_level > 0x10",
];

/// Rules over every action: generated well-typed conditions, and one in five left to casbin.
fn generated_rules(rng: &mut Rng, count: usize) -> String {
    let mut rules = String::new();
    for i in 0..count {
        let action = rng.pick(&Action::ALL).as_str();
        let condition = if rng.chance(20) {
            rng.pick(CASBIN_ONLY).to_string()
        } else {
            condition(rng, 2)
        };
        let (effect, code) =
            *rng.pick(&[("deny", "CLASSIFIED_IN_PUBLIC_ROOM"), ("allow", "ALLOWED")]);
        rules.push_str(&format!(
            "p, gen.{i}, {action}, {condition}, {effect}, {code}\n"
        ));
    }
    rules
}

/// The shipped policy: every rule is typed, and every random request matches the same rules as under casbin.
#[test]
fn the_shipped_policy_decides_as_casbin() {
    let dir = policy_dir(None);
    let shape = agree(dir.path(), 3000, 1);
    assert_eq!(shape.casbin, 0, "{shape:?}");
}

/// Generated policies (every operator, precedence without parentheses, negation, literals on both sides, rules found
/// by equality and by threshold, scanned rules, rules left to casbin) decide as casbin.
#[test]
fn generated_policies_decide_as_casbin() {
    for seed in 0..6 {
        let mut rng = Rng(seed);
        let mut rules = generated_rules(&mut rng, 60);
        // A run of equality rules on one attribute, so that some are looked up by value.
        for i in 0..12 {
            rules.push_str(&format!(
                "p, gen.eq-{i}, send, {} == \"{}\" && {}, deny, CLASSIFIED_IN_PUBLIC_ROOM\n",
                "r.room.join_rule",
                TEXT_LITERALS[i % TEXT_LITERALS.len()],
                condition(&mut rng, 1)
            ));
        }
        // And a run of thresholds on two integers (strict or not, literal on either side), found by binary search.
        for i in 0..12 {
            let (a, b) = (
                *rng.pick(&[0, 1, 20, 50, 100, -5]),
                *rng.pick(&[0, 1, 20, 50, 100, -5]),
            );
            rules.push_str(&format!(
                "p, gen.threshold-{i}, send, r.sub.power_level {} {a} || {b} {} r.msg.size_kib, deny, CLASSIFIED_IN_PUBLIC_ROOM\n",
                rng.pick(OPERATORS),
                rng.pick(&["<", "<=", ">", ">="]),
            ));
        }
        let dir = policy_dir(Some(&rules));
        let shape = agree(dir.path(), 1500, 100 + seed);
        assert!(
            shape.casbin > 0 && shape.scanned > 0 && shape.indexed > 0,
            "seed {seed}: {shape:?}"
        );
    }
}

/// A rule that fails at run time on some requests (an integer where `&&` needs a boolean, reached only when the
/// room is `knock`) fails the decision exactly when casbin's does.
#[test]
fn failures_agree_with_casbin() {
    let rules = "p, gen.fails, send, r.room.join_rule == \"knock\" && r.sub.power_level, deny, CLASSIFIED_IN_PUBLIC_ROOM\n";
    let dir = policy_dir(Some(rules));
    let shape = agree(dir.path(), 1500, 7);
    assert_eq!(shape.casbin, 1, "{shape:?}");
}

/// The shape the benchmark measures, 10,000 more send rules (equality on the user, the room or the server, literal
/// on either side, and 1 in 100 numeric), decides as casbin; nearly all of them are looked up by value.
#[test]
fn ten_thousand_rules_decide_as_casbin() {
    let mut rules = String::new();
    for i in 0..10_000 {
        let condition = match i % 100 {
            99 => format!(
                "r.sub.power_level > {} || r.msg.size_kib > {}",
                1000 + i,
                1_000_000 + i
            ),
            n if n % 4 == 0 => {
                format!("r.sub.user_id == \"@gen{i}:gen.example\" && r.msg.classified")
            }
            n if n % 4 == 1 => {
                format!("\"@gen{i}:gen.example\" == r.sub.user_id && !r.room.encrypted")
            }
            n if n % 4 == 2 => {
                format!(
                    "r.room.room_id == \"!gen{i}:gen.example\" && (r.role.external || r.room.is_public)"
                )
            }
            _ => format!("r.sub.server_name == \"gen{i}.example\" && r.msg.size_mib > 10"),
        };
        rules.push_str(&format!(
            "p, send.gen-{i}, send, {condition}, deny, CLASSIFIED_IN_PUBLIC_ROOM\n"
        ));
    }
    let dir = policy_dir(Some(&rules));
    let shape = agree(dir.path(), 60, 11);
    assert!(shape.indexed >= 9_900 && shape.casbin == 0, "{shape:?}");
}
