//! The pieces of the Prometheus text format every family is written with: a
//! [`Family`] (name, type, help), [`Samples`], the writer of one credential's
//! lines, label escaping and value formatting.
//!
//! A leaf: [`crate::metrics`] (the common families and the exposition
//! store) and each provider (its own families and how its facts render)
//! both build on it.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// A metric family: name, type and help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    pub kind: &'static str,
    pub help: &'static str,
}

/// `families! { enum F; const FAMILIES; Id = "name", "type", "help"; … }`:
/// the list of families as a `&[Family]`, and an enum whose variants index it.
#[macro_export]
macro_rules! families {
    ($vis:vis enum $Enum:ident; $cvis:vis const $Const:ident; $($id:ident = $name:literal, $kind:literal, $help:literal;)*) => {
        /// Index of each family in its list.
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy)]
        $vis enum $Enum { $($id),* }
        $cvis const $Const: &[$crate::exposition::Family] = &[$($crate::exposition::Family { name: $name, kind: $kind, help: $help }),*];
    };
}

/// Writes one credential's samples, each into its family's text.
pub struct Samples<'a> {
    /// The families written to, in the order of `texts`.
    pub families: &'a [Family],
    /// One text per family.
    pub texts: &'a mut [String],
    /// The labels every sample has (`provider="…",credential="…"`).
    pub base: &'a str,
    /// The labels of the account's samples (`provider="…",account="…"`),
    /// when this credential exports its account's series (one credential
    /// per account does, so a workspace's quota is one series, not one per
    /// key); `None` otherwise.
    pub account: Option<&'a str>,
}

impl Samples<'_> {
    /// One sample of family `f` (an index into `families`).
    pub fn sample(&mut self, f: usize, extra: &[(&str, &str)], v: f64) {
        let s = &mut self.texts[f];
        s.push_str(self.families[f].name);
        s.push('{');
        s.push_str(self.base);
        for (k, val) in extra {
            let _ = write!(s, ",{k}=\"{}\"", escape(val));
        }
        let _ = writeln!(s, "}} {}", value(v));
    }

    /// One sample of an account family, written only when this credential
    /// exports its account's series ([`Samples::account`]).
    pub fn account_sample(&mut self, f: usize, extra: &[(&str, &str)], v: f64) {
        let Some(base) = self.account else { return };
        let s = &mut self.texts[f];
        s.push_str(self.families[f].name);
        s.push('{');
        s.push_str(base);
        for (k, val) in extra {
            let _ = write!(s, ",{k}=\"{}\"", escape(val));
        }
        let _ = writeln!(s, "}} {}", value(v));
    }

    /// 1 for true, 0 for false.
    pub fn flag(&mut self, f: usize, extra: &[(&str, &str)], v: bool) {
        self.sample(f, extra, if v { 1.0 } else { 0.0 });
    }
}

/// Escapes a label value for the text format.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Unix seconds.
pub fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Formats a sample value the way Prometheus parses it.
pub fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// How many families `parts` hold together.
pub const fn total(parts: &[&[Family]]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < parts.len() {
        n += parts[i].len();
        i += 1;
    }
    n
}

/// `parts` one after another, as an array of `N` (= [`total`]) families.
pub const fn concat<const N: usize>(parts: &[&[Family]]) -> [Family; N] {
    let mut out = [Family {
        name: "",
        kind: "",
        help: "",
    }; N];
    let mut k = 0;
    let mut i = 0;
    while i < parts.len() {
        let mut j = 0;
        while j < parts[i].len() {
            out[k] = parts[i][j];
            k += 1;
            j += 1;
        }
        i += 1;
    }
    out
}
