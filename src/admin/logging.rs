//! `POST /logging` (list or change component log levels, Envoy's rules and error texts) and
//! `POST /reopen_logs`.
//!
//! Envoy's rules: empty `level`/`paths`/`group` values are ignored (the home page's form sends
//! them empty); exactly one parameter may remain: `level=<l>` (every logger),
//! `paths=a:l1,b:l2`, or `<logger>=<l>`. Nothing changes unless the whole request is valid.
//! `group` needs Envoy's fine-grain logging, which Legate does not have.

use std::fmt::Write;

use super::{AdminRequest, AdminState, Query, Reply, TEXT};

/// Envoy's level names (spdlog's), the only ones `/logging` accepts.
const LEVELS: &[&str] = &["trace", "debug", "info", "warning", "error", "critical", "off"];

const USAGE: &str = "usage: /logging?<name>=<level> (change single level)
usage: /logging?paths=name1:level1,name2:level2,... (change multiple levels)
usage: /logging?level=<level> (change all levels)
usage: /logging?group=<group_name>:<level> (change group of loggers)
";

/// What a valid request changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogChange {
    /// List only.
    Nothing,
    /// Every logger to one level.
    All(&'static str),
    /// Some loggers, `(name, level)`.
    Some(Vec<(String, &'static str)>),
}

fn level(s: &str) -> Result<&'static str, &'static str> {
    LEVELS.iter().find(|l| **l == s).copied().ok_or("unknown logger level")
}

/// Applies Envoy's rules to the parameters; `Err` is Envoy's message.
pub(crate) fn parse_change(params: &Query, loggers: &[&str]) -> Result<LogChange, &'static str> {
    let mut keys: Vec<&str> = Vec::new();
    for (k, v) in params.pairs() {
        if matches!(k.as_str(), "level" | "paths" | "group") && v.is_empty() {
            continue;
        }
        if !keys.contains(&k.as_str()) {
            keys.push(k);
        }
    }
    let key = match keys.as_slice() {
        [] => return Ok(LogChange::Nothing),
        [k] => *k,
        _ => return Err("invalid number of parameters"),
    };
    let value = params.get(key).unwrap_or("");
    let changes = match key {
        "level" => return Ok(LogChange::All(level(value)?)),
        "group" => return Err("group parameter requires fine-grain logging to be enabled"),
        "paths" => {
            let mut changes = Vec::new();
            for pair in value.split(',').filter(|p| !p.trim().is_empty()) {
                let (name, lvl) = pair.split_once(':').unwrap_or((pair, ""));
                if name.trim().is_empty() || lvl.trim().is_empty() {
                    return Err("empty logger name or empty logger level");
                }
                changes.push((name.to_string(), level(lvl)?));
            }
            changes
        }
        name => vec![(name.to_string(), level(value)?)],
    };
    if changes.iter().any(|(n, _)| !loggers.contains(&n.as_str())) {
        return Err("unknown logger name");
    }
    Ok(LogChange::Some(changes))
}

/// `active loggers:` and one `  name: level` line each, then a blank line.
pub(crate) fn active_loggers(levels: &[(&str, &str)]) -> String {
    let mut s = String::from("active loggers:\n");
    for (name, level) in levels {
        let _ = writeln!(s, "  {name}: {level}");
    }
    s.push('\n');
    s
}

/// The 400 body: the error, the usage, the levels, then the loggers.
pub(crate) fn error_body(msg: &str, levels: &[(&str, &str)]) -> String {
    let mut s = format!("error: {msg}\n\n{USAGE}levels: ");
    for l in LEVELS {
        s.push_str(l);
        s.push(' ');
    }
    s.push('\n');
    s.push_str(&active_loggers(levels));
    s
}

/// `POST /logging`.
pub(crate) fn handle(state: &AdminState, req: &AdminRequest) -> Reply {
    let result = parse_change(&req.params, crate::logging::COMPONENTS).and_then(|c| {
        match c {
            LogChange::Nothing => Ok(()),
            LogChange::All(l) => state.log.set_all(l),
            LogChange::Some(list) => list.iter().try_for_each(|(n, l)| state.log.set(n, l)),
        }
        .map_err(|e| {
            tracing::error!(target: "admin", "/logging: {e}");
            "unknown logger name"
        })
    });
    let levels = state.log.levels();
    match result {
        Ok(()) => Reply::text(active_loggers(&levels)),
        Err(msg) => Reply::new(400, TEXT, error_body(msg, &levels)),
    }
}

/// `POST /reopen_logs`: reopens `--log-path` and every file access log (after rotation).
pub(crate) fn reopen_logs(state: &AdminState, _req: &AdminRequest) -> Reply {
    match state.log.reopen().and_then(|()| crate::access_log_build::reopen_all()) {
        Ok(()) => Reply::ok(),
        Err(e) => Reply::new(500, TEXT, format!("cannot reopen the log file: {e}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::fixtures;

    const LOGGERS: &[&str] = &["admin", "connection", "upstream"];

    fn parse(q: &str) -> Result<LogChange, &'static str> {
        parse_change(&Query::parse(q), LOGGERS)
    }

    #[test]
    fn no_parameters_or_empty_form_values_only_list() {
        assert_eq!(parse(""), Ok(LogChange::Nothing));
        assert_eq!(parse("level=&paths=&group="), Ok(LogChange::Nothing));
    }

    #[test]
    fn level_changes_every_logger() {
        assert_eq!(parse("level=debug"), Ok(LogChange::All("debug")));
        assert_eq!(parse("level=bogus"), Err("unknown logger level"));
        // spdlog's names only: `warn` is not one of them.
        assert_eq!(parse("level=warn"), Err("unknown logger level"));
    }

    #[test]
    fn a_logger_name_as_key_changes_that_logger() {
        assert_eq!(parse("upstream=trace"), Ok(LogChange::Some(vec![("upstream".into(), "trace")])));
        assert_eq!(parse("bogus=debug"), Err("unknown logger name"));
        // The level is checked before the name, as in Envoy.
        assert_eq!(parse("bogus=bogus"), Err("unknown logger level"));
    }

    #[test]
    fn paths_change_several_loggers_or_none() {
        assert_eq!(
            parse("paths=upstream:info,connection:debug"),
            Ok(LogChange::Some(vec![("upstream".into(), "info"), ("connection".into(), "debug")]))
        );
        assert_eq!(parse("paths=upstream:info,bogus:debug"), Err("unknown logger name"));
        assert_eq!(parse("paths=upstream"), Err("empty logger name or empty logger level"));
    }

    #[test]
    fn more_than_one_parameter_or_group_is_an_error() {
        assert_eq!(parse("level=info&upstream=debug"), Err("invalid number of parameters"));
        assert_eq!(parse("group=upstream:debug"), Err("group parameter requires fine-grain logging to be enabled"));
    }

    #[test]
    fn error_body_matches_envoys_layout() {
        let levels = [("admin", "debug"), ("upstream", "info")];
        let body = error_body("unknown logger name", &levels);
        assert!(body.starts_with(fixtures::ENVOY_LOGGING_ERROR_HEAD));
        assert!(body.ends_with("active loggers:\n  admin: debug\n  upstream: info\n\n"));
    }
}
