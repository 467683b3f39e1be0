//! Labels: the `key=value` pairs on jobs and workers, and locations (a
//! location is the value a worker's `location` label carries and a key-like
//! name on a job). The server checks job labels, locations, label selectors
//! and a worker's hello with these rules; the worker checks its `--labels`
//! flag with the same key rule, so a worker that starts is not refused for
//! its label keys when it says hello.

/// The longest label key, in characters (ASCII, so also bytes).
pub const MAX_LABEL_KEY_CHARS: usize = 63;

/// The longest label value, in characters, on a job or a worker.
pub const MAX_LABEL_VALUE_CHARS: usize = 256;

/// The most labels a worker's hello may carry.
pub const MAX_WORKER_LABELS: usize = 32;

/// Whether `value` may be a label's value: at most
/// [`MAX_LABEL_VALUE_CHARS`] characters, none of them a control character.
pub fn is_label_value(value: &str) -> bool {
    value.chars().count() <= MAX_LABEL_VALUE_CHARS && !value.chars().any(char::is_control)
}

/// What [`is_label_key`] accepts, worded for error messages ("key must be
/// …", "must be …").
pub const LABEL_KEY_RULE: &str =
    "1 to 63 characters of letters, digits, '.', '_', '/', '-', starting with a letter or digit";

/// Whether `key` may name a label (or be a location): 1 to
/// [`MAX_LABEL_KEY_CHARS`] of `[A-Za-z0-9._/-]`, starting with a letter or
/// digit, so keys are safe in URLs, selectors and metric labels.
pub fn is_label_key(key: &str) -> bool {
    key.len() <= MAX_LABEL_KEY_CHARS
        && key.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_printable_and_at_most_256_characters() {
        assert!(is_label_value(""));
        assert!(is_label_value(&"é".repeat(MAX_LABEL_VALUE_CHARS)));
        assert!(!is_label_value(&"v".repeat(MAX_LABEL_VALUE_CHARS + 1)));
        assert!(!is_label_value("a\nb"));
        assert!(!is_label_value("tab\there"));
    }

    #[test]
    fn keys_of_letters_digits_and_separators_are_accepted_up_to_63() {
        let longest = "k".repeat(MAX_LABEL_KEY_CHARS);
        for key in [
            "a",
            "A9",
            "9",
            "team.name/sub_part-1",
            "eu-west-1",
            "a.",
            "a-",
            longest.as_str(),
        ] {
            assert!(is_label_key(key), "{key:?}");
        }
    }

    #[test]
    fn empty_long_or_oddly_started_keys_are_refused() {
        let too_long = "k".repeat(MAX_LABEL_KEY_CHARS + 1);
        for key in [
            "",
            too_long.as_str(),
            "-a",
            ".a",
            "_a",
            "/a",
            "a b",
            "a=b",
            "a,b",
            "a:b",
            "é",
            "aé",
            "a\n",
        ] {
            assert!(!is_label_key(key), "{key:?}");
        }
    }

    #[test]
    fn the_worded_rule_states_the_limit_it_enforces() {
        assert!(LABEL_KEY_RULE.starts_with(&format!("1 to {MAX_LABEL_KEY_CHARS} characters")));
        assert_eq!(MAX_LABEL_VALUE_CHARS, 256);
    }
}
