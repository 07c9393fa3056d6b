//! A document's markings, read passage by passage as the document is read (an upload's scan).

use roomguard_documents::Passage;

use super::classifier::{Classifier, Field, NO_MARKING};
use super::normalize::render_html;
use super::scratch::Scratch;

/// The most sensitive marking of a document so far, its passages read one by one (see [`Classifier::document`]).
pub struct DocumentMarkings<'c> {
    classifier: &'c Classifier,
    best: Option<usize>,
    scratch: Scratch,
}

impl<'c> DocumentMarkings<'c> {
    pub(super) fn new(classifier: &'c Classifier) -> Self {
        DocumentMarkings {
            classifier,
            best: None,
            scratch: Scratch::default(),
        }
    }

    /// Reads one passage; `true` when it holds a marking more sensitive than any before.
    pub fn passage(&mut self, passage: &Passage) -> bool {
        let before = self.best;
        let classifier = self.classifier;
        let best = &mut self.best;
        let mut note = |found: usize| {
            if best.is_none_or(|b| classifier.markings[found].level > classifier.markings[b].level)
            {
                *best = Some(found);
            }
        };
        let scratch = &mut self.scratch;
        match passage {
            Passage::Text(text) => classifier.scan(text, Field::Text, scratch, &mut note),
            Passage::Html(html) => {
                let html = render_html(html);
                classifier.scan(&html.visible, Field::Text, scratch, &mut note);
                classifier.scan(&html.hidden, Field::Text, scratch, &mut note);
            }
            Passage::Name(name) => classifier.scan(name, Field::FileName, scratch, &mut note),
        }
        self.best != before
    }

    /// Reads the document's own file name.
    pub fn file_name(&mut self, name: &str) -> bool {
        self.passage(&Passage::Name(name.to_owned()))
    }

    /// The label of the most sensitive marking so far, `none` if none.
    pub fn label(&self) -> &'c str {
        self.best
            .map_or(NO_MARKING, |b| self.classifier.markings[b].label.as_str())
    }
}

impl Classifier {
    /// The label of the most sensitive marking in a document: its text and properties (each passage read like a
    /// message's text, HTML through the same HTML reading), the names of the files inside it, and its own file
    /// name; `none` if none.
    pub fn classify_document(&self, filename: &str, passages: &[Passage]) -> &str {
        let mut document = self.document();
        for passage in passages {
            document.passage(passage);
        }
        document.file_name(filename);
        document.label()
    }

    /// A document classified passage by passage, as it is read ([`Classifier::classify_document`] at once).
    pub fn document(&self) -> DocumentMarkings<'_> {
        DocumentMarkings::new(self)
    }
}

impl std::fmt::Debug for DocumentMarkings<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentMarkings")
            .field("label", &self.label())
            .finish_non_exhaustive()
    }
}
