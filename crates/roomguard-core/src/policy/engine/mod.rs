//! The rule engine: rules compiled into a typed evaluator, and casbin for whatever that evaluator does not cover.
//!
//! The policy is the authors' casbin files, and its meaning is casbin's: `m = r.act == p.act && eval(p.cond)` with
//! roomguard's collect-all effector ([`CollectAll`]: casbin stops at the first settling row, so a plain `enforce_ex`
//! names one violated rule at most, and roomguard must name every one). The effect is then computed by the caller
//! with deny-overrides semantics, which is exactly what the model's
//! `some(where (p.eft == allow)) && !some(where (p.eft == deny))` means.
//!
//! Asking casbin costs about a microsecond per rule row (it copies the request's maps for each row and walks rhai's
//! AST), so a policy of 10,000 rules took 10 ms a decision. When the model's matcher is exactly
//! `r.act == p.act && eval(p.cond)`, each rule's condition is compiled once, at load, into a typed expression over
//! the request's attributes (`condition`): those rules are evaluated in Rust, and indexed by the attribute values
//! they require (`index`), so a decision looks at the few rules that can hold. A rule whose condition the compiler
//! does not cover (function calls, arithmetic, `in`, mismatched kinds...) stays with casbin: each action keeps an
//! enforcer holding only such rules, compiled into one matcher (`switch p.id { "id" => (condition), ... }`, or the
//! plain `eval` when a condition holds `#` or `\\`, which casbin's model parser would read as a comment or a line
//! continuation), and asked only when it has rows. A model with any other matcher is left to casbin whole.
//! `tests/engine_agreement.rs` compares this engine with casbin's literal model on random requests on every build.
//!
//! Each action has its own rules, so a message send never looks at publish rules. An engine is immutable once built,
//! so one snapshot serves every task without a lock.

pub mod attributes;
pub(crate) mod check;
pub(crate) mod condition;
pub(crate) mod index;
pub(crate) mod names;

use casbin::{
    CoreApi, DefaultModel, EffectKind, Effector, EffectorStream, Enforcer, MemoryAdapter, MgmtApi,
    Model,
};

use crate::{
    domain::{decision::Effect, request::Action},
    policy::{
        engine::{attributes::Attributes, index::Index},
        rules::Rule,
    },
};

/// The only effect expression roomguard evaluates (casbin-rs panics on the ones it does not know; roomguard refuses
/// them at load instead).
pub const SUPPORTED_EFFECT: &str = "some(where (p.eft == allow)) && !some(where (p.eft == deny))";

/// The policy definition every model must declare, in this order: `rules.csv` columns map onto it.
pub const POLICY_TOKENS: [&str; 5] = ["id", "act", "cond", "eft", "code"];

/// A rule whose matcher held for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// The rule's id.
    pub rule: String,
    /// Its effect.
    pub effect: Effect,
    /// Its reason code.
    pub code: String,
}

/// Evaluating the policy failed for this request (a condition raised a type error, say).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The model text was refused by the engine.
    #[error("the model does not load: {0}")]
    Model(String),
    /// The rule lines were refused by the engine.
    #[error("the rules do not load: {0}")]
    Rules(String),
    /// A request could not be evaluated (a condition failed at run time).
    #[error("policy evaluation failed: {0}")]
    Evaluation(String),
}

/// The compiled policy: each action's rules, typed and indexed, and casbin for the rest.
pub struct Engine {
    actions: [Option<ActionRules>; Action::ALL.len()],
}

/// The rules of one action.
struct ActionRules {
    /// Every rule of the action, in file order: what a match reports.
    rules: Vec<Matched>,
    /// The rules compiled into typed conditions.
    typed: Index,
    /// The rules casbin evaluates, if any.
    casbin: Option<CasbinRules>,
}

/// An enforcer holding some of an action's rules, and each row's position among the action's rules.
struct CasbinRules {
    enforcer: Enforcer,
    positions: Vec<u32>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// How an engine's rules are evaluated (see [`Engine::shape`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// Typed rules evaluated on every decision of their action.
    pub scanned: usize,
    /// Typed rules found by the value of an attribute.
    pub indexed: usize,
    /// Rules casbin evaluates.
    pub casbin: usize,
}

