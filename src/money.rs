//! Money's currencies: ISO 4217 codes from the `iso_currency` crate's data (not a hand-typed table),
//! each with its minor-unit exponent (JPY 0, USD 2, KWD 3), and exact conversion between
//! minor units (how money is kept) and major-unit decimals (how people and some faces show
//! it).

use crate::error::{AppError, AppResult};

/// A currency money can be kept in: an active ISO 4217 code with a minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    code: &'static str,
    exponent: u32,
}

impl Currency {
    /// The currency of `code` (upper case, as given). Unknown codes, codes without a minor
    /// unit (gold, testing, "no currency"), funds codes and superseded codes are refused,
    /// naming `field`.
    pub fn parse(field: &str, code: &str) -> AppResult<Self> {
        if code.len() != 3 || !code.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(AppError::bad_input(format!(
                "{field} must be a 3-letter upper-case ISO 4217 code such as USD (got {code:?})"
            )));
        }
        if !code.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(AppError::bad_input(format!(
                "{field} must be a 3-letter upper-case ISO 4217 code such as USD; it must already be upper case (got {code:?})"
            )));
        }
        let known = iso_currency::Currency::from_code(code)
            .ok_or_else(|| AppError::bad_input(format!("{field} {code} is not an ISO 4217 currency code")))?;
        if known.is_fund() || known.is_superseded().is_some() {
            return Err(AppError::bad_input(format!("{field} {code} is not a currency money is paid in")));
        }
        let exponent = known.exponent().ok_or_else(|| {
            AppError::bad_input(format!("{field} {code} has no minor unit: money cannot be kept in it"))
        })?;
        Ok(Self { code: known.code(), exponent: u32::from(exponent) })
    }

    /// The currency of a code already stored (validated when it was written).
    pub fn of_stored(code: &str) -> AppResult<Self> {
        Self::parse("currency", code)
            .map_err(|_| AppError::internal(anyhow::anyhow!("stored currency {code:?} is not valid")))
    }

    pub fn code(self) -> &'static str {
        self.code
    }

    /// Decimal places of the minor unit: JPY 0, USD 2, KWD 3.
    pub fn exponent(self) -> u32 {
        self.exponent
    }

    /// `minor` as an exact major-unit decimal: 1234 USD is "12.34", 1234 JPY "1234",
    /// 1234 KWD "1.234".
    pub fn to_major(self, minor: i64) -> String {
        let sign = if minor < 0 { "-" } else { "" };
        let digits = minor.unsigned_abs().to_string();
        let places = self.exponent as usize;
        if places == 0 {
            return format!("{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = places + 1);
        let (whole, fraction) = padded.split_at(padded.len() - places);
        format!("{sign}{whole}.{fraction}")
    }

    /// A major-unit decimal as exact minor units; a value with more decimal places than
    /// the currency has (or out of range) is refused, naming `field`.
    pub fn to_minor(self, field: &str, major: &str) -> AppResult<i64> {
        let wrong = || {
            AppError::bad_input(format!(
                "{field} {major:?} is not an amount of {} with at most {} decimal places",
                self.code, self.exponent
            ))
        };
        let (negative, digits) = match major.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, major),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !fraction.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(wrong());
        }
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > self.exponent as usize {
            return Err(wrong());
        }
        let scale = 10i64.checked_pow(self.exponent).ok_or_else(wrong)?;
        let whole: i64 = whole.parse().map_err(|_| wrong())?;
        let fraction_value: i64 = if fraction.is_empty() {
            0
        } else {
            format!("{fraction:0<width$}", width = self.exponent as usize).parse().map_err(|_| wrong())?
        };
        let minor = whole.checked_mul(scale).and_then(|w| w.checked_add(fraction_value)).ok_or_else(wrong)?;
        Ok(if negative { -minor } else { minor })
    }
}

impl Currency {
    /// `minor` as a major-unit JSON number, as the seed faces and webhooks show amounts
    /// (JPY 1000 is `1000.0`, USD 1023 is `10.23`). Exact for every amount the service
    /// holds: at most 10^12 minor units, well inside a double's exact integers.
    pub fn to_major_json(self, minor: i64) -> AppResult<serde_json::Value> {
        let text = self.to_major(minor);
        let number: f64 =
            text.parse().map_err(|_| AppError::internal(anyhow::anyhow!("amount {text} is not a number")))?;
        Ok(serde_json::Number::from_f64(number).map_or(serde_json::Value::Null, serde_json::Value::Number))
    }

    /// A major-unit JSON number as exact minor units; more decimal places than the currency
    /// has are refused, naming `field`. The number is read back as the shortest text that
    /// gives the same double: what the client wrote, for every amount a double holds
    /// exactly (all up to 10^12 minor units).
    pub fn json_to_minor(self, field: &str, number: &serde_json::Number) -> AppResult<i64> {
        let text = match (number.as_i64(), number.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => format!("{f}"),
            (None, None) => number.to_string(),
        };
        self.to_minor(field, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_come_from_iso_4217() {
        for (code, exponent) in [("JPY", 0), ("USD", 2), ("EUR", 2), ("KWD", 3), ("BHD", 3), ("OMR", 3)] {
            assert_eq!(Currency::parse("currency", code).unwrap().exponent(), exponent, "{code}");
        }
    }

    #[test]
    fn unknown_and_unkeepable_codes_are_refused() {
        for (code, needle) in [
            ("ZZZ", "not an ISO 4217"),
            ("usd", "upper case"),
            ("US", "3-letter"),
            ("XAU", "no minor unit"),
            ("XXX", "no minor unit"),
        ] {
            let error = Currency::parse("currency", code).unwrap_err().to_string();
            assert!(error.contains(needle), "{code}: {error}");
        }
    }

    #[test]
    fn conversions_are_exact_both_ways() {
        let usd = Currency::parse("c", "USD").unwrap();
        let jpy = Currency::parse("c", "JPY").unwrap();
        let kwd = Currency::parse("c", "KWD").unwrap();
        assert_eq!(usd.to_major(1234), "12.34");
        assert_eq!(usd.to_major(5), "0.05");
        assert_eq!(usd.to_major(-5), "-0.05");
        assert_eq!(jpy.to_major(1234), "1234");
        assert_eq!(kwd.to_major(1234), "1.234");
        assert_eq!(usd.to_minor("amount", "12.34").unwrap(), 1234);
        assert_eq!(usd.to_minor("amount", "12.3").unwrap(), 1230);
        assert_eq!(usd.to_minor("amount", "12.340").unwrap(), 1234);
        assert_eq!(jpy.to_minor("amount", "1500").unwrap(), 1500);
        assert_eq!(kwd.to_minor("amount", "1.005").unwrap(), 1005);
        for bad in ["12.345", "1.5e3", "", ".5", "1,5", "99999999999999999999"] {
            assert!(usd.to_minor("amount", bad).is_err(), "{bad}");
        }
        assert!(jpy.to_minor("amount", "10.5").unwrap_err().to_string().contains("at most 0 decimal places"));
        for minor in [0, 1, 99, 100, 123_456_789, -42] {
            assert_eq!(usd.to_minor("a", &usd.to_major(minor)).unwrap(), minor);
            assert_eq!(kwd.to_minor("a", &kwd.to_major(minor)).unwrap(), minor);
        }
    }
}
