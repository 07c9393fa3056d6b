//! Finds protection markings ("Diffusion Restreinte", "Spécial France", "Secret Défense", "RESTREINT UE", ...) in a
//! message and returns the label of the most sensitive one.
//!
//! Three kinds of marking text come from `markings.toml`:
//! - **phrases** are matched on the skeleton (`normalize::Skeleton`) of the text, where no case, accent,
//!   separator, tag, invisible character, look-alike letter or digit-for-letter survives, so
//!   `d-i-f-f-u-s-i-o-n  R&eacute;str3inte` is still caught. A phrase of 12 letters or more counts anywhere, even
//!   glued to other words, and each of its words of 5 letters or more may carry one edit (a letter inserted,
//!   deleted or replaced inside the word, or two neighbours swapped: `Diffussion Restrainte`), since a reader
//!   still reads it as the marking. A shorter phrase (`secret UE`, `NATO secret`) is matched exactly, and only as
//!   whole words: `j'ai eu secrètement` is not `EU SECRET`;
//! - **banners** (`secret`, `très secret`) and **abbreviations** (`DR`) are ordinary words or a doctor's title in
//!   running text, so they count only where a banner stands and written as a banner is written: in capitals alone
//!   on a line (`SECRET`), in brackets (`[DR]`, `(SECRET)`), or at the start or end of a line next to a separator
//!   (`DR - compte rendu`, `Rapport | SECRET`), and as whole words in capitals in a file name (`note_DR.pdf`,
//!   `noteDR.pdf`). Brackets at the start or end of a line are banner enough for a banner in any case
//!   (`(Très secret) plan`); an abbreviation also counts in lowercase in brackets (`[dr]`) and in a file name
//!   written all in lowercase (`dr_note.pdf`). `Dr` is a doctor everywhere.
//!
//! The body, the HTML body (what it shows, and separately its comments and attribute values, which it does not show
//! but which anyone reading the room's history gets) and the file name are each classified as stored and, when a
//! right-to-left override makes them display otherwise, as displayed.
//!
//! Everything is built once per policy load (one Aho-Corasick automaton holding every phrase word and its one-edit
//! spellings, one map of banner terms); classifying is linear in the text's length with a small constant, whatever
//! its characters: folding is a table lookup per character and never more than doubles the text, the phrase
//! automaton reads each skeleton byte once, and banners are only looked for in bounded places (the ends of lines,
//! short brackets, short file-name parts).

//!
//! The pieces, one file each: `markings_file.rs` reads `markings.toml`; `phrases.rs` matches phrases on skeletons;
//! `banners.rs` finds banners and abbreviations where banners stand (and their ordinary uses); `file_names.rs` reads
//! file names wherever Matrix puts them; `scratch.rs` holds the buffers a thread reuses; `document.rs` classifies a
//! document passage by passage.

use crate::domain::message::Message;

use super::banners::Banners;
use super::file_names::{self, FILE_MSGTYPES};
use super::normalize::{fold_displayed, fold_stored_into, render_html};
use super::phrases::PhraseMatcher;
use super::scratch::{SCRATCH, Scratch};
use super::work::count_work;

/// The label of a message with no marking.
pub const NO_MARKING: &str = "none";

/// A label and how sensitive it is; the most sensitive label found is the message's classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Marking {
    pub(super) label: String,
    pub(super) level: u32,
}

/// Finds protection markings in messages.
#[derive(Debug, Clone)]
pub struct Classifier {
    pub(super) markings: Vec<Marking>,
    pub(super) phrases: Option<PhraseMatcher>,
    /// Banners and abbreviations, by skeleton.
    pub(super) banners: Banners,
}

/// Which rules a text is read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    /// Lines of text: banners where banners stand.
    Text,
    /// A file name: banners as whole words.
    FileName,
    /// The last segment of a link with no extension: a file's name or a page's slug (`dr-martin`), so read as a
    /// file name but for the all-lowercase abbreviation rule (`dr_note.pdf`), which would take a slug's words.
    LinkSlug,
}

