#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Throttling and transient error codes that any AWS service may answer with; a later retry of
/// the same call may succeed.
pub const COMMON_RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
];

/// What every `aws-sdk-*` operation error is: error metadata (code, message) that can be sent
/// between threads. Implemented for every type that meets the bounds; name it in `where` clauses.
pub trait OperationError: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static {}

impl<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static> OperationError for E {}

/// What an AWS SDK error says: whether a retry may help, the service's code and its message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Classified {
    /// Whether the same call may succeed later (throttling, 5xx, timeouts, broken connections).
    pub retryable: bool,
    /// The service's error code, when the service answered with one.
    pub code: Option<String>,
    /// The service's message, else `HTTP status N` for an answer without one, else the SDK's
    /// description of the failure with its sources.
    pub message: String,
}

/// Whether an error code from a service is worth retrying: one of [`COMMON_RETRYABLE_CODES`] or
/// of `service_codes`, the codes of the caller's service (such as Kinesis's per-record
/// `ProvisionedThroughputExceededException`).
pub fn is_retryable_code(code: &str, service_codes: &[&str]) -> bool {
    COMMON_RETRYABLE_CODES.contains(&code) || service_codes.contains(&code)
}

/// Classify an AWS SDK error by the rules in the crate documentation; `service_codes` are the
/// retryable codes of the service the call went to, beyond [`COMMON_RETRYABLE_CODES`].
pub fn classify<E: OperationError>(
    error: &SdkError<E, Response>,
    service_codes: &[&str],
) -> Classified {
    let described = || DisplayErrorContext(error).to_string();
    match error {
        SdkError::ServiceError(context) => {
            let code = context.err().code().map(str::to_owned);
            let status = context.raw().status().as_u16();
            let retryable = status == 429
                || (500..600).contains(&status)
                || code
                    .as_deref()
                    .is_some_and(|c| is_retryable_code(c, service_codes));
            let message = context
                .err()
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP status {status}"));
            Classified {
                retryable,
                code,
                message,
            }
        }
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => Classified {
            retryable: true,
            code: None,
            message: described(),
        },
        SdkError::DispatchFailure(failure) => Classified {
            retryable: failure.is_io() || failure.is_timeout() || failure.is_other(),
            code: None,
            message: described(),
        },
        _ => Classified {
            retryable: false,
            code: None,
            message: described(),
        },
    }
}

#[cfg(test)]
mod tests {
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    type Error = SdkError<ErrorMetadata, Response>;

    fn answer(status: u16, code: Option<&str>, message: Option<&str>) -> Error {
        let mut metadata = ErrorMetadata::builder();
        if let Some(code) = code {
            metadata = metadata.code(code);
        }
        if let Some(message) = message {
            metadata = metadata.message(message);
        }
        let status = StatusCode::try_from(status).expect("a valid status");
        SdkError::service_error(metadata.build(), Response::new(status, SdkBody::empty()))
    }

    #[test]
    fn service_answers_retry_on_429_5xx_and_listed_codes_only() {
        let cases = [
            (429, None, &[][..], true),
            (503, None, &[][..], true),
            (400, Some("ThrottlingException"), &[][..], true),
            (400, Some("KMSInternalException"), &[][..], false),
            (
                400,
                Some("KMSInternalException"),
                &["KMSInternalException"][..],
                true,
            ),
            (
                400,
                Some("AccessDeniedException"),
                &["KMSInternalException"][..],
                false,
            ),
            (404, None, &[][..], false),
        ];
        for (status, code, service_codes, retryable) in cases {
            let seen = classify(&answer(status, code, Some("m")), service_codes);
            assert_eq!(
                seen,
                Classified {
                    retryable,
                    code: code.map(str::to_owned),
                    message: "m".to_owned(),
                },
                "{status} {code:?} {service_codes:?}"
            );
        }
        assert_eq!(
            classify(&answer(418, Some("Teapot"), None), &[]).message,
            "HTTP status 418"
        );
    }

    #[test]
    fn transport_failures_retry_unless_the_request_was_never_sendable() {
        let io: Error = SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        let timeout: Error = SdkError::timeout_error("no answer in 3 s");
        let user: Error = SdkError::dispatch_failure(ConnectorError::user("bad endpoint".into()));
        let construction: Error = SdkError::construction_failure("missing field");
        for (error, retryable) in [
            (io, true),
            (timeout, true),
            (user, false),
            (construction, false),
        ] {
            let seen = classify(&error, &[]);
            assert_eq!(seen.retryable, retryable, "{}", seen.message);
            assert_eq!(seen.code, None);
            assert!(!seen.message.is_empty());
        }
    }
}
