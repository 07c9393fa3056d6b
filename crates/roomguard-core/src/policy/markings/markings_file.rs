//! `markings.toml`: the markings a policy author lists, read and checked (every problem with its line), and turned
//! into the classifier's matchers.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::policy::{
    diagnostics::{Problem, line_of},
    engine::names::is_identifier,
};

use super::banners::{Banner, Banners, MAX_BRACKETED, Term};
use super::classifier::{Classifier, Marking, NO_MARKING};
use super::normalize::{OTHER_LETTER, fold, skeleton};
use super::phrases::{LONG_PHRASE, PhraseMatcher, PhraseSpec, rn_variants};

/// The file, inside the policy directory, that lists the markings.
pub const MARKINGS_FILE: &str = "markings.toml";

/// One marking as its author wrote it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MarkingSpec {
    pub(super) label: String,
    pub(super) level: u32,
    #[serde(default)]
    phrases: Vec<String>,
    #[serde(default)]
    banners: Vec<String>,
    #[serde(default)]
    abbreviations: Vec<String>,
    /// Whether the long phrases of this marking tolerate one edit per word.
    #[serde(default = "yes")]
    misspellings: bool,
    /// Words after which this marking's phrases are part of an ordinary name (`spécial France` + `Culture`).
    #[serde(default)]
    unless_followed_by: Vec<String>,
}

pub(super) fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MarkingsFile {
    #[serde(default)]
    marking: Vec<toml::Spanned<MarkingSpec>>,
}

impl Classifier {
    /// Builds the classifier from the text of `markings.toml`.
    pub fn from_toml(text: &str) -> Result<Self, Vec<Problem>> {
        super::normalize::prepare();
        let file: MarkingsFile =
            toml::from_str(text).map_err(|e| vec![Problem::from_toml(MARKINGS_FILE, text, &e)])?;
        let mut problems = Vec::new();
        let mut markings = Vec::new();
        let mut phrase_specs = Vec::new();
        let mut banners: BTreeMap<Vec<u8>, Vec<Banner>> = BTreeMap::new();
        let mut max_banner_words = 1;
        let mut seen_phrases: HashMap<String, String> = HashMap::new();
        let mut unless_followed_by = Vec::new();
        for spanned in &file.marking {
            let line = line_of(text, spanned.span().start);
            let spec = spanned.get_ref();
            let problem = |m: String| Problem::at(MARKINGS_FILE, line, m);
            if !is_identifier(&spec.label) || spec.label == NO_MARKING {
                problems.push(problem(format!(
                    "label `{}` must be lowercase letters, digits and `_`, start with a letter, and not be `none`",
                    spec.label
                )));
            }
            if markings.iter().any(|m: &Marking| m.label == spec.label) {
                problems.push(problem(format!(
                    "label `{}` is defined twice; merge the two entries",
                    spec.label
                )));
            }
            if spec.phrases.is_empty() && spec.banners.is_empty() && spec.abbreviations.is_empty() {
                problems.push(problem(format!(
                    "marking `{}` has no phrases, banners or abbreviations",
                    spec.label
                )));
            }
            let index = markings.len();
            markings.push(Marking {
                label: spec.label.clone(),
                level: spec.level,
            });
            for phrase in &spec.phrases {
                let folded = fold(phrase);
                let skel = skeleton(&folded);
                if skel.len() < 6 {
                    problems.push(problem(format!(
                        "phrase `{phrase}` is too short to match anywhere in a text (under 6 letters): make it a \
                         banner or an abbreviation, which only match in banner position"
                    )));
                    continue;
                }
                if skel.as_bytes().contains(&OTHER_LETTER) {
                    problems.push(problem(format!(
                        "phrase `{phrase}` has letters that are not Latin: write it in Latin letters (look-alike \
                         letters of other scripts are matched anyway)"
                    )));
                    continue;
                }
                if let Some(other) = seen_phrases.insert(skel.clone(), spec.label.clone()) {
                    problems.push(problem(format!(
                        "phrase `{phrase}` is already listed (for `{other}`)"
                    )));
                    continue;
                }
                let words: Vec<Vec<u8>> = folded
                    .split(|c: char| !c.is_alphanumeric())
                    .map(|w| skeleton(w).into_bytes())
                    .filter(|w| !w.is_empty())
                    .collect();
                // OCR reads an `m` as `rn`: each word with an `m` also matches as OCR may give it (`COSRNIC`).
                for variant in rn_variants(&words) {
                    phrase_specs.push(PhraseSpec {
                        marking: index,
                        words: variant,
                        short: skel.len() < LONG_PHRASE,
                        misspellings: spec.misspellings,
                    });
                }
                phrase_specs.push(PhraseSpec {
                    marking: index,
                    words,
                    short: skel.len() < LONG_PHRASE,
                    misspellings: spec.misspellings,
                });
            }
            let mut names = Vec::new();
            for name in &spec.unless_followed_by {
                let skel = skeleton(&fold(name));
                if skel.is_empty() {
                    problems.push(problem(format!(
                        "`unless_followed_by` name `{name}` has no letters or digits"
                    )));
                    continue;
                }
                if spec.phrases.is_empty() {
                    problems.push(problem(format!(
                        "`unless_followed_by` needs phrases: marking `{}` has none",
                        spec.label
                    )));
                    break;
                }
                names.push(skel.into_bytes());
            }
            unless_followed_by.push(names);
            for (terms, term) in [
                (&spec.banners, Term::Word),
                (&spec.abbreviations, Term::Abbreviation),
            ] {
                for text in terms {
                    let skel = skeleton(&fold(text));
                    if skel.is_empty() {
                        problems.push(problem(format!("banner `{text}` has no letters")));
                        continue;
                    }
                    if term == Term::Abbreviation && fold(text) != fold(text).to_uppercase() {
                        problems.push(problem(format!(
                            "abbreviation `{text}` must be written in capitals"
                        )));
                    }
                    if text.len() > MAX_BRACKETED {
                        problems.push(problem(format!(
                            "banner `{text}` is longer than {MAX_BRACKETED} bytes: make it a phrase"
                        )));
                    }
                    max_banner_words = max_banner_words.max(text.split_whitespace().count());
                    banners.entry(skel.into_bytes()).or_default().push(Banner {
                        term,
                        marking: index,
                    });
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let phrases = PhraseMatcher::build(&phrase_specs, unless_followed_by)
            .map_err(|e| vec![Problem::in_file(MARKINGS_FILE, e)])?;
        Ok(Classifier {
            markings,
            phrases,
            banners: Banners::new(banners, max_banner_words),
        })
    }
}