impl Classifier {
    /// Every label this classifier can return, `none` included.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        std::iter::once(NO_MARKING).chain(self.markings.iter().map(|m| m.label.as_str()))
    }

    /// The label of the most sensitive marking in the message's body, HTML body (shown or not) or file name; `none`
    /// if none.
    pub fn classify(&self, message: &Message) -> &str {
        let mut best: Option<usize> = None;
        let mut note = |found: usize| {
            if best.is_none_or(|b| self.markings[found].level > self.markings[b].level) {
                best = Some(found);
            }
        };
        SCRATCH.with_borrow_mut(|scratch| {
            self.scan(&message.body, Field::Text, scratch, &mut note);
            if !message.formatted_body.is_empty() {
                let html = render_html(&message.formatted_body);
                self.scan(&html.visible, Field::Text, scratch, &mut note);
                self.scan(&html.hidden, Field::Text, scratch, &mut note);
            }
            self.scan(&message.filename, Field::FileName, scratch, &mut note);
            // Without `filename`, a file's `body` is its name (and with one, a caption: read as text above).
            if message.filename.is_empty() && FILE_MSGTYPES.contains(&message.msgtype.as_str()) {
                self.scan(&message.body, Field::FileName, scratch, &mut note);
            }
            scratch.trim();
        });
        best.map_or(NO_MARKING, |b| self.markings[b].label.as_str())
    }

    /// The labels of markings at least as sensitive as `label` (`label` included; every label for `none`).
    pub fn labels_from(&self, label: &str) -> impl Iterator<Item = &str> {
        let floor = self
            .markings
            .iter()
            .find(|m| m.label == label)
            .map(|m| m.level);
        let none = floor.is_none().then_some(NO_MARKING);
        none.into_iter().chain(
            self.markings
                .iter()
                .filter(move |m| floor.is_none_or(|floor| m.level >= floor))
                .map(|m| m.label.as_str()),
        )
    }

    /// Classifies one text as stored and, if a right-to-left override makes it display otherwise, as displayed. A
    /// file name is also read percent-decoded; a text's links also give their last segment as a file name.
    pub(super) fn scan(
        &self,
        raw: &str,
        field: Field,
        scratch: &mut Scratch,
        note: &mut impl FnMut(usize),
    ) {
        if raw.is_empty() {
            return;
        }
        self.scan_as_written(raw, field, scratch, note);
        match field {
            Field::FileName | Field::LinkSlug => {
                if let Some(decoded) = file_names::percent_decoded(raw) {
                    self.scan_as_written(&decoded, field, scratch, note);
                }
            }
            Field::Text => {
                for name in file_names::link_file_names(raw) {
                    let field = if file_names::has_extension(name) {
                        Field::FileName
                    } else {
                        Field::LinkSlug
                    };
                    self.scan(name, field, scratch, note);
                }
            }
        }
    }

    /// [`Self::scan`] of `raw` as it is, stored and displayed.
    fn scan_as_written(
        &self,
        raw: &str,
        field: Field,
        scratch: &mut Scratch,
        note: &mut impl FnMut(usize),
    ) {
        let mut folded = std::mem::take(&mut scratch.folded);
        let overridden = fold_stored_into(raw, &mut folded);
        self.scan_folded(&folded, field, scratch, note);
        scratch.folded = folded;
        if overridden {
            self.scan_folded(&fold_displayed(raw), field, scratch, note);
        }
    }

    fn scan_folded(
        &self,
        folded: &str,
        field: Field,
        scratch: &mut Scratch,
        note: &mut impl FnMut(usize),
    ) {
        count_work(folded.len());
        if let Some(phrases) = &self.phrases {
            scratch.text.rebuild(folded);
            count_work(scratch.text.bytes.len());
            phrases.find(
                &scratch.text,
                field != Field::Text,
                &mut scratch.phrases,
                note,
            );
        }
        if self.banners.is_empty() {
            return;
        }
        match field {
            Field::Text => self.banners.find_in_text(folded, scratch, note),
            Field::FileName => self.banners.find_in_file_name(folded, true, scratch, note),
            Field::LinkSlug => self.banners.find_in_file_name(folded, false, scratch, note),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::markings::banners::{BRACKETS, SIMD_LINE};
    use crate::policy::markings::normalize::{Skeleton, fold, skeleton};
    use crate::policy::markings::phrases::{EDITABLE_WORD, PhraseBuffers, one_edit_spellings};
    use crate::policy::markings::work::WORK;

    const MARKINGS: &str = include_str!("../../../../../policies/markings.toml");

    fn classifier() -> Classifier {
        Classifier::from_toml(MARKINGS).expect("the shipped markings load")
    }

    fn body(text: &str) -> Message {
        Message {
            event_type: "m.room.message".into(),
            msgtype: "m.text".into(),
            body: text.into(),
            ..Default::default()
        }
    }

    fn html(text: &str) -> Message {
        Message {
            formatted_body: text.into(),
            ..body("")
        }
    }

    fn file(name: &str) -> Message {
        Message {
            filename: name.into(),
            ..body("")
        }
    }

    fn expect_all(c: &Classifier, make: fn(&str) -> Message, cases: &[(&str, &str)]) {
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|(text, label)| {
                let got = c.classify(&make(text));
                (got != *label).then(|| format!("{text:?}: expected {label}, got {got}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    fn file_body(msgtype: &'static str) -> impl Fn(&str) -> Message {
        move |name| Message {
            msgtype: msgtype.into(),
            body: name.into(),
            ..Default::default()
        }
    }

    /// A file's name is read wherever Matrix puts it: without `filename`, the `body` of a file-bearing message is
    /// the name; percent-encoded, it is decoded; at the end of a link in a text, it is the link's last segment.
    #[test]
    fn file_names_are_read_wherever_matrix_puts_them() {
        let c = classifier();
        for msgtype in FILE_MSGTYPES {
            let message = file_body(msgtype)("2026-03-12_CR_COMEX_SECRET.pdf");
            assert_eq!(c.classify(&message), "secret", "{msgtype}");
        }
        // As text, the same body is not a banner: the name is read as a name only because it is one.
        assert_eq!(c.classify(&body("2026-03-12_CR_COMEX_SECRET.pdf")), "none");
        // With a `filename`, the body is a caption, read as text.
        let captioned = Message {
            filename: "photo.jpg".into(),
            ..file_body("m.image")("Photo du SECRET de la réussite")
        };
        assert_eq!(c.classify(&captioned), "none");
        expect_all(
            &c,
            file,
            &[
                ("Note%20Diffusion%20Restreinte.pdf", "restricted"),
                ("CR%20COMEX%20SECRET.pdf", "secret"),
                ("Rapport%20%5BDR%5D.pdf", "restricted"),
                ("Synth%C3%A8se%20Secret%20D%C3%A9fense.pdf", "secret"),
                ("Planning%20cong%C3%A9s%202026.xlsx", "none"),
            ],
        );
        expect_all(
            &c,
            body,
            &[
                (
                    "Voici le lien : https://partage.gouv.fr/s/Ab12/download/Note%20DIFFUSION%20RESTREINTE.pdf",
                    "restricted",
                ),
                (
                    "https://nuage.gouv.fr/f/123/CR_SECRET_2026.pdf?dl=1",
                    "secret",
                ),
                (
                    "cf. https://intranet.gouv.fr/docs/Fiche_DR.pdf#page=2.",
                    "restricted",
                ),
                // A page's slug is not a file name written in lowercase on purpose.
                ("Rendez-vous : https://doctolib.fr/dr-martin", "none"),
                (
                    "https://www.service-public.fr/particuliers/vosdroits/F1234",
                    "none",
                ),
            ],
        );
        assert_eq!(
            c.classify(&html(
                r#"<a href="https://x.gouv.fr/CR%20SECRET.pdf">le compte rendu</a>"#
            )),
            "secret"
        );
    }

    /// A phrase stands within one sentence, from the start of a word: ordinary French that only looks like a
    /// phrase across a full stop, or inside a longer word, is not a marking.
    #[test]
    fn a_phrase_stands_within_a_sentence_from_a_word_start() {
        expect_all(
            &classifier(),
            body,
            &[
                (
                    "Le projet est resté secret. UE et OTAN ont été informés.",
                    "none",
                ),
                ("C'était secret ! UE et OTAN l'ignoraient.", "none"),
                ("Tout est secret ? UE : rien à signaler", "none"),
                ("Le code reste secret ; UE comprise", "none"),
                ("Resté secret.\nUE et OTAN", "none"),
                (
                    "La rediffusion restreinte aux abonnés commence lundi.",
                    "none",
                ),
                ("Une prédiffusion restreinte est prévue.", "none"),
                // What a sentence end is not: initials, spelled-out letters, a decimal, no space.
                (
                    "D. I. F. F. U. S. I. O. N.  R. E. S. T. R. E. I. N. T. E.",
                    "restricted",
                ),
                ("Classement : secret.UE", "secret"),
                ("Objet : note. DIFFUSION RESTREINTE", "restricted"),
                ("Classement : Secret Défense ; diffusion limitée", "secret"),
                ("Documents DIFFUSION RESTREINTES", "restricted"),
                ("D!FFUSION RESTREINTE", "restricted"),
                ("DiffusionRestreinte", "restricted"),
            ],
        );
        // Glued into a file name, on purpose: still the phrase.
        expect_all(
            &classifier(),
            file,
            &[
                ("NOTEDIFFUSIONRESTREINTE.PDF", "restricted"),
                ("notediffusionrestreintev2.pdf", "restricted"),
            ],
        );
    }

    /// `DR` abbreviating the words before it, or crediting a photo, and `spécial France` in a channel's name are
    /// ordinary; the same words as markings still are.
    #[test]
    fn ordinary_uses_of_dr_and_special_france_pass() {
        expect_all(
            &classifier(),
            body,
            &[
                (
                    "Direction régionale Grand Est (DR) - Ressources humaines",
                    "none",
                ),
                ("Délégation régionale (DR) Occitanie", "none"),
                (
                    "la Direction régionale d'Île-de-France (DR) recrute",
                    "none",
                ),
                (
                    "Direction régionale Provence-Alpes-Côte d'Azur (DR) : bilan",
                    "none",
                ),
                ("Crédit photo : D.R.", "none"),
                ("Le préfet à Metz.\n© DR", "none"),
                ("Photo : AFP / DR", "none"),
                ("Illustration : DR", "none"),
                ("Photo DR", "none"),
                (
                    "numéro spécial France Culture sur la décentralisation",
                    "none",
                ),
                ("l'envoyé spécial France 2 à Kiev", "none"),
                ("Émission spécial France Inter ce soir", "none"),
                ("Un spécial franceinfo demain", "none"),
                ("Journal spécial France Télévisions", "none"),
                // Markings still.
                ("Compte rendu de la réunion - DR", "restricted"),
                ("Rapport du service (DR) à ne pas diffuser", "restricted"),
                ("Note SPÉCIAL FRANCE", "special_france"),
                ("Spécial France. Culture générale à part", "special_france"),
                ("Photo du document confidentiel - DR", "restricted"),
            ],
        );
    }

    /// A stamp as OCR reads it off a scan is classified as typed: digits and bars for letters, `rn` for `m`, lost
    /// accents, a stamp alone on its line.
    #[test]
    fn ocr_misreads_are_classified_as_the_marking() {
        expect_all(
            &classifier(),
            body,
            &[
                ("DIFFUSI0N RESTRElNTE", "restricted"),
                ("Objet : note\nD1FFUSION RESTRE|NTE\nsuite", "restricted"),
                ("COSRNIC TOP SECRET", "top_secret"),
                ("SPECIAL FRANCE", "special_france"),
                ("TRES SECRET", "top_secret"),
                ("Le gouvernement a interne le dossier.", "none"),
            ],
        );
    }

    /// Each marking family is found, whatever the case, accents, separators and position.
    #[test]
    fn finds_each_marking_family() {
        expect_all(
            &classifier(),
            body,
            &[
                (
                    "Document Diffusion Restreinte, merci de ne pas transférer",
                    "restricted",
                ),
                ("DIFFUSION RESTREINTE", "restricted"),
                ("diffusion restreinte", "restricted"),
                ("[DR] point de situation", "restricted"),
                ("(DR) point de situation", "restricted"),
                ("[dr] point de situation", "restricted"),
                ("DR - point de situation", "restricted"),
                ("DR: point de situation", "restricted"),
                ("Point de situation - DR", "restricted"),
                ("TR: DR - point de situation", "restricted"),
                ("Objet : DR - point de situation", "restricted"),
                ("Réf. : DR/2024/123 du 12 mars", "none"),
                ("Bonjour,\nDR\nVoici le rapport", "restricted"),
                (
                    "Spécial France : ne pas diffuser aux partenaires",
                    "special_france",
                ),
                ("SPECIAL FRANCE", "special_france"),
                ("Confidentiel Défense", "secret"),
                ("CONFIDENTIEL-DEFENSE", "secret"),
                ("Secret Défense", "secret"),
                ("SECRET - note au ministre", "secret"),
                ("[SECRET] note au ministre", "secret"),
                ("Très Secret Défense", "top_secret"),
                ("TRES SECRET - plan", "top_secret"),
                ("(Très secret) plan", "top_secret"),
            ],
        );
    }

    /// Markings France handles under II 901 that are not French map onto the French labels.
    #[test]
    fn finds_eu_and_nato_markings() {
        expect_all(
            &classifier(),
            body,
            &[
                ("RESTREINT UE", "restricted"),
                ("RESTREINT UE/EU RESTRICTED", "restricted"),
                ("EU RESTRICTED", "restricted"),
                ("NATO RESTRICTED", "restricted"),
                ("DIFFUSION RESTREINTE OTAN", "restricted"),
                ("CONFIDENTIEL UE/EU CONFIDENTIAL", "secret"),
                ("NATO CONFIDENTIAL", "secret"),
                ("CONFIDENTIEL OTAN", "secret"),
                ("SECRET UE/EU SECRET", "secret"),
                ("Classification : NATO SECRET", "secret"),
                ("SECRET OTAN", "secret"),
                ("TRÈS SECRET UE/EU TOP SECRET", "top_secret"),
                ("COSMIC TOP SECRET", "top_secret"),
                ("COSMIC TRÈS SECRET", "top_secret"),
                ("note_SECRET_UE.pdf en pièce jointe", "secret"),
            ],
        );
    }

    /// Evasions of every family (invisible characters, look-alikes, HTML, compatibility forms, separators) are caught.
    #[test]
    fn sees_through_evasions() {
        let c = classifier();
        for text in [
            "Diffusion\u{200B} Restreinte",
            "Diff\u{200D}usion Restr\u{2060}einte",
            "Diffusion\u{00A0}Restreinte",
            "Diffusion\u{202F}Restreinte",
            "D.i.f.f.u.s.i.o.n R.e.s.t.r.e.i.n.t.e",
            "diffusion_restreinte",
            "Diffusion   Restreinte",
            "Diffusion\nRestreinte",
            "Diffusion\r\nRestreinte",
            "Ｄｉｆｆｕｓｉｏｎ Ｒｅｓｔｒｅｉｎｔｅ",
            "Diffusiоn Restreintе",
            "Dіffusіon Rеstrеintе",
            "DIFFUSION RESTREINTE".to_lowercase().as_str(),
            "diffusion re\u{00AD}streinte",
            "[\u{200B}DR\u{200B}]",
            "[ＤＲ] note",
            "[D.R.] note",
        ] {
            assert_eq!(c.classify(&body(text)), "restricted", "{text:?}");
        }
        for text in [
            "<p>Diffusion <b>Restreinte</b></p>",
            "<p>Diffu<span></span>sion<br>Restreinte</p>",
            "Diffusion&nbsp;Restreinte",
            "Diffusion R&eacute;streinte",
            "&#68;iffusion &#x52;estreinte",
            "<strong>DR</strong> - compte rendu",
            "<p>Bonjour</p><p>DR</p>",
            "<b>[DR]</b> compte rendu",
        ] {
            assert_eq!(c.classify(&html(text)), "restricted", "{text:?}");
        }
    }

    /// Letters of other scripts that imitate Latin ones (UTS #39 confusables: Cherokee, Lisu, Greek, Cyrillic),
    /// small capitals and boxed letters read as the Latin letters, capitals included.
    #[test]
    fn sees_through_look_alike_scripts() {
        expect_all(
            &classifier(),
            body,
            &[
                ("ᎠIFFUᏚIOΝ ᏒᎬᏚTᏒᎬIΝTᎬ", "restricted"),
                ("ꓓꓲꓝꓝꓴꓢꓲꓳꓠ ꓣꓰꓢꓔꓣꓰꓲꓠꓔꓰ", "restricted"),
                ("ᴅɪꜰꜰᴜꜱɪᴏɴ ʀᴇꜱᴛʀᴇɪɴᴛᴇ", "restricted"),
                ("[ᎠᏒ] compte rendu", "restricted"),
                ("ꓓꓣ - compte rendu", "restricted"),
                ("ᴅʀ - compte rendu", "restricted"),
                ("🅳🆁 - compte rendu", "restricted"),
                ("ꓢꓰꓚꓣꓰꓔ ꓓꓰꓝꓰꓠꓢꓰ", "secret"),
                ("ЅЕСRЕТ - note", "secret"),
                ("ѕрéсіаl Ϝrаnсе", "special_france"),
            ],
        );
    }

    /// Digits and symbols written for letters, `l` for `I`, are read as the letters.
    #[test]
    fn sees_through_digit_and_letter_swaps() {
        expect_all(
            &classifier(),
            body,
            &[
                ("diffusion r3streinte", "restricted"),
                ("D1FFUSION RESTREINTE", "restricted"),
                ("DlFFUSlON RESTRElNTE", "restricted"),
                ("D!FFUS!ON R€STREINTE", "restricted"),
                ("diffusion|restreinte", "restricted"),
                ("C0NF1D3NT13L D3F3NS3", "secret"),
                ("5ECRET DEFEN5E", "secret"),
                ("$ECRET DÉFENSE", "secret"),
                ("[5ECRET] note", "secret"),
                ("7RÈS SECRE7 DÉFENSE", "top_secret"),
            ],
        );
    }

    /// Text reversed under a right-to-left override is read as displayed, in every field.
    #[test]
    fn reads_right_to_left_overrides_as_displayed() {
        let c = classifier();
        assert_eq!(
            c.classify(&body("\u{202E}etniertser noisuffid\u{202C} : note")),
            "restricted"
        );
        assert_eq!(c.classify(&body("Objet \u{202E}ESNEFED TERCES")), "secret");
        assert_eq!(c.classify(&file("note\u{202E}fdp.RD")), "restricted");
        assert_eq!(
            c.classify(&html("<bdo dir=\"rtl\">etniertser noisuffid</bdo>")),
            "restricted"
        );
    }

    /// One edit per word of 5 letters or more (inside the word, or a swap) still matches a phrase of 12 letters or
    /// more; two edits in a word, an edit at a word's first or last letter, or any edit to a short phrase do not.
    #[test]
    fn tolerates_one_misspelling_per_word() {
        expect_all(
            &classifier(),
            body,
            &[
                ("Diffusion Restrainte", "restricted"),
                ("Diffussion Restreinte", "restricted"),
                ("Difusion Restreinte", "restricted"),
                ("Diffusoin Restreinte", "restricted"),
                ("Diffussion Restrainte", "restricted"),
                ("Diffusion Restreint", "restricted"),
                ("Spécail France", "special_france"),
                ("Confidentiel Défence", "secret"),
                ("Secert Défense", "secret"),
                ("Très Secret Défesne", "top_secret"),
                ("Diffusssion Restreinte", "none"),
                ("Spéciale France", "none"),
                ("spécial franco-allemand", "none"),
                ("Secret UF", "none"),
                ("Secrte UE", "none"),
            ],
        );
    }

    /// Markings hidden in an HTML body's comments and attribute values are found: not shown, but in the event.
    #[test]
    fn finds_markings_hidden_in_html() {
        expect_all(
            &classifier(),
            html,
            &[
                ("ok<!-- Diffusion Restreinte -->", "restricted"),
                (
                    "<span title=\"Diffusion Restreinte\">ok</span>",
                    "restricted",
                ),
                ("<img alt=\"[DR]\" src=\"mxc://a/b\">", "restricted"),
                ("<span data-x='SECRET DÉFENSE'>ok</span>", "secret"),
                (
                    "<a href=\"https://x.fr/\" title=\"Très&nbsp;Secret Défense\">lien</a>",
                    "top_secret",
                ),
                ("<span title=\"Le Dr Martin\">ok</span>", "none"),
            ],
        );
    }

    /// File names carry markings too, glued to other words or not; abbreviations glued inside a longer word in
    /// capitals do not count.
    #[test]
    fn finds_markings_in_file_names() {
        expect_all(
            &classifier(),
            file,
            &[
                ("note_diffusion_restreinte.pdf", "restricted"),
                ("NOTEDIFFUSIONRESTREINTE.PDF", "restricted"),
                ("2024-11-DR-compte-rendu.pdf", "restricted"),
                ("DR_note.odt", "restricted"),
                ("note (DR).pdf", "restricted"),
                ("noteDR.pdf", "restricted"),
                ("DRnote.pdf", "restricted"),
                ("DRNote.pdf", "restricted"),
                ("note2024DR.pdf", "restricted"),
                ("dr_note.pdf", "restricted"),
                ("note-dr.pdf", "restricted"),
                ("2024-dr.pdf", "restricted"),
                ("2024_dr_note.pdf", "restricted"),
                ("certificat_dr_martin.pdf", "none"),
                ("plan_TRES_SECRET.pdf", "top_secret"),
                ("planTRESSECRET.pdf", "top_secret"),
                ("rapport-special-france.docx", "special_france"),
                ("note_5ECRET.pdf", "secret"),
                ("photo_vacances.jpg", "none"),
                ("Dr_Martin_ordonnance.pdf", "none"),
                ("DrMartin.pdf", "none"),
                ("address.txt", "none"),
                ("ADR.pdf", "none"),
                ("CDR-2024.pdf", "none"),
                ("DRAFT.pdf", "none"),
                ("adr.pdf", "none"),
                ("cdr-2024.pdf", "none"),
                ("draft.pdf", "none"),
                ("DRH_organigramme.pdf", "none"),
                ("DRFiP_calendrier.xlsx", "none"),
                ("Secret_Santa_2024.xlsx", "none"),
                ("recette_secrete.pdf", "none"),
                ("mon_secret.txt", "none"),
            ],
        );
    }

    /// Ordinary French that resembles a marking is not one: `Dr` is a doctor, `secret` an ordinary word unless
    /// written as a banner, short phrases count only as whole words.
    #[test]
    fn leaves_ordinary_text_alone() {
        expect_all(
            &classifier(),
            body,
            &[
                ("Rendez-vous avec le Dr Martin demain", "none"),
                ("Dr Martin a appelé", "none"),
                ("Dr. Martin a appelé", "none"),
                ("Dr: pouvez-vous rappeler ?", "none"),
                ("Dr - pouvez-vous rappeler ?", "none"),
                ("Merci Dr", "none"),
                ("Dr\nMartin", "none"),
                ("Bonjour\nDr", "none"),
                ("Le DR de la région a appelé", "none"),
                ("(Dr) Martin", "none"),
                ("C'est un secret de polichinelle", "none"),
                ("Je te dis un secret : il pleut", "none"),
                ("mot de passe : secret", "none"),
                ("Le code (secret) est dans l'enveloppe", "none"),
                ("Je t'ai préparé une surprise (secret)", "none"),
                ("(secret) ne le dis à personne", "none"),
                ("Secret - Santa de Noël", "none"),
                ("Secret Santa : tirage au sort vendredi", "none"),
                ("Secret", "none"),
                ("Le secret professionnel s'applique", "none"),
                ("c'est très secret entre nous", "none"),
                ("Secret de fabrication", "none"),
                (
                    "La diffusion de la note est restreinte aux chefs de service",
                    "none",
                ),
                ("Diffusion large", "none"),
                ("address drive drop", "none"),
                ("ADDR - adresse", "none"),
                ("spécialement pour la France", "none"),
                ("j'en ai eu secrètement connaissance", "none"),
                ("Renato Secretan arrive lundi", "none"),
                (
                    "La direction régionale (DR) transmettra les chiffres",
                    "none",
                ),
                ("Dossier suivi par : D. Renard (DR)", "none"),
                ("le top secret de la recette", "none"),
                ("", "none"),
            ],
        );
    }

    /// When several markings are present the most sensitive label wins.
    #[test]
    fn the_most_sensitive_marking_wins() {
        let c = classifier();
        assert_eq!(
            c.classify(&body("DR - extrait d'un document Secret Défense")),
            "secret"
        );
        assert_eq!(
            c.classify(&body("Diffusion restreinte / Très Secret Défense")),
            "top_secret"
        );
        let m = Message {
            filename: "note_DR.pdf".into(),
            ..body("Confidentiel Défense")
        };
        assert_eq!(c.classify(&m), "secret");
    }

    /// Every kind of bracket holds a banner, wherever it stands among other brackets and among characters that
    /// share their first byte (a no-break space and `«` start like `»`, `「` like `【`).
    #[test]
    fn finds_banners_in_every_kind_of_bracket() {
        expect_all(
            &classifier(),
            body,
            &[
                ("note [DR] suite", "restricted"),
                ("note (DR) suite", "restricted"),
                ("note {DR} suite", "restricted"),
                ("note <DR> suite", "restricted"),
                ("note «DR» suite", "restricted"),
                ("note « DR » suite", "restricted"),
                ("note 【DR】 suite", "restricted"),
                ("note 〔DR〕 suite", "restricted"),
                ("「cité」\u{a0}: 〔DR〕 note", "restricted"),
                ("« citation » puis (voir) <b> et [SECRET] enfin", "secret"),
                (
                    "(a) [b] {c} <d> «e» 【f】 〔g〕 [TRÈS SECRET] fin",
                    "top_secret",
                ),
                (
                    "(a) [b] {c} <d> «e» 【f】 〔g〕 (Très secret)",
                    "top_secret",
                ),
                ("« Dr » Martin 「DR」", "none"),
            ],
        );
    }

    /// Long lines (searched for brackets with SIMD) find banners in every kind of bracket as short lines do
    /// (searched byte by byte), among other brackets and look-alike lead bytes.
    #[test]
    fn finds_banners_in_brackets_on_long_lines() {
        let c = classifier();
        let long = "Compte rendu « intégral » de la réunion (mardi) du service\u{a0}: voir la note";
        assert!(long.len() >= SIMD_LINE);
        for (open, close) in BRACKETS {
            for (term, label) in [("DR", "restricted"), ("SECRET", "secret"), ("Dr", "none")] {
                let text = format!("{long} {open}{term}{close} jointe");
                assert_eq!(c.classify(&body(&text)), label, "{text:?}");
                let short = format!("note {open}{term}{close} jointe");
                assert_eq!(c.classify(&body(&short)), label, "{short:?}");
            }
        }
    }

    /// The phrase gate only shuts on texts in which the automaton finds nothing, with its SIMD searcher and with
    /// its bit table alike, and the phrase search finds exactly what the automaton alone finds: on texts made of
    /// phrase words, their one-edit spellings, pieces of them and ordinary words, glued or spaced, short and long
    /// (phrases found and the gate shut often enough for the comparison to mean something).
    #[test]
    fn the_phrase_gate_never_hides_a_phrase() {
        let c = classifier();
        let phrases = c
            .phrases
            .as_ref()
            .expect("the shipped markings have phrases");
        let mut pieces: Vec<Vec<u8>> = Vec::new();
        for spec_words in MARKINGS
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"'))
            .filter_map(|l| l.split('"').next())
        {
            for word in fold(spec_words).split(' ') {
                let word = skeleton(word).into_bytes();
                if word.len() >= EDITABLE_WORD {
                    pieces.extend(one_edit_spellings(&word).into_iter().step_by(7));
                    pieces.push(word[..word.len() / 2].to_vec());
                    pieces.push(word[word.len() / 2..].to_vec());
                }
                pieces.push(word);
            }
        }
        pieces.extend(
            [
                "bonjour", "a", "reunion", "reste", "tres", "sion", "ce", " ", "-",
            ]
            .map(|w| w.as_bytes().to_vec()),
        );
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut buffers = PhraseBuffers::default();
        let (mut found_some, mut shut_some) = (0, 0);
        let table = phrases.gate.without_simd();
        for _ in 0..20_000 {
            let mut text = Vec::new();
            for _ in 0..1 + next(12) {
                text.extend_from_slice(&pieces[next(pieces.len())]);
                if next(2) == 0 {
                    text.push(b' ');
                }
            }
            let text = String::from_utf8(text).expect("skeleton letters are ASCII");
            let skeleton = Skeleton::of(&text);
            let (mut found, mut read) = (Vec::new(), Vec::new());
            phrases.find(&skeleton, false, &mut buffers, &mut |m| found.push(m));
            phrases.read(&skeleton, false, &mut buffers.ring, &mut |m| read.push(m));
            assert_eq!(found, read, "{text:?}");
            let simd_opens = phrases.gate.opens(&skeleton.bytes, &mut buffers.seen);
            let table_opens = table.opens(&skeleton.bytes, &mut buffers.seen);
            assert_eq!(simd_opens, table_opens, "{text:?}");
            assert!(
                simd_opens || read.is_empty(),
                "{text:?}: the gate hides {read:?}"
            );
            found_some += usize::from(!read.is_empty());
            shut_some += usize::from(!simd_opens);
        }
        assert!(found_some > 1_000, "only {found_some} texts had a phrase");
        assert!(shut_some > 1_000, "the gate shut only {shut_some} times");
    }

    /// No text, however odd, makes the classifier panic; pathological shapes stay linear (they finish at all).
    #[test]
    fn survives_any_input() {
        let c = classifier();
        let alphabet: Vec<char> = "aDR[]()<>&#;:-–—|/\n \u{200B}\u{00A0}éÉ𝐃ＤдΑ\u{0301}\u{FEFF}\u{E0041}<b></b>&nbsp;&#x;\u{202E}\u{202C}$!3'\"=_ꓓ\u{FDFA}"
            .chars()
            .collect();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let rounds = std::env::var("ROOMGUARD_FUZZ_ROUNDS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(3000);
        for _ in 0..rounds {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let len = ((state >> 33) % 200) as usize;
            let text: String = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % alphabet.len() as u64) as usize]
                })
                .collect();
            let m = Message {
                body: text.clone(),
                formatted_body: text.clone(),
                filename: text,
                ..body("")
            };
            let label = c.classify(&m);
            assert!(c.labels().any(|l| l == label));
        }
        for shape in [
            "(", "[", "<", "&", "&#", "-", "«", "\n", "DR ", "<b>", "<a b='", "\u{202E}",
        ] {
            let text = shape.repeat(65_536 / shape.len());
            let m = Message {
                body: text.clone(),
                formatted_body: text.clone(),
                filename: text,
                ..body("")
            };
            let _ = c.classify(&m);
        }
    }

    /// The work of a classification (bytes folded, scanned and examined as banner candidates) is bounded by the
    /// input's size with the same small constant for every hostile shape as for plain text: characters that expand
    /// or decompose, brackets, near-misses of the phrases, HTML, file-name parts, overrides.
    #[test]
    fn work_is_linear_in_the_input_whatever_the_characters() {
        let c = classifier();
        let work = |unit: &str| {
            let text = unit.repeat(65_536 / unit.len());
            let m = Message {
                body: text.clone(),
                formatted_body: text.clone(),
                filename: text.clone(),
                ..body("")
            };
            WORK.with(|w| w.set(0));
            let _ = c.classify(&m);
            WORK.with(std::cell::Cell::get) as f64 / (3 * text.len()) as f64
        };
        let ascii = work("Bonjour, la reunion du service est deplacee a 15 h demain. ");
        for unit in [
            "\u{FDFA}",
            "한국어",
            "e\u{0301}\u{0302}\u{0303}",
            "\u{2487}\u{33AF}",
            "\u{202E}etniertser noisuffid\u{202C} ",
            "(dx)[DR]-DR-\n",
            "((((((((",
            "diffussion restrainte spéciale ",
            "<b title=\"x\">d</b>&eacute;<!--c-->",
            "DR_A1b",
            "aB1",
        ] {
            let ratio = work(unit);
            assert!(
                ratio <= 6.0,
                "{unit:?}: {ratio:.1} bytes of work per input byte (plain text: {ascii:.1})"
            );
        }
    }

    /// Author mistakes in the markings file are reported with their line.
    #[test]
    fn reports_bad_markings_with_lines() {
        let bad = "[[marking]]\nlabel = \"restricted\"\nlevel = 1\nphrases = [\"dr\"]\n\n[[marking]]\nlabel = \"Bad Label\"\nlevel = 2\nabbreviations = [\"Dr\"]\n\n[[marking]]\nlabel = \"x\"\nlevel = 3\nphrases = [\"секретно\"]\n";
        let problems = Classifier::from_toml(bad).unwrap_err();
        let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            rendered
                .iter()
                .any(|p| p.starts_with("markings.toml:1:") && p.contains("too short")),
            "{rendered:?}"
        );
        assert!(
            rendered
                .iter()
                .any(|p| p.starts_with("markings.toml:6:") && p.contains("Bad Label")),
            "{rendered:?}"
        );
        assert!(
            rendered.iter().any(|p| p.contains("capitals")),
            "{rendered:?}"
        );
        assert!(
            rendered
                .iter()
                .any(|p| p.starts_with("markings.toml:11:") && p.contains("not Latin")),
            "{rendered:?}"
        );
        let syntax =
            Classifier::from_toml("[[marking]]\nlabel = \"x\"\nlevel = one\n").unwrap_err();
        assert_eq!(syntax[0].line, Some(3), "{syntax:?}");
        let field = Classifier::from_toml(
            "[[marking]]\nlabel = \"x\"\nlevel = 1\nphrases = [\"usage interne\"]\nmisspellings = \"no\"\n",
        )
        .unwrap_err();
        assert_eq!(field[0].line, Some(5), "{field:?}");
    }

    /// `misspellings = false` turns one-edit matching off for a marking's phrases.
    #[test]
    fn misspellings_can_be_turned_off() {
        let exact = Classifier::from_toml(
            "[[marking]]\nlabel = \"x\"\nlevel = 1\nphrases = [\"usage interne\"]\nmisspellings = false\n",
        )
        .unwrap();
        let fuzzy = Classifier::from_toml(
            "[[marking]]\nlabel = \"x\"\nlevel = 1\nphrases = [\"usage interne\"]\n",
        )
        .unwrap();
        assert_eq!(exact.classify(&body("Usage Intrene")), "none");
        assert_eq!(fuzzy.classify(&body("Usage Intrene")), "x");
        assert_eq!(exact.classify(&body("Usage Interne")), "x");
    }
}
