//! The cross-broker matrix and broker profiles.
//!
//! A matrix runs the catalogue on several targets (each possibly several times) and sets the
//! outcomes side by side. A profile lists the divergences known for one broker version, each
//! with the observed behaviour and the reason; comparing a target's outcomes with its profile
//! marks every divergence known or new, and every known one that no longer happens as
//! vanished. Real brokers are timing-noisy: a scenario whose outcome differs between repeats
//! is intermittent, and intermittent outcomes never fail the gate either way, so the gate is
//! never flaky.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use crate::report::{ScenarioResult, Status, html};
use crate::scenario;
use crate::scenario::yaml::{self, Fields, Node};

/// What a target did with one scenario over all repeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    Pass,
    /// Failed or warned the same way in every repeat.
    Diverges {
        status: Status,
        first: String,
    },
    /// Passed in some repeats and not in others.
    Intermittent {
        diverged: usize,
        runs: usize,
        first: String,
    },
    Skip(String),
    /// The target stopped answering before or while it ran.
    NotRun(String),
}

impl Observed {
    /// Aggregates the results of one scenario's repeats.
    pub fn of(results: &[&ScenarioResult]) -> Observed {
        let first = results
            .iter()
            .find(|r| r.status != Status::Pass)
            .map(|r| r.first_problem())
            .unwrap_or_default();
        if let Some(Status::Skip(why)) = results.first().map(|r| &r.status) {
            return Observed::Skip(why.clone());
        }
        if let Some(why) = results.iter().find_map(|r| match &r.status {
            Status::NotRun(why) => Some(why),
            _ => None,
        }) {
            return Observed::NotRun(why.clone());
        }
        let diverged = results.iter().filter(|r| r.status != Status::Pass).count();
        match diverged {
            0 => Observed::Pass,
            n if n == results.len() => Observed::Diverges {
                status: results[0].status.clone(),
                first,
            },
            n => Observed::Intermittent {
                diverged: n,
                runs: results.len(),
                first,
            },
        }
    }

    pub fn cell(&self) -> String {
        match self {
            Observed::Pass => "pass".into(),
            Observed::Diverges { status, .. } => status.label().to_lowercase(),
            Observed::Intermittent { diverged, runs, .. } => format!("flaky {diverged}/{runs}"),
            Observed::Skip(_) => "skip".into(),
            Observed::NotRun(_) => "not run".into(),
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            Observed::Pass => "",
            Observed::Diverges { first, .. } | Observed::Intermittent { first, .. } => first,
            Observed::Skip(why) | Observed::NotRun(why) => why,
        }
    }
}

/// One known divergence of a broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The scenario's [`key`](crate::scenario::key).
    pub scenario: String,
    /// `fail`, `warn` or `intermittent`.
    pub expect: Expected,
    /// `bug`, `choice` (a documented decision) or `ambiguity` (the spec allows it).
    pub kind: String,
    /// What the broker does.
    pub observed: String,
    /// Why that diverges, with evidence.
    pub reason: String,
    /// For intermittent ones: how often it was seen, e.g. `2/5`.
    pub seen: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    Fail,
    Warn,
    Intermittent,
}

/// A broker profile: its name, its known divergences, and the causes of intermittent
/// failures it shows on any scenario.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub broker: String,
    pub divergences: Vec<Divergence>,
    pub intermittent_causes: Vec<IntermittentCause>,
}

/// A broker's timing-dependent failure that is not tied to one scenario (rumqttd's 3.1.1 port
/// closing a CONNECT without CONNACK now and then): a scenario the profile does not list whose
/// first difference contains `observed` is intermittent, not new, so that the gate is never
/// flaky on it. A listed scenario is judged by its own row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntermittentCause {
    pub observed: String,
    pub reason: String,
}

impl Profile {
    pub fn load(path: &Path) -> Result<Profile, String> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
        Profile::parse(&text).map_err(|e| format!("{shown}:{e}"))
    }

    /// Parses a profile; errors are `line:column: message`.
    pub fn parse(text: &str) -> Result<Profile, String> {
        let fail = |e: yaml::Located| format!("{}: {}", e.location, e.message);
        let Some(root) = yaml::parse(text).map_err(fail)? else {
            return Err("1:1: empty profile: expected `broker` and `divergences`".into());
        };
        let keys = &["broker", "divergences", "intermittent_causes"];
        let f = Fields::of(&root, "a profile", keys).map_err(fail)?;
        let broker = f.req("broker", "a profile", Node::string).map_err(fail)?;
        let divergences = f
            .opt("divergences", |n| n.list(divergence))
            .map_err(fail)?
            .unwrap_or_default();
        let intermittent_causes = f
            .opt("intermittent_causes", |n| n.list(intermittent_cause))
            .map_err(fail)?
            .unwrap_or_default();
        Ok(Profile {
            broker,
            divergences,
            intermittent_causes,
        })
    }

    fn find(&self, scenario: &str) -> Option<&Divergence> {
        self.divergences.iter().find(|d| d.scenario == scenario)
    }

    fn intermittent_cause(&self, first: &str) -> Option<&IntermittentCause> {
        self.intermittent_causes
            .iter()
            .find(|c| first.contains(&c.observed))
    }
}

