//! A file a homeserver is about to store, and the question "may it be stored?".

use crate::domain::subject::{Subject, check_server_name};

/// What the homeserver says about an uploaded file. The bytes travel apart (they are streamed), and nothing here is
/// trusted for the format: that is read from the content.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Media {
    /// `mxc://server/id`, or empty when unknown.
    pub media_id: String,
    /// The file name the client gave, or empty (Synapse's media hook does not know it).
    pub filename: String,
    /// The type the client declared, or empty.
    pub mimetype: String,
    /// The declared size in bytes, 0 when unknown.
    pub size: u64,
    /// The file comes from another homeserver.
    pub remote: bool,
}

/// "May this file be stored?"
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRequest {
    /// Echoed in the decision.
    pub request_id: String,
    /// Who uploads it, when the caller knows.
    pub uploader: Option<Subject>,
    /// The file's description.
    pub media: Media,
}

/// Why a media id is not `mxc://server/id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MediaIdError {
    /// No `mxc://` scheme.
    #[error("must start with `mxc://` (mxc://server/media_id)")]
    Scheme,
    /// The server name part is not a server name.
    #[error("the server name {0}")]
    Server(&'static str),
    /// The media id part is empty or holds other characters than the spec allows.
    #[error("the media id after the server must be letters, digits, `_` and `-`, and not empty")]
    Id,
}

/// Checks the grammar of a media id: `mxc://<server name>/<media id>`, where the media id is `[A-Za-z0-9_-]+`
/// (Matrix spec, "Matrix Content (mxc://) URIs").
pub fn check_media_id(id: &str) -> Result<(), MediaIdError> {
    let rest = id.strip_prefix("mxc://").ok_or(MediaIdError::Scheme)?;
    let (server, media) = rest.rsplit_once('/').ok_or(MediaIdError::Id)?;
    check_server_name(server).map_err(MediaIdError::Server)?;
    if media.is_empty()
        || !media
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(MediaIdError::Id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Media ids are `mxc://server/id` with the spec's characters; anything else says what is wrong.
    #[test]
    fn media_ids_follow_the_mxc_grammar() {
        for good in [
            "mxc://example.org/abcDEF_123-x",
            "mxc://localhost:8008/AbC",
            "mxc://[::1]:8448/id",
        ] {
            assert_eq!(check_media_id(good), Ok(()), "{good}");
        }
        assert_eq!(check_media_id("https://x/y"), Err(MediaIdError::Scheme));
        assert_eq!(check_media_id("mxc://example.org/"), Err(MediaIdError::Id));
        assert_eq!(check_media_id("mxc://example.org"), Err(MediaIdError::Id));
        assert!(matches!(
            check_media_id("mxc://example.org/a/b"),
            Err(MediaIdError::Server(_))
        ));
        assert_eq!(
            check_media_id("mxc://example.org/a b"),
            Err(MediaIdError::Id)
        );
        assert!(matches!(
            check_media_id("mxc:///abc"),
            Err(MediaIdError::Server(_))
        ));
    }
}
