//! What network and HTTP filters share when they dispatch on `typed_config["@type"]`: the
//! lookup in a dispatcher's table of known `(type URL, filter name)` pairs (the filter `name`
//! is the fallback when `@type` is absent), the error for a filter without `typed_config`, and
//! the "unknown type" message with its "did you mean".

use super::decode::{did_you_mean, Obj};

/// The `@type` of `tc` as written (empty when absent) and the known type URL it names: looked
/// up by `@type`, or by the filter's `name` when `@type` is absent.
pub fn typed_kind(tc: &mut Obj, name: &str, known: &[(&'static str, &'static str)]) -> (String, Option<&'static str>) {
    let ty = tc.string("@type").unwrap_or_default();
    let found =
        if ty.is_empty() { known.iter().find(|(_, n)| *n == name) } else { known.iter().find(|(t, _)| *t == ty) };
    (ty, found.map(|(t, _)| *t))
}

/// Reports a filter `o` without `typed_config`: the v2 `config` field as removed when it is
/// there (`has_config`), otherwise `typed_config` as missing.
pub fn no_typed_config(o: &Obj, has_config: bool) {
    if has_config {
        o.error("config", "the untyped 'config' field was removed in v3; use typed_config with an @type");
    } else {
        o.missing("typed_config");
    }
}

/// "unknown `what` type '`shown`'", with a "did you mean" from the known type URLs and names.
pub fn unknown_type(what: &str, shown: &str, known: &[(&str, &str)]) -> String {
    match did_you_mean(shown, known.iter().flat_map(|(t, n)| [*t, *n])) {
        Some(best) => format!("unknown {what} type '{shown}' (did you mean '{best}'?)"),
        None => format!("unknown {what} type '{shown}'"),
    }
}
