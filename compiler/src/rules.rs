//! The rule registry: every diagnostic code meshc can report, with its documentation.
//!
//! One file per rule under `rules/`. Front-end rules (YAML, schema, resources) are checked by
//! the stage that sees the problem; analysis rules carry their check in their own file.

use crate::check::Settings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::typecheck::Ir;

mod conflicting_actions;
mod conflicting_authority;
mod conflicting_fields;
mod conflicting_virtual_services;
mod delay_and_abort;
mod delay_exceeds_timeout;
mod deprecated_mirror_percent;
mod duplicate_key;
mod duplicate_match;
mod duplicate_resource;
mod duplicate_subset;
mod empty_fault;
mod empty_string_match;
mod fault_never_fires;
mod input_limit;
mod invalid_abort_status;
mod invalid_cors_policy;
mod invalid_direct_response;
mod invalid_duration;
mod invalid_encoding;
mod invalid_enum;
mod invalid_export_to;
mod invalid_fault_percentage;
mod invalid_format;
mod invalid_gateway_name;
mod invalid_header_name;
mod invalid_header_value;
mod invalid_host;
mod invalid_redirect;
mod invalid_regex;
mod invalid_resource;
mod invalid_retries;
mod invalid_retry_on;
mod invalid_rewrite;
mod invalid_type;
mod invalid_weight;
mod jwt_claim_route_in_mesh;
mod large_direct_response;
mod legacy_gateway_name;
mod mesh_wildcard_host;
mod missing_action;
mod missing_field;
mod missing_port;
mod non_idempotent_retry;
mod out_of_range;
mod overlapping_hosts;
mod retries_exceed_timeout;
mod retry_amplification;
mod shadowed_match;
mod shadowed_rule;
mod subset_selects_nothing;
mod unknown_destination_rule_host;
mod unknown_field;
mod unknown_host;
mod unknown_port;
mod unknown_subset;
mod unreachable_rule;
mod unreadable_path;
mod unsupported_api_version;
mod unsupported_redirect_code;
mod weight_sum_not_hundred;
mod yaml_syntax;
mod zero_weight_destination;

