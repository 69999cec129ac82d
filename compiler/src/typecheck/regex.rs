//! Regular expressions as Envoy runs them: RE2 syntax, matched against the whole value.
//!
//! [`check_re2`] rejects what RE2 (and Go's `regexp`, Istio's validator) rejects, even where
//! Rust's `regex` would accept or mean something else: look-around, backreferences,
//! possessive and atomic groups, `\Z`, `\C`, the `x`/`u`/`R` flags, `\<`/`\>` word-edge
//! assertions, and counted repetition above 1000. [`Matcher`] is a small Thompson NFA over
//! the parsed HIR, used by the analyses to decide inclusions; it answers "unknown" rather
//! than guess.

use regex_syntax::ast::{
    self, AssertionKind, Ast, ClassSet, ClassSetItem, Flag, FlagsItemKind, GroupKind,
    RepetitionKind, RepetitionRange,
};
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// Istio's stand-in for Envoy's program-size limit (M5).
pub const MAX_LENGTH: usize = 1024;
/// RE2's bound on `{n,m}` counts.
const MAX_REPEAT: u32 = 1000;
/// Past this many NFA states the matcher gives up (answers unknown).
const MAX_STATES: usize = 20_000;
/// Past this many character ranges in all its classes the matcher gives up too: a Unicode
/// class such as `\w` has about 770 ranges, and `\w{1000}` copies them a thousand times.
const MAX_RANGES: usize = 100_000;

/// Why a pattern is not a valid RE2 regex for Istio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Re2Error {
    Empty,
    TooLong(usize),
    /// A message in our words (lower case, no trailing period).
    Invalid(String),
}

/// Checks a pattern the way Istio (M4-M6) and RE2 would.
pub fn check_re2(pattern: &str) -> Result<(), Re2Error> {
    if pattern.is_empty() {
        return Err(Re2Error::Empty);
    }
    if pattern.len() > MAX_LENGTH {
        return Err(Re2Error::TooLong(pattern.len()));
    }
    // Constructs Rust's parser reports in its own terms; say what RE2 calls them.
    for (needle, what) in [
        ("(?=", "look-ahead `(?=...)`"),
        ("(?!", "negative look-ahead `(?!...)`"),
        ("(?<=", "look-behind `(?<=...)`"),
        ("(?<!", "negative look-behind `(?<!...)`"),
        ("(?>", "atomic group `(?>...)`"),
        ("(?P=", "named backreference `(?P=name)`"),
        ("(?P>", "recursion `(?P>name)`"),
        ("(?R)", "recursion `(?R)`"),
        ("\\Z", "`\\Z`"),
        ("\\C", "`\\C` (any byte)"),
        ("\\<", "`\\<`"),
        ("\\>", "`\\>`"),
        ("\\G", "`\\G`"),
        ("\\K", "`\\K`"),
    ] {
        if contains_unescaped(pattern, needle) {
            return Err(Re2Error::Invalid(format!("RE2 does not support {what}")));
        }
    }
    if let Some(d) = backreference(pattern) {
        return Err(Re2Error::Invalid(format!(
            "RE2 does not support backreferences (`\\{d}`)"
        )));
    }
    if possessive(pattern) {
        return Err(Re2Error::Invalid(
            "RE2 does not support possessive quantifiers (`*+`, `++`, `?+`)".to_owned(),
        ));
    }
    let ast = ast::parse::ParserBuilder::new()
        .build()
        .parse(pattern)
        .map_err(|e| Re2Error::Invalid(tidy(&e.kind().to_string())))?;
    walk(&ast)?;
    if !nested_repeats_fit(&ast, MAX_REPEAT) {
        return Err(Re2Error::Invalid(format!(
            "nested counted repetitions multiply past {MAX_REPEAT} copies: RE2 rejects it"
        )));
    }
    // Unknown Unicode class names and the like surface when translating.
    if let Err(e) = regex_syntax::hir::translate::TranslatorBuilder::new()
        .build()
        .translate(pattern, &ast)
    {
        let message = e.kind().to_string();
        // A build without Unicode tables must not reject valid patterns.
        if !message.contains("feature") {
            return Err(Re2Error::Invalid(tidy(&message)));
        }
    }
    Ok(())
}