fn intermittent_cause(node: &Node) -> yaml::R<IntermittentCause> {
    let f = Fields::of(node, "an intermittent cause", &["observed", "reason"])?;
    Ok(IntermittentCause {
        observed: f.req("observed", "an intermittent cause", Node::string)?,
        reason: f.req("reason", "an intermittent cause", Node::string)?,
    })
}

fn divergence(node: &Node) -> yaml::R<Divergence> {
    const KEYS: &[&str] = &["scenario", "expect", "kind", "observed", "reason", "seen"];
    let f = Fields::of(node, "a divergence", KEYS)?;
    let expect = f.req("expect", "a divergence", |n| {
        match n.text("fail, warn or intermittent")? {
            "fail" => Ok(Expected::Fail),
            "warn" => Ok(Expected::Warn),
            "intermittent" => Ok(Expected::Intermittent),
            _ => Err(n.expected("fail, warn or intermittent")),
        }
    })?;
    let kind = f.req("kind", "a divergence", |n| {
        match n.text("bug, choice or ambiguity")? {
            k @ ("bug" | "choice" | "ambiguity") => Ok(k.to_owned()),
            _ => Err(n.expected("bug, choice or ambiguity")),
        }
    })?;
    Ok(Divergence {
        scenario: f.req("scenario", "a divergence", Node::string)?,
        expect,
        kind,
        observed: f.req("observed", "a divergence", Node::string)?,
        reason: f.req("reason", "a divergence", Node::string)?,
        seen: f.opt("seen", Node::string)?,
    })
}

/// How an observed outcome compares with the profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judgement {
    /// Passes, and the profile expects no divergence.
    Conforms,
    /// Diverges as the profile says.
    Known,
    /// Diverges, and the profile does not list it: fails the gate.
    New,
    /// The profile lists a divergence that did not happen: fails the gate.
    Vanished,
    /// Intermittent here or in the profile: fails neither way.
    Intermittent,
    Skipped,
}

impl Judgement {
    pub fn fails_gate(&self) -> bool {
        matches!(self, Judgement::New | Judgement::Vanished)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Judgement::Conforms => "",
            Judgement::Known => "known",
            Judgement::New => "NEW",
            Judgement::Vanished => "VANISHED",
            Judgement::Intermittent => "intermittent",
            Judgement::Skipped => "",
        }
    }
}

pub fn judge(profile: &Profile, scenario: &str, observed: &Observed) -> Judgement {
    let known = profile.find(scenario);
    match (observed, known.map(|d| d.expect)) {
        (Observed::Skip(_) | Observed::NotRun(_), _) => Judgement::Skipped,
        (Observed::Intermittent { .. }, _) | (_, Some(Expected::Intermittent)) => {
            Judgement::Intermittent
        }
        (Observed::Pass, None) => Judgement::Conforms,
        (Observed::Pass, Some(_)) => Judgement::Vanished,
        (Observed::Diverges { status, .. }, Some(expected)) => {
            let same = matches!(
                (status, expected),
                (Status::Fail | Status::Error(_), Expected::Fail) | (Status::Warn, Expected::Warn)
            );
            if same {
                Judgement::Known
            } else {
                Judgement::New
            }
        }
        (Observed::Diverges { first, .. }, None) if profile.intermittent_cause(first).is_some() => {
            Judgement::Intermittent
        }
        (Observed::Diverges { .. }, None) => Judgement::New,
    }
}

/// One target's column.
#[derive(Debug)]
pub struct Column {
    pub name: String,
    pub url: String,
    /// By scenario key.
    pub observed: BTreeMap<String, Observed>,
    /// Every repeat's result, by scenario key.
    pub results: BTreeMap<String, Vec<ScenarioResult>>,
    pub profile: Option<Profile>,
}

