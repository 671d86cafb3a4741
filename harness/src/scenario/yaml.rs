//! A small YAML node tree in which every node knows its line and column, built from
//! saphyr-parser's event stream, and the strict readers the scenario builder uses on it.
//! Scalars stay untyped text: the builder decides what each one means, so `yes` is never a
//! boolean and `0x8E` is a number only where a number is expected.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use super::model::Location;

/// A message tied to a place in the file; the file name is added by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    pub location: Location,
    pub message: String,
}

pub type R<T> = Result<T, Located>;

#[derive(Clone, Debug)]
pub struct Node {
    pub location: Location,
    pub value: Value,
}

#[derive(Clone, Debug)]
pub enum Value {
    Scalar {
        text: String,
        /// Quoted or block scalars are always strings; plain ones may be null, numbers...
        plain: bool,
        /// Column offset of the text's first character from the node's column, when the
        /// text stands in the source exactly as it is (one line, no escapes).
        verbatim_at: Option<usize>,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

fn location(span: &Span) -> Location {
    Location {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

/// Parses one YAML document. `Ok(None)` for a file without any content.
pub fn parse(source: &str) -> R<Option<Node>> {
    enum Frame {
        Seq(Location, usize, Vec<Node>),
        Map(Location, usize, Vec<(Node, Node)>, Option<Node>),
    }
    let chars: Vec<char> = source.chars().collect();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut documents = 0;
    for event in Parser::new_from_str(source) {
        let (event, span) = event.map_err(|e| Located {
            location: Location {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            message: format!("YAML syntax error: {}", e.info()),
        })?;
        let (node, anchor) = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(Located {
                        location: location(&span),
                        message: "a scenario file holds one YAML document; found a second `---`"
                            .into(),
                    });
                }
                continue;
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq(location(&span), anchor, Vec::new()));
                continue;
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map(location(&span), anchor, Vec::new(), None));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(location, anchor, items)) => (
                    Node {
                        location,
                        value: Value::Seq(items),
                    },
                    anchor,
                ),
                Some(Frame::Map(location, anchor, entries, _)) => (
                    Node {
                        location,
                        value: Value::Map(entries),
                    },
                    anchor,
                ),
                None => continue,
            },
            Event::Scalar(text, style, anchor, _) => {
                let quote = usize::from(matches!(
                    style,
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted
                ));
                let (start, end) = (span.start.index(), span.end.index());
                let verbatim = matches!(
                    style,
                    ScalarStyle::Plain | ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted
                ) && end >= start + 2 * quote
                    && chars
                        .get(start + quote..end - quote)
                        .is_some_and(|raw| raw.iter().copied().eq(text.chars()));
                (
                    Node {
                        location: location(&span),
                        value: Value::Scalar {
                            text: text.into_owned(),
                            plain: style == ScalarStyle::Plain,
                            verbatim_at: verbatim.then_some(quote),
                        },
                    },
                    anchor,
                )
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some(node) => (node.clone(), 0),
                None => {
                    return Err(Located {
                        location: location(&span),
                        message: "alias to an unknown anchor".into(),
                    });
                }
            },
            _ => continue,
        };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, key)) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => *key = Some(node),
            },
            None => root = Some(node),
        }
    }
    // An empty document is a single null scalar.
    Ok(root.filter(|node| !node.is_null()))
}

impl Node {
    pub fn err(&self, message: impl Into<String>) -> Located {
        Located {
            location: self.location,
            message: message.into(),
        }
    }

    /// "expected WHAT, got DESCRIPTION".
    pub fn expected(&self, what: &str) -> Located {
        self.err(format!("expected {what}, got {}", self.describe()))
    }

