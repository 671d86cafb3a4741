//! Requirements a scenario implies by what it does, besides those its `broker:` section
//! states: a scenario that subscribes with a wildcard needs a broker that announces wildcard
//! subscriptions available, and so on for every capability a v5 CONNACK can deny (§3.2.2.3).
//! A broker that announces otherwise skips the scenario, with the reason, instead of failing
//! it on a refusal the scenario did not test.

use lastwill_broker::codec::{Protocol, QoS};
use lastwill_broker::config::Overrides;

use crate::scenario::{Action, Scenario, StepKind};

/// The settings the scenario's own packets need, each left out where its `broker:` section
/// sets that setting (it then tests the capability itself, as `capabilities/` does). Only a
/// v5 CONNACK announces capabilities, so a 3.1.1 scenario implies none.
pub(super) fn implied(scenario: &Scenario) -> Overrides {
    let mut needs = Overrides::default();
    if scenario.protocol != Protocol::V5 {
        return needs;
    }
    for step in &scenario.steps {
        let StepKind::Client { action, .. } = &step.kind else {
            continue;
        };
        match action {
            Action::Connect(connect) => {
                if let Some(will) = &connect.will {
                    note(&mut needs, will.qos, will.retain);
                }
            }
            Action::Publish(publish) => note(&mut needs, publish.qos, publish.retain),
            Action::Subscribe(subscribe) => {
                for request in &subscribe.filters {
                    let filter = match request.filter.strip_prefix("$share/") {
                        Some(shared) => {
                            needs.shared_subscriptions = Some(true);
                            shared.split_once('/').map_or("", |(_, filter)| filter)
                        }
                        None => request.filter.as_str(),
                    };
                    if filter.contains(['+', '#']) {
                        needs.wildcard_subscriptions = Some(true);
                    }
                }
                if subscribe.subscription_identifier.is_some() {
                    needs.subscription_identifiers = Some(true);
                }
            }
            _ => {}
        }
    }
    let stated = &scenario.broker;
    if stated.max_qos.is_some() {
        needs.max_qos = None;
    }
    if stated.retain_available.is_some() {
        needs.retain_available = None;
    }
    if stated.shared_subscriptions.is_some() {
        needs.shared_subscriptions = None;
    }
    if stated.wildcard_subscriptions.is_some() {
        needs.wildcard_subscriptions = None;
    }
    if stated.subscription_identifiers.is_some() {
        needs.subscription_identifiers = None;
    }
    needs
}

/// What a will or PUBLISH needs: QoS 2 a Maximum QoS of 2 (a lower one refuses it,
/// [MQTT-3.2.2-12]), retain Retain Available ([MQTT-3.2.2-13]).
fn note(needs: &mut Overrides, qos: QoS, retain: bool) {
    if qos == QoS::ExactlyOnce {
        needs.max_qos = Some(QoS::ExactlyOnce);
    }
    if retain {
        needs.retain_available = Some(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario;

    fn implied_by(protocol: &str, broker: &str, steps: &str) -> Overrides {
        let text =
            format!("name: x\nprotocol: {protocol}\n{broker}clients: {{a: {{}}}}\nsteps:\n{steps}");
        implied(&scenario::parse(&text, "x.yaml").unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn what_a_scenario_does_implies_what_it_needs() {
        let steps = concat!(
            "  - a: {connect: {will: {topic: w, payload: p, qos: 2, retain: true}}}\n",
            "  - a: {subscribe: $share/g/t/+, qos: 1, subscription_id: 7}\n",
        );
        let needs = implied_by("5", "", steps);
        assert_eq!(needs.max_qos, Some(QoS::ExactlyOnce));
        assert_eq!(needs.retain_available, Some(true));
        assert_eq!(needs.shared_subscriptions, Some(true));
        assert_eq!(needs.wildcard_subscriptions, Some(true));
        assert_eq!(needs.subscription_identifiers, Some(true));
        // a plain QoS 1 exchange on a plain topic needs nothing
        let plain = implied_by("5", "", "  - a: connect\n  - a: {subscribe: t, qos: 1}\n");
        assert_eq!(plain, Overrides::default());
        // 3.1.1 CONNACKs announce nothing
        let v311 = concat!(
            "  - a: {connect: {will: {topic: w, payload: p, qos: 2, retain: true}}}\n",
            "  - a: {subscribe: t/#, qos: 1}\n",
        );
        assert_eq!(implied_by("3.1.1", "", v311), Overrides::default());
    }

    #[test]
    fn a_stated_setting_is_not_implied_over() {
        let steps = "  - a: {connect: {will: {topic: w, payload: p, qos: 2, retain: true}}}\n";
        let needs = implied_by(
            "5",
            "broker: {retain_available: false, max_qos: 1}\n",
            steps,
        );
        assert_eq!(needs, Overrides::default());
    }
}
