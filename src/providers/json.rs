//! Reading untrusted JSON without building a tree of it: [`Scalar`] takes a
//! field's value if it is a string or a number and skips anything else in
//! place, so a hostile answer costs its (capped) body and nothing more.

use serde::de::{self, IgnoredAny};

/// Strings longer than this are cut: no field credwatch reads is longer.
pub const MAX_CHARS: usize = 512;

/// A JSON value read as a scalar; arrays and objects are skipped unread.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// A string, cut at [`MAX_CHARS`] characters.
    Str(String),
    UInt(u64),
    Int(i64),
    Float(f64),
    /// `null`, a boolean, an array or an object.
    Other,
}

impl Scalar {
    /// A string as it is, a number as JSON writes it; otherwise `None`.
    pub fn text(&self) -> Option<String> {
        match self {
            Scalar::Str(s) => Some(s.clone()),
            Scalar::UInt(n) => Some(n.to_string()),
            Scalar::Int(n) => Some(n.to_string()),
            // As serde_json writes it: a whole number keeps its `.0`.
            Scalar::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 => {
                Some(format!("{f:.1}"))
            }
            Scalar::Float(f) => Some(f.to_string()),
            Scalar::Other => None,
        }
    }

    /// A whole non-negative number, or a string holding one.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Scalar::UInt(n) => Some(*n),
            Scalar::Str(s) => s.parse().ok(),
            _ => None,
        }
    }
}

impl<'de> serde::Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.chars().take(MAX_CHARS).collect()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::UInt(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_none<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Scalar, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Scalar, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_read_and_everything_else_skipped() {
        let read = |json: &str| serde_json::from_str::<Scalar>(json).expect(json);
        assert_eq!(read(r#""abc""#).text().as_deref(), Some("abc"));
        assert_eq!(read("20003").as_u64(), Some(20003));
        assert_eq!(read(r#""20003""#).as_u64(), Some(20003));
        assert_eq!(read("-4").text().as_deref(), Some("-4"));
        assert_eq!(read("1.0").text().as_deref(), Some("1.0"));
        assert_eq!(read("1.5").text().as_deref(), Some("1.5"));
        for other in ["null", "true", "[1,[2,{}]]", r#"{"a":{"b":[1]}}"#] {
            assert_eq!(read(other), Scalar::Other, "{other}");
        }
        let long = format!("\"{}\"", "x".repeat(10_000));
        assert_eq!(read(&long).text().map(|s| s.len()), Some(MAX_CHARS));
    }
}