fn tidy(message: &str) -> String {
    let m = message.trim_end_matches('.');
    let mut chars = m.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Whether `needle` occurs in `pattern` not preceded by an escaping backslash.
fn contains_unescaped(pattern: &str, needle: &str) -> bool {
    let bytes = pattern.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if pattern
            .get(i..)
            .is_some_and(|rest| rest.starts_with(needle))
        {
            return true;
        }
        // An escaped character is never the start of a construct.
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        i += 1;
    }
    false
}

/// `\1`..`\9` outside a bracket class.
fn backreference(pattern: &str) -> Option<char> {
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(d @ '1'..='9') => return Some(d),
                _ => continue,
            }
        }
    }
    None
}

/// A quantifier directly followed by `+` (`a*+`, `a++`, `a?+`, `a{2}+`).
fn possessive(pattern: &str) -> bool {
    let mut prev: Option<char> = None;
    let mut escaped = false;
    let mut in_class = false;
    for c in pattern.chars() {
        if escaped {
            escaped = false;
            prev = Some('a');
            continue;
        }
        match c {
            '\\' => escaped = true,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '+' if !in_class && matches!(prev, Some('*' | '+' | '?' | '}')) => return true,
            _ => {}
        }
        prev = Some(c);
    }
    false
}

/// RE2 (`RepetitionWalker` in parse.cc) and Go's `regexp` refuse nested counted
/// repetitions whose counts multiply past 1000: `(a{100}){100}` stands for 10,000 copies of
/// `a`, and its automaton grows with the product (hundreds of MB for `(a{1000}){1000}`).
/// The budget is divided by each enclosing count, as RE2 does.
fn nested_repeats_fit(ast: &Ast, budget: u32) -> bool {
    match ast {
        Ast::Repetition(rep) => {
            // RE2 divides by the maximum, or by the minimum when there is no maximum.
            let count = match rep.op.kind {
                RepetitionKind::ZeroOrOne | RepetitionKind::OneOrMore => 1,
                RepetitionKind::ZeroOrMore => 0,
                RepetitionKind::Range(
                    RepetitionRange::Exactly(n)
                    | RepetitionRange::AtLeast(n)
                    | RepetitionRange::Bounded(_, n),
                ) => n,
            };
            let left = budget.checked_div(count).unwrap_or(budget);
            left > 0 && nested_repeats_fit(&rep.ast, left)
        }
        Ast::Group(group) => nested_repeats_fit(&group.ast, budget),
        Ast::Alternation(alt) => alt.asts.iter().all(|a| nested_repeats_fit(a, budget)),
        Ast::Concat(cat) => cat.asts.iter().all(|a| nested_repeats_fit(a, budget)),
        _ => true,
    }
}

