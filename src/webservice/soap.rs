//! SOAP 1.1: writing the request envelope and reading the answer.
//!
//! The answer is read with quick-xml's namespace-aware reader rather than by searching the
//! text, because the text search that works on one server's output breaks on the next one's:
//! other prefixes, attributes, entity and character references, CDATA sections, comments.

use std::collections::BTreeMap;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// The SOAP 1.1 envelope namespace, which requests are written in.
pub(crate) const SOAP11_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// The SOAP 1.2 envelope namespace: not what we send, but a server that answers in it still
/// gives a readable answer or fault, so it is accepted.
const SOAP12_ENV: &str = "http://www.w3.org/2003/05/soap-envelope";

/// The XML Schema instance namespace, for `xsi:nil`.
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Whether `c` can appear in an XML 1.0 document at all, even escaped.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escapes text for element content or a double-quoted attribute. `\r` is written as a
/// character reference because a parser would otherwise turn it into `\n`. Returns the first
/// character XML 1.0 cannot carry, if there is one.
pub(crate) fn escape(text: &str) -> Result<String, char> {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            c => return Err(c),
        }
    }
    Ok(out)
}

/// Writes the request envelope. `fields` are element names (checked as XML names by the
/// configuration) and values already escaped with [`escape`].
pub(crate) fn envelope(operation: &str, namespace: &str, fields: &[(&str, String)]) -> String {
    let mut out =
        String::with_capacity(256 + fields.iter().map(|(k, v)| 2 * k.len() + v.len() + 5).sum::<usize>());
    out.push_str(r#"<?xml version="1.0" encoding="utf-8"?>"#);
    out.push_str(r#"<soap:Envelope xmlns:soap=""#);
    out.push_str(SOAP11_ENV);
    out.push_str(r#""><soap:Body><"#);
    out.push_str(operation);
    out.push_str(r#" xmlns=""#);
    // The namespace was checked to have no whitespace or control characters, so escaping
    // cannot fail; an unescapable one would have been refused by the configuration.
    out.push_str(&escape(namespace).unwrap_or_default());
    out.push_str(r#"">"#);
    for (name, value) in fields {
        out.push('<');
        out.push_str(name);
        out.push('>');
        out.push_str(value);
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
    out.push_str("</");
    out.push_str(operation);
    out.push_str("></soap:Body></soap:Envelope>");
    out
}

/// What a SOAP answer said.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// For each wanted local name that was found: its text, or `None` for `xsi:nil="true"`.
    Values(BTreeMap<String, Option<String>>),
    /// A Fault, with its faultstring (or SOAP 1.2 Reason text).
    Fault(String),
}

/// What a piece of text being collected is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The text of the wanted element with this index.
    Wanted(usize),
    /// The SOAP 1.1 faultstring or the SOAP 1.2 Reason/Text.
    FaultText,
}

/// An element whose text is being collected, open at `depth`.
struct Capture {
    target: Target,
    depth: usize,
    text: String,
}

/// Reads a SOAP answer: checks that it is a well-formed envelope, finds a Fault, and collects
/// the text of the first element with each of the `wanted` local names (in any namespace).
/// The text of an element is all the text inside it, with references resolved and the
/// surrounding XML whitespace trimmed, since schema types such as boolean and int ignore it
/// and pretty-printing servers add it.
pub(crate) fn read_answer(xml: &str, wanted: &[&str]) -> Result<Answer, String> {
    let xml = xml.strip_prefix('\u{FEFF}').unwrap_or(xml);
    let mut reader = NsReader::from_str(xml);
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut fault_depth: Option<usize> = None;
    let mut fault_text: Option<String> = None;
    let mut found: Vec<Option<Option<String>>> = vec![None; wanted.len()];
    let mut captures: Vec<Capture> = Vec::new();

    loop {
        let (in_env_ns, event) = match reader.read_resolved_event() {
            Ok((ns, event)) => (matches!(&ns, ResolveResult::Bound(n) if is_envelope_ns(n.as_ref())), event),
            Err(e) => return Err(format!("not well-formed XML at byte {}: {e}", reader.error_position())),
        };
        match event {
            Event::Start(_) | Event::Empty(_) if depth == 0 && seen_root => {
                return Err("more than one root element".into());
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                let empty = matches!(event, Event::Empty(_));
                let local = start.local_name();
                let local = local.as_ref();
                if depth == 0 {
                    if local != "Envelope" || !in_env_ns {
                        return Err(format!(
                            "not a SOAP envelope: the root element is `{}`",
                            start.name().as_ref()
                        ));
                    }
                    seen_root = true;
                }
                depth += 1;
                if fault_depth.is_none() && in_env_ns && local == "Fault" {
                    fault_depth = Some(depth);
                }
                let mut opened: Vec<Target> = Vec::new();
                if let Some(fd) = fault_depth {
                    // faultstring (1.1) is a child of Fault; Text (1.2) is under Reason.
                    if fault_text.is_none()
                        && depth > fd
                        && (local == "faultstring" || local == "Text")
                        && !captures.iter().any(|c| c.target == Target::FaultText)
                    {
                        opened.push(Target::FaultText);
                    }
                }
                for (i, name) in wanted.iter().enumerate() {
                    if found[i].is_none()
                        && *name == local
                        && !captures.iter().any(|c| c.target == Target::Wanted(i))
                    {
                        if is_nil(&reader, start)? {
                            found[i] = Some(None);
                        } else {
                            opened.push(Target::Wanted(i));
                        }
                    }
                }
                for target in opened {
                    if empty {
                        finish(target, String::new(), &mut found, &mut fault_text);
                    } else {
                        captures.push(Capture { target, depth, text: String::new() });
                    }
                }
                if empty {
                    depth -= 1;
                }
            }
            Event::End(_) => {
                let mut i = 0;
                while i < captures.len() {
                    if captures[i].depth == depth {
                        let c = captures.swap_remove(i);
                        finish(c.target, c.text, &mut found, &mut fault_text);
                    } else {
                        i += 1;
                    }
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(text) => {
                if depth == 0 {
                    if !text.xml10_content().trim_matches(is_xml_space).is_empty() {
                        return Err("text outside the root element".into());
                    }
                    continue;
                }
                let text = text.xml10_content();
                for c in &mut captures {
                    c.text.push_str(&text);
                }
            }
            Event::CData(cdata) => {
                let text = cdata.xml10_content();
                for c in &mut captures {
                    c.text.push_str(&text);
                }
            }
            Event::GeneralRef(reference) => {
                let resolved: String = match reference.resolve_char_ref() {
                    Ok(Some(c)) if is_xml_char(c) => c.to_string(),
                    Ok(Some(c)) => return Err(format!("character reference to {c:?}, which XML forbids")),
                    Err(e) => return Err(format!("bad character reference `&{}`: {e}", reference.as_ref())),
                    Ok(None) => match quick_xml::escape::resolve_predefined_entity(reference.as_ref()) {
                        Some(s) => s.to_string(),
                        None => return Err(format!("unknown entity `&{};`", reference.as_ref())),
                    },
                };
                for c in &mut captures {
                    c.text.push_str(&resolved);
                }
            }
            Event::DocType(_) => return Err("a SOAP message must not contain a DTD".into()),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !seen_root {
        return Err("empty answer: no SOAP envelope".into());
    }
    if depth != 0 {
        return Err("the answer ends before the envelope is closed".into());
    }
    if fault_depth.is_some() {
        return Ok(Answer::Fault(fault_text.unwrap_or_else(|| "(the fault has no faultstring)".into())));
    }
    let values =
        wanted.iter().zip(found).filter_map(|(name, value)| value.map(|v| (name.to_string(), v))).collect();
    Ok(Answer::Values(values))
}

/// Stores the collected text of an element that just closed.
fn finish(
    target: Target,
    text: String,
    found: &mut [Option<Option<String>>],
    fault_text: &mut Option<String>,
) {
    let text = text.trim_matches(is_xml_space).to_string();
    match target {
        Target::Wanted(i) => found[i] = Some(Some(text)),
        Target::FaultText => *fault_text = Some(text),
    }
}

/// Whether `c` is XML whitespace (the XML spec's S production).
fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_envelope_ns(ns: &str) -> bool {
    ns == SOAP11_ENV || ns == SOAP12_ENV
}

/// Whether an element carries `xsi:nil="true"`, which is how SOAP says "no value".
fn is_nil(reader: &NsReader<&[u8]>, start: &BytesStart<'_>) -> Result<bool, String> {
    for attr in start.attributes() {
        let attr = attr.map_err(|e| format!("bad attribute in `{}`: {e}", start.name().as_ref()))?;
        let (ns, local) = reader.resolver().resolve_attribute(attr.key);
        if local.as_ref() == "nil" && matches!(ns, ResolveResult::Bound(n) if n.as_ref() == XSI) {
            let value = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| format!("bad attribute value: {e}"))?;
            return Ok(matches!(value.trim_matches(is_xml_space), "true" | "1"));
        }
    }
    Ok(false)
}
