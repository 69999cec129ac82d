//! The rule registry: every diagnostic code meshc can report, with its documentation.
//!
//! One file per rule under `rules/`. Front-end rules (YAML, schema, resources) are checked by
//! the stage that sees the problem; analysis rules carry their check in their own file.

use crate::diagnostic::Severity;

mod conflicting_fields;
mod duplicate_key;
mod duplicate_resource;
mod input_limit;
mod invalid_encoding;
mod invalid_enum;
mod invalid_format;
mod invalid_resource;
mod invalid_type;
mod missing_field;
mod out_of_range;
mod unknown_field;
mod unreadable_path;
mod unsupported_api_version;
mod yaml_syntax;

pub use conflicting_fields::RULE as CONFLICTING_FIELDS;
pub use duplicate_key::RULE as DUPLICATE_KEY;
pub use duplicate_resource::RULE as DUPLICATE_RESOURCE;
pub use input_limit::RULE as INPUT_LIMIT;
pub use invalid_encoding::RULE as INVALID_ENCODING;
pub use invalid_enum::RULE as INVALID_ENUM;
pub use invalid_format::RULE as INVALID_FORMAT;
pub use invalid_resource::RULE as INVALID_RESOURCE;
pub use invalid_type::RULE as INVALID_TYPE;
pub use missing_field::RULE as MISSING_FIELD;
pub use out_of_range::RULE as OUT_OF_RANGE;
pub use unknown_field::RULE as UNKNOWN_FIELD;
pub use unreadable_path::RULE as UNREADABLE_PATH;
pub use unsupported_api_version::RULE as UNSUPPORTED_API_VERSION;
pub use yaml_syntax::RULE as YAML_SYNTAX;

/// A rule's identity and documentation. Codes are stable and never reused.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    /// `MESH` and four digits: the first two digits are the family (00 input, 01 schema,
    /// 02 references, 03 values, 04 analysis).
    pub code: &'static str,
    /// Kebab-case; reads after "allow" (`allow unknown-field`).
    pub name: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
    /// Markdown with the headings What it does / Why is this bad / Example / Use instead /
    /// References.
    pub doc: &'static str,
}

/// Every rule, in code order.
pub fn all() -> &'static [&'static Rule] {
    static ALL: &[&Rule] = &[
        &YAML_SYNTAX,
        &DUPLICATE_KEY,
        &INVALID_ENCODING,
        &INPUT_LIMIT,
        &UNREADABLE_PATH,
        &INVALID_RESOURCE,
        &UNSUPPORTED_API_VERSION,
        &DUPLICATE_RESOURCE,
        &UNKNOWN_FIELD,
        &INVALID_TYPE,
        &OUT_OF_RANGE,
        &INVALID_ENUM,
        &CONFLICTING_FIELDS,
        &MISSING_FIELD,
        &INVALID_FORMAT,
    ];
    ALL
}

/// Finds a rule by code (`MESH0101`, any case) or by name (`unknown-field`).
pub fn find(code_or_name: &str) -> Option<&'static Rule> {
    all()
        .iter()
        .copied()
        .find(|r| r.code.eq_ignore_ascii_case(code_or_name) || r.name == code_or_name)
}

/// Whether a selector from `meshc.toml` or an annotation names this rule: a code, a code
/// prefix (`MESH01`), a name, or `ALL`.
pub fn selector_matches(selector: &str, rule: &Rule) -> bool {
    let selector = selector.trim();
    selector.eq_ignore_ascii_case("all")
        || rule.name == selector
        || (selector.len() >= 4
            && rule.code.len() >= selector.len()
            && rule.code[..selector.len()].eq_ignore_ascii_case(selector))
}

/// Renders the rule's documentation as `meshc rule CODE` prints it.
pub fn render_doc(rule: &Rule) -> String {
    format!(
        "# {} `{}`\n\nDefault severity: {}. {}.\n\n{}",
        rule.code,
        rule.name,
        rule.severity.as_str(),
        capitalise(rule.summary),
        rule.doc
    )
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique_and_well_formed() {
        let mut codes: Vec<_> = all().iter().map(|r| r.code).collect();
        let before = codes.len();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), before, "duplicate rule code");
        for rule in all() {
            assert!(
                rule.code.starts_with("MESH") && rule.code.len() == 8,
                "{}",
                rule.code
            );
            assert!(
                rule.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-'),
                "{}",
                rule.name
            );
            for heading in [
                "## What it does",
                "## Why is this bad",
                "## Example",
                "## Use instead",
            ] {
                assert!(rule.doc.contains(heading), "{} lacks {heading}", rule.code);
            }
        }
    }

    #[test]
    fn selectors() {
        assert!(selector_matches("MESH01", &UNKNOWN_FIELD));
        assert!(selector_matches("unknown-field", &UNKNOWN_FIELD));
        assert!(selector_matches("mesh0101", &UNKNOWN_FIELD));
        assert!(!selector_matches("MESH02", &UNKNOWN_FIELD));
        assert!(selector_matches("ALL", &UNKNOWN_FIELD));
    }
}
