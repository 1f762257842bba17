//! Errors of the vectors tool: a manifest it cannot read.

use std::fmt;

/// A manifest, keys file or referenced file could not be read or understood.
#[derive(Debug)]
pub struct ToolError(pub String);

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ToolError {}

/// Build a [`ToolError`] from format arguments.
macro_rules! tool_error {
    ($($arg:tt)*) => { $crate::error::ToolError(format!($($arg)*)) };
}
pub(crate) use tool_error;

/// The result type of the vectors tool.
pub type Result<T, E = ToolError> = std::result::Result<T, E>;
