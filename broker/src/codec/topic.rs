//! Topic Name rules the codec can check on its own (§4.7). Topic Filter syntax is left to the
//! broker core, which answers a bad filter per filter in SUBACK (0x8F / 0x80) instead of
//! closing the connection.

use super::DecodeError;
use super::DecodeErrorKind::TopicNameInvalid;
use super::wire::error;

/// A Topic Name is at least one character long ([MQTT-4.7.3-1]) and contains no wildcard
/// ([MQTT-4.7.0-1]; 3.1.1 [MQTT-4.7.1-1]). U+0000 is already refused as a string rule.
pub fn is_valid_topic_name(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#'])
}

/// Checks the Topic Name of a PUBLISH or of a Will: Topic Name invalid (0x90) otherwise.
pub fn check_topic_name(topic: &str, what: &str) -> Result<(), DecodeError> {
    if is_valid_topic_name(topic) {
        Ok(())
    } else {
        Err(error(
            TopicNameInvalid,
            format!("{what} {topic:?}: a Topic Name is not empty and has no wildcards"),
        ))
    }
}