impl Engine {
    /// Builds the engine from the model text, the rules and the policy's declared roles (`r.role.<name>` reads role
    /// number `i` of `roles`, as [`Attributes`] records them). The model must already have passed
    /// [`crate::policy`]'s checks (request and policy tokens, supported effect).
    pub async fn build(
        model: &str,
        rules: &[Rule],
        roles: &[String],
    ) -> Result<Engine, EngineError> {
        Self::assemble(model, rules, roles, Conditions::Typed).await
    }

    /// [`Engine::build`], choosing how conditions are evaluated (tests and benchmarks compare them). No roles are
    /// known here, so with [`Conditions::Typed`] a rule naming a role is left to casbin.
    pub async fn build_with(
        model: &str,
        rules: &[Rule],
        conditions: Conditions,
    ) -> Result<Engine, EngineError> {
        Self::assemble(model, rules, &[], conditions).await
    }

    async fn assemble(
        model: &str,
        rules: &[Rule],
        roles: &[String],
        conditions: Conditions,
    ) -> Result<Engine, EngineError> {
        let typed = conditions == Conditions::Typed && is_plain_matcher(model).await?;
        let mut actions: [Option<ActionRules>; Action::ALL.len()] = Default::default();
        for (slot, action) in actions.iter_mut().zip(Action::ALL) {
            let rules: Vec<&Rule> = rules.iter().filter(|r| r.action == action).collect();
            if rules.is_empty() {
                continue;
            }
            let mut compiled = Vec::new();
            let mut left: Vec<&Rule> = Vec::new();
            let mut positions = Vec::new();
            for (position, rule) in (0u32..).zip(&rules) {
                match typed.then(|| condition::compile(&rule.condition, roles)) {
                    Some(Ok(condition)) => compiled.push((position, condition)),
                    _ => {
                        left.push(rule);
                        positions.push(position);
                    }
                }
            }
            let casbin = if left.is_empty() {
                None
            } else {
                let model = match conditions {
                    Conditions::Eval => model.to_owned(),
                    Conditions::Typed | Conditions::Matcher => compile_conditions(model, &left),
                };
                let rows = left.iter().map(|r| r.policy_values()).collect();
                Some(CasbinRules {
                    enforcer: enforcer(&model, rows).await?,
                    positions,
                })
            };
            *slot = Some(ActionRules {
                rules: rules
                    .iter()
                    .map(|r| Matched {
                        rule: r.id.clone(),
                        effect: r.effect,
                        code: r.code.clone(),
                    })
                    .collect(),
                typed: Index::build(compiled),
                casbin,
            });
        }
        Ok(Engine { actions })
    }

    /// Every rule of `action` whose condition holds for `attributes`, in file order.
    pub fn evaluate(
        &self,
        action: Action,
        attributes: &Attributes<'_>,
    ) -> Result<Vec<Matched>, EngineError> {
        let Some(rules) = &self.actions[action as usize] else {
            return Ok(Vec::new());
        };
        let mut positions = Vec::new();
        rules.typed.matching(attributes, &mut positions);
        if let Some(casbin) = &rules.casbin {
            let (_, rows) = casbin
                .enforcer
                .enforce_ex(attributes.to_casbin())
                .map_err(|e| EngineError::Evaluation(e.to_string()))?;
            positions.extend(rows.iter().filter_map(|row| {
                let id = row.first()?;
                let position = casbin
                    .positions
                    .iter()
                    .copied()
                    .find(|p| rules.rules.get(*p as usize).is_some_and(|m| &m.rule == id))?;
                Some(position)
            }));
        }
        // File order; a rule two of whose triggers fired is reported once.
        positions.sort_unstable();
        positions.dedup();
        Ok(positions
            .into_iter()
            .filter_map(|p| rules.rules.get(p as usize).cloned())
            .collect())
    }

