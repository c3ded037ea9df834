use firecamp_core::ValidationErrors;

/// What went wrong, and so which exit code: 2 for anything the user must fix in the command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Invalid(#[from] ValidationErrors),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) | CliError::Invalid(_) => 2,
            CliError::NotFound(_) | CliError::Failed(_) => 1,
        }
    }
}