impl Column {
    /// Aggregates the results of all repeats of all scenarios.
    pub fn new(
        name: &str,
        url: &str,
        runs: &[Vec<ScenarioResult>],
        profile: Option<Profile>,
    ) -> Column {
        let mut results: BTreeMap<String, Vec<ScenarioResult>> = BTreeMap::new();
        for run in runs {
            for result in run {
                results
                    .entry(scenario::key(&result.file))
                    .or_default()
                    .push(result.clone());
            }
        }
        let observed = results
            .iter()
            .map(|(k, rs)| (k.clone(), Observed::of(&rs.iter().collect::<Vec<_>>())))
            .collect();
        Column {
            name: name.to_owned(),
            url: url.to_owned(),
            observed,
            results,
            profile,
        }
    }

    /// The result that stands for a scenario's repeats: the first that did not pass, or else
    /// the first.
    pub fn representative(&self, scenario: &str) -> Option<&ScenarioResult> {
        let results = self.results.get(scenario)?;
        results
            .iter()
            .find(|r| r.status != Status::Pass)
            .or(results.first())
    }

    /// What the target chose where the spec lets it (its `may` checks, as
    /// [`ScenarioResult::choices`]), or `varies` when repeats chose differently. `None` when
    /// the scenario records no choice.
    pub fn choices(&self, scenario: &str) -> Option<String> {
        let chosen: Vec<String> = self
            .results
            .get(scenario)?
            .iter()
            .map(|r| r.choices().join("; "))
            .filter(|c| !c.is_empty())
            .collect();
        let first = chosen.first()?;
        Some(if chosen.iter().all(|c| c == first) {
            first.clone()
        } else {
            "varies".to_owned()
        })
    }

    /// `mosquitto: 142 pass, 19 fail, 2 warn, 18 skip, 8 intermittent; 21 known divergences,
    /// 0 unexpected` (and how many were not run). A row is intermittent when its repeats
    /// disagreed or its profile says it is, so every row the matrix marks intermittent is
    /// counted there and nowhere else; the divergences are counted against the profile, if
    /// the column has one.
    pub fn summary(&self) -> String {
        let (mut pass, mut fail, mut warn, mut skip, mut intermittent, mut not_run) =
            (0, 0, 0, 0, 0, 0);
        for (key, observed) in &self.observed {
            let judgement = self.judgement(key);
            match observed {
                Observed::Skip(_) => skip += 1,
                Observed::NotRun(_) => not_run += 1,
                Observed::Intermittent { .. } => intermittent += 1,
                _ if judgement == Some(Judgement::Intermittent) => intermittent += 1,
                Observed::Pass => pass += 1,
                Observed::Diverges {
                    status: Status::Warn,
                    ..
                } => warn += 1,
                Observed::Diverges { .. } => fail += 1,
            }
        }
        let mut line = format!(
            "{}: {pass} pass, {fail} fail, {warn} warn, {skip} skip, {intermittent} intermittent",
            self.name
        );
        if not_run > 0 {
            line.push_str(&format!(", {not_run} not run"));
        }
        if self.profile.is_some() {
            let judged = |wanted: fn(&Judgement) -> bool| {
                self.observed
                    .keys()
                    .filter(|k| self.judgement(k).as_ref().is_some_and(wanted))
                    .count()
            };
            line.push_str(&format!(
                "; {} known divergences, {} unexpected",
                judged(|j| *j == Judgement::Known),
                judged(Judgement::fails_gate)
            ));
        }
        line
    }

    pub fn judgement(&self, scenario: &str) -> Option<Judgement> {
        let profile = self.profile.as_ref()?;
        Some(judge(profile, scenario, self.observed.get(scenario)?))
    }

    /// Profile entries for scenarios that were not run at all (a stale profile).
    pub fn unknown_profile_entries(&self) -> Vec<String> {
        self.profile
            .iter()
            .flat_map(|p| &p.divergences)
            .filter(|d| !self.observed.contains_key(&d.scenario))
            .map(|d| d.scenario.clone())
            .collect()
    }

    pub fn gate_failures(&self) -> Vec<(String, Judgement)> {
        self.observed
            .keys()
            .filter_map(|k| {
                self.judgement(k)
                    .filter(Judgement::fails_gate)
                    .map(|j| (k.clone(), j))
            })
            .collect()
    }
}

/// `text`, cut to `max` characters with an ellipsis: what a terminal table has room for.
fn cut(text: String, max: usize) -> String {
    if text.chars().count() > max {
        text.chars().take(max - 1).collect::<String>() + "…"
    } else {
        text
    }
}

