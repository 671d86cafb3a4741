//! Generated will histories against the reference broker in the simulator, in virtual time,
//! judged by the oracle through the ordinary verdict machinery. Fixed seeds: the same cases
//! every run; `PROPTEST_CASES=N` raises the number of cases. A divergence is shrunk and
//! printed as a scenario file.

use std::io::Write as _;
use std::time::Duration;

use lastwill::generate::explore::{Exploration, Report, TICK};
use lastwill::generate::strategy;
use lastwill::runner::Target;
use lastwill::scenario;
use proptest::strategy::Strategy;

const SEED: u64 = 0x1A57_3111;

/// `default` cases, or more when `PROPTEST_CASES` asks for more.
fn cases(default: usize) -> usize {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .map_or(default, |n: usize| n.max(default))
}

fn explore(
    strategy: fn(strategy::Size) -> proptest::strategy::BoxedStrategy<lastwill::generate::History>,
    refine: Option<fn(&lastwill::generate::History, &mut scenario::Scenario)>,
    cases: usize,
    nodes: usize,
) -> Report {
    let target = Target::Simulator {
        seed: SEED,
        tick: TICK,
    };
    let report = Exploration {
        strategy,
        target: &target,
        cases,
        seed: SEED,
        nodes,
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        shrink_time: Duration::from_secs(120),
        confirm: 0,
        progress: false,
        refine,
    }
    .run();
    // straight to stderr: shown even when the test passes
    let unsupported: Vec<String> = report
        .unsupported
        .iter()
        .map(|(why, n)| format!("{n} {why}"))
        .collect();
    let _ = writeln!(
        std::io::stderr(),
        "{} cases: {} run ({} passed, {} warned), not modelled by the oracle: {}; {:.1} cases/s",
        report.cases,
        report.judged,
        report.passed,
        report.warned,
        if unsupported.is_empty() {
            "none".into()
        } else {
            unsupported.join(", ")
        },
        report.cases_per_second()
    );
    for finding in &report.findings {
        let found_by = format!("harness/tests/properties.rs (seed {SEED:#x})");
        eprintln!(
            "── divergence (case {}, {} case(s)), shrunk:\n{}",
            finding.case,
            finding.count,
            scenario::write(&finding.scenario(&found_by))
        );
    }
    report
}

/// At least 1,000 generated histories run, and the reference broker does what the oracle
/// says the spec requires in every one.
#[test]
fn reference_broker_keeps_the_will_rules_in_generated_histories() {
    let report = explore(|size| strategy::history(size).boxed(), None, cases(1150), 1);
    assert!(
        report.findings.is_empty(),
        "{} divergence(s) from the oracle; shrunk scenarios above",
        report.findings.len()
    );
    assert!(
        report.judged >= 1000,
        "only {} of {} histories could be judged",
        report.judged,
        report.cases
    );
}

/// Histories whose clients are placed over two nodes, as `explore` draws them for a cluster
/// target: the reference broker is every node at once, so the placements change nothing and
/// it still does what the oracle says in every one.
#[test]
fn placements_over_two_nodes_change_nothing_on_the_reference_broker() {
    let report = explore(|size| strategy::history(size).boxed(), None, 120, 2);
    assert!(
        report.findings.is_empty(),
        "{} divergence(s) from the oracle; shrunk scenarios above",
        report.findings.len()
    );
    let placed = report.placements().expect("clients were placed");
    assert!(
        placed.contains(" on node 1,") && placed.contains(" on node 2"),
        "{placed}"
    );
}

/// At least 20 concurrent delayed wills per case, in at least 200 cases: each is published at
/// its own due time (the oracle's windows), and they arrive in due-time order.
#[test]
fn delayed_wills_fall_due_in_due_time_order() {
    let report = explore(
        |_| strategy::delayed_wills(20..=24).boxed(),
        Some(strategy::in_due_order),
        cases(
            std::env::var("STORM")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(200),
        ),
        1,
    );
    assert!(
        report.findings.is_empty(),
        "{} divergence(s) from the oracle; shrunk scenarios above",
        report.findings.len()
    );
    assert_eq!(
        report.judged, report.cases,
        "every case is judged: {:?}",
        report.unsupported
    );
}

/// Generated histories get their controls too: the oracle's `receives: nothing` for a
/// watcher that is still there at the end comes with a control, and none is unreachable.
#[test]
fn generated_negative_histories_get_a_control() {
    use lastwill::generate::explore;
    let (mut controlled, mut watchers) = (0, 0);
    for case in 0..200 {
        let history = explore::draw(|size| strategy::history(size).boxed(), 1, case);
        let Ok(prediction) = lastwill::oracle::predict(&history.scenario("generated")) else {
            continue;
        };
        let arm = lastwill::runner::control_arm::ControlArm::plan(&prediction.scenario, None);
        assert!(
            arm.unreachable.is_empty(),
            "case {case}: {:?}",
            arm.unreachable
        );
        controlled += usize::from(!arm.clients.is_empty());
        watchers += arm.clients.iter().map(|c| c.watchers.len()).sum::<usize>();
    }
    assert!(controlled >= 20, "{controlled} of 200 cases have a control");
    eprintln!("{controlled} of 200 generated cases have a control, for {watchers} watchers");
}
