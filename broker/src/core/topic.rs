//! Topic filters: validation, matching, and shared-subscription names.

/// Why a topic filter was refused in SUBACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterError {
    /// Empty, `#` not last or not alone in its level, `+` not alone in its level, or a bad
    /// `$share/` form ([MQTT-4.7.1-1], [MQTT-4.7.1-2], [MQTT-4.8.2-1], [MQTT-4.8.2-2]).
    Invalid,
}

/// A filter as stored in a session: either an ordinary filter, or a member of a shared
/// subscription group (`$share/{group}/{filter}`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParsedFilter {
    pub share_group: Option<String>,
    pub filter: String,
}

impl ParsedFilter {
    pub fn has_wildcards(&self) -> bool {
        self.filter.contains(['+', '#'])
    }
}

/// Validates a subscription filter and splits off a `$share/{group}/` prefix.
pub fn parse_filter(raw: &str) -> Result<ParsedFilter, FilterError> {
    let (share_group, filter) = match raw.strip_prefix("$share/") {
        Some(rest) => {
            let (group, filter) = rest.split_once('/').ok_or(FilterError::Invalid)?;
            // [MQTT-4.8.2-1] the ShareName is at least one character and has no wildcards
            if group.is_empty() || group.contains(['+', '#']) {
                return Err(FilterError::Invalid);
            }
            (Some(group.to_owned()), filter)
        }
        None => (None, raw),
    };
    validate_filter(filter)?;
    Ok(ParsedFilter {
        share_group,
        filter: filter.to_owned(),
    })
}

fn validate_filter(filter: &str) -> Result<(), FilterError> {
    // [MQTT-4.7.3-1] topic filters are at least one character long
    if filter.is_empty() {
        return Err(FilterError::Invalid);
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let is_last = levels.peek().is_none();
        match level {
            // [MQTT-4.7.1-2] `#` occupies a whole level and is the last character
            "#" if !is_last => return Err(FilterError::Invalid),
            "#" | "+" => {}
            // [MQTT-4.7.1-3] `+` occupies a whole level
            other if other.contains(['+', '#']) => return Err(FilterError::Invalid),
            _ => {}
        }
    }
    Ok(())
}

/// Whether `topic` is under `$SYS`, the broker's own: clients may not publish there or set a
/// will there (§4.7.2 reserves `$` topics for the server's use).
pub fn is_broker_topic(topic: &str) -> bool {
    topic == "$SYS" || topic.starts_with("$SYS/")
}

/// Does `filter` (already validated) match the topic name `topic`?
pub fn matches(filter: &str, topic: &str) -> bool {
    // [MQTT-4.7.2-1] filters starting with a wildcard do not match `$` topics
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for filter_level in filter.split('/') {
        match filter_level {
            // `#` also matches the parent level: `a/#` matches `a`
            "#" => return true,
            "+" => {
                if topic_levels.next().is_none() {
                    return false;
                }
            }
            // [MQTT-4.7.3-4] no normalisation: byte-for-byte comparison
            literal => {
                if topic_levels.next() != Some(literal) {
                    return false;
                }
            }
        }
    }
    topic_levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_by_level() {
        assert!(matches("a/+/c", "a/b/c"));
        assert!(!matches("a/+/c", "a/b/d"));
        assert!(matches("a/#", "a"));
        assert!(matches("a/#", "a/b/c"));
        assert!(matches("#", "a/b"));
        assert!(matches("+", ""));
        assert!(!matches("+", "a/b"));
        assert!(matches("a/+", "a/"));
        assert!(!matches("a/b", "a/b/c"));
    }

    #[test]
    fn dollar_topics_are_hidden_from_leading_wildcards() {
        // [MQTT-4.7.2-1]
        assert!(!matches("#", "$will/x"));
        assert!(!matches("+/x", "$will/x"));
        assert!(matches("$will/#", "$will/x"));
    }

    #[test]
    fn no_normalisation() {
        // [MQTT-4.7.3-4]: NFC "ä" and NFD "a\u{308}" are different topics
        assert!(!matches("\u{e4}", "a\u{308}"));
        assert!(matches("\u{feff}x", "\u{feff}x"));
        assert!(!matches("x", "\u{feff}x"));
    }

    #[test]
    fn invalid_filters_are_refused() {
        for bad in [
            "",
            "a+/b",
            "a/#/b",
            "#x",
            "a/b#",
            "$share/g",
            "$share//a",
            "$share/g+/a",
        ] {
            assert_eq!(parse_filter(bad), Err(FilterError::Invalid), "{bad:?}");
        }
        let shared = parse_filter("$share/g/a/#").unwrap();
        assert_eq!(shared.share_group.as_deref(), Some("g"));
        assert_eq!(shared.filter, "a/#");
    }
}