pub use conflicting_actions::RULE as CONFLICTING_ACTIONS;
pub use conflicting_authority::RULE as CONFLICTING_AUTHORITY;
pub use conflicting_fields::RULE as CONFLICTING_FIELDS;
pub use conflicting_virtual_services::RULE as CONFLICTING_VIRTUAL_SERVICES;
pub use delay_and_abort::RULE as DELAY_AND_ABORT;
pub use delay_exceeds_timeout::RULE as DELAY_EXCEEDS_TIMEOUT;
pub use deprecated_mirror_percent::RULE as DEPRECATED_MIRROR_PERCENT;
pub use duplicate_key::RULE as DUPLICATE_KEY;
pub use duplicate_match::RULE as DUPLICATE_MATCH;
pub use duplicate_resource::RULE as DUPLICATE_RESOURCE;
pub use duplicate_subset::RULE as DUPLICATE_SUBSET;
pub use empty_fault::RULE as EMPTY_FAULT;
pub use empty_string_match::RULE as EMPTY_STRING_MATCH;
pub use fault_never_fires::RULE as FAULT_NEVER_FIRES;
pub use input_limit::RULE as INPUT_LIMIT;
pub use invalid_abort_status::RULE as INVALID_ABORT_STATUS;
pub use invalid_cors_policy::RULE as INVALID_CORS_POLICY;
pub use invalid_direct_response::RULE as INVALID_DIRECT_RESPONSE;
pub use invalid_duration::RULE as INVALID_DURATION;
pub use invalid_encoding::RULE as INVALID_ENCODING;
pub use invalid_enum::RULE as INVALID_ENUM;
pub use invalid_export_to::RULE as INVALID_EXPORT_TO;
pub use invalid_fault_percentage::RULE as INVALID_FAULT_PERCENTAGE;
pub use invalid_format::RULE as INVALID_FORMAT;
pub use invalid_gateway_name::RULE as INVALID_GATEWAY_NAME;
pub use invalid_header_name::RULE as INVALID_HEADER_NAME;
pub use invalid_header_value::RULE as INVALID_HEADER_VALUE;
pub use invalid_host::RULE as INVALID_HOST;
pub use invalid_redirect::RULE as INVALID_REDIRECT;
pub use invalid_regex::RULE as INVALID_REGEX;
pub use invalid_resource::RULE as INVALID_RESOURCE;
pub use invalid_retries::RULE as INVALID_RETRIES;
pub use invalid_retry_on::RULE as INVALID_RETRY_ON;
pub use invalid_rewrite::RULE as INVALID_REWRITE;
pub use invalid_type::RULE as INVALID_TYPE;
pub use invalid_weight::RULE as INVALID_WEIGHT;
pub use jwt_claim_route_in_mesh::RULE as JWT_CLAIM_ROUTE_IN_MESH;
pub use large_direct_response::RULE as LARGE_DIRECT_RESPONSE;
pub use legacy_gateway_name::RULE as LEGACY_GATEWAY_NAME;
pub use mesh_wildcard_host::RULE as MESH_WILDCARD_HOST;
pub use missing_action::RULE as MISSING_ACTION;
pub use missing_field::RULE as MISSING_FIELD;
pub use missing_port::RULE as MISSING_PORT;
pub use non_idempotent_retry::RULE as NON_IDEMPOTENT_RETRY;
pub use out_of_range::RULE as OUT_OF_RANGE;
pub use overlapping_hosts::RULE as OVERLAPPING_HOSTS;
pub use retries_exceed_timeout::RULE as RETRIES_EXCEED_TIMEOUT;
pub use retry_amplification::RULE as RETRY_AMPLIFICATION;
pub use shadowed_match::RULE as SHADOWED_MATCH;
pub use shadowed_rule::RULE as SHADOWED_RULE;
pub use subset_selects_nothing::RULE as SUBSET_SELECTS_NOTHING;
pub use unknown_destination_rule_host::RULE as UNKNOWN_DESTINATION_RULE_HOST;
pub use unknown_field::RULE as UNKNOWN_FIELD;
pub use unknown_host::RULE as UNKNOWN_HOST;
pub use unknown_port::RULE as UNKNOWN_PORT;
pub use unknown_subset::RULE as UNKNOWN_SUBSET;
pub use unreachable_rule::RULE as UNREACHABLE_RULE;
pub use unreadable_path::RULE as UNREADABLE_PATH;
pub use unsupported_api_version::RULE as UNSUPPORTED_API_VERSION;
pub use unsupported_redirect_code::RULE as UNSUPPORTED_REDIRECT_CODE;
pub use weight_sum_not_hundred::RULE as WEIGHT_SUM_NOT_HUNDRED;
pub use yaml_syntax::RULE as YAML_SYNTAX;
pub use zero_weight_destination::RULE as ZERO_WEIGHT_DESTINATION;

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

