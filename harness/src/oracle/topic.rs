//! Topic Names and Topic Filters as §4.7 of both versions defines them, written for the
//! oracle (it does not share the broker's matcher).

/// A Topic Filter of a subscription: plain, or `$share/{group}/{filter}` (v5 §4.8.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// The filter matched against topic names (without the `$share/{group}/` prefix).
    pub pattern: String,
    /// The share name of a shared subscription.
    pub share: Option<String>,
}

impl Filter {
    /// Parses a filter as written in SUBSCRIBE; `None` when it is not a valid filter.
    pub fn parse(text: &str, v5: bool) -> Option<Filter> {
        let (pattern, share) = match text.strip_prefix("$share/") {
            Some(rest) if v5 => {
                let (group, pattern) = rest.split_once('/')?;
                // [MQTT-4.8.2-2] the share name holds no wildcards and is not empty
                if group.is_empty() || group.contains(['+', '#']) {
                    return None;
                }
                (pattern, Some(group.to_owned()))
            }
            _ => (text, None),
        };
        is_valid_filter(pattern).then(|| Filter {
            pattern: pattern.to_owned(),
            share,
        })
    }

    pub fn matches(&self, topic: &str) -> bool {
        filter_matches(&self.pattern, topic)
    }
}

/// [MQTT-4.7.1-1..3] `#` only last and alone in its level, `+` alone in its level; at least
/// one character ([MQTT-4.7.3-1]); no U+0000 ([MQTT-4.7.3-2]).
pub fn is_valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, level)| match *level {
        "#" => i == levels.len() - 1,
        "+" => true,
        other => !other.contains(['+', '#']),
    })
}

/// Why a Topic Name cannot be published to, if it cannot: wildcards ([MQTT-4.7.0-1]), empty
/// ([MQTT-4.7.3-1]) or holding U+0000 ([MQTT-4.7.3-2]).
pub fn invalid_topic_name(topic: &str) -> Option<&'static str> {
    if topic.is_empty() {
        Some("an empty topic name [MQTT-4.7.3-1]")
    } else if topic.contains(['+', '#']) {
        Some("wildcards in a topic name [MQTT-4.7.0-1]")
    } else if topic.contains('\0') {
        Some("U+0000 in a topic name [MQTT-4.7.3-2]")
    } else {
        None
    }
}

/// Code points a receiver may close the connection for: control characters and
/// non-characters (v5 §1.5.4, 3.1.1 §1.5.3: SHOULD NOT be sent, the receiver MAY close).
pub fn has_disallowed_code_points(text: &str) -> bool {
    text.chars().any(|c| {
        let n = u32::from(c);
        (0x01..=0x1F).contains(&n)
            || (0x7F..=0x9F).contains(&n)
            || (0xFDD0..=0xFDEF).contains(&n)
            || (n & 0xFFFE) == 0xFFFE
    })
}

/// Does a (plain) filter match a topic name? Levels are compared byte for byte, without
/// normalisation ([MQTT-4.7.3-4]); `#` also matches the parent level (§4.7.1.2); filters
/// starting with a wildcard do not match names starting with `$` ([MQTT-4.7.2-1]).
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut names = topic.split('/');
    for level in filter.split('/') {
        match level {
            "#" => return true,
            "+" => {
                if names.next().is_none() {
                    return false;
                }
            }
            exact => {
                if names.next() != Some(exact) {
                    return false;
                }
            }
        }
    }
    names.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_section_4_7_says() {
        assert!(filter_matches("will/#", "will/device-1"));
        assert!(filter_matches("will/#", "will"));
        assert!(filter_matches("#", "a/b/c"));
        assert!(filter_matches("+/device", "will/device"));
        assert!(!filter_matches("+/device", "will/x/device"));
        assert!(filter_matches("will/+", "will/"));
        assert!(!filter_matches("will/+", "will"));
        assert!(!filter_matches("will/device", "will/device/x"));
    }

    #[test]
    fn dollar_topics_are_hidden_from_leading_wildcards() {
        assert!(!filter_matches("#", "$will/device"));
        assert!(!filter_matches("+/device", "$will/device"));
        assert!(filter_matches("$will/#", "$will/device"));
    }

    #[test]
    fn filters_are_validated() {
        assert!(is_valid_filter("a/+/b/#"));
        assert!(!is_valid_filter("a/#/b"));
        assert!(!is_valid_filter("a+"));
        assert!(!is_valid_filter(""));
        let shared = Filter::parse("$share/g/will/#", true).unwrap();
        assert_eq!(shared.share.as_deref(), Some("g"));
        assert!(shared.matches("will/x"));
        assert!(Filter::parse("$share/g+/x", true).is_none());
    }
}
