//! Reports of a run over many scenarios: a terminal table, JSON, JUnit XML and an HTML page
//! ([`html`]), and the one-line summary.

pub mod html;

use std::time::Duration;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use serde_json::json;

use crate::scenario::Level;
use crate::verdict::{Check, Timeline, Verdict};

/// How one scenario ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    Warn,
    Fail,
    /// Not run on this target, with the reason.
    Skip(String),
    /// Could not be run at all (bad file, simulation error).
    Error(String),
    /// Not run, or cut short, because the target stopped answering: the reason names it.
    NotRun(String),
}

impl Status {
    pub fn from_verdict(verdict: Verdict) -> Status {
        match verdict {
            Verdict::Pass => Status::Pass,
            Verdict::Warn => Status::Warn,
            Verdict::Fail => Status::Fail,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip(_) => "skip",
            Status::Error(_) => "ERROR",
            Status::NotRun(_) => "not run",
        }
    }

    pub fn is_failure(&self) -> bool {
        matches!(self, Status::Fail | Status::Error(_))
    }
}

/// One scenario's result.
#[derive(Clone, Debug)]
pub struct ScenarioResult {
    pub file: String,
    pub name: String,
    pub refs: Vec<String>,
    pub status: Status,
    pub checks: Vec<Check>,
    /// The rendered transcript and verdict.
    pub transcript: String,
    /// Wall-clock time the run took.
    pub elapsed: Duration,
    /// Time the scenario covered (virtual time in the simulator).
    pub covered: Duration,
    /// When its messages arrived against their windows (empty when it did not run).
    pub timeline: Timeline,
}

impl ScenarioResult {
    /// Why it did not pass, in one line: the first failed check of the level that decided
    /// its status (`must` for a failure, `should` for a warning: a warning before the failure
    /// is not why it failed), or why it did not run. Empty when it passed (whatever its `may`
    /// checks recorded).
    pub fn first_problem(&self) -> String {
        let deciding = match &self.status {
            Status::Skip(why) | Status::Error(why) | Status::NotRun(why) => return why.clone(),
            Status::Pass => return String::new(),
            Status::Fail => Level::Must,
            Status::Warn => Level::Should,
        };
        self.checks
            .iter()
            .find(|c| !c.passed && c.level == deciding)
            .map(|c| {
                format!(
                    "line {}: expected {}; observed {}",
                    c.location.line, c.expected, c.observed
                )
            })
            .unwrap_or_default()
    }

    /// What the broker chose where the spec lets it, one line per choice (see
    /// [`Check::is_choice`] and [`Check::recorded`]).
    pub fn recorded(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| c.is_choice())
            .filter_map(Check::recorded)
            .collect()
    }

    /// What the broker chose where the spec lets it, each choice once, in check order (see
    /// [`Check::chose`]).
    pub fn choices(&self) -> Vec<&str> {
        let mut chosen: Vec<&str> = Vec::new();
        for choice in self
            .checks
            .iter()
            .filter(|c| c.is_choice())
            .filter_map(Check::chose)
        {
            if !chosen.contains(&choice) {
                chosen.push(choice);
            }
        }
        chosen
    }

    /// The first problem, or else what was recorded: the one line a table shows.
    pub fn note(&self) -> String {
        let problem = self.first_problem();
        if !problem.is_empty() {
            return problem;
        }
        match self.recorded().as_slice() {
            [] => String::new(),
            recorded => format!("recorded: {}", recorded.join("; ")),
        }
    }
}

/// `58 passed, 0 failed, 2 warned` (plus skipped and errors when there are any).
pub fn summary(results: &[ScenarioResult]) -> String {
    let count = |f: fn(&Status) -> bool| results.iter().filter(|r| f(&r.status)).count();
    let mut line = format!(
        "{} passed, {} failed, {} warned",
        count(|s| *s == Status::Pass),
        count(|s| *s == Status::Fail),
        count(|s| *s == Status::Warn)
    );
    let skipped = count(|s| matches!(s, Status::Skip(_)));
    if skipped > 0 {
        line.push_str(&format!(", {skipped} skipped"));
    }
    let errors = count(|s| matches!(s, Status::Error(_)));
    if errors > 0 {
        line.push_str(&format!(", {errors} errors"));
    }
    let not_run = count(|s| matches!(s, Status::NotRun(_)));
    if not_run > 0 {
        line.push_str(&format!(", {not_run} not run"));
    }
    line
}

pub fn table(results: &[ScenarioResult]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "result",
        "scenario",
        "covers",
        "time",
        "first problem or what was recorded",
    ]);
    for r in results {
        let mut problem = r.note();
        if problem.chars().count() > 100 {
            problem = problem.chars().take(99).collect::<String>() + "…";
        }
        table.add_row([
            r.status.label().to_owned(),
            r.file.clone(),
            format!("{:.1}s", r.covered.as_secs_f64()),
            format!("{}ms", r.elapsed.as_millis()),
            problem,
        ]);
    }
    table.to_string()
}

