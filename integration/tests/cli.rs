//! Scenario: command-line mistakes get Envoy's exact one-line errors (stdout empty, exit 1),
//! caught before the config is read; `--version` has Envoy's layout.

use legate_integration::legate::{legate_binary, run_legate, workspace_root};

const DEMO: &str = "configs/legate-demo.yaml";

/// Runs legate from the workspace root.
fn legate(args: &[&str]) -> legate_integration::process::Finished {
    run_legate(args, Some(&workspace_root()))
}

fn assert_envoy_option_error(args: &[&str], line: &str) {
    let out = legate(args);
    assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
    assert_eq!(out.stdout, "", "{args:?}");
    assert_eq!(out.stderr, format!("{line}\n"), "{args:?}");
}

#[test]
fn unknown_mode_is_rejected_with_envoys_message() {
    assert_envoy_option_error(&["--mode", "bogus", "-c", DEMO], "error: unknown mode 'bogus'");
}

#[test]
fn unknown_mode_is_rejected_even_without_a_config() {
    assert_envoy_option_error(&["--mode", "bogus"], "error: unknown mode 'bogus'");
}

#[test]
fn invalid_log_level_is_rejected_with_envoys_message() {
    for flag in ["-l", "--log-level"] {
        assert_envoy_option_error(
            &["--mode", "validate", "-c", DEMO, flag, "bogus"],
            "error: invalid log level specified 'bogus'",
        );
    }
}

#[test]
fn invalid_component_is_rejected_with_envoys_message() {
    assert_envoy_option_error(
        &["--mode", "validate", "-c", DEMO, "--component-log-level", "foo:debug"],
        "error: invalid component specified 'foo'",
    );
}

#[test]
fn invalid_component_level_is_rejected_with_envoys_message() {
    assert_envoy_option_error(
        &["--mode", "validate", "-c", DEMO, "--component-log-level", "upstream:loud"],
        "error: invalid log level specified 'loud'",
    );
}

#[test]
fn component_level_without_colon_is_rejected_with_envoys_message() {
    assert_envoy_option_error(
        &["--mode", "validate", "-c", DEMO, "--component-log-level", "upstream"],
        "error: component log level not correctly specified 'upstream'",
    );
}

#[test]
fn option_errors_are_caught_in_serve_mode_too() {
    assert_envoy_option_error(&["-c", DEMO, "-l", "bogus"], "error: invalid log level specified 'bogus'");
    assert_envoy_option_error(
        &["-c", DEMO, "--component-log-level", "foo:debug"],
        "error: invalid component specified 'foo'",
    );
}

#[test]
fn valid_component_log_level_is_accepted() {
    let out = legate(&["--mode", "validate", "-c", DEMO, "--component-log-level", "upstream:debug,connection:trace"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, format!("configuration '{DEMO}' OK\n"));
}

/// Envoy: `"\n<argv0>  version: <40 hex>/<x.y.z>/Clean/RELEASE/BoringSSL\n\n"` on stdout.
#[test]
fn version_has_envoys_layout() {
    let out = legate(&["--version"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "");
    let argv0 = legate_binary().to_string_lossy().into_owned();
    let re = regex::Regex::new(
        r"^\n(?P<name>\S+)  version: [0-9a-f]{40}/\d+\.\d+\.\d+/Clean/(RELEASE|DEBUG)/[A-Za-z]+\n\n$",
    )
    .expect("regex");
    let caps = re.captures(&out.stdout).unwrap_or_else(|| panic!("not Envoy's --version layout: {:?}", out.stdout));
    // Envoy prints its argv[0]; Legate may print its own name.
    let name = &caps["name"];
    assert!(name == argv0 || name == "legate", "unexpected program name {name:?}");
}

#[test]
fn version_wins_over_other_bad_arguments() {
    let out = legate(&["--version", "--mode", "bogus", "-c", "does-not-exist.yaml"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("  version: "), "{out:?}");
}

#[test]
fn missing_config_is_rejected() {
    let out = legate(&["--mode", "validate"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("At least one of --config-path or --config-yaml"), "{}", out.stderr);
}

#[test]
fn nonexistent_config_file_is_rejected_naming_it() {
    let out = legate(&["--mode", "validate", "-c", "configs/does-not-exist.yaml"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("configs/does-not-exist.yaml"), "{}", out.stderr);
}

#[test]
fn unparsable_arguments_exit_1_like_envoy() {
    for args in [&["--bogus-flag", "-c", DEMO][..], &["--concurrency", "abc", "-c", DEMO][..]] {
        let out = legate(args);
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn help_goes_to_stdout_with_exit_0() {
    for flag in ["-h", "--help"] {
        let out = legate(&[flag]);
        assert_eq!(out.code, Some(0), "{flag}: {out:?}");
        assert!(out.stdout.contains("--config-path"), "{flag}: {}", out.stdout);
        assert!(out.stdout.contains("--mode"), "{flag}: {}", out.stdout);
    }
}
