//! The casbin adapter: the only module that knows casbin.
//!
//! casbin stops evaluating as soon as the effect is settled, so a plain `enforce_ex` names one violated rule at
//! most. roomguard must name every one, so it installs its own effector, [`CollectAll`], which never settles early
//! and reports every row whose matcher held. The effect is then computed here with deny-overrides semantics (any
//! matching deny row denies; otherwise any matching allow row allows; otherwise the default deny), which is exactly
//! what the model's `some(where (p.eft == allow)) && !some(where (p.eft == deny))` means.
//!
//! Each action gets its own enforcer holding only that action's rows, so a message send never scans publish rules.
//! Enforcers are immutable once built (`enforce_ex` takes `&self`), so one snapshot serves every task without a lock.
//!
//! The model says `eval(p.cond)`: evaluate the row's condition. casbin's `eval` compiles the condition text on every
//! call, for every row, which is most of the cost of a decision. Since the rows are known when the snapshot is
//! built, the engine compiles them once instead: it hands casbin the model with `eval(p.cond)` replaced by
//! `switch p.id { "id" => (condition), ... }`, the same conditions in one matcher that casbin compiles at load. The
//! semantics are the author's (the same condition for the same row); the cost is about half (see README,
//! "Performance"). A condition holding `#` or `\\` (which casbin's model parser would read as a comment or a line
//! continuation) keeps the plain `eval` for its action.

pub(crate) mod attributes;
pub(crate) mod check;
pub(crate) mod names;

use casbin::{
    CoreApi, DefaultModel, EffectKind, Effector, EffectorStream, Enforcer, MemoryAdapter, MgmtApi,
};

use crate::{
    domain::{decision::Effect, request::Action},
    policy::{engine::attributes::Attributes, rules::Rule},
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

/// The compiled policy: one casbin enforcer per action.
pub struct Engine {
    enforcers: [Option<Enforcer>; Action::ALL.len()],
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Builds one enforcer per action from the model text and the rules. The model must already have passed
    /// [`crate::policy`]'s checks (request and policy tokens, supported effect).
    pub async fn build(model: &str, rules: &[Rule]) -> Result<Engine, EngineError> {
        Self::build_with(model, rules, Conditions::Compiled).await
    }

    /// [`Engine::build`], choosing how conditions are evaluated (tests compare the two).
    pub async fn build_with(
        model: &str,
        rules: &[Rule],
        conditions: Conditions,
    ) -> Result<Engine, EngineError> {
        let mut enforcers: [Option<Enforcer>; Action::ALL.len()] = Default::default();
        for (slot, action) in enforcers.iter_mut().zip(Action::ALL) {
            let rules: Vec<&Rule> = rules.iter().filter(|r| r.action == action).collect();
            if rules.is_empty() {
                continue;
            }
            let model = match conditions {
                Conditions::Compiled => compile_conditions(model, &rules),
                Conditions::Eval => model.to_owned(),
            };
            let rows = rules.iter().map(|r| r.policy_values()).collect();
            *slot = Some(enforcer(&model, rows).await?);
        }
        Ok(Engine { enforcers })
    }

    /// Every rule of `action` whose condition holds for `attributes`, in file order.
    pub fn evaluate(
        &self,
        action: Action,
        attributes: Attributes,
    ) -> Result<Vec<Matched>, EngineError> {
        let Some(enforcer) = &self.enforcers[action as usize] else {
            return Ok(Vec::new());
        };
        let (_, rows) = enforcer
            .enforce_ex(attributes)
            .map_err(|e| EngineError::Evaluation(e.to_string()))?;
        Ok(rows.into_iter().filter_map(matched).collect())
    }
}

/// How rule conditions reach casbin's expression engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conditions {
    /// Compiled once into the matcher (`switch p.id { ... }`): the default.
    Compiled,
    /// Evaluated per row with `eval(p.cond)`, exactly as the model file says.
    Eval,
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

fn matched(row: Vec<String>) -> Option<Matched> {
    let [rule, _act, _cond, eft, code]: [String; 5] = row.try_into().ok()?;
    let effect = match eft.as_str() {
        "allow" => Effect::Allow,
        "deny" => Effect::Deny,
        _ => return None,
    };
    Some(Matched { rule, effect, code })
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