/// How a matrix cell looks in the HTML page.
fn tone(observed: &Observed, judgement: Option<Judgement>) -> html::Tone {
    match (observed, judgement) {
        (_, Some(j)) if j.fails_gate() => html::Tone::Fail,
        (Observed::Skip(_), _) => html::Tone::Skip,
        (Observed::NotRun(_), _) => html::Tone::NotRun,
        (Observed::Intermittent { .. }, _) | (_, Some(Judgement::Intermittent)) => {
            html::Tone::Flaky
        }
        (_, Some(Judgement::Known)) => html::Tone::Known,
        (Observed::Pass, _) => html::Tone::Pass,
        (Observed::Diverges { status, .. }, _) => html::Tone::of(status),
    }
}

pub struct Matrix {
    pub columns: Vec<Column>,
}

impl Matrix {
    /// Every scenario of any column, by key.
    fn scenarios(&self) -> Vec<&String> {
        let mut keys: Vec<&String> = self
            .columns
            .iter()
            .flat_map(|c| c.observed.keys())
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// One target's outcome for one scenario: `pass`, `fail (known)`, `pass, may: closed
    /// without DISCONNECT`.
    pub fn cell(&self, column: &Column, key: &str) -> String {
        let Some(observed) = column.observed.get(key) else {
            return "-".into();
        };
        let mut cell = match column
            .judgement(key)
            .map(|j| j.as_str())
            .filter(|j| !j.is_empty())
        {
            Some(judgement) => format!("{} ({judgement})", observed.cell()),
            None => observed.cell(),
        };
        if let Some(choices) = column.choices(key) {
            cell.push_str(&format!(", may: {choices}"));
        }
        cell
    }

    /// The first difference in a row: the first divergence's first failed check. Or else,
    /// where the spec leaves the broker a choice, what the first target that chose otherwise
    /// than the first one did, or what they all did when they chose alike.
    pub fn first_difference(&self, key: &str) -> String {
        let divergence = self.columns.iter().find_map(|c| {
            let o = c.observed.get(key)?;
            matches!(o, Observed::Diverges { .. } | Observed::Intermittent { .. })
                .then(|| format!("{}: {}", c.name, o.detail()))
        });
        divergence
            .or_else(|| {
                let first = self.columns.first()?;
                let chose = first.choices(key)?;
                let (who, column) = match self
                    .columns
                    .iter()
                    .find(|c| c.choices(key).is_some_and(|other| other != chose))
                {
                    Some(other) => (other.name.clone(), other),
                    None => ("all".to_owned(), first),
                };
                let recorded = column.representative(key)?.recorded();
                Some(format!("{who}: may: {}", recorded.join("; ")))
            })
            .unwrap_or_default()
    }

    /// One line per target, as [`Column::summary`].
    pub fn summary(&self) -> String {
        let lines: Vec<String> = self.columns.iter().map(Column::summary).collect();
        lines.join("\n")
    }

    pub fn table(&self) -> String {
        let mut table = comfy_table::Table::new();
        table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
        let mut header = vec!["scenario".to_owned()];
        header.extend(self.columns.iter().map(|c| c.name.clone()));
        header.push("first difference".into());
        table.set_header(header);
        for key in self.scenarios() {
            let mut row = vec![key.clone()];
            row.extend(self.columns.iter().map(|c| cut(self.cell(c, key), 40)));
            row.push(cut(self.first_difference(key), 90));
            table.add_row(row);
        }
        table.to_string()
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let names: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} (`{}`)", c.name, c.url))
            .collect();
        out.push_str(&format!(
            "| scenario | {} | first difference |\n",
            names.join(" | ")
        ));
        out.push_str(&format!("|---|{}---|\n", "---|".repeat(self.columns.len())));
        for key in self.scenarios() {
            let cells: Vec<String> = self.columns.iter().map(|c| self.cell(c, key)).collect();
            let diff = self.first_difference(key).replace('|', "\\|");
            out.push_str(&format!("| {key} | {} | {diff} |\n", cells.join(" | ")));
        }
        for column in &self.columns {
            out.push_str(&format!("\n{}\n", column.summary()));
        }
        out
    }