fn walk(ast: &Ast) -> Result<(), Re2Error> {
    let unsupported_flag = |flags: &ast::Flags| -> Result<(), Re2Error> {
        for item in &flags.items {
            if let FlagsItemKind::Flag(flag) = item.kind {
                let name = match flag {
                    Flag::IgnoreWhitespace => "x",
                    Flag::Unicode => "u",
                    Flag::CRLF => "R",
                    _ => continue,
                };
                return Err(Re2Error::Invalid(format!(
                    "RE2 does not support the `{name}` flag"
                )));
            }
        }
        Ok(())
    };
    match ast {
        Ast::Flags(set) => unsupported_flag(&set.flags),
        Ast::Assertion(a) => match a.kind {
            AssertionKind::WordBoundaryStart
            | AssertionKind::WordBoundaryEnd
            | AssertionKind::WordBoundaryStartAngle
            | AssertionKind::WordBoundaryEndAngle
            | AssertionKind::WordBoundaryStartHalf
            | AssertionKind::WordBoundaryEndHalf => Err(Re2Error::Invalid(
                "RE2 supports only `\\b` and `\\B` as word-boundary assertions".to_owned(),
            )),
            _ => Ok(()),
        },
        Ast::Repetition(rep) => {
            if let RepetitionKind::Range(range) = &rep.op.kind {
                let (lo, hi) = match *range {
                    RepetitionRange::Exactly(n) => (n, n),
                    RepetitionRange::AtLeast(n) => (n, n),
                    RepetitionRange::Bounded(m, n) => (m, n),
                };
                if lo.max(hi) > MAX_REPEAT {
                    return Err(Re2Error::Invalid(format!(
                        "counted repetition above {MAX_REPEAT} (`{{{}}}`): RE2 rejects it",
                        lo.max(hi)
                    )));
                }
            }
            walk(&rep.ast)
        }
        Ast::Group(group) => {
            if let GroupKind::NonCapturing(flags) = &group.kind {
                unsupported_flag(flags)?;
            }
            walk(&group.ast)
        }
        Ast::Alternation(alt) => alt.asts.iter().try_for_each(walk),
        Ast::Concat(cat) => cat.asts.iter().try_for_each(walk),
        Ast::ClassBracketed(class) => {
            if class_has_set_ops(&class.kind) {
                // `[a&&b]`, `[a--b]`, `[[a]]` mean something else in RE2 (literals).
                return Err(Re2Error::Invalid(
                    "nested classes and class set operations (`&&`, `--`, `~~`) are not RE2 syntax; RE2 reads them as literal characters".to_owned(),
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn class_has_set_ops(set: &ClassSet) -> bool {
    match set {
        ClassSet::BinaryOp(_) => true,
        ClassSet::Item(item) => item_has_nested(item),
    }
}

fn item_has_nested(item: &ClassSetItem) -> bool {
    match item {
        ClassSetItem::Bracketed(_) => true,
        ClassSetItem::Union(u) => u.items.iter().any(item_has_nested),
        _ => false,
    }
}

/// A compiled pattern for inclusion questions. Built only from patterns that pass
/// [`check_re2`].
#[derive(Debug)]
pub struct Matcher {
    hir: Hir,
    program: Option<Vec<Inst>>,
}

#[derive(Clone, Debug)]
enum Inst {
    Chars(Vec<(char, char)>),
    Split(usize, usize),
    Jump(usize),
    Look(Look),
    Match,
}

impl Matcher {
    pub fn new(pattern: &str) -> Option<Matcher> {
        check_re2(pattern).ok()?;
        let hir = regex_syntax::ParserBuilder::new()
            .build()
            .parse(pattern)
            .ok()?;
        let mut program = Vec::new();
        let program = compile(&hir, &mut program, &mut 0)
            .map(|()| {
                program.push(Inst::Match);
                program
            })
            .filter(|p| p.len() <= MAX_STATES);
        Some(Matcher { hir, program })
    }

    /// Whether the pattern matches the whole of `text`; `None` when the matcher cannot tell
    /// (word boundaries, byte classes, a program too large).
    pub fn full_match(&self, text: &str) -> Option<bool> {
        let program = self.program.as_ref()?;
        let chars: Vec<char> = text.chars().collect();
        let mut current = Vec::new();
        let mut seen = vec![usize::MAX; program.len()];
        add(program, &mut current, &mut seen, 0, 0, &chars)?;
        for (pos, c) in chars.iter().enumerate() {
            let mut next = Vec::new();
            for &pc in &current {
                if let Inst::Chars(ranges) = &program[pc]
                    && ranges.iter().any(|(lo, hi)| lo <= c && c <= hi)
                {
                    add(program, &mut next, &mut seen, pc + 1, pos + 1, &chars)?;
                }
            }
            current = next;
            if current.is_empty() {
                return Some(false);
            }
        }
        Some(current.iter().any(|&pc| matches!(program[pc], Inst::Match)))
    }

    /// Whether the pattern matches every value without a line break (`.*`, `(?s).*`,
    /// `^.*$`): HTTP paths and header values have none.
    pub fn is_universal(&self) -> bool {
        universal(&self.hir)
    }

    /// When the pattern is a literal followed by a universal tail (`/api/.*`), the literal:
    /// the pattern is then the same set as `prefix: /api/`.
    pub fn prefix_form(&self) -> Option<String> {
        let items: Vec<&Hir> = match self.hir.kind() {
            HirKind::Concat(items) => items
                .iter()
                .filter(|h| !matches!(h.kind(), HirKind::Look(Look::Start | Look::End)))
                .collect(),
            _ => return None,
        };
        match items.as_slice() {
            [lit, tail] if universal(tail) => match lit.kind() {
                HirKind::Literal(l) => String::from_utf8(l.0.to_vec()).ok(),
                _ => None,
            },
            _ => None,
        }
    }

    /// A finite set of strings every match starts with (`None`: unbounded or unknown).
    pub fn literal_prefixes(&self) -> Option<Vec<(String, bool)>> {
        let seq = Extractor::new()
            .kind(ExtractKind::Prefix)
            .extract(&self.hir);
        seq.literals()?
            .iter()
            .map(|l| Some((String::from_utf8(l.as_bytes().to_vec()).ok()?, l.is_exact())))
            .collect()
    }

    /// When the pattern matches only finitely many strings it knows exactly, those strings.
    pub fn exact_strings(&self) -> Option<Vec<String>> {
        let literals = self.literal_prefixes()?;
        literals
            .into_iter()
            .map(|(s, exact)| exact.then_some(s))
            .collect()
    }
}

fn universal(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Capture(c) => universal(&c.sub),
        HirKind::Repetition(r) if r.min == 0 && r.max.is_none() => match r.sub.kind() {
            HirKind::Class(Class::Unicode(class)) => {
                // All of Unicode, or all but `\n`.
                let ranges = class.ranges();
                let all =
                    ranges.len() == 1 && ranges[0].start() == '\0' && ranges[0].end() == char::MAX;
                let all_but_lf = ranges.len() == 2
                    && ranges[0].start() == '\0'
                    && ranges[0].end() == '\x09'
                    && ranges[1].start() == '\x0B'
                    && ranges[1].end() == char::MAX;
                all || all_but_lf
            }
            _ => false,
        },
        HirKind::Concat(items) => {
            items.iter().any(universal)
                && items.iter().all(|h| {
                    universal(h)
                        || matches!(
                            h.kind(),
                            HirKind::Empty | HirKind::Look(Look::Start | Look::End)
                        )
                })
        }
        HirKind::Alternation(items) => items.iter().any(universal),
        _ => false,
    }
}

fn compile(hir: &Hir, out: &mut Vec<Inst>, ranges: &mut usize) -> Option<()> {
    if out.len() > MAX_STATES {
        return None;
    }
    match hir.kind() {
        HirKind::Empty => {}
        HirKind::Literal(lit) => {
            for c in std::str::from_utf8(&lit.0).ok()?.chars() {
                out.push(Inst::Chars(vec![(c, c)]));
            }
        }
        HirKind::Class(Class::Unicode(class)) => {
            *ranges += class.ranges().len();
            if *ranges > MAX_RANGES {
                return None;
            }
            out.push(Inst::Chars(
                class
                    .ranges()
                    .iter()
                    .map(|r| (r.start(), r.end()))
                    .collect(),
            ))
        }
        HirKind::Class(Class::Bytes(_)) => return None,
        HirKind::Look(look @ (Look::Start | Look::End)) => out.push(Inst::Look(*look)),
        HirKind::Look(_) => return None,
        HirKind::Capture(c) => compile(&c.sub, out, ranges)?,
        HirKind::Concat(items) => {
            for item in items {
                compile(item, out, ranges)?;
            }
        }
        HirKind::Alternation(items) => {
            // split L1, next; L1: a; jump end; next: split L2 ...
            let mut jumps = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if i + 1 < items.len() {
                    let split = out.len();
                    out.push(Inst::Split(split + 1, 0));
                    compile(item, out, ranges)?;
                    jumps.push(out.len());
                    out.push(Inst::Jump(0));
                    let next = out.len();
                    out[split] = Inst::Split(split + 1, next);
                } else {
                    compile(item, out, ranges)?;
                }
            }
            let end = out.len();
            for j in jumps {
                out[j] = Inst::Jump(end);
            }
        }
        HirKind::Repetition(rep) => {
            for _ in 0..rep.min {
                compile(&rep.sub, out, ranges)?;
            }
            match rep.max {
                None => {
                    let split = out.len();
                    out.push(Inst::Split(split + 1, 0));
                    compile(&rep.sub, out, ranges)?;
                    out.push(Inst::Jump(split));
                    let end = out.len();
                    out[split] = Inst::Split(split + 1, end);
                }
                Some(max) => {
                    let mut splits = Vec::new();
                    for _ in rep.min..max {
                        splits.push(out.len());
                        out.push(Inst::Split(0, 0));
                        compile(&rep.sub, out, ranges)?;
                    }
                    let end = out.len();
                    for s in splits {
                        out[s] = Inst::Split(s + 1, end);
                    }
                }
            }
        }
    }
    (out.len() <= MAX_STATES).then_some(())
}

/// Adds `pc` and everything reachable from it without reading a character.
fn add(
    program: &[Inst],
    list: &mut Vec<usize>,
    seen: &mut [usize],
    pc: usize,
    pos: usize,
    chars: &[char],
) -> Option<()> {
    let mut stack = vec![pc];
    while let Some(pc) = stack.pop() {
        if seen[pc] == pos {
            continue;
        }
        seen[pc] = pos;
        match &program[pc] {
            Inst::Split(a, b) => {
                stack.push(*b);
                stack.push(*a);
            }
            Inst::Jump(t) => stack.push(*t),
            Inst::Look(Look::Start) => {
                if pos == 0 {
                    stack.push(pc + 1);
                }
            }
            Inst::Look(Look::End) => {
                if pos == chars.len() {
                    stack.push(pc + 1);
                }
            }
            Inst::Look(_) => return None,
            Inst::Chars(_) | Inst::Match => list.push(pc),
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn re2_rejects_what_rust_or_pcre_accept() {
        for bad in [
            "(?=a)b",
            "(?!a)b",
            "(?<=a)b",
            "(?<!a)b",
            "(a)\\1",
            "a*+",
            "(?>a)",
            "a\\Z",
            "(?P<n>a)(?P=n)",
            "\\C",
            "a{1001}",
            "a{2,1001}",
            "(a{1000}){1000}",
            "((a{10}){10}){11}",
            "(a{2}){501}",
            "(x{2}|y{1000}){2}",
            "(?x)a b",
            "\\<word\\>",
            "[a&&b]",
            "(",
            "",
        ] {
            assert!(check_re2(bad).is_err(), "{bad} should be rejected");
        }
        for good in [
            "/api/v[0-9]+/.*",
            "(?i)abc",
            "a{1000}",
            "(a{2}){500}",
            "(a*){1000}",
            "(a+b?){1000}",
            "\\d+",
            "\\pL+",
            "^/x$",
            "(?P<name>a)",
            "\\.",
            "a\\-b",
            "[[:alpha:]]+",
        ] {
            assert_eq!(check_re2(good), Ok(()), "{good} should pass");
        }
        assert_eq!(check_re2(&"a".repeat(1025)), Err(Re2Error::TooLong(1025)));
    }

    #[test]
    fn large_classes_make_the_matcher_give_up_instead_of_growing() {
        // 1,000 copies of `\w` (about 770 ranges each) would be 6 MB of ranges.
        let big = Matcher::new("\\w{1000}").unwrap();
        assert_eq!(big.full_match(&"a".repeat(1000)), None);
        let small = Matcher::new("\\w{10}").unwrap();
        assert_eq!(small.full_match("abcdefghij"), Some(true));
        assert_eq!(small.full_match("abc"), Some(false));
    }

    #[test]
    fn matching() {
        let m = Matcher::new("/api/v[0-9]+/.*").unwrap();
        assert_eq!(m.full_match("/api/v2/x"), Some(true));
        assert_eq!(m.full_match("/api/v/x"), Some(false));
        assert_eq!(m.full_match("x/api/v2/x"), Some(false));
        let m = Matcher::new("a|bc").unwrap();
        assert_eq!(m.full_match("bc"), Some(true));
        assert_eq!(m.full_match("abc"), Some(false));
        let m = Matcher::new("a{2,3}").unwrap();
        assert_eq!(m.full_match("aaa"), Some(true));
        assert_eq!(m.full_match("aaaa"), Some(false));
        assert!(Matcher::new(".*").unwrap().is_universal());
        assert!(Matcher::new("^(.*)$").unwrap().is_universal());
        assert!(!Matcher::new(".+").unwrap().is_universal());
        assert_eq!(
            Matcher::new("/api/.*").unwrap().prefix_form().as_deref(),
            Some("/api/")
        );
        assert_eq!(
            Matcher::new("GET|HEAD").unwrap().exact_strings(),
            Some(vec!["GET".to_owned(), "HEAD".to_owned()])
        );
        assert_eq!(Matcher::new("\\bx").unwrap().full_match("x"), None);
    }
}
