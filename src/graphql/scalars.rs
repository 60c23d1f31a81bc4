//! The schema's own scalars: `Money` (64-bit minor units) and `JSON` (with its contract), and
//! the description the `DateTime` scalar carries.

use async_graphql::{InputValueError, InputValueResult, Number, Scalar, ScalarType, Value};

/// The largest magnitude a JSON number (an IEEE 754 double) holds exactly: 2^53 − 1.
pub const MAX_EXACT: i64 = (1 << 53) - 1;

/// An amount of money in the minor unit of its currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Money(pub i64);

/// An amount of money in the minor unit of its currency (cents for USD, yen for JPY, fils for
/// KWD), as a signed 64-bit integer. It is serialized as a JSON number, and every amount this
/// service stores or returns fits in ±2^53 − 1, so it is exact in a JavaScript `number` or any
/// IEEE 754 double: an order's total is capped at 10^12 minor units. As input it takes a JSON
/// integer, or a string of decimal digits with an optional leading `-` for clients that keep
/// 64-bit integers as strings; a fraction, an exponent or a value past ±2^53 − 1 is refused.
#[Scalar(name = "Money")]
impl ScalarType for Money {
    fn parse(value: Value) -> InputValueResult<Self> {
        let parsed = match &value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => parse_digits(s),
            _ => return Err(InputValueError::expected_type(value)),
        };
        match parsed {
            Some(v) if (-MAX_EXACT..=MAX_EXACT).contains(&v) => Ok(Money(v)),
            _ => Err(InputValueError::custom(
                "Money is a whole number of minor units between -(2^53 - 1) and 2^53 - 1 (no fraction, no exponent)",
            )),
        }
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::Number(_) | Value::String(_))
    }

    fn to_value(&self) -> Value {
        Value::Number(Number::from(self.0))
    }
}

fn parse_digits(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl From<i64> for Money {
    fn from(v: i64) -> Self {
        Money(v)
    }
}

/// A JSON value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JsonValue(pub serde_json::Value);

/// A JSON value (RFC 8259), sent as itself rather than as a string: an object, array, string,
/// number, boolean or null. The fields of this type say what they hold (client `metadata` and
/// `planSnapshot` are objects of at most 8 KiB and 8 levels; event `data` is an object whose
/// keys depend on the event's `kind`).
#[Scalar(name = "JSON", specified_by_url = "https://www.rfc-editor.org/rfc/rfc8259")]
impl ScalarType for JsonValue {
    fn parse(value: Value) -> InputValueResult<Self> {
        value.into_json().map(JsonValue).map_err(|e| InputValueError::custom(format!("not a JSON value: {e}")))
    }

    fn to_value(&self) -> Value {
        Value::from_json(self.0.clone()).unwrap_or(Value::Null)
    }
}

/// The `DateTime` scalar's contract (the type itself is chrono's, with `@specifiedBy` RFC 3339).
pub const DATE_TIME_DESCRIPTION: &str = "An instant in time, as an RFC 3339 string (`2026-11-22T09:30:00.123456Z`). \
Output is always in UTC (offset `+00:00`), with up to six fractional digits. Input takes any RFC 3339 \
date-time with a time zone offset (`2026-11-22T10:30:00+01:00`); a date alone, a missing offset or \
another format is refused.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_takes_integers_and_digit_strings_within_the_exact_range() {
        assert_eq!(Money::parse(Value::from(1_000_000_000_000i64)).ok(), Some(Money(1_000_000_000_000)));
        assert_eq!(Money::parse(Value::from("-42")).ok(), Some(Money(-42)));
        assert_eq!(Money::parse(Value::from(MAX_EXACT)).ok(), Some(Money(MAX_EXACT)));
        assert!(Money::parse(Value::from(MAX_EXACT + 1)).is_err());
        assert!(Money::parse(Value::from(10.5)).is_err());
        assert!(Money::parse(Value::from("1e3")).is_err());
        assert!(Money::parse(Value::from("")).is_err());
        assert!(Money::parse(Value::from("+5")).is_err());
        assert!(Money::parse(Value::from("99999999999999999999")).is_err());
        assert!(Money::parse(Value::Boolean(true)).is_err());
        assert_eq!(Money(3_000_000_000).to_value(), Value::from(3_000_000_000i64));
    }
}