    pub fn json(&self) -> String {
        let columns: Vec<_> = self
            .columns
            .iter()
            .map(|c| {
                let rows: BTreeMap<&String, _> = c
                    .observed
                    .iter()
                    .map(|(k, o)| {
                        (k, json!({
                            "outcome": o.cell(),
                            "detail": o.detail(),
                            "judgement": c.judgement(k).map(|j| j.as_str().to_lowercase()),
                            "recorded": c.representative(k).map(|r| r.recorded()).unwrap_or_default(),
                        }))
                    })
                    .collect();
                json!({ "name": c.name, "target": c.url, "profile": c.profile.as_ref().map(|p| &p.broker), "scenarios": rows })
            })
            .collect();
        serde_json::to_string_pretty(&json!({ "targets": columns })).expect("JSON of plain values")
    }

    /// One self-contained HTML page: the matrix, each cell opening that target's transcript,
    /// and a timeline per scenario with every target's arrivals (see [`html`]).
    pub fn html(&self) -> String {
        let rows = self
            .scenarios()
            .into_iter()
            .map(|key| {
                let cells: Vec<Option<html::Cell>> = self
                    .columns
                    .iter()
                    .map(|column| {
                        Some(html::Cell {
                            label: self.cell(column, key),
                            tone: tone(column.observed.get(key)?, column.judgement(key)),
                            result: column.representative(key)?,
                        })
                    })
                    .collect();
                let name = cells
                    .iter()
                    .flatten()
                    .map(|c| c.result.name.clone())
                    .next()
                    .unwrap_or_default();
                html::Row {
                    key: key.clone(),
                    name,
                    cells,
                    note: self.first_difference(key),
                }
            })
            .collect();
        let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        html::page(&html::Page {
            title: format!("lastwill matrix: {}", names.join(", ")),
            summary: self.columns.iter().map(Column::summary).collect(),
            columns: self
                .columns
                .iter()
                .map(|c| (c.name.clone(), c.url.clone()))
                .collect(),
            rows,
        })
    }

