//! Every class of scenario error, one bad fixture file each: the message is one line,
//! `FILE:LINE:COLUMN: message`, pointing at the offending character.

use std::path::Path;

use lastwill::scenario;

/// Loads `bad-scenarios/NAME` and checks its error, written relative to this directory.
fn error(name: &str, expected: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let path = dir.join("bad-scenarios").join(name);
    let error = scenario::load(&path).expect_err("the scenario should be rejected");
    let shown = error.to_string();
    assert!(!shown.contains('\n'), "not one line: {shown}");
    let prefix = format!("{}/", dir.display());
    assert_eq!(shown.strip_prefix(&prefix).unwrap_or(&shown), expected);
}

#[test]
fn unknown_key_lists_the_valid_keys() {
    error(
        "unknown-key.yaml",
        "bad-scenarios/unknown-key.yaml:8:9: unknown key `clean_strat` in `connect`; expected \
         one of: client_id, clean_start, keep_alive, session_expiry, username, password, will, \
         receive_maximum, maximum_packet_size, topic_alias_maximum, request_response_information, \
         request_problem_information, authentication_method, authentication_data, user_properties \
         (did you mean `clean_start`?)",
    );
}

#[test]
fn wrong_type_says_expected_and_got() {
    error(
        "wrong-type.yaml",
        "bad-scenarios/wrong-type.yaml:7:64: expected `true` or `false`, got string `yes`",
    );
}

#[test]
fn undefined_client_lists_the_clients() {
    error(
        "undefined-client.yaml",
        "bad-scenarios/undefined-client.yaml:7:5: undefined client `devcie`; defined clients: \
         watcher, device (did you mean `device`?)",
    );
}

#[test]
fn unknown_mark_names_it() {
    error(
        "unknown-mark.yaml",
        "bad-scenarios/unknown-mark.yaml:14:36: unknown mark `droped`; marks must be defined by \
         an earlier step (defined so far: dropped) (did you mean `dropped`?)",
    );
}

#[test]
fn mark_of_a_later_step_is_unknown() {
    error(
        "mark-used-before-defined.yaml",
        "bad-scenarios/mark-used-before-defined.yaml:7:9: unknown mark `dropped`; marks must be \
         defined by an earlier step (none is)",
    );
}

#[test]
fn malformed_hex_points_at_the_character() {
    error(
        "malformed-hex.yaml",
        "bad-scenarios/malformed-hex.yaml:5:43: malformed hex: `g` is not a hex digit (expected \
         byte pairs like `0d ff`)",
    );
}

#[test]
fn bad_duration() {
    error(
        "bad-duration.yaml",
        "bad-scenarios/bad-duration.yaml:6:11: invalid duration `5 seconds`: expected a number \
         and a unit (ms, s, m or h), like `250ms`, `5s` or `2m`",
    );
}

#[test]
fn reason_code_out_of_range() {
    error(
        "bad-reason-code.yaml",
        "bad-scenarios/bad-reason-code.yaml:6:26: reason code 0x104 is out of range: expected 0 \
         to 255 (0x00 to 0xFF)",
    );
}

#[test]
fn unknown_reason_name() {
    error(
        "unknown-reason-name.yaml",
        "bad-scenarios/unknown-reason-name.yaml:7:26: unknown reason code `session-taken`: \
         expected a number (0x00 to 0xFF) or a name such as `success`, `session-taken-over` \
         (did you mean `session-taken-over`?)",
    );
}

#[test]
fn bad_protocol() {
    error(
        "bad-protocol.yaml",
        "bad-scenarios/bad-protocol.yaml:2:11: unsupported protocol `4`: expected `3.1.1` or `5`",
    );
}

#[test]
fn yaml_syntax_error() {
    error(
        "yaml-syntax.yaml",
        "bad-scenarios/yaml-syntax.yaml:4:6: YAML syntax error: while parsing a flow mapping, \
         did not find expected ',' or '}'",
    );
}

#[test]
fn missing_file_is_one_line_without_position() {
    let error = scenario::load("/nonexistent/x.yaml").unwrap_err();
    assert!(error.location.is_none());
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/x.yaml: cannot read: ")
    );
}

#[test]
fn discover_finds_every_fixture_sorted() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-scenarios");
    let found = scenario::discover(&dir);
    assert!(found.len() >= 10);
    assert!(found.windows(2).all(|w| w[0] < w[1]));
    assert!(
        found
            .iter()
            .all(|p| p.extension().is_some_and(|e| e == "yaml"))
    );
}
