//! Text with `${name}` placeholders, filled from a call's variables and tags.
//!
//! Flows use templates wherever a value may depend on the call: prompts read out by TTS,
//! numbers to dial, tags for the agent, web-service arguments. `$$` is a literal `$`. A name
//! that is not set expands to nothing, because a caller must never be stuck on a flow whose
//! web service forgot a field; `switchboard check` cannot know run-time names.

use std::fmt;

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(String),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Template {
    parts: Vec<Part>,
}

/// Why a template could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("`${{` at byte {0} is not closed with `}}`")]
    Unclosed(usize),
    #[error("`${{{0}}}`: a name is letters, digits, `_` and `.`")]
    BadName(String),
    #[error("a lone `$` at byte {0}: write `$$` for a dollar sign or `${{name}}` for a value")]
    LoneDollar(usize),
}

impl Template {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(pos) = rest.find('$') {
            lit.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(stripped) = after.strip_prefix('$') {
                lit.push('$');
                offset += pos + 2;
                rest = stripped;
            } else if let Some(inner) = after.strip_prefix('{') {
                let Some(end) = inner.find('}') else {
                    return Err(TemplateError::Unclosed(offset + pos));
                };
                let name = &inner[..end];
                if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                    return Err(TemplateError::BadName(name.to_string()));
                }
                if !lit.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut lit)));
                }
                parts.push(Part::Var(name.to_string()));
                offset += pos + 2 + end + 1;
                rest = &inner[end + 1..];
            } else {
                return Err(TemplateError::LoneDollar(offset + pos));
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Text(lit));
        }
        Ok(Template { parts })
    }

    /// A template that is just this text.
    pub fn literal(text: &str) -> Template {
        Template { parts: if text.is_empty() { Vec::new() } else { vec![Part::Text(text.to_string())] } }
    }

    /// Fills the placeholders with `lookup`; unknown names expand to nothing.
    pub fn render<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(name) => out.push_str(lookup(name).unwrap_or("")),
            }
        }
        out
    }

    /// The names the template uses.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(n) => Some(n.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Whether the template has no placeholder.
    pub fn is_literal(&self) -> bool {
        self.names().next().is_none()
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(t) => write!(f, "{}", t.replace('$', "$$"))?,
                Part::Var(n) => write!(f, "${{{n}}}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<&'static str> {
        match name {
            "caller" => Some("13800138000"),
            "var.balance" => Some("12.50"),
            _ => None,
        }
    }

    #[test]
    fn placeholders_are_filled_and_unknown_names_are_empty() {
        let t = Template::parse("Hi ${caller}, you have $$${var.balance}${nope}.").unwrap();
        assert_eq!(t.render(vars), "Hi 13800138000, you have $12.50.");
        assert_eq!(t.names().collect::<Vec<_>>(), ["caller", "var.balance", "nope"]);
        assert_eq!(Template::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(Template::parse("a ${caller"), Err(TemplateError::Unclosed(2)));
        assert_eq!(Template::parse("${a b}"), Err(TemplateError::BadName("a b".into())));
        assert_eq!(Template::parse("cost: 5$"), Err(TemplateError::LoneDollar(7)));
        assert!(Template::parse("plain").unwrap().is_literal());
    }
}
