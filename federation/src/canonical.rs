//! Reading JSON from the wire into its canonical form.
//!
//! Signatures and hashes are computed over canonical JSON, so bytes from another server
//! (request bodies for X-Matrix, PDUs, key responses) must first become a
//! [`CanonicalJsonObject`]. ruma's conversion rejects every number written with a
//! fraction or exponent; the spec's own canonical JSON examples, however, accept
//! `1e10` and `-0` and write them as the integers `10000000000` and `0`. We follow the
//! spec: a number whose value is an integer in the interoperable range becomes that
//! integer, however it was spelled; any other non-integer is rejected.

use ruma::{CanonicalJsonObject, CanonicalJsonValue};
use serde_json::{Number, Value};

use crate::error::{Error, Result};

/// The largest magnitude canonical JSON allows (2^53 - 1), as a float for comparison.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Parses a JSON text whose top level is an object into canonical form.
pub fn parse_canonical_object(json: &str) -> Result<CanonicalJsonObject> {
    match parse_canonical_value(json)? {
        CanonicalJsonValue::Object(object) => Ok(object),
        _ => Err(Error::NotAnObject),
    }
}

/// Parses any JSON text into a canonical value.
pub fn parse_canonical_value(json: &str) -> Result<CanonicalJsonValue> {
    let value: Value = serde_json::from_str(json)?;
    Ok(CanonicalJsonValue::try_from(normalize_numbers(value))?)
}

/// Re-encodes a JSON text as canonical JSON: sorted keys, no insignificant whitespace,
/// UTF-8 rather than `\u` escapes, integers only.
pub fn to_canonical_json(json: &str) -> Result<String> {
    Ok(parse_canonical_value(json)?.to_string())
}

/// Turns integral floats (`1e10`, `-0.0`, `3.0`) into integers; leaves everything else
/// for the canonical conversion to accept or reject.
fn normalize_numbers(value: Value) -> Value {
    match value {
        Value::Number(number) => Value::Number(integral_number(number)),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize_numbers).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, normalize_numbers(v)))
                .collect(),
        ),
        other => other,
    }
}

fn integral_number(number: Number) -> Number {
    if number.is_i64() || number.is_u64() {
        return number;
    }
    match number.as_f64() {
        // The range check makes the cast exact: |f| <= 2^53 - 1 and f has no fraction.
        Some(f) if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER => Number::from(f as i64),
        _ => number,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vectors;

    #[test]
    fn spec_canonical_json_vectors() {
        let vectors = test_vectors::load();
        let cases = vectors["canonical_json"].as_array().unwrap();
        assert!(
            cases.len() >= 10,
            "expected the spec's canonical JSON examples"
        );
        for case in cases {
            let input = case["input"].as_str().unwrap();
            let expected = case["canonical"].as_str().unwrap();
            assert_eq!(
                to_canonical_json(input).unwrap(),
                expected,
                "input: {input}"
            );
            // Objects read through the object parser serialize the same way.
            let object = parse_canonical_object(input).unwrap();
            assert_eq!(CanonicalJsonValue::Object(object).to_string(), expected);
        }
    }

    #[test]
    fn exponent_and_negative_zero_become_integers() {
        assert_eq!(
            to_canonical_json(r#"{"b":1e10,"a":-0}"#).unwrap(),
            r#"{"a":0,"b":10000000000}"#
        );
        assert_eq!(to_canonical_json("[3.0, -2E2]").unwrap(), "[3,-200]");
    }

    #[test]
    fn fractions_are_rejected() {
        let err = to_canonical_json(r#"{"a":1.5}"#).unwrap_err();
        assert!(matches!(err, Error::NotCanonical(_)), "{err}");
    }

    #[test]
    fn integers_beyond_the_safe_range_are_rejected() {
        assert!(to_canonical_json("9007199254740991").is_ok());
        assert!(to_canonical_json("9007199254740992").is_err());
        assert!(to_canonical_json("1e300").is_err());
    }

    #[test]
    fn object_parser_rejects_non_objects_and_non_json() {
        assert!(matches!(
            parse_canonical_object("[1]").unwrap_err(),
            Error::NotAnObject
        ));
        assert!(matches!(
            parse_canonical_object("{").unwrap_err(),
            Error::Json(_)
        ));
        assert_eq!(
            parse_canonical_object(r#"{"x":{"y":2.0}}"#).unwrap().len(),
            1
        );
    }
}
