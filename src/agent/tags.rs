//! Tag strings: `NAME:VALUE|NAME:VALUE|`, the reference product's way of passing call data
//! (caller id, call type, recording id, and anything IVR flows add) to agents' clients.
//!
//! A value may contain any character. `\`, `|` and `:` in names and values are escaped with a
//! backslash (`\\`, `\|`, `\:`), so a client that splits on unescaped `|` and then on the
//! first unescaped `:` gets them back exactly. Names are case-sensitive; system tags are upper
//! case (`CALLERID`, `TTYPE`, `VOCID`).

use std::fmt::Write;

/// The system tag with the caller's number.
pub const CALLERID: &str = "CALLERID";
/// The system tag with the call type: 1 outgoing, 2 incoming, 3 transferred.
pub const TTYPE: &str = "TTYPE";
/// The system tag with the call's recording id.
pub const VOCID: &str = "VOCID";

/// An ordered list of tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags(Vec<(String, String)>);

/// A tag string that cannot be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("tag {index} has no `:` between name and value")]
    MissingColon { index: usize },
    #[error("tag {index} has an empty name")]
    EmptyName { index: usize },
    #[error("the tag string ends inside an escape")]
    DanglingEscape,
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        if matches!(c, '\\' | '|' | ':') {
            out.push('\\');
        }
        out.push(c);
    }
}

impl Tags {
    pub fn new() -> Tags {
        Tags(Vec::new())
    }

    /// Sets a tag, replacing an earlier value of the same name in place.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The wire form, `NAME:VALUE|...|`, every tag followed by `|`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.0 {
            escape_into(&mut out, name);
            out.push(':');
            escape_into(&mut out, value);
            out.push('|');
        }
        out
    }

    /// Parses the wire form. A missing final `|` is accepted; empty segments are skipped.
    pub fn parse(s: &str) -> Result<Tags, TagError> {
        let mut tags = Tags::new();
        let mut name = String::new();
        let mut value = String::new();
        let mut in_value = false;
        let mut escaped = false;
        let mut index = 0;
        let finish = |name: &mut String, value: &mut String, in_value: bool, index: &mut usize| {
            let r = if name.is_empty() && value.is_empty() && !in_value {
                Ok(None)
            } else if !in_value {
                Err(TagError::MissingColon { index: *index })
            } else if name.is_empty() {
                Err(TagError::EmptyName { index: *index })
            } else {
                Ok(Some((std::mem::take(name), std::mem::take(value))))
            };
            *index += 1;
            r
        };
        for c in s.chars() {
            let target = if in_value { &mut value } else { &mut name };
            if escaped {
                target.push(c);
                escaped = false;
                continue;
            }
            match c {
                '\\' => escaped = true,
                ':' if !in_value => in_value = true,
                '|' => {
                    if let Some((n, v)) = finish(&mut name, &mut value, in_value, &mut index)? {
                        tags.0.push((n, v));
                    }
                    in_value = false;
                }
                c => target.push(c),
            }
        }
        if escaped {
            return Err(TagError::DanglingEscape);
        }
        if let Some((n, v)) = finish(&mut name, &mut value, in_value, &mut index)? {
            tags.0.push((n, v));
        }
        Ok(tags)
    }
}

impl std::fmt::Display for Tags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.encode())
    }
}

/// Appends one escaped `NAME:VALUE|` to a string (for callers building strings by hand).
pub fn push_tag(out: &mut String, name: &str, value: &str) {
    escape_into(out, name);
    let _ = out.write_char(':');
    escape_into(out, value);
    out.push('|');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_example_round_trips() {
        let mut t = Tags::new();
        t.set(CALLERID, "83366857");
        t.set(TTYPE, "2");
        assert_eq!(t.encode(), "CALLERID:83366857|TTYPE:2|");
        assert_eq!(Tags::parse("CALLERID:83366857|TTYPE:2|").unwrap(), t);
        assert_eq!(Tags::parse("CALLERID:83366857|TTYPE:2").unwrap(), t);
    }

    #[test]
    fn separators_in_values_are_escaped() {
        let mut t = Tags::new();
        t.set("Note", r"a|b:c\d");
        t.set("Name", "李总");
        let wire = t.encode();
        assert_eq!(wire, r"Note:a\|b\:c\\d|Name:李总|");
        assert_eq!(Tags::parse(&wire).unwrap(), t);
        // An unescaped colon in a value is kept: only the first one separates.
        assert_eq!(Tags::parse("URL:http://x|").unwrap().get("URL"), Some("http://x"));
    }

    #[test]
    fn malformed_strings_are_errors() {
        assert_eq!(Tags::parse("NOCOLON|"), Err(TagError::MissingColon { index: 0 }));
        assert_eq!(Tags::parse("A:1|:2|"), Err(TagError::EmptyName { index: 1 }));
        assert_eq!(Tags::parse("A:1\\"), Err(TagError::DanglingEscape));
        assert_eq!(Tags::parse("").unwrap(), Tags::new());
        assert_eq!(Tags::parse("||A:1||").unwrap().get("A"), Some("1"));
    }
}