    pub fn junit(&self) -> String {
        use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
        let mut report = Report::new("lastwill matrix");
        for column in &self.columns {
            let mut suite = TestSuite::new(format!("{} ({})", column.name, column.url));
            for (key, observed) in &column.observed {
                let judgement = column.judgement(key);
                let status = match (observed, &judgement) {
                    (Observed::Skip(why), _) => {
                        let mut s = TestCaseStatus::skipped();
                        s.set_message(why.clone());
                        s
                    }
                    (Observed::NotRun(why), _) => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                        s.set_message(why.clone());
                        s
                    }
                    (_, Some(j)) if j.fails_gate() => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        s.set_message(format!("{} divergence: {}", j.as_str(), observed.detail()));
                        s
                    }
                    (Observed::Diverges { .. }, None) => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        s.set_message(observed.detail().to_owned());
                        s
                    }
                    _ => TestCaseStatus::success(),
                };
                let mut case = TestCase::new(key.clone(), status);
                for recorded in column
                    .representative(key)
                    .map(|r| r.recorded())
                    .unwrap_or_default()
                {
                    case.add_property(Property::new("recorded", recorded));
                }
                suite.add_test_case(case);
            }
            report.add_test_suite(suite);
        }
        report.to_string().expect("JUnit XML of plain values")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Check;

    fn result(file: &str, status: Status) -> ScenarioResult {
        ScenarioResult {
            file: file.into(),
            name: file.into(),
            refs: vec![],
            status,
            checks: vec![],
            transcript: String::new(),
            elapsed: Default::default(),
            covered: Default::default(),
            timeline: Default::default(),
        }
    }

    const PROFILE: &str = "broker: example 1.0\ndivergences:\n  - {scenario: a/known, expect: fail, kind: bug, observed: x, reason: y}\n  - {scenario: a/fixed, expect: fail, kind: bug, observed: x, reason: y}\n  - {scenario: a/noisy, expect: intermittent, kind: ambiguity, observed: x, reason: y, seen: 1/3}\n  - {scenario: a/steady, expect: intermittent, kind: ambiguity, observed: x, reason: y, seen: 1/3}\n";

    #[test]
    fn an_intermittent_cause_covers_unlisted_scenarios_whose_first_difference_names_it() {
        let text = format!(
            "{PROFILE}intermittent_causes:\n  - {{observed: closed without CONNACK, reason: z}}\n"
        );
        let profile = Profile::parse(&text).unwrap();
        let closed = || {
            Status::Error("line 12: expected reason 0x00; observed closed without CONNACK".into())
        };
        let other = || Status::Error("line 12: expected reason 0x00; observed CONNACK 0x80".into());
        let runs = vec![
            vec![
                result("scenarios/a/dropped.yaml", closed()),
                result("scenarios/a/new.yaml", other()),
                result("scenarios/a/known.yaml", Status::Pass),
            ];
            2
        ];
        let column = Column::new("example", "mqtt://x", &runs, Some(profile));
        let j = |k: &str| column.judgement(k).unwrap();
        assert_eq!(j("a/dropped"), Judgement::Intermittent);
        assert_eq!(j("a/new"), Judgement::New);
        // a listed row is judged by its own entry: the cause does not excuse a vanished one
        assert_eq!(j("a/known"), Judgement::Vanished);
    }

    #[test]
    fn profile_judges_new_known_vanished_and_intermittent() {
        let profile = Profile::parse(PROFILE).unwrap();
        let runs = vec![
            vec![
                result("scenarios/a/known.yaml", Status::Fail),
                result("scenarios/a/fixed.yaml", Status::Pass),
                result("scenarios/a/noisy.yaml", Status::Pass),
                result("scenarios/a/new.yaml", Status::Fail),
                result("scenarios/a/flaky.yaml", Status::Fail),
                result("scenarios/a/fine.yaml", Status::Pass),
                result("scenarios/a/steady.yaml", Status::Pass),
            ],
            vec![
                result("scenarios/a/known.yaml", Status::Fail),
                result("scenarios/a/fixed.yaml", Status::Pass),
                result("scenarios/a/noisy.yaml", Status::Fail),
                result("scenarios/a/new.yaml", Status::Fail),
                result("scenarios/a/flaky.yaml", Status::Pass),
                result("scenarios/a/fine.yaml", Status::Pass),
                result("scenarios/a/steady.yaml", Status::Pass),
            ],
        ];
        let column = Column::new("example", "mqtt://x", &runs, Some(profile));
        let j = |k: &str| column.judgement(k).unwrap();
        assert_eq!(j("a/known"), Judgement::Known);
        assert_eq!(j("a/fixed"), Judgement::Vanished);
        assert_eq!(j("a/noisy"), Judgement::Intermittent);
        assert_eq!(j("a/new"), Judgement::New);
        assert_eq!(j("a/flaky"), Judgement::Intermittent);
        assert_eq!(j("a/fine"), Judgement::Conforms);
        let failures: Vec<_> = column.gate_failures().into_iter().map(|(k, _)| k).collect();
        assert_eq!(failures, ["a/fixed", "a/new"]);
        // a/steady passed in both runs, but its profile marks it intermittent and so does the
        // matrix: it is counted as intermittent, not as a pass
        assert_eq!(j("a/steady"), Judgement::Intermittent);
        assert_eq!(
            column.summary(),
            "example: 2 pass, 2 fail, 0 warn, 0 skip, 3 intermittent; 1 known divergences, 2 unexpected"
        );
    }

    #[test]
    fn cells_show_what_a_broker_chose_where_it_may() {
        let may = |passed: bool| Check {
            level: crate::scenario::Level::May,
            passed,
            expected: "server DISCONNECT 0x81 malformed-packet".into(),
            observed: "closed without DISCONNECT".into(),
            location: Default::default(),
            scope: crate::verdict::Scope::Step,
        };
        let with = |status: Status, checks: Vec<Check>| ScenarioResult {
            checks,
            ..result("scenarios/a/choice.yaml", status)
        };
        let chose_otherwise = Column::new(
            "b",
            "mqtt://b",
            &[vec![with(Status::Fail, vec![may(false), may(false)])]],
            None,
        );
        let varies = Column::new(
            "c",
            "mqtt://c",
            &[
                vec![with(Status::Pass, vec![may(false)])],
                vec![with(
                    Status::Pass,
                    vec![Check {
                        scope: crate::verdict::Scope::Run,
                        ..may(true)
                    }],
                )],
            ],
            None,
        );
        let matrix = Matrix {
            columns: vec![chose_otherwise, varies],
        };
        assert_eq!(
            matrix.cell(&matrix.columns[0], "a/choice"),
            "fail, may: closed without DISCONNECT"
        );
        assert_eq!(
            matrix.cell(&matrix.columns[1], "a/choice"),
            "pass, may: varies"
        );
    }

    #[test]
    fn bad_profiles_are_errors_with_positions() {
        let err = Profile::parse("broker: x\ndivergences:\n  - {scenario: a, expect: maybe, kind: bug, observed: o, reason: r}\n")
            .unwrap_err();
        assert!(err.starts_with("3:"), "{err}");
        assert!(err.contains("fail, warn or intermittent"), "{err}");
    }
}
