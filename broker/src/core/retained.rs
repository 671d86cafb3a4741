//! The retained message store ([MQTT-3.3.1-5] .. [MQTT-3.3.1-8]).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::delivery::Message;
use super::moment::Moment;
use super::topic;

/// One retained message per topic, in topic order so that delivery order is deterministic.
#[derive(Debug, Default)]
pub struct RetainedStore {
    messages: BTreeMap<String, Arc<Message>>,
}

impl RetainedStore {
    /// Stores a RETAIN=1 message: it replaces the previous one for its topic
    /// ([MQTT-3.3.1-5]); an empty payload removes it and is not stored ([MQTT-3.3.1-6],
    /// [MQTT-3.3.1-7]).
    pub fn store(&mut self, message: &Arc<Message>) {
        if message.payload.is_empty() {
            self.messages.remove(&message.topic);
        } else {
            self.messages
                .insert(message.topic.clone(), Arc::clone(message));
        }
    }

    /// The unexpired retained messages matching `filter`, dropping expired ones on the way
    /// ({W5-RET-EXPIRE}).
    pub fn matching(&mut self, filter: &str, now: Moment) -> Vec<Arc<Message>> {
        self.messages.retain(|_, message| !message.is_expired(now));
        self.messages
            .iter()
            .filter(|(name, _)| topic::matches(filter, name))
            .map(|(_, message)| Arc::clone(message))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }
}