pub fn json(results: &[ScenarioResult]) -> String {
    let scenarios: Vec<_> = results
        .iter()
        .map(|r| {
            let (status, reason) = match &r.status {
                Status::Skip(why) => ("skip", Some(why.clone())),
                Status::Error(why) => ("error", Some(why.clone())),
                Status::NotRun(why) => ("not run", Some(why.clone())),
                other => (other.label(), None),
            };
            json!({
                "file": r.file,
                "name": r.name,
                "refs": r.refs,
                "status": status.to_lowercase(),
                "reason": reason,
                "elapsed_ms": r.elapsed.as_millis() as u64,
                "covered_s": r.covered.as_secs_f64(),
                "recorded": r.recorded(),
                "checks": r.checks.iter().map(|c| json!({
                    "line": c.location.line,
                    "level": c.level.as_str(),
                    "passed": c.passed,
                    "expected": c.expected,
                    "observed": if c.passed { None } else { Some(&c.observed) },
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let report = json!({ "summary": summary(results), "scenarios": scenarios });
    serde_json::to_string_pretty(&report).expect("JSON of plain values")
}

pub fn junit(results: &[ScenarioResult], suite_name: &str) -> String {
    let mut report = Report::new("lastwill");
    let mut suite = TestSuite::new(suite_name);
    for r in results {
        let status = match &r.status {
            Status::Pass | Status::Warn => TestCaseStatus::success(),
            Status::Skip(why) => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(why.clone());
                status
            }
            Status::Fail => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(r.first_problem());
                status.set_description(r.transcript.clone());
                status
            }
            Status::Error(why) | Status::NotRun(why) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status.set_message(why.clone());
                status
            }
        };
        let mut case = TestCase::new(r.file.clone(), status);
        for recorded in r.recorded() {
            case.add_property(Property::new("recorded", recorded));
        }
        case.set_classname(r.name.clone());
        case.set_time(r.elapsed);
        if r.status == Status::Warn {
            case.set_system_out(r.transcript.clone());
        }
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    report.to_string().expect("JUnit XML of plain values")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Location;
    use crate::verdict::Scope;

    fn may(passed: bool, scope: Scope) -> Check {
        Check {
            level: Level::May,
            passed,
            expected: "reason 0x95 packet-too-large".into(),
            observed: "closed without CONNACK".into(),
            location: Location {
                line: 19,
                column: 5,
            },
            scope,
        }
    }

    fn check(level: Level, line: usize, expected: &str) -> Check {
        Check {
            level,
            passed: false,
            expected: expected.into(),
            observed: "something else".into(),
            location: Location { line, column: 5 },
            scope: Scope::Run,
        }
    }

    #[test]
    fn the_first_problem_is_the_check_that_decided_the_status() {
        let mut result = ScenarioResult {
            file: "scenarios/x.yaml".into(),
            name: "x".into(),
            refs: vec![],
            status: Status::Fail,
            // a recorded choice and a warning come before the failure
            checks: vec![
                check(Level::May, 10, "DISCONNECT 0x81"),
                check(Level::Should, 12, "prompt will"),
                check(Level::Must, 20, "the will"),
            ],
            transcript: String::new(),
            elapsed: Duration::ZERO,
            covered: Duration::ZERO,
            timeline: Timeline::default(),
        };
        assert_eq!(
            result.first_problem(),
            "line 20: expected the will; observed something else"
        );
        result.status = Status::Warn;
        result.checks.pop();
        assert_eq!(
            result.first_problem(),
            "line 12: expected prompt will; observed something else"
        );
        result.status = Status::Pass;
        assert_eq!(result.first_problem(), "");
        assert_eq!(result.choices(), ["something else"]);
    }

    #[test]
    fn may_choices_are_recorded_in_the_table_json_and_junit() {
        let result = ScenarioResult {
            file: "scenarios/capabilities/x.yaml".into(),
            name: "x".into(),
            refs: vec![],
            status: Status::Pass,
            // a may step check that held is set-up going as planned: not a choice
            checks: vec![may(true, Scope::Step), may(false, Scope::Step)],
            transcript: String::new(),
            elapsed: Duration::ZERO,
            covered: Duration::ZERO,
            timeline: Timeline::default(),
        };
        let recorded = "line 19: closed without CONNACK, not reason 0x95 packet-too-large";
        assert_eq!(result.first_problem(), "");
        assert_eq!(result.recorded(), [recorded]);
        assert_eq!(result.note(), format!("recorded: {recorded}"));
        assert!(table(std::slice::from_ref(&result)).contains("recorded: line 19"));
        let json: serde_json::Value =
            serde_json::from_str(&json(std::slice::from_ref(&result))).unwrap();
        assert_eq!(json["scenarios"][0]["recorded"][0], recorded);
        let xml = junit(&[result], "suite");
        assert!(
            xml.contains(&format!(
                "<property name=\"recorded\" value=\"{recorded}\"/>"
            )),
            "{xml}"
        );
    }
}
