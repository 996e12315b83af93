//! Where an upload stands, as its row keeps it. The moves between states are conditional
//! UPDATEs in `repo` (one racing replica wins each); this type makes a misspelt state a
//! compile error and an unknown one in the database a decode error, not a silent mismatch.
//!
//! ```text
//!  uploading ──last part / complete──▶ completing ──composed──▶ complete
//!      │  ▲                                │  (parts missing: back to uploading)
//!      │  └─────────────────────────────────┘
//!      ├──proof / own content──▶ (aborting, briefly) ──linked──▶ instant
//!      └──cancel / idle / over quota──▶ aborting ──parts dropped──▶ (row deleted)
//! ```

use shardrop_engine::protocol::UploadState;
use sqlx::any::{Any, AnyTypeInfo};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Parts are being sent.
    Uploading,
    /// One replica holds the completion (its lease is the row's `updated_at` plus
    /// `uploads.completion_lease_secs`; past that, another may take it over).
    Completing,
    /// Composed into its own object; `file_id` names the file.
    Complete,
    /// Linked to stored content; `file_id` names the new file.
    Instant,
    /// Being dropped (or, briefly, being linked): invisible to its owner.
    Aborting,
}

impl State {
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Uploading => "uploading",
            State::Completing => "completing",
            State::Complete => "complete",
            State::Instant => "instant",
            State::Aborting => "aborting",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        [State::Uploading, State::Completing, State::Complete, State::Instant, State::Aborting]
            .into_iter()
            .find(|st| st.as_str() == s)
    }

    /// Composed or linked: the upload has its file.
    pub fn is_finished(self) -> bool {
        matches!(self, State::Complete | State::Instant)
    }

    /// Parts may still arrive or be composed.
    pub fn is_open(self) -> bool {
        matches!(self, State::Uploading | State::Completing)
    }

    /// How the API shows it. An aborting upload is never shown (it answers
    /// `upload-not-found`); were it asked, it reads as `uploading`.
    pub fn wire(self) -> UploadState {
        match self {
            State::Uploading | State::Aborting => UploadState::Uploading,
            State::Completing => UploadState::Completing,
            State::Complete => UploadState::Complete,
            State::Instant => UploadState::Instant,
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// Stored as its name in a TEXT column.
impl sqlx::Type<Any> for State {
    fn type_info() -> AnyTypeInfo {
        <str as sqlx::Type<Any>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, Any> for State {
    fn encode_by_ref(&self, buf: &mut <Any as sqlx::Database>::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        <&str as sqlx::Encode<'q, Any>>::encode(self.as_str(), buf)
    }
}

impl<'r> sqlx::Decode<'r, Any> for State {
    fn decode(value: <Any as sqlx::Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let s = <String as sqlx::Decode<'r, Any>>::decode(value)?;
        State::parse(&s).ok_or_else(|| format!("unknown upload state {s:?}").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for st in [State::Uploading, State::Completing, State::Complete, State::Instant, State::Aborting] {
            assert_eq!(State::parse(st.as_str()), Some(st));
        }
        assert_eq!(State::parse("done"), None);
        assert_eq!(State::Instant.wire(), UploadState::Instant);
    }
}
