//! Encrypted files (PDF 32000-1 §7.6): the standard security handler with the empty user password.
//!
//! Most encrypted PDFs only restrict permissions (printing, copying) and open without a password: anyone can read
//! them, so roomguard must too. lopdf computes the key and decrypts (RC4, AES-128, AES-256); this module hands it
//! the encryption dictionary and the objects. A file that needs a real user password ends the scan `encrypted`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use lopdf::encryption::{EncryptionState, decrypt_object};
use lopdf::{Dictionary, Object, ObjectId, Stream};

/// The key of a file that opens with the empty user password.
pub(super) struct Decryptor {
    state: EncryptionState,
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decryptor")
    }
}

/// What the trailer's `/Encrypt` means for reading.
pub(super) enum Access {
    /// Not encrypted.
    Clear,
    /// Encrypted with the empty user password: readable.
    Open(Box<Decryptor>),
    /// Needs a password (or a security handler other than the standard one).
    Locked,
}

/// Where no object number is free for a direct `/Encrypt` dictionary, this one stands in.
const DIRECT: ObjectId = (u32::MAX, 0);

/// The trailer's `/Encrypt` dictionary as the file gives it: its object id when it is a reference, and the
/// dictionary itself (resolved).
pub(super) type Encrypt = (Option<ObjectId>, Object);

/// Looks at the trailer's `/Encrypt` (and `/ID`, resolved) and tries the empty user password.
pub(super) fn access(encrypt: Option<Encrypt>, file_id: Option<Object>) -> Access {
    let Some((id, dict)) = encrypt else {
        return Access::Clear;
    };
    let id = id.unwrap_or(DIRECT);
    if !matches!(dict, Object::Dictionary(_)) {
        return Access::Locked;
    }
    let mut document = lopdf::Document::new();
    let mut trailer = Dictionary::new();
    trailer.set("Encrypt", Object::Reference(id));
    if let Some(file_id) = file_id {
        trailer.set("ID", file_id);
    }
    document.trailer = trailer;
    document.objects.insert(id, dict);
    // lopdf indexes into `/O`, `/U` and `/ID` strings whose lengths come from the file; a malformed dictionary
    // must not take the scan down with it.
    let state = catch_unwind(AssertUnwindSafe(|| {
        document.authenticate_password("").ok()?;
        EncryptionState::decode(&document, "").ok()
    }));
    match state {
        Ok(Some(state)) => Access::Open(Box::new(Decryptor { state })),
        _ => Access::Locked,
    }
}

impl Decryptor {
    /// Decrypts the strings of an object read from the file body.
    pub(super) fn object(&self, id: ObjectId, object: &mut Object) {
        let mut copy = object.clone();
        if matches!(
            catch_unwind(AssertUnwindSafe(|| decrypt_object(
                &self.state,
                id,
                &mut copy
            ))),
            Ok(Ok(()))
        ) {
            *object = copy;
        }
    }

    /// Decrypts a stream's raw bytes (an undecryptable stream is returned as it is and reads as noise).
    pub(super) fn stream(&self, id: ObjectId, dict: &Dictionary, raw: &[u8]) -> Vec<u8> {
        let mut stream =
            Object::Stream(Stream::new(dict.clone(), raw.to_vec()).with_compression(false));
        match catch_unwind(AssertUnwindSafe(|| {
            decrypt_object(&self.state, id, &mut stream)
        })) {
            Ok(Ok(())) => match stream {
                Object::Stream(s) => s.content,
                _ => raw.to_vec(),
            },
            _ => raw.to_vec(),
        }
    }
}
