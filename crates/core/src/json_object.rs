//! Reading JSON objects with serde, and nothing else. Request bodies and stored records are JSON
//! objects, but serde's derive also reads a struct from an array of its fields in order: the
//! fuzzer once had `["web-app","Web app"]` accepted as a new project. [`from_slice`] and
//! [`Object`] accept a JSON object only; any other JSON value is a data error ("invalid type:
//! …, expected a JSON object").

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::marker::PhantomData;

/// A `T` that was read from a JSON object (never from an array or another value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(ObjectOnly(PhantomData))
            .map(Object)
    }
}

/// Visits a map only: `T` then reads its fields from it as its derive does.
struct ObjectOnly<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOnly<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

/// A `T` from JSON text that must be one object (surrounding whitespace allowed).
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice::<Object<T>>(bytes).map(|object| object.0)
}

/// [`from_slice`] for text.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    from_slice(text.as_bytes())
}

/// For `#[serde(deserialize_with = "…")]`: a field holding one object.
pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Object::deserialize(d).map(|object| object.0)
}

/// For `#[serde(deserialize_with = "…")]`: a field holding an object or `null`.
pub fn optional<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    let value = Option::<Object<T>>::deserialize(d)?;
    Ok(value.map(|object| object.0))
}

/// For `#[serde(deserialize_with = "…")]`: a field holding an array of objects.
pub fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    let items = Vec::<Object<T>>::deserialize(d)?;
    Ok(items.into_iter().map(|object| object.0).collect())
}

/// For `#[serde(deserialize_with = "…")]`: an optional `u32` that JSON may write as `90` or
/// `90.0` (JSON Schema's `integer` is any number with no fractional part); `90.5`, negatives and
/// numbers past `u32::MAX` are refused.
pub fn whole_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = match number.as_u64() {
        Some(n) => Some(n),
        None => number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
            .map(|f| f as u64),
    };
    whole
        .and_then(|n| u32::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{number} is not a whole number from 0 to {}",
                u32::MAX
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Pair {
        id: String,
        name: String,
    }

    #[test]
    fn an_object_is_read_as_the_derive_reads_it() {
        let pair: Pair = from_str(r#" {"name":"Web app","id":"web-app"} "#).unwrap();
        assert_eq!(
            pair,
            Pair {
                id: "web-app".into(),
                name: "Web app".into()
            }
        );
    }

    #[test]
    fn an_array_of_the_fields_is_refused_though_the_derive_alone_takes_it() {
        let array = r#"["web-app","Web app"]"#;
        assert!(
            serde_json::from_str::<Pair>(array).is_ok(),
            "the derive's gap"
        );
        let err = from_str::<Pair>(array).unwrap_err();
        assert!(err.is_data(), "{err}");
        assert!(err.to_string().contains("expected a JSON object"), "{err}");
        for other in ["\"web-app\"", "7", "null", "true", "[]"] {
            assert!(from_str::<Pair>(other).unwrap_err().is_data(), "{other}");
        }
        let nested: Result<Vec<Object<Pair>>, _> = serde_json::from_str(&format!("[{array}]"));
        assert!(nested.is_err());
    }

    #[test]
    fn the_derive_still_refuses_unknown_duplicate_and_missing_fields() {
        for (text, what) in [
            (r#"{"id":"a","name":"b","x":1}"#, "unknown field `x`"),
            (r#"{"id":"a","id":"b","name":"c"}"#, "duplicate field `id`"),
            (r#"{"id":"a"}"#, "missing field `name`"),
        ] {
            let err = from_str::<Pair>(text).unwrap_err();
            assert!(err.to_string().contains(what), "{text}: {err}");
        }
        assert!(from_str::<Pair>(r#"{"id":"a","name":"b"} x"#)
            .unwrap_err()
            .is_syntax());
    }

    #[test]
    fn whole_numbers_may_be_written_with_a_zero_fraction() {
        #[derive(serde::Deserialize)]
        struct Days {
            #[serde(default, deserialize_with = "super::whole_u32")]
            days: Option<u32>,
        }
        let days = |text: &str| serde_json::from_str::<Days>(text).map(|d| d.days).ok();
        assert_eq!(days(r#"{"days": 90}"#), Some(Some(90)));
        assert_eq!(days(r#"{"days": 90.0}"#), Some(Some(90)));
        assert_eq!(days(r#"{"days": 9e1}"#), Some(Some(90)));
        assert_eq!(days(r#"{"days": null}"#), Some(None));
        assert_eq!(days(r#"{}"#), Some(None));
        for bad in ["90.5", "-1", "-1.0", "4294967296", "4294967296.0", "\"90\""] {
            assert_eq!(days(&format!(r#"{{"days": {bad}}}"#)), None, "{bad}");
        }
    }
}