/// The rule list as a Markdown table (code, name, severity, summary), as docs/rules.md and
/// the README show it.
pub fn summary_markdown() -> String {
    let mut out = String::from("| code | name | severity | summary |\n|---|---|---|---|\n");
    for rule in all() {
        out.push_str(&format!(
            "| {} | `{}` | {} | {} |\n",
            rule.code,
            rule.name,
            rule.severity.as_str(),
            rule.summary
        ));
    }
    out
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
        &UNKNOWN_HOST,
        &UNKNOWN_SUBSET,
        &UNKNOWN_PORT,
        &MISSING_PORT,
        &SUBSET_SELECTS_NOTHING,
        &UNKNOWN_DESTINATION_RULE_HOST,
        &CONFLICTING_VIRTUAL_SERVICES,
        &INVALID_DURATION,
        &INVALID_WEIGHT,
        &ZERO_WEIGHT_DESTINATION,
        &WEIGHT_SUM_NOT_HUNDRED,
        &INVALID_RETRIES,
        &INVALID_RETRY_ON,
        &INVALID_FAULT_PERCENTAGE,
        &INVALID_ABORT_STATUS,
        &FAULT_NEVER_FIRES,
        &EMPTY_FAULT,
        &DELAY_AND_ABORT,
        &INVALID_HEADER_NAME,
        &INVALID_HEADER_VALUE,
        &INVALID_REGEX,
        &EMPTY_STRING_MATCH,
        &CONFLICTING_ACTIONS,
        &MISSING_ACTION,
        &OVERLAPPING_HOSTS,
        &DUPLICATE_SUBSET,
        &UNREACHABLE_RULE,
        &DUPLICATE_MATCH,
        &INVALID_REDIRECT,
        &UNSUPPORTED_REDIRECT_CODE,
        &INVALID_DIRECT_RESPONSE,
        &LARGE_DIRECT_RESPONSE,
        &INVALID_REWRITE,
        &INVALID_CORS_POLICY,
        &DEPRECATED_MIRROR_PERCENT,
        &CONFLICTING_AUTHORITY,
        &JWT_CLAIM_ROUTE_IN_MESH,
        &INVALID_HOST,
        &MESH_WILDCARD_HOST,
        &INVALID_GATEWAY_NAME,
        &LEGACY_GATEWAY_NAME,
        &INVALID_EXPORT_TO,
        &SHADOWED_RULE,
        &SHADOWED_MATCH,
        &DELAY_EXCEEDS_TIMEOUT,
        &RETRIES_EXCEED_TIMEOUT,
        &NON_IDEMPOTENT_RETRY,
        &RETRY_AMPLIFICATION,
    ];
    ALL
}

/// Runs every analysis rule over the typed IR.
pub fn analyse(ir: &Ir, settings: &Settings, diagnostics: &mut Vec<Diagnostic>) {
    type Check = fn(&Ir, &Settings, &mut Vec<Diagnostic>);
    const CHECKS: &[Check] = &[
        unknown_host::check,
        unknown_subset::check,
        unknown_port::check,
        missing_port::check,
        subset_selects_nothing::check,
        unknown_destination_rule_host::check,
        conflicting_virtual_services::check,
        invalid_weight::check,
        zero_weight_destination::check,
        weight_sum_not_hundred::check,
        invalid_retries::check,
        invalid_retry_on::check,
        invalid_fault_percentage::check,
        invalid_abort_status::check,
        fault_never_fires::check,
        empty_fault::check,
        delay_and_abort::check,
        invalid_header_name::check,
        invalid_header_value::check,
        invalid_regex::check,
        empty_string_match::check,
        conflicting_actions::check,
        missing_action::check,
        overlapping_hosts::check,
        duplicate_subset::check,
        unreachable_rule::check,
        shadowed_rule::check,
        delay_exceeds_timeout::check,
        retries_exceed_timeout::check,
        non_idempotent_retry::check,
        retry_amplification::check,
        invalid_redirect::check,
        unsupported_redirect_code::check,
        invalid_direct_response::check,
        large_direct_response::check,
        invalid_rewrite::check,
        invalid_cors_policy::check,
        deprecated_mirror_percent::check,
        conflicting_authority::check,
        jwt_claim_route_in_mesh::check,
        invalid_host::check,
        mesh_wildcard_host::check,
        invalid_gateway_name::check,
        legacy_gateway_name::check,
        invalid_export_to::check,
    ];
    // The rules are independent: run them on as many threads as there are cores. The
    // pipeline sorts diagnostics afterwards, so the order of the threads does not matter.
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(CHECKS.len());
    let found: Vec<Vec<Diagnostic>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for check in CHECKS.iter().skip(w).step_by(workers) {
                        check(ir, settings, &mut out);
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    diagnostics.extend(found.into_iter().flatten());
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
