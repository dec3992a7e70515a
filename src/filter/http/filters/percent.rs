//! Envoy's fractional percentages and runtime overrides (`Runtime::Snapshot::featureEnabled`,
//! `getInteger`) over Legate's static runtime layers, which are read once per generation.

use crate::config::http_filters::FractionalPercent;
use crate::runtime::Runtime;

/// Whether `random` falls inside `p` (`ProtobufPercentHelper::evaluateFractionalPercent`:
/// `random % denominator < numerator`).
pub fn hits(p: FractionalPercent, random: u64) -> bool {
    let den = u64::from(p.denominator.max(1));
    random % den < u64::from(p.numerator)
}

/// Rolls the dice for `p`.
pub fn roll(p: FractionalPercent) -> bool {
    p.numerator > 0 && hits(p, rand::random::<u64>())
}

/// The value runtime key `key` gives a percentage, if it sets one: an integer is a percent
/// (values above 100 mean always, as in Envoy), `{numerator, denominator}` a fraction.
pub fn runtime_percent(rt: &Runtime, key: &str) -> Option<FractionalPercent> {
    if let Some(n) = rt.get_u64(key) {
        return Some(FractionalPercent { numerator: n.min(100) as u32, denominator: 100 });
    }
    let numerator = rt.get_u64(&format!("{key}.numerator"))?;
    let denominator = match rt.get(&format!("{key}.denominator")).unwrap_or("HUNDRED") {
        "TEN_THOUSAND" | "1" => 10_000,
        "MILLION" | "2" => 1_000_000,
        _ => 100,
    };
    Some(FractionalPercent { numerator: numerator.min(u64::from(u32::MAX)) as u32, denominator })
}

/// `runtime_percent` with a default.
pub fn percent_or(rt: &Runtime, key: Option<&str>, default: FractionalPercent) -> FractionalPercent {
    key.and_then(|k| runtime_percent(rt, k)).unwrap_or(default)
}

/// The header percentage rule (`HeaderPercentageProvider`): a numeric header value caps the
/// configured numerator; the denominator stays.
pub fn capped_by_header(configured: FractionalPercent, header: Option<&[u8]>) -> FractionalPercent {
    match header.and_then(parse_u32) {
        Some(n) => FractionalPercent { numerator: n.min(configured.numerator), ..configured },
        None => configured,
    }
}

/// `absl::SimpleAtoi` for an unsigned header value (surrounding whitespace allowed).
pub fn parse_u64(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

fn parse_u32(v: &[u8]) -> Option<u32> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}
