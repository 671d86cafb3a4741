//! The settings table's generated parts agree with each other for every row: a new row is
//! covered by these tests without touching them.

use super::*;

#[test]
fn toml_overrides_defaults() {
    let config =
        Config::from_toml("max_qos = 1\nretain_available = false\nserver_keep_alive = 4\n")
            .unwrap();
    assert_eq!(config.max_qos, QoS::AtLeastOnce);
    assert!(!config.retain_available);
    assert_eq!(config.server_keep_alive, Some(4));
    assert_eq!(config.max_packet_size, Config::default().max_packet_size);
}

#[test]
fn unknown_keys_and_bad_values_are_errors_with_a_position() {
    let dir = std::env::temp_dir().join(format!("lastwill-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    let error = |text: &str| {
        std::fs::write(&path, text).unwrap();
        Config::load(&path).unwrap_err().to_string()
    };
    let err = error("retain_available = true\nmax_qos = 3\n");
    assert!(
        err.contains("bad.toml: 2:11: max_qos must be 0, 1 or 2, not 3"),
        "{err}"
    );
    let err = error("retain = true\n");
    assert!(err.contains("1:1: unknown field `retain`"), "{err}");
    assert!(err.contains("`listen`, `max_qos`"), "{err}");
    let err = error("\nserver_keep_alive = 70000\n");
    assert!(
        err.contains("2:21: server_keep_alive must be from 0 to 65535, not 70000"),
        "{err}"
    );
    let err = error("max_packet_size = 1\n");
    assert!(
        err.contains("1:19: max_packet_size must be from 2 to 268435460, not 1"),
        "{err}"
    );
    let err = error("credentials = [{ username = \"u\" }]\n");
    assert!(err.contains("missing field `password`"), "{err}");
    let err = error("listen = \"nowhere\"\n");
    assert!(
        err.starts_with(&format!("{}: 1:10: ", path.display())),
        "{err}"
    );
}

/// Values of the setting's kind and range, none of them its default.
fn samples(setting: &Setting) -> Vec<Value> {
    let default = setting.configured(&Config::default());
    let (min, max) = setting.range;
    let candidates = match setting.kind {
        Kind::Bool => vec![Value::Bool(false), Value::Bool(true)],
        Kind::Qos => vec![
            Value::Qos(QoS::AtMostOnce),
            Value::Qos(QoS::AtLeastOnce),
            Value::Qos(QoS::ExactlyOnce),
        ],
        Kind::Seconds | Kind::Bytes | Kind::Count => {
            vec![
                Value::Number(min),
                Value::Number(min + 1),
                Value::Number(max),
            ]
        }
        Kind::Credentials => vec![Value::Credentials(vec![Credential {
            username: "alice".into(),
            password: "se:cret=1".into(),
        }])],
    };
    let samples: Vec<Value> = candidates
        .into_iter()
        .filter(|v| Some(v) != default.as_ref())
        .collect();
    assert!(!samples.is_empty(), "{setting:?}");
    samples
}

/// How the command line writes a value.
fn text(value: &Value) -> String {
    match value {
        Value::Bool(b) => b.to_string(),
        Value::Qos(q) => q.as_u8().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Credentials(users) => format!("{}:{}", users[0].username, users[0].password),
    }
}

#[test]
fn every_setting_is_set_applied_listed_written_and_read_back() {
    assert_eq!(KEYS.len(), SETTINGS.len());
    for setting in SETTINGS {
        assert_eq!(
            Setting::named(setting.key).map(|s| s.key),
            Some(setting.key)
        );
        assert!(
            setting.description().ends_with('.'),
            "{setting:?}: a sentence"
        );
        for value in samples(setting) {
            let what = format!("{} = {value:?}", setting.key);
            let mut overrides = Overrides::default();
            setting.set(&mut overrides, value.clone()).unwrap();
            assert_eq!(setting.get(&overrides), Some(value.clone()), "{what}");
            let listed: Vec<(&str, Value)> = overrides.iter().map(|(s, v)| (s.key, v)).collect();
            assert_eq!(listed, [(setting.key, value.clone())], "{what}");

            let mut config = Config::default();
            overrides.apply(&mut config);
            assert_eq!(setting.configured(&config), Some(value.clone()), "{what}");
            for other in SETTINGS.iter().filter(|s| s.key != setting.key) {
                assert_eq!(
                    other.configured(&config),
                    other.configured(&Config::default()),
                    "{what} changed {}",
                    other.key
                );
            }

            let toml = overrides.to_toml();
            assert_eq!(Config::from_toml(&toml).unwrap(), config, "{what}: {toml}");
            assert_eq!(setting.parse(&text(&value)), Ok(value.clone()), "{what}");
        }
    }
}

#[test]
fn values_out_of_range_or_of_another_kind_are_refused() {
    for setting in SETTINGS {
        let mut overrides = Overrides::default();
        let (min, max) = setting.range;
        match setting.kind {
            Kind::Seconds | Kind::Bytes | Kind::Count => {
                assert!(max >= min && max <= i64::MAX as u64, "{setting:?}");
                let above = Value::Number(max + 1);
                let err = setting.set(&mut overrides, above).unwrap_err();
                assert_eq!(err, format!("must be from {min} to {max}, not {}", max + 1));
                assert!(setting.parse("x").is_err());
                assert_eq!(
                    setting.check(Value::Bool(true)),
                    Err(format!("expected {}, got true", setting.kind.name()))
                );
            }
            _ => assert!(setting.set(&mut overrides, Value::Number(1)).is_err()),
        }
        assert_eq!(overrides, Overrides::default(), "{setting:?}");
    }
    let qos = Setting::named("max_qos").unwrap();
    assert_eq!(qos.parse("3"), Err("must be 0, 1 or 2, not `3`".into()));
    let users = Setting::named("credentials").unwrap();
    assert!(users.parse(":nobody").is_err());
}

/// The CONNACK the reference broker sends shows each announced setting as configured, and
/// the harness reads it back from there: the two directions of each `announced as`.
#[test]
fn announced_settings_read_back_from_the_connack() {
    let default = Config::default();
    let seen = Overrides::announced_in(&default.connack_properties());
    for setting in SETTINGS {
        let expected = match setting.announced_as {
            Some(_) => setting.configured(&default),
            None => None,
        };
        assert_eq!(setting.get(&seen), expected, "{setting:?} by default");
        for value in samples(setting) {
            let mut overrides = Overrides::default();
            setting.set(&mut overrides, value.clone()).unwrap();
            let mut config = Config::default();
            overrides.apply(&mut config);
            let seen = Overrides::announced_in(&config.connack_properties());
            let expected = setting.announced_as.map(|_| value.clone());
            assert_eq!(setting.get(&seen), expected, "{} = {value:?}", setting.key);
        }
    }
}

#[test]
fn defaults_are_absent_from_the_connack_where_absence_means_them() {
    let p = Config::default().connack_properties();
    assert_eq!(p.maximum_qos, None);
    assert_eq!(p.retain_available, None);
    assert_eq!(p.receive_maximum, Some(1024));
    assert_eq!(p.topic_alias_maximum, Some(16));
    assert_eq!(p.maximum_packet_size, Some(1024 * 1024));
    assert_eq!(p.server_keep_alive, None);
    assert_eq!(p.wildcard_subscription_available, None);
    let config = Config {
        max_qos: QoS::AtLeastOnce,
        topic_alias_maximum: 0,
        shared_subscriptions: false,
        ..Config::default()
    };
    let p = config.connack_properties();
    assert_eq!(p.maximum_qos, Some(QoS::AtLeastOnce));
    assert_eq!(p.topic_alias_maximum, None);
    assert_eq!(p.shared_subscription_available, Some(false));
}

#[test]
fn values_are_shown_as_a_scenario_writes_them() {
    let show = |key: &str, value: Value| Setting::named(key).unwrap().show(&value);
    assert_eq!(show("server_keep_alive", Value::Number(30)), "30s");
    assert_eq!(show("max_qos", Value::Qos(QoS::AtLeastOnce)), "1");
    assert_eq!(show("max_packet_size", Value::Number(128)), "128");
    let users = Value::Credentials(vec![Credential {
        username: "alice".into(),
        password: "secret".into(),
    }]);
    assert_eq!(show("credentials", users), "users alice");
    assert_eq!(
        show("credentials", Value::Credentials(Vec::new())),
        "no users"
    );
}
