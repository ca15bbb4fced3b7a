//! The `${name}` templates that request fields are built from (see the module documentation).

use std::collections::BTreeMap;

/// Why a template could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template itself is wrong; the message says where.
    #[error("{0}")]
    Syntax(String),
    /// The template names an argument that has no value.
    #[error("no value for `${{{0}}}`")]
    Unset(String),
}

/// One piece of a parsed template.
enum Piece<'a> {
    Literal(&'a str),
    Dollar,
    Var(&'a str),
}

/// Whether `c` may appear in a `${name}`. The set is small on purpose: it covers the flow's
/// names (`caller`, `var.UserID`) and leaves every other character free for later syntax.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Splits a template into pieces, or says what is wrong with it.
fn parse(template: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        if at > 0 {
            pieces.push(Piece::Literal(&rest[..at]));
        }
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            pieces.push(Piece::Dollar);
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let Some(end) = tail.find('}') else {
                return Err(TemplateError::Syntax(format!(
                    "`${{` at byte {at} is not closed with `}}` (write `$$` for a literal `$`)"
                )));
            };
            let name = &tail[..end];
            if name.is_empty() {
                return Err(TemplateError::Syntax(format!("empty name `${{}}` at byte {at}")));
            }
            if let Some(bad) = name.chars().find(|&c| !is_name_char(c)) {
                return Err(TemplateError::Syntax(format!(
                    "`${{{name}}}`: {bad:?} is not allowed in a name (letters, digits, `_`, `.`, `-`)"
                )));
            }
            pieces.push(Piece::Var(name));
            rest = &tail[end + 1..];
        } else {
            return Err(TemplateError::Syntax(format!(
                "`$` at byte {at} must be followed by `{{name}}` or by `$` (write `$$` for a literal `$`)"
            )));
        }
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest));
    }
    Ok(pieces)
}

/// Checks a template's syntax without expanding it, so that configuration errors are found
/// when the configuration is loaded rather than during a call.
pub fn check_template(template: &str) -> Result<(), TemplateError> {
    parse(template).map(|_| ())
}

/// Expands a template: `${name}` becomes `args[name]`, `$$` becomes `$`, the rest is copied.
pub fn substitute(template: &str, args: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    for piece in parse(template)? {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::Dollar => out.push('$'),
            Piece::Var(name) => match args.get(name) {
                Some(value) => out.push_str(value),
                None => return Err(TemplateError::Unset(name.to_string())),
            },
        }
    }
    Ok(out)
}
