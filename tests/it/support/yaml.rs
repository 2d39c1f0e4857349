//! Config files for the scenarios, built as YAML values and rendered to text
//! once, for the daemon: a scenario adds sections, credentials, call paths
//! and defaults by key, never by splicing text, so no scenario depends on
//! the order of the sections or on how another helper wrote its text.

use serde::Serialize;
use serde_yaml::{Mapping, Value};

/// A YAML mapping from a value (`serde_json::json!({...})` reads well), or
/// from text: a block of `key: value` lines at any common indentation.
fn mapping(v: impl Serialize) -> Mapping {
    match serde_yaml::to_value(v) {
        Ok(Value::Mapping(m)) => m,
        Ok(Value::Null) => Mapping::new(),
        Ok(other) => panic!("a config mapping was expected, not {other:?}"),
        Err(e) => panic!("not a YAML value: {e}"),
    }
}

/// Parses `key: value` lines, indented by any common amount.
fn lines(text: &str) -> Mapping {
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let dedented: String = text
        .lines()
        .map(|l| l.get(indent..).unwrap_or("").to_string() + "\n")
        .collect();
    match serde_yaml::from_str::<Value>(&dedented) {
        Ok(Value::Mapping(m)) => m,
        Ok(Value::Null) => Mapping::new(),
        other => panic!("`key: value` lines were expected: {text:?} gave {other:?}"),
    }
}

/// One list item of a section: a credential (`name`, its secret, its
/// `base_url`, …) or a call path.
#[derive(Debug, Clone, PartialEq)]
pub struct Item(Mapping);

impl Item {
    /// An item from a value, e.g. `json!({"name": "el", "api_key": key})`.
    pub fn new(v: impl Serialize) -> Item {
        Item(mapping(v))
    }

    /// Sets (or replaces) one key.
    pub fn set(mut self, key: &str, value: impl Serialize) -> Item {
        let value = serde_yaml::to_value(value).expect("a YAML value");
        self.0.insert(key.into(), value);
        self
    }

    /// Sets every key of `more` (`key: value` lines, at any indentation).
    pub fn with_lines(mut self, more: &str) -> Item {
        for (k, v) in lines(more) {
            self.0.insert(k, v);
        }
        self
    }

    /// Its `name:`.
    pub fn name(&self) -> &str {
        self.0.get("name").and_then(Value::as_str).unwrap_or("")
    }
}

/// A whole config file, as a YAML mapping.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Doc(Mapping);

impl Doc {
    pub fn new() -> Doc {
        Doc::default()
    }

    /// A config file's text (e.g. the demo's), to change by key.
    pub fn parse(text: &str) -> Doc {
        Doc(lines(text))
    }

    /// Sets (or replaces) a top-level key.
    pub fn set(mut self, key: &str, value: impl Serialize) -> Doc {
        let value = serde_yaml::to_value(value).expect("a YAML value");
        self.0.insert(key.into(), value);
        self
    }

    /// Without the top-level key `key`.
    pub fn remove(mut self, key: &str) -> Doc {
        self.0.remove(key);
        self
    }

    /// Sets every top-level key of `text` (e.g. [`super::FAST`]).
    pub fn with_lines(mut self, text: &str) -> Doc {
        for (k, v) in lines(text) {
            self.0.insert(k, v);
        }
        self
    }

    /// Sets keys of `defaults:`, keeping the others.
    pub fn defaults(mut self, v: impl Serialize) -> Doc {
        let mut d = match self.0.remove("defaults") {
            Some(Value::Mapping(m)) => m,
            _ => Mapping::new(),
        };
        for (k, v) in mapping(v) {
            d.insert(k, v);
        }
        self.0.insert("defaults".into(), Value::Mapping(d));
        self
    }

    /// Appends `item` to the list `section` (created when absent).
    pub fn push(mut self, section: &str, item: Item) -> Doc {
        let list = self
            .0
            .entry(section.into())
            .or_insert_with(|| Value::Sequence(Vec::new()));
        match list {
            Value::Sequence(items) => items.push(Value::Mapping(item.0)),
            other => panic!("`{section}` is not a list: {other:?}"),
        }
        self
    }

    /// Appends every item to the list `section`.
    pub fn extend(self, section: &str, items: impl IntoIterator<Item = Item>) -> Doc {
        items.into_iter().fold(self, |d, i| d.push(section, i))
    }

    /// The item of `section` called `name`, to change in place.
    pub fn item_mut(&mut self, section: &str, name: &str) -> Option<&mut Mapping> {
        match self.0.get_mut(section)? {
            Value::Sequence(items) => items.iter_mut().find_map(|i| match i {
                Value::Mapping(m) if m.get("name").and_then(Value::as_str) == Some(name) => Some(m),
                _ => None,
            }),
            _ => None,
        }
    }

    /// The text the daemon reads.
    pub fn render(&self) -> String {
        serde_yaml::to_string(&self.0).expect("a config renders")
    }
}

#[test]
fn sections_are_values_and_order_does_not_matter() {
    let d = Doc::new()
        .with_lines("defaults:\n  interval: 1s\n")
        .push(
            "twilio",
            Item::new(serde_json::json!({"name": "t", "account_sid": "AC1"})),
        )
        .push(
            "elevenlabs",
            Item::new(serde_json::json!({"name": "e"})).with_lines("    critical: false\n"),
        )
        .defaults(serde_json::json!({"timeout": "500ms"}))
        .push("twilio", Item::new(serde_json::json!({"name": "u"})));
    let back: serde_yaml::Value = serde_yaml::from_str(&d.render()).expect("YAML");
    assert_eq!(back["defaults"]["interval"], "1s");
    assert_eq!(back["defaults"]["timeout"], "500ms");
    assert_eq!(back["twilio"][1]["name"], "u");
    assert_eq!(back["elevenlabs"][0]["critical"], false);
}