    /// The location of the `index`th character of a scalar's text, where it can be known.
    pub fn location_of_char(&self, index: usize) -> Location {
        match self.value {
            Value::Scalar {
                verbatim_at: Some(offset),
                ..
            } => Location {
                line: self.location.line,
                column: self.location.column + offset + index,
            },
            _ => self.location,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true, .. }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// What the node is, for error messages.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
            Value::Scalar { .. } if self.is_null() => "nothing (null)".into(),
            Value::Scalar { text, plain, .. } => {
                let kind = if !plain {
                    "string"
                } else if matches!(text.as_str(), "true" | "false") {
                    "boolean"
                } else if parse_uint(text).is_some()
                    || text.strip_prefix('-').and_then(parse_uint).is_some()
                {
                    "integer"
                } else if text.parse::<f64>().is_ok() {
                    "number"
                } else {
                    "string"
                };
                format!("{kind} `{text}`")
            }
        }
    }

    /// The text of a non-null scalar.
    pub fn text(&self, what: &str) -> R<&str> {
        match &self.value {
            Value::Scalar { text, .. } if !self.is_null() => Ok(text),
            _ => Err(self.expected(what)),
        }
    }

    /// Any non-null scalar, as a string (`1` and `true` are the strings "1" and "true").
    pub fn string(&self) -> R<String> {
        self.text("a string").map(str::to_owned)
    }

    pub fn bool(&self) -> R<bool> {
        match &self.value {
            Value::Scalar {
                text, plain: true, ..
            } if text == "true" => Ok(true),
            Value::Scalar {
                text, plain: true, ..
            } if text == "false" => Ok(false),
            _ => Err(self.expected("`true` or `false`")),
        }
    }

    /// An unsigned integer (decimal or `0x` hex) that fits `T`.
    pub fn uint<T: TryFrom<u64> + Into<u64> + Copy + Bounded>(&self) -> R<T> {
        self.uint_in(T::MIN, T::MAX)
    }

    /// An unsigned integer within `min..=max`.
    pub fn uint_in<T: TryFrom<u64> + Into<u64> + Copy>(&self, min: T, max: T) -> R<T> {
        let (lo, hi) = (min.into(), max.into());
        let what = format!("an integer from {lo} to {hi}");
        match &self.value {
            Value::Scalar {
                text, plain: true, ..
            } => match parse_uint(text) {
                Some(n) if (lo..=hi).contains(&n) => {
                    T::try_from(n).map_err(|_| self.expected(&what))
                }
                Some(_) => Err(self.err(format!("{text} is out of range: expected {what}"))),
                None => Err(self.expected(&what)),
            },
            _ => Err(self.expected(&what)),
        }
    }

    pub fn entries(&self, what: &str) -> R<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Ok(entries),
            _ => Err(self.expected(&format!("a mapping for {what}"))),
        }
    }

    /// The items of a list; any other node is a list of itself.
    pub fn one_or_many(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => std::slice::from_ref(self),
        }
    }

    /// A list of `T`, written as a list or as a single item.
    pub fn list<T>(&self, mut item: impl FnMut(&Node) -> R<T>) -> R<Vec<T>> {
        self.one_or_many().iter().map(&mut item).collect()
    }
}

/// Types [`Node::uint`] can produce.
pub trait Bounded: Sized {
    const MIN: Self;
    const MAX: Self;
}

macro_rules! bounded {
    ($($t:ty),*) => {$(impl Bounded for $t { const MIN: Self = <$t>::MIN; const MAX: Self = <$t>::MAX; })*};
}
bounded!(u8, u16, u32, u64);

/// `123` or `0x7B`.
pub fn parse_uint(text: &str) -> Option<u64> {
    let text = text.replace('_', "");
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() => u64::from_str_radix(hex, 16).ok(),
        Some(_) => None,
        None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok(),
        None => None,
    }
}

/// One `key: value` of a mapping, by key text.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'n> {
    pub key: &'n str,
    pub key_node: &'n Node,
    pub value: &'n Node,
}

/// The entries of a mapping, checked against the keys allowed there: an unknown or
/// duplicate key is an error that names the valid keys.
#[derive(Debug)]
pub struct Fields<'n> {
    pub location: Location,
    pub entries: Vec<Entry<'n>>,
}

impl<'n> Fields<'n> {
    /// The node must be a mapping whose keys are all in `allowed`. `what` names it in
    /// messages ("in connect").
    pub fn of(node: &'n Node, what: &str, allowed: &[&str]) -> R<Fields<'n>> {
        let entries = node
            .entries(what)?
            .iter()
            .map(|(key, value)| {
                Ok(Entry {
                    key: key.text("a key")?,
                    key_node: key,
                    value,
                })
            })
            .collect::<R<Vec<_>>>()?;
        Fields::check(node.location, entries, what, allowed)
    }

    pub fn check(
        location: Location,
        entries: Vec<Entry<'n>>,
        what: &str,
        allowed: &[&str],
    ) -> R<Fields<'n>> {
        for (i, entry) in entries.iter().enumerate() {
            if !allowed.contains(&entry.key) {
                return Err(unknown_key(entry.key_node, entry.key, what, allowed));
            }
            if let Some(first) = entries[..i].iter().find(|e| e.key == entry.key) {
                return Err(entry.key_node.err(format!(
                    "duplicate key `{}` in {what} (first at {})",
                    entry.key, first.key_node.location
                )));
            }
        }
        Ok(Fields { location, entries })
    }

    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries.iter().find(|e| e.key == key).map(|e| e.value)
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The value of `key`, read by `read`, if the key is there.
    pub fn opt<T>(&self, key: &str, read: impl FnOnce(&'n Node) -> R<T>) -> R<Option<T>> {
        self.get(key).map(read).transpose()
    }

    /// The value of a key that must be there.
    pub fn req<T>(&self, key: &str, what: &str, read: impl FnOnce(&'n Node) -> R<T>) -> R<T> {
        match self.get(key) {
            Some(node) => read(node),
            None => Err(Located {
                location: self.location,
                message: format!("missing key `{key}` in {what}"),
            }),
        }
    }
}

/// "unknown key `x` in WHAT; expected one of: a, b (did you mean `y`?)"
fn unknown_key(node: &Node, key: &str, what: &str, allowed: &[&str]) -> Located {
    node.err(format!(
        "unknown key `{key}` in {what}; expected one of: {}{}",
        allowed.join(", "),
        did_you_mean(key, allowed.iter().copied())
    ))
}

/// " (did you mean `x`?)" when a candidate is close to `word`, else "".
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|&(d, c)| d > 0 && d * 3 <= c.chars().count())
        .min()
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}
