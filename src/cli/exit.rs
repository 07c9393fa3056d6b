//! The exit codes of every `roomguard` command, in one place (sysexits.h where one fits).

use std::process::ExitCode;

/// How a command ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done: served until asked to stop, the policy is valid, every suite case passed, the server is SERVING.
    Success,
    /// Ran, and the answer is no: a suite case failed, the server is not SERVING, or serving failed.
    Failed,
    /// A bad flag, setting, variable or request (sysexits' EX_USAGE): the message names it.
    Usage,
    /// The policy directory does not load (sysexits' EX_DATAERR): every problem is listed as `file:line`.
    Policy,
    /// A service needed is unavailable: the homeserver cannot be reached or keeps failing (EX_UNAVAILABLE).
    Unavailable,
    /// Not allowed: the token is refused or is not a server admin's (EX_NOPERM).
    NoPermission,
    /// Stopped by Ctrl-C or SIGTERM (128 + SIGINT, as a shell reports it).
    Interrupted,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(match exit {
            Exit::Success => 0,
            Exit::Failed => 1,
            Exit::Usage => 64,
            Exit::Policy => 65,
            Exit::Unavailable => 69,
            Exit::NoPermission => 77,
            Exit::Interrupted => 130,
        })
    }
}
