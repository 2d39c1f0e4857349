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
    Bool(bool),
    /// `null`, an array or an object.
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
            Scalar::Bool(_) | Scalar::Other => None,
        }
    }

    /// A string, nothing else.
    pub fn string(this: Option<Scalar>) -> Option<String> {
        match this {
            Some(Scalar::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// A boolean, nothing else.
    pub fn boolean(this: Option<Scalar>) -> Option<bool> {
        match this {
            Some(Scalar::Bool(b)) => Some(b),
            _ => None,
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
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
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

/// An object read as `T` (whose fields are all [`Scalar`]s or
/// `Lenient`s, so reading it cannot fail), or `None` for anything else,
/// skipped in place: no value of the body is buffered.
#[derive(Debug)]
pub struct Lenient<T>(pub Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Lenient(None)
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Lenient<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> de::Visitor<'de> for V<T> {
            type Value = Lenient<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, a: A) -> Result<Lenient<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(a)).map(|t| Lenient(Some(t)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Lenient<T>, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Lenient<T>, E> {
                Ok(Lenient(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Lenient<T>, E> {
                Ok(Lenient(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Lenient<T>, E> {
                Ok(Lenient(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Lenient<T>, E> {
                Ok(Lenient(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Lenient<T>, E> {
                Ok(Lenient(None))
            }
            fn visit_unit<E>(self) -> Result<Lenient<T>, E> {
                Ok(Lenient(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
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
        assert_eq!(Scalar::boolean(Some(read("true"))), Some(true));
        assert_eq!(Scalar::string(Some(read("true"))), None);
        for other in ["null", "[1,[2,{}]]", r#"{"a":{"b":[1]}}"#] {
            assert_eq!(read(other), Scalar::Other, "{other}");
        }
        let long = format!("\"{}\"", "x".repeat(10_000));
        assert_eq!(read(&long).text().map(|s| s.len()), Some(MAX_CHARS));
    }
}
