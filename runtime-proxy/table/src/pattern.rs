//! Regex dialect shared by the writer and the oracle: how a policy regex becomes a DFA pattern.
//!
//! Envoy's `safe_regex` is RE2, where `\d`, `\w`, `\s` are ASCII and `.` is one code point. We
//! compile in ASCII, byte-oriented mode (`unicode(false)`, `utf8(false)`): it keeps dense DFAs
//! small (a Unicode `.` multiplies states) and agrees with RE2 on the ASCII text that paths and
//! header values are in practice. A pattern that only parses with Unicode enabled (say `\pL`) is
//! wrapped in `(?u:…)`, so Unicode applies to that pattern alone and the other patterns sharing
//! the DFA keep their meaning.

use regex_automata::util::syntax;

/// The syntax configuration of every table DFA.
pub fn syntax_config() -> syntax::Config {
    syntax::Config::new().unicode(false).utf8(false)
}

/// Rewrites a policy regex into the pattern actually compiled, or explains why it is invalid.
pub fn normalize(pattern: &str) -> Result<String, String> {
    let ascii = syntax_config();
    match syntax::parse_with(pattern, &ascii) {
        Ok(_) => Ok(pattern.to_owned()),
        Err(ascii_error) => {
            let wrapped = format!("(?u:{pattern})");
            match syntax::parse_with(&wrapped, &ascii) {
                Ok(_) => Ok(wrapped),
                Err(_) => Err(ascii_error.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn ascii_patterns_stay_as_written() {
        assert_eq!(normalize(r"/api/v[0-9]+/.*").unwrap(), r"/api/v[0-9]+/.*");
    }

    #[test]
    fn unicode_classes_are_scoped_to_their_pattern() {
        assert_eq!(normalize(r"\pL+").unwrap(), r"(?u:\pL+)");
    }

    #[test]
    fn invalid_patterns_are_reported() {
        assert!(normalize("(unclosed").is_err());
    }
}
