//! The error every command reports: a message for standard error, from whichever layer failed.

/// A command's failure, printed as `envelope: MESSAGE`.
pub(crate) type Failure = Box<dyn std::error::Error>;
