//! I/O errors in words: what a person reads when a file, a socket or a TLS handshake fails.

/// The operating system's words without Rust's `(os error 111)` suffix (`connection
/// refused`), or the error's own text when it carries one (TLS, a closed stream).
pub fn describe(error: &std::io::Error) -> String {
    let text = error.to_string();
    let Some(code) = error.raw_os_error() else {
        return text;
    };
    let message = text
        .strip_suffix(&format!(" (os error {code})"))
        .unwrap_or(&text);
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_read_without_their_codes() {
        let refused = std::io::Error::from_raw_os_error(111);
        assert_eq!(describe(&refused), "connection refused");
        let missing = std::io::Error::from_raw_os_error(2);
        assert_eq!(describe(&missing), "no such file or directory");
        let custom = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        assert_eq!(describe(&custom), "invalid peer certificate: UnknownIssuer");
    }
}
