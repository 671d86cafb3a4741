//! Which spec statements the catalogue covers.
//!
//! The statement list (`spec/statements.yaml`, built into the binary) is the machine-readable
//! copy of the Will conformance matrix: one entry per statement ID and protocol version. A
//! scenario covers the statements its `refs:` name, for its protocol version (the same official
//! ID means different things in 3.1.1 and 5.0). The figure the project reports is the share of
//! MUST statements that a single broker can exhibit (`single_broker: true`) that at least one
//! scenario covers.

use std::collections::BTreeMap;

use lastwill_broker::codec::Protocol;

use crate::scenario::Scenario;
use crate::scenario::yaml::{self, Fields, Node};

/// The statement list shipped with lastwill.
pub const STATEMENTS: &str = include_str!("../../spec/statements.yaml");

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strength {
    Must,
    Should,
    May,
}

impl Strength {
    /// As the spec writes it: `MUST`, `SHOULD`, `MAY`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strength::Must => "MUST",
            Strength::Should => "SHOULD",
            Strength::May => "MAY",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub id: String,
    pub version: Protocol,
    pub strength: Strength,
    pub section: String,
    pub single_broker: bool,
    /// Only a multi-node broker (a cluster) can show it.
    pub multi_node: bool,
    pub ambiguous: bool,
    pub requirement: String,
}

impl Statement {
    /// Counted in the coverage figure.
    pub fn counts(&self) -> bool {
        self.strength == Strength::Must && self.single_broker
    }
}

/// Parses a statement list; errors are `line:column: message`.
pub fn parse_statements(source: &str) -> Result<Vec<Statement>, String> {
    let fail = |e: yaml::Located| format!("{}: {}", e.location, e.message);
    let Some(root) = yaml::parse(source).map_err(fail)? else {
        return Ok(Vec::new());
    };
    root.list(statement).map_err(fail)
}

fn statement(node: &Node) -> yaml::R<Statement> {
    const KEYS: &[&str] = &[
        "id",
        "version",
        "strength",
        "section",
        "single_broker",
        "multi_node",
        "ambiguous",
        "requirement",
        "note",
    ];
    let f = Fields::of(node, "a statement", KEYS)?;
    let version = f.req("version", "a statement", |n| match n.text("a version")? {
        "5" => Ok(Protocol::V5),
        "3.1.1" => Ok(Protocol::V311),
        _ => Err(n.expected("\"5\" or \"3.1.1\"")),
    })?;
    let strength = f.req("strength", "a statement", |n| {
        match n.text("a strength")? {
            "MUST" => Ok(Strength::Must),
            "SHOULD" => Ok(Strength::Should),
            "MAY" => Ok(Strength::May),
            _ => Err(n.expected("MUST, SHOULD or MAY")),
        }
    })?;
    Ok(Statement {
        id: f.req("id", "a statement", Node::string)?,
        version,
        strength,
        section: f.req("section", "a statement", Node::string)?,
        single_broker: f.req("single_broker", "a statement", Node::bool)?,
        multi_node: f.opt("multi_node", Node::bool)?.unwrap_or(false),
        ambiguous: f.opt("ambiguous", Node::bool)?.unwrap_or(false),
        requirement: f.req("requirement", "a statement", Node::string)?,
    })
}

/// Statements with the scenarios that cover them, and refs that name no statement.
#[derive(Debug)]
pub struct Coverage {
    pub rows: Vec<(Statement, Vec<String>)>,
    /// (scenario file, ref) pairs whose ref is not in the list for the scenario's version.
    pub unknown: Vec<(String, String)>,
}

impl Coverage {
    pub fn of(statements: Vec<Statement>, scenarios: &[Scenario]) -> Coverage {
        let mut by_key: BTreeMap<(Protocol, &str), Vec<String>> = BTreeMap::new();
        let mut unknown = Vec::new();
        for scenario in scenarios {
            for reference in &scenario.refs {
                let known = statements
                    .iter()
                    .any(|s| s.version == scenario.protocol && s.id == *reference);
                if known {
                    by_key
                        .entry((scenario.protocol, reference.as_str()))
                        .or_default()
                        .push(scenario.file.clone());
                } else {
                    unknown.push((scenario.file.clone(), reference.clone()));
                }
            }
        }
        let rows = statements
            .iter()
            .map(|s| {
                let files = by_key
                    .get(&(s.version, s.id.as_str()))
                    .cloned()
                    .unwrap_or_default();
                (s.clone(), files)
            })
            .collect();
        Coverage { rows, unknown }
    }

    /// (covered, total) over the statements that count.
    pub fn figure(&self) -> (usize, usize) {
        let counted = self.rows.iter().filter(|(s, _)| s.counts());
        let (covered, total) = counted.fold((0, 0), |(c, t), (_, files)| {
            (c + usize::from(!files.is_empty()), t + 1)
        });
        (covered, total)
    }

    /// (covered, total) over the multi-node (cluster) statements, every strength.
    pub fn multi_node_figure(&self) -> (usize, usize) {
        let rows = self.rows.iter().filter(|(s, _)| s.multi_node);
        rows.fold((0, 0), |(c, t), (_, files)| {
            (c + usize::from(!files.is_empty()), t + 1)
        })
    }

    /// `MUST statements covered: 181/198 (91.4%)`, and, when the list has any,
    /// `multi-node (cluster) statements covered: 6/6 (100.0%)` on a second line.
    pub fn summary(&self) -> String {
        let percent = |(covered, total): (usize, usize)| {
            let share = if total == 0 {
                0.0
            } else {
                covered as f64 * 100.0 / total as f64
            };
            format!("{covered}/{total} ({share:.1}%)")
        };
        let mut summary = format!("MUST statements covered: {}", percent(self.figure()));
        let multi_node = self.multi_node_figure();
        if multi_node.1 > 0 {
            summary.push_str(&format!(
                "\nmulti-node (cluster) statements covered: {}",
                percent(multi_node)
            ));
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_list_parses_and_keys_are_unique() {
        let statements = parse_statements(STATEMENTS).unwrap();
        assert!(statements.len() > 150);
        let mut keys: Vec<_> = statements
            .iter()
            .map(|s| (s.version, s.id.as_str()))
            .collect();
        keys.sort();
        let before = keys.len();
        keys.dedup();
        assert_eq!(before, keys.len(), "duplicate (version, id) pairs");
    }

    #[test]
    fn refs_count_for_their_scenarios_version_only() {
        let statements = parse_statements(
            "- {id: MQTT-3.1.2-8, version: \"5\", strength: MUST, section: \"2.1\", single_broker: true, requirement: a}\n\
             - {id: MQTT-3.1.2-8, version: \"3.1.1\", strength: MUST, section: \"3\", single_broker: true, requirement: b}\n",
        )
        .unwrap();
        let scenario = crate::scenario::parse(
            "name: x\nprotocol: 3.1.1\nrefs: [MQTT-3.1.2-8, W5-NOPE]\nclients: {a: {}}\nsteps: [{a: connect}]\n",
            "x.yaml",
        )
        .unwrap();
        let coverage = Coverage::of(statements, &[scenario]);
        assert_eq!(coverage.figure(), (1, 2));
        assert_eq!(
            coverage.unknown,
            [("x.yaml".to_owned(), "W5-NOPE".to_owned())]
        );
        assert_eq!(coverage.summary(), "MUST statements covered: 1/2 (50.0%)");
    }
}
