//! Durations in Go `time.ParseDuration` syntax, as Istio reads them (`7s`, `1.5s`, `300ms`,
//! `1h30m`, `100us`, a sign allowed), parsed into exact nanoseconds.

use crate::source::Span;

/// A checked duration: a whole number of milliseconds, at least 1ms (or 0 where allowed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur {
    pub ms: u64,
    pub span: Span,
}

impl Dur {
    /// The duration as Istio users write it (`1500ms` -> `1.5s`).
    pub fn display(&self) -> String {
        format_ms(self.ms as i128)
    }
}

/// Why a parsed duration is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    Negative,
    BelowOneMs,
    NotWholeMs,
    TooLong,
}

/// Parses a Go duration into nanoseconds. `None` for text Go rejects, or a value beyond
/// Go's `int64` nanoseconds (about 292 years).
pub fn parse(text: &str) -> Option<i128> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(after) = rest.strip_prefix('.') {
            let frac_len = after.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &after[..frac_len];
            rest = &after[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let unit: i128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        let whole: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse::<i128>().ok()?
        };
        total = total.checked_add(whole.checked_mul(unit)?)?;
        if !frac_part.is_empty() {
            // Digits past 30 cannot change the value by a nanosecond.
            let digits = &frac_part[..frac_part.len().min(30)];
            let frac: i128 = digits.parse().ok()?;
            let scale = 10i128.pow(digits.len() as u32);
            total += frac * unit / scale;
        }
        if total > i64::MAX as i128 {
            return None;
        }
    }
    Some(if negative { -total } else { total })
}

/// Checks a duration against Istio's D1/D2 and returns it in milliseconds.
pub fn check(nanos: i128, zero_ok: bool) -> Result<u64, Problem> {
    if nanos == 0 && zero_ok {
        return Ok(0);
    }
    if nanos < 0 {
        return Err(Problem::Negative);
    }
    if nanos < 1_000_000 {
        return Err(Problem::BelowOneMs);
    }
    if nanos % 1_000_000 != 0 {
        return Err(Problem::NotWholeMs);
    }
    let ms = nanos / 1_000_000;
    // The routing table stores milliseconds as u32.
    u32::try_from(ms).map_err(|_| Problem::TooLong)?;
    Ok(ms as u64)
}

/// Formats milliseconds the short way: `2s`, `1.5s`, `250ms`, `2m`, `1h30m`.
pub fn format_ms(ms: i128) -> String {
    if ms % 3_600_000 == 0 && ms >= 3_600_000 {
        return format!("{}h", ms / 3_600_000);
    }
    if ms % 60_000 == 0 && ms >= 60_000 {
        return format!("{}m", ms / 60_000);
    }
    if ms >= 1000 {
        let s = ms / 1000;
        let rest = ms % 1000;
        if rest == 0 {
            return format!("{s}s");
        }
        let frac = format!("{rest:03}");
        return format!("{s}.{}s", frac.trim_end_matches('0'));
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_syntax() {
        assert_eq!(parse("7s"), Some(7_000_000_000));
        assert_eq!(parse("1.5s"), Some(1_500_000_000));
        assert_eq!(parse("300ms"), Some(300_000_000));
        assert_eq!(parse("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse("100us"), Some(100_000));
        assert_eq!(parse("100µs"), Some(100_000));
        assert_eq!(parse("-1s"), Some(-1_000_000_000));
        assert_eq!(parse("+2s"), Some(2_000_000_000));
        assert_eq!(parse("0"), Some(0));
        assert_eq!(parse("1.s"), Some(1_000_000_000));
        assert_eq!(parse(".5s"), Some(500_000_000));
        assert_eq!(parse("1m0.5s"), Some(60_500_000_000));
        assert!(parse("").is_none());
        assert!(parse("5").is_none());
        assert!(parse("s").is_none());
        assert!(parse(".s").is_none());
        assert!(parse("1d").is_none());
        assert!(parse("1 s").is_none());
        assert!(parse("99999999999h").is_none());
    }

    #[test]
    fn istio_checks() {
        assert_eq!(check(parse("1ms").unwrap(), false), Ok(1));
        assert_eq!(check(parse("1.5s").unwrap(), false), Ok(1500));
        assert_eq!(
            check(parse("100us").unwrap(), false),
            Err(Problem::BelowOneMs)
        );
        assert_eq!(
            check(parse("1.0005s").unwrap(), false),
            Err(Problem::NotWholeMs)
        );
        assert_eq!(check(parse("0s").unwrap(), false), Err(Problem::BelowOneMs));
        assert_eq!(check(parse("0s").unwrap(), true), Ok(0));
        assert_eq!(check(parse("-1s").unwrap(), false), Err(Problem::Negative));
    }

    #[test]
    fn formats() {
        assert_eq!(format_ms(1500), "1.5s");
        assert_eq!(format_ms(250), "250ms");
        assert_eq!(format_ms(120_000), "2m");
        assert_eq!(format_ms(3_000), "3s");
        assert_eq!(format_ms(5_400_000), "90m");
    }
}
