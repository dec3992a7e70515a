//! Number formatting that reproduces the C++ formatters Envoy's admin output uses:
//! `fmt::format("{}", double)` (shortest round-trip, exponent outside 1e-4..1e16),
//! printf-style `%g` / `{:g}` / `{:.32g}`, and `std::to_chars(double)` (shortest of fixed or
//! scientific, used by Envoy's JSON streamer).

/// Decimal digits (no leading zeros, at least one digit) and the decimal exponent of the first
/// digit, for a finite, non-zero, non-negative value.
struct Decimal {
    digits: Vec<u8>,
    exp: i32,
}

impl Decimal {
    /// Parses Rust's `{:e}` output such as `1.0958333333333334e0` or `3e5`.
    fn from_sci(s: &str) -> Decimal {
        let (mantissa, exp) = s.split_once('e').unwrap_or((s, "0"));
        let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
        let exp = exp.parse::<i32>().unwrap_or(0);
        Decimal { digits, exp }
    }

    /// Shortest digits that round-trip to `x` (`x` finite and positive).
    fn shortest(x: f64) -> Decimal {
        Decimal::from_sci(&format!("{x:e}"))
    }

    /// `precision` significant digits, correctly rounded (`x` finite and positive).
    fn rounded(x: f64, precision: usize) -> Decimal {
        Decimal::from_sci(&format!("{:.*e}", precision.saturating_sub(1), x))
    }

    fn strip_trailing_zeros(&mut self) {
        while self.digits.len() > 1 && self.digits.last() == Some(&b'0') {
            self.digits.pop();
        }
    }

    /// Plain positional notation, e.g. `1800000`, `0.0001`, `4.05`.
    fn fixed(&self) -> String {
        let mut out = String::new();
        let n = self.digits.len() as i32;
        if self.exp < 0 {
            out.push_str("0.");
            for _ in 0..(-self.exp - 1) {
                out.push('0');
            }
            out.extend(self.digits.iter().map(|&d| d as char));
        } else if n <= self.exp + 1 {
            out.extend(self.digits.iter().map(|&d| d as char));
            for _ in 0..(self.exp + 1 - n) {
                out.push('0');
            }
        } else {
            let split = (self.exp + 1) as usize;
            out.extend(self.digits[..split].iter().map(|&d| d as char));
            out.push('.');
            out.extend(self.digits[split..].iter().map(|&d| d as char));
        }
        out
    }

    /// C-style scientific notation with a two-digit minimum exponent, e.g. `3e+05`, `1.5e-07`.
    fn scientific(&self) -> String {
        let mut out = String::new();
        if let Some((first, rest)) = self.digits.split_first() {
            out.push(*first as char);
            if !rest.is_empty() {
                out.push('.');
                out.extend(rest.iter().map(|&d| d as char));
            }
        }
        out.push('e');
        out.push(if self.exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", self.exp.unsigned_abs()));
        out
    }
}

/// Handles sign, zero and non-finite values, delegating positive finite values to `body`.
fn with_sign(x: f64, body: impl FnOnce(f64) -> String) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    if x < 0.0 {
        format!("-{}", body(-x))
    } else {
        body(x)
    }
}

/// `fmt::format("{}", x)` for a double: shortest round-trip digits, scientific notation when
/// the decimal exponent is below -4 or at least 16. NaN prints as `nan`.
pub(crate) fn fmt_shortest(x: f64) -> String {
    with_sign(x, |v| {
        let d = Decimal::shortest(v);
        if d.exp < -4 || d.exp >= 16 {
            d.scientific()
        } else {
            d.fixed()
        }
    })
}

/// printf `%.<precision>g` (also fmt's `{:g}` with precision 6).
pub(crate) fn fmt_g(x: f64, precision: usize) -> String {
    let p = precision.max(1);
    with_sign(x, |v| {
        let mut d = Decimal::rounded(v, p);
        if d.exp < -4 || d.exp >= p as i32 {
            d.strip_trailing_zeros();
            d.scientific()
        } else {
            // Trailing zeros after the decimal point are removed by %g; the zeros that
            // position the decimal point are re-added by `fixed()`.
            d.strip_trailing_zeros();
            d.fixed()
        }
    })
}

/// `std::to_chars(x)`: shortest round-trip digits, written in whichever of fixed or scientific
/// notation is shorter (fixed on a tie). This is what Envoy's JSON output shows
/// (`3e+05`, `1800000`, `0.5`).
pub(crate) fn fmt_to_chars(x: f64) -> String {
    with_sign(x, |v| {
        let d = Decimal::shortest(v);
        let fixed = d.fixed();
        let sci = d.scientific();
        if sci.len() < fixed.len() {
            sci
        } else {
            fixed
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_matches_fmt() {
        assert_eq!(fmt_shortest(0.0), "0");
        assert_eq!(fmt_shortest(4.05), "4.05");
        assert_eq!(fmt_shortest(1.0958333333333334), "1.0958333333333334");
        assert_eq!(fmt_shortest(91.5), "91.5");
        assert_eq!(fmt_shortest(300000.0), "300000");
        assert_eq!(fmt_shortest(1e15), "1000000000000000");
        assert_eq!(fmt_shortest(1e16), "1e+16");
        assert_eq!(fmt_shortest(1.5e17), "1.5e+17");
        assert_eq!(fmt_shortest(0.0001), "0.0001");
        assert_eq!(fmt_shortest(0.00001), "1e-05");
        assert_eq!(fmt_shortest(f64::NAN), "nan");
        assert_eq!(fmt_shortest(-2.5), "-2.5");
    }

    #[test]
    fn g_matches_printf() {
        assert_eq!(fmt_g(0.5, 6), "0.5");
        assert_eq!(fmt_g(100.0, 6), "100");
        assert_eq!(fmt_g(99.5, 6), "99.5");
        assert_eq!(fmt_g(300000.0, 6), "300000");
        assert_eq!(fmt_g(1800000.0, 6), "1.8e+06");
        assert_eq!(fmt_g(3600000.0, 6), "3.6e+06");
        assert_eq!(fmt_g(0.1, 15), "0.1");
        assert_eq!(fmt_g(0.0, 15), "0");
        assert_eq!(fmt_g(3600000.0, 32), "3600000");
        assert_eq!(fmt_g(5.238095238095238, 32), "5.238095238095238137532305700006");
        assert_eq!(fmt_g(0.00001, 6), "1e-05");
        assert_eq!(fmt_g(123456789.0, 6), "1.23457e+08");
    }

    #[test]
    fn to_chars_picks_shorter() {
        assert_eq!(fmt_to_chars(300000.0), "3e+05");
        assert_eq!(fmt_to_chars(600000.0), "6e+05");
        assert_eq!(fmt_to_chars(1800000.0), "1800000");
        assert_eq!(fmt_to_chars(60000.0), "60000");
        assert_eq!(fmt_to_chars(0.5), "0.5");
        assert_eq!(fmt_to_chars(0.0), "0");
        assert_eq!(fmt_to_chars(4.05), "4.05");
        assert_eq!(fmt_to_chars(0.0001), "1e-04");
    }
}
