//! Every row of the broker's settings table (`lastwill_broker::config::SETTINGS`) works
//! everywhere a scenario's `broker:` section goes: the scenario parser reads it, the simulator
//! runs the reference broker with it, and against a broker over TCP it is a requirement that
//! the reference broker's own CONNACK meets and a default broker's does not (or that no
//! CONNACK can show). A new row is covered here without editing this file; so are the
//! documents that list the settings.

use std::path::Path;
use std::time::Duration;

use lastwill::runner::sim::broker_config;
use lastwill::runner::tcp::{Capabilities, Endpoint, Skip};
use lastwill::scenario::{self, Scenario};
use lastwill_broker::codec::{Connect, Packet, Protocol, QoS};
use lastwill_broker::config::{
    Config, Credential, KEYS, Kind, Overrides, SETTINGS, Setting, Value,
};
use lastwill_broker::core::{Broker, Output};

/// A value of the setting, in range, that is not its default.
fn sample(setting: &Setting) -> Value {
    let default = setting.configured(&Config::default());
    let (min, max) = setting.range;
    let value = match setting.kind {
        Kind::Bool => Value::Bool(default == Some(Value::Bool(false))),
        Kind::Qos if default == Some(Value::Qos(QoS::AtMostOnce)) => Value::Qos(QoS::ExactlyOnce),
        Kind::Qos => Value::Qos(QoS::AtMostOnce),
        Kind::Seconds | Kind::Bytes | Kind::Count if default == Some(Value::Number(max)) => {
            Value::Number(min)
        }
        Kind::Seconds | Kind::Bytes | Kind::Count => Value::Number(max),
        Kind::Credentials => Value::Credentials(vec![Credential {
            username: "alice".into(),
            password: "se:cret".into(),
        }]),
    };
    assert_ne!(Some(&value), default.as_ref(), "{setting:?}");
    value
}

/// The scenario language's spelling of a value: `show` for people writes it so, but for
/// users, whose passwords it leaves out.
fn yaml(setting: &Setting, value: &Value) -> String {
    match value {
        Value::Credentials(users) => {
            let users: Vec<String> = users
                .iter()
                .map(|u| format!("{{username: '{}', password: '{}'}}", u.username, u.password))
                .collect();
            format!("[{}]", users.join(", "))
        }
        other => setting.show(other),
    }
}

fn scenario_with(key: &str, value: &str) -> Scenario {
    let text = format!(
        "name: t\nbroker: {{{key}: {value}}}\nclients: {{a: {{}}}}\nsteps:\n  - a: connect\n"
    );
    scenario::parse(&text, "t.yaml").unwrap_or_else(|e| panic!("{e}"))
}

/// The CONNACK properties the reference broker sends a plain v5 client, as the TCP runner's
/// probe would read them (with the configured user's credentials, if any).
fn reference_capabilities(config: &Config) -> Capabilities {
    let mut broker = Broker::new(config.clone());
    let mut connect = Connect::new(Protocol::V5, "probe");
    if let Some(user) = config.credentials.first() {
        connect.username = Some(user.username.clone());
        connect.password = Some(user.password.clone().into());
    }
    broker.connection_opened(Duration::ZERO, 1);
    broker.packet_received(Duration::ZERO, 1, Packet::Connect(connect));
    match broker.poll_output() {
        Some(Output::Send {
            packet: Packet::ConnAck(connack),
            ..
        }) if connack.code.is_success() => Capabilities {
            announced: Overrides::announced_in(&connack.properties),
            refused: None,
        },
        other => panic!("the reference broker did not accept the probe: {other:?}"),
    }
}

#[test]
fn every_setting_is_read_run_and_required() {
    let endpoint = Endpoint::at("127.0.0.1", 1883);
    let default_broker = reference_capabilities(&Config::default());
    for setting in SETTINGS {
        let value = sample(setting);
        let what = format!("{}: {}", setting.key, yaml(setting, &value));
        let scenario = scenario_with(setting.key, &yaml(setting, &value));
        let mut expected = Overrides::default();
        setting.set(&mut expected, value.clone()).unwrap();
        assert_eq!(scenario.broker, expected, "{what}");

        let config = broker_config(&scenario.broker);
        assert_eq!(setting.configured(&config), Some(value.clone()), "{what}");

        let configured_broker = reference_capabilities(&config);
        let on_configured = endpoint.skip_reason(&scenario, &configured_broker);
        let on_default = endpoint.skip_reason(&scenario, &default_broker);
        match setting.announced_as {
            Some(property) => {
                assert_eq!(on_configured, None, "{what}: a broker configured so");
                let Some(skip @ Skip::Announced { .. }) = on_default else {
                    panic!("{what}: a default broker is not skipped: {on_default:?}");
                };
                let reason = skip.to_string();
                assert!(reason.contains(&what), "{reason}");
                assert!(reason.contains(property), "{reason}");
                assert!(
                    !reason.contains("Some(") && !reason.contains("None"),
                    "{reason}"
                );
            }
            None => {
                let unconfirmable = Some(Skip::Unconfirmable {
                    setting: setting.key,
                });
                assert_eq!(on_configured, unconfirmable, "{what}");
                assert_eq!(on_default, unconfirmable, "{what}");
            }
        }
    }
}

fn repository_file(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::read_to_string(root.join(path)).unwrap()
}

/// The language reference's `broker:` table lists the settings, in the table's order.
#[test]
fn the_language_reference_lists_every_setting() {
    let doc = repository_file("docs/scenario-language.md");
    let section = doc
        .split("\n## `broker:`\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/scenario-language.md has a `broker:` section");
    let listed: Vec<&str> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .collect();
    assert_eq!(listed, KEYS);
}

/// The README's configuration file shows every setting, and its uncommented lines are the
/// defaults, as it says.
#[test]
fn the_readme_configuration_file_is_the_defaults() {
    let readme = repository_file("README.md");
    let block = readme
        .split("Configuration file (every key optional; these are the defaults):\n\n```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README.md has the configuration block");
    assert_eq!(Config::from_toml(block).unwrap(), Config::default());
    let shown: Vec<&str> = block
        .lines()
        .map(|line| line.trim_start_matches(['#', ' ']))
        .filter_map(|line| line.split([' ', '=']).next())
        .filter(|key| *key != "listen")
        .collect();
    assert_eq!(shown, KEYS);
}