    /// How the rules are evaluated: typed and scanned, typed and indexed, or by casbin.
    pub fn shape(&self) -> Shape {
        let mut shape = Shape::default();
        for rules in self.actions.iter().flatten() {
            let (scanned, indexed) = rules.typed.shape();
            shape.scanned += scanned;
            shape.indexed += indexed;
            shape.casbin += rules.casbin.as_ref().map_or(0, |c| c.positions.len());
        }
        shape
    }
}

/// How rule conditions are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conditions {
    /// Compiled into typed expressions where the compiler covers them, casbin for the rest: the default.
    Typed,
    /// casbin only, conditions compiled once into the matcher (`switch p.id { ... }`).
    Matcher,
    /// casbin only, each condition evaluated per row with `eval(p.cond)`, exactly as the model file says.
    Eval,
}

/// Whether the model's matcher is `r.act == p.act && eval(p.cond)` (either way round), the only one whose meaning
/// the typed evaluator reproduces. The matcher is read as casbin reads it (comments removed, `r.` rewritten).
pub(crate) async fn is_plain_matcher(model: &str) -> Result<bool, EngineError> {
    let model = DefaultModel::from_str(model)
        .await
        .map_err(|e| EngineError::Model(e.to_string()))?;
    let Some(matcher) = model.get_model().get("m").and_then(|m| m.get("m")) else {
        return Ok(false);
    };
    let squashed: String = matcher.value.split_whitespace().collect();
    Ok(["r_act==p_act&&eval(p_cond)", "eval(p_cond)&&r_act==p_act"].contains(&squashed.as_str()))
}

/// The model with `eval(p.cond)` replaced by a `switch` over the rule ids holding each rule's condition.
fn compile_conditions(model: &str, rules: &[&Rule]) -> String {
    if rules.iter().any(|r| r.condition.contains(['#', '\\'])) {
        return model.to_owned();
    }
    let mut switch = String::from("(switch p.id { ");
    for rule in rules {
        // Ids are `[a-z0-9._-]`, so they need no escaping inside the string literal.
        switch.push_str(&format!("\"{}\" => ({}), ", rule.id, rule.condition));
    }
    switch.push_str("_ => false })");
    model.replace("eval(p.cond)", &switch)
}

/// An enforcer holding `rows`, with the collect-all effector.
pub async fn enforcer(model: &str, rows: Vec<Vec<String>>) -> Result<Enforcer, EngineError> {
    let model = DefaultModel::from_str(model)
        .await
        .map_err(|e| EngineError::Model(e.to_string()))?;
    let mut enforcer = Enforcer::new(model, MemoryAdapter::default())
        .await
        .map_err(|e| EngineError::Model(e.to_string()))?;
    enforcer.set_effector(Box::new(CollectAll));
    enforcer
        .add_policies(rows)
        .await
        .map_err(|e| EngineError::Rules(e.to_string()))?;
    Ok(enforcer)
}

/// An effector that never stops early and remembers every row that matched with `allow` or `deny`.
pub struct CollectAll;

impl Effector for CollectAll {
    fn new_stream(&self, _expr: &str, cap: usize) -> Box<dyn EffectorStream> {
        Box::new(CollectAllStream {
            index: 0,
            allowed: false,
            denied: false,
            hits: Vec::with_capacity(cap.min(16)),
        })
    }
}

struct CollectAllStream {
    index: usize,
    allowed: bool,
    denied: bool,
    hits: Vec<usize>,
}

impl EffectorStream for CollectAllStream {
    fn next(&self) -> bool {
        self.allowed && !self.denied
    }

    fn explain(&self) -> Option<Vec<usize>> {
        Some(self.hits.clone())
    }

    fn push_effect(&mut self, eft: EffectKind) -> bool {
        match eft {
            EffectKind::Allow => {
                self.allowed = true;
                self.hits.push(self.index);
            }
            EffectKind::Deny => {
                self.denied = true;
                self.hits.push(self.index);
            }
            EffectKind::Indeterminate => {}
        }
        self.index += 1;
        // Never settle early: the caller must see every violated rule.
        false
    }
}
