//! Every session's subscriptions in one tree of topic levels, so that routing a message costs
//! the levels of its topic and the subscriptions that match, not the number of sessions.
//!
//! Without it a will storm is quadratic: each of n wills was matched against all n sessions
//! (`cargo bench -p lastwill-benches` measured 50,000 wills at 6,000 wills/s before, see the
//! README). The sessions stay the source of truth: the index only says which (client id,
//! subscription key) pairs to look at, and it iterates in `BTreeMap`/`BTreeSet` order, so the
//! order of deliveries, and with it every transcript, does not depend on it.

use std::collections::{BTreeMap, BTreeSet};

/// One subscription: the client id and the key of the subscription in its session (the filter
/// as the client wrote it, `$share/{group}/` included).
type Entry = (String, String);

#[derive(Debug, Default)]
pub struct SubscriptionIndex {
    root: Node,
}

#[derive(Debug, Default)]
struct Node {
    /// The next level: a literal, or `+`.
    children: BTreeMap<String, Node>,
    /// Filters ending here (`a/b` at the node of `b`).
    exact: BTreeSet<Entry>,
    /// Filters ending in `#` right after this level (`a/#` at the node of `a`, `#` at the
    /// root): they match this level itself and everything below it.
    rest: BTreeSet<Entry>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.exact.is_empty() && self.rest.is_empty()
    }
}

/// Where in the tree a (validated) filter is kept: the levels before a trailing `#`, and
/// whether there was one.
fn path(filter: &str) -> (Vec<&str>, bool) {
    let mut levels: Vec<&str> = filter.split('/').collect();
    let multi = levels.last() == Some(&"#");
    if multi {
        levels.pop();
    }
    (levels, multi)
}

impl SubscriptionIndex {
    /// Records that `client_id` subscribes to `filter` (the topic filter, without a
    /// `$share/{group}/` prefix) under the session key `key`. Recording it twice is harmless.
    pub fn insert(&mut self, filter: &str, client_id: &str, key: &str) {
        let (levels, multi) = path(filter);
        let mut node = &mut self.root;
        for level in levels {
            node = node.children.entry(level.to_owned()).or_default();
        }
        let set = if multi {
            &mut node.rest
        } else {
            &mut node.exact
        };
        set.insert((client_id.to_owned(), key.to_owned()));
    }

    /// Forgets what [`SubscriptionIndex::insert`] recorded, pruning branches left empty.
    pub fn remove(&mut self, filter: &str, client_id: &str, key: &str) {
        let (levels, multi) = path(filter);
        remove_at(
            &mut self.root,
            &levels,
            multi,
            &(client_id.to_owned(), key.to_owned()),
        );
    }

    /// The subscriptions whose filter matches the topic name `topic`: client ids in order,
    /// each with its matching session keys in order.
    pub fn matching(&self, topic: &str) -> BTreeMap<&str, BTreeSet<&str>> {
        let levels: Vec<&str> = topic.split('/').collect();
        let mut found = BTreeMap::new();
        // [MQTT-4.7.2-1] filters starting with a wildcard do not match `$` topics
        let hidden = topic.starts_with('$');
        collect(&self.root, &levels, hidden, &mut found);
        found
    }
}

fn remove_at(node: &mut Node, levels: &[&str], multi: bool, entry: &Entry) {
    match levels.split_first() {
        None => {
            let set = if multi {
                &mut node.rest
            } else {
                &mut node.exact
            };
            set.remove(entry);
        }
        Some((level, below)) => {
            if let Some(child) = node.children.get_mut(*level) {
                remove_at(child, below, multi, entry);
                if child.is_empty() {
                    node.children.remove(*level);
                }
            }
        }
    }
}

/// Adds the subscriptions under `node` that match the remaining topic `levels`. At the root of
/// a `$` topic (`hidden`), the wildcard branches are skipped.
fn collect<'a>(
    node: &'a Node,
    levels: &[&str],
    hidden: bool,
    found: &mut BTreeMap<&'a str, BTreeSet<&'a str>>,
) {
    let mut add = |set: &'a BTreeSet<Entry>| {
        for (client_id, key) in set {
            found
                .entry(client_id.as_str())
                .or_default()
                .insert(key.as_str());
        }
    };
    // `prefix/#` matches the prefix itself and anything below it
    if !hidden {
        add(&node.rest);
    }
    let Some((level, below)) = levels.split_first() else {
        add(&node.exact);
        return;
    };
    if let Some(child) = node.children.get(*level) {
        collect(child, below, false, found);
    }
    if !hidden && let Some(child) = node.children.get("+") {
        collect(child, below, false, found);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::core::topic;

    fn index(filters: &[&str]) -> SubscriptionIndex {
        let mut index = SubscriptionIndex::default();
        for (n, filter) in filters.iter().enumerate() {
            index.insert(filter, &format!("c{n}"), filter);
        }
        index
    }

    /// The filters that match, by the index.
    fn matched<'a>(index: &'a SubscriptionIndex, topic: &str) -> Vec<&'a str> {
        index
            .matching(topic)
            .into_values()
            .flat_map(|keys| keys.into_iter())
            .collect()
    }

    #[test]
    fn wildcards_and_dollar_topics() {
        let index = index(&["a/+/c", "a/#", "#", "+", "a/+", "$SYS/#", "+/x", "a"]);
        assert_eq!(matched(&index, "a/b/c"), ["a/+/c", "a/#", "#"]);
        assert_eq!(matched(&index, "a"), ["a/#", "#", "+", "a"]);
        assert_eq!(matched(&index, "a/"), ["a/#", "#", "a/+"]);
        // [MQTT-4.7.2-1]
        assert_eq!(matched(&index, "$SYS/x"), ["$SYS/#"]);
    }

    #[test]
    fn removal_prunes_and_keeps_the_others() {
        let mut index = index(&["a/b", "a/#"]);
        index.insert("a/b", "c9", "$share/g/a/b");
        index.remove("a/b", "c0", "a/b");
        assert_eq!(matched(&index, "a/b"), ["a/#", "$share/g/a/b"]);
        index.remove("a/b", "c9", "$share/g/a/b");
        index.remove("a/#", "c1", "a/#");
        assert!(index.root.is_empty());
    }

    fn level() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just(String::new()),
            Just("$x".to_owned())
        ]
    }

    fn filter() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(prop_oneof![level(), Just("+".to_owned())], 1..4),
            any::<bool>(),
        )
            .prop_map(|(levels, multi)| {
                let mut filter = levels.join("/");
                if multi {
                    filter.push_str("/#");
                }
                filter
            })
    }

    proptest! {
        /// The index finds exactly the filters that `topic::matches` accepts.
        #[test]
        fn agrees_with_matching_filter_by_filter(
            filters in proptest::collection::vec(prop_oneof![filter(), Just("#".to_owned())], 0..12),
            topic in proptest::collection::vec(level(), 1..5).prop_map(|l| l.join("/")),
        ) {
            let filters: Vec<&str> = filters.iter().map(String::as_str).collect();
            let index = index(&filters);
            let mut expected: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
            for (n, filter) in filters.iter().enumerate() {
                if topic::matches(filter, &topic) {
                    expected.entry(format!("c{n}")).or_default().insert(filter);
                }
            }
            let found: BTreeMap<String, BTreeSet<&str>> = index
                .matching(&topic)
                .into_iter()
                .map(|(client, keys)| (client.to_owned(), keys))
                .collect();
            prop_assert_eq!(found, expected);
        }
    }
}
