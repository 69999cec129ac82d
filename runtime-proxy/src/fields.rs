//! A request's header fields on their way through the proxy.
//!
//! An HTTP/1.1 client's fields stay as lines in its head, shared without a copy: no header map
//! is built for them. The fields the proxy sets (forwarding, request id, trace context) are
//! kept beside the lines, and each hides the client's fields of the same name. The upstream
//! gets the lines that pass, copied as they arrived, then the proxy's fields.
//!
//! A header map is built only when something needs one: a request header operation, a
//! mirror, or a `Connection` that names fields to remove. An HTTP/2 client's fields come in a
//! map already.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The request's fields: lines of an HTTP/1.1 head, or a header map.
#[derive(Debug)]
pub struct RequestFields(Repr);

#[derive(Debug)]
enum Repr {
    Map(HeaderMap),
    Lines(Lines),
}

/// Field lines of one request head, with the fields the proxy set.
#[derive(Debug)]
pub struct Lines {
    /// The whole head; every line below lies in it and ends in CRLF.
    head: Bytes,
    lines: Vec<Line>,
    /// Where the value of each field the proxy set lies in `values`, by `ProxyField as
    /// usize`.
    set: [(u16, u16); PROXY_FIELDS.len()],
    /// The fields the proxy set or removed, one bit each (most requests touch four of the
    /// nine): each hides the client's fields of that name.
    touched: u16,
    /// The fields among those that were removed.
    removed: u16,
    /// The names of [`known_name`] among the lines, one bit each.
    present: u16,
    /// The values set, one after another (a value that would end past 64 KiB turns the
    /// fields into a header map).
    values: Vec<u8>,
}

/// The fields the proxy itself sets on requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyField {
    RequestId,
    ForwardedFor,
    ForwardedProto,
    Traceparent,
    B3,
    B3TraceId,
    B3SpanId,
    B3ParentSpanId,
    B3Sampled,
}

const PROXY_FIELDS: [ProxyField; 9] = [
    ProxyField::RequestId,
    ProxyField::ForwardedFor,
    ProxyField::ForwardedProto,
    ProxyField::Traceparent,
    ProxyField::B3,
    ProxyField::B3TraceId,
    ProxyField::B3SpanId,
    ProxyField::B3ParentSpanId,
    ProxyField::B3Sampled,
];

/// The tags of the proxy's field names, by `ProxyField as usize`.
const PROXY_TAGS: [u32; 9] = {
    let mut tags = [0; 9];
    let mut i = 0;
    while i < tags.len() {
        tags[i] = name_tag(PROXY_FIELDS[i].name().as_bytes());
        i += 1;
    }
    tags
};

impl ProxyField {
    /// The field's name, in lower case.
    pub const fn name(self) -> &'static str {
        match self {
            ProxyField::RequestId => "x-request-id",
            ProxyField::ForwardedFor => "x-forwarded-for",
            ProxyField::ForwardedProto => "x-forwarded-proto",
            ProxyField::Traceparent => "traceparent",
            ProxyField::B3 => "b3",
            ProxyField::B3TraceId => "x-b3-traceid",
            ProxyField::B3SpanId => "x-b3-spanid",
            ProxyField::B3ParentSpanId => "x-b3-parentspanid",
            ProxyField::B3Sampled => "x-b3-sampled",
        }
    }

    fn header_name(self) -> HeaderName {
        HeaderName::from_static(self.name())
    }

    /// Every field whose bit is in `touched`, with its index.
    fn each(touched: u16) -> impl Iterator<Item = (usize, ProxyField)> {
        let mut bits = touched;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some((i, PROXY_FIELDS[i]))
        })
    }
}

/// `Content-Type`, in the bits of [`known_name`].
const CONTENT_TYPE: u16 = 1 << 9;
/// A trace header that is not one of the proxy's fields (`x-b3-flags` and other `x-b3-*`).
const OTHER_TRACE: u16 = 1 << 10;
/// The trace headers among the bits of [`known_name`].
const TRACE: u16 = 1 << ProxyField::Traceparent as u16
    | 1 << ProxyField::B3 as u16
    | 1 << ProxyField::B3TraceId as u16
    | 1 << ProxyField::B3SpanId as u16
    | 1 << ProxyField::B3ParentSpanId as u16
    | 1 << ProxyField::B3Sampled as u16
    | OTHER_TRACE;

/// Whether `name`, a field name httparse accepted, is `known` (lower-case letters, digits and
/// `-`) ignoring case. Setting bit 0x20 lower-cases a letter and leaves those characters as
/// they are; the only other bytes it turns into them are control characters, which no field
/// name holds. Eight bytes at a time.
pub fn is_name(name: &[u8], known: &[u8]) -> bool {
    const LOWER: u64 = 0x2020_2020_2020_2020;
    if name.len() != known.len() {
        return false;
    }
    let (mut name, mut known) = (name, known);
    while let (Some((a, rest_a)), Some((b, rest_b))) = (
        name.split_first_chunk::<8>(),
        known.split_first_chunk::<8>(),
    ) {
        if u64::from_le_bytes(*a) | LOWER != u64::from_le_bytes(*b) {
            return false;
        }
        (name, known) = (rest_a, rest_b);
    }
    name.iter().zip(known).all(|(&a, &b)| a | 0x20 == b)
}

/// Names the request path asks about on every request, one bit each (a `ProxyField`'s bit is
/// `1 << field as usize`), told once per line when the head is parsed: asking for one that is
/// not there costs no search.
fn known_name(name: &[u8]) -> u16 {
    let is = |known: &str| is_name(name, known.as_bytes());
    let field = |field: ProxyField| 1 << field as usize;
    match name.len() {
        2 if is("b3") => field(ProxyField::B3),
        11 if is("traceparent") => field(ProxyField::Traceparent),
        12 if is("x-request-id") => field(ProxyField::RequestId),
        12 if is("content-type") => CONTENT_TYPE,
        15 if is("x-forwarded-for") => field(ProxyField::ForwardedFor),
        17 if is("x-forwarded-proto") => field(ProxyField::ForwardedProto),
        n if n >= 5 && is_name(&name[..5], b"x-b3-") => PROXY_FIELDS
            .iter()
            .find(|f| is(f.name()))
            .map_or(OTHER_TRACE, |&f| field(f)),
        _ => 0,
    }
}

/// A name's length and its first and last bytes in lower case: names that differ almost
/// always differ here, so a lookup compares whole names only once this matches.
pub const fn name_tag(name: &[u8]) -> u32 {
    match (name.first(), name.last()) {
        (Some(first), Some(last)) => {
            ((name.len() as u32) << 16)
                | ((first.to_ascii_lowercase() as u32) << 8)
                | last.to_ascii_lowercase() as u32
        }
        _ => 0,
    }
}

/// Whether `value` may go on the wire as a field value (what `HeaderValue` accepts).
fn valid_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80)
}

/// One field line: offsets into the head.
#[derive(Clone, Copy, Debug)]
pub struct Line {
    pub name: (u32, u32),
    pub value: (u32, u32),
    /// Where the line ends, after its CRLF.
    pub end: u32,
    /// The name's [`name_tag`].
    pub tag: u32,
    /// Passed on upstream as it is. `Host`, `Content-Length` and the hop-by-hop fields are
    /// not: the proxy writes the first two itself.
    pub passes: bool,
}

impl Lines {
    /// The lines of `head`, as the parser found them.
    pub fn new(head: Bytes, lines: Vec<Line>) -> Lines {
        let mut lines = Lines {
            head,
            lines,
            set: [(0, 0); PROXY_FIELDS.len()],
            touched: 0,
            removed: 0,
            present: 0,
            values: Vec::new(),
        };
        for line in &lines.lines {
            lines.present |= known_name(lines.bytes(line.name));
        }
        lines
    }

    /// Whether every line ends in CRLF: only then are they passed on as they are (a bare LF
    /// is not sent on).
    pub fn ends_in_crlf(&self) -> bool {
        self.lines.iter().all(|line| {
            let end = line.end as usize;
            end >= 2 && self.head.get(end - 2..end) == Some(b"\r\n".as_slice())
        })
    }

    fn bytes(&self, (start, end): (u32, u32)) -> &[u8] {
        &self.head[start as usize..end as usize]
    }

    /// What the proxy did with `name` (lower case), if it touched it: `Some(None)` when it
    /// removed the field.
    fn set_entry(&self, name: &str) -> Option<Option<&[u8]>> {
        if self.touched == 0 {
            return None;
        }
        let tag = name_tag(name.as_bytes());
        let (i, _) = ProxyField::each(self.touched)
            .find(|&(i, field)| PROXY_TAGS[i] == tag && field.name() == name)?;
        Some(self.value_of(i))
    }

    /// The value the proxy set for field `i`; `None` when it removed it.
    fn value_of(&self, i: usize) -> Option<&[u8]> {
        if self.removed & (1 << i) != 0 {
            return None;
        }
        let (start, end) = self.set[i];
        Some(&self.values[usize::from(start)..usize::from(end)])
    }

    /// Whether the proxy set or removed the field of this line.
    fn hidden(&self, line: &Line) -> bool {
        ProxyField::each(self.touched).any(|(i, field)| {
            PROXY_TAGS[i] == line.tag
                && field
                    .name()
                    .as_bytes()
                    .eq_ignore_ascii_case(self.bytes(line.name))
        })
    }

    /// The client's first line named `name` (lower case, tagged `tag`).
    fn first_value(&self, tag: u32, name: &str) -> Option<&[u8]> {
        let line = self.lines.iter().find(|line| {
            line.tag == tag && self.bytes(line.name).eq_ignore_ascii_case(name.as_bytes())
        })?;
        Some(self.bytes(line.value))
    }

    /// The client's lines named `name` (lower case, tagged `tag`), first to last.
    fn client_values<'a>(&'a self, tag: u32, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.lines
            .iter()
            .filter(move |line| {
                line.tag == tag && self.bytes(line.name).eq_ignore_ascii_case(name.as_bytes())
            })
            .map(|line| self.bytes(line.value))
    }

    /// Sets `field`; false when its value would end past 64 KiB.
    fn set(&mut self, field: ProxyField, value: &[u8]) -> bool {
        let start = self.values.len();
        let (Ok(start16), Ok(end16)) = (u16::try_from(start), u16::try_from(start + value.len()))
        else {
            return false;
        };
        if self.values.capacity() == 0 {
            // What the proxy sets on a forwarded request, in one allocation.
            self.values.reserve(160);
        }
        self.values.extend_from_slice(value);
        let i = field as usize;
        self.set[i] = (start16, end16);
        self.touched |= 1 << i;
        self.removed &= !(1 << i);
        true
    }

    fn remove(&mut self, field: ProxyField) {
        self.touched |= 1 << field as usize;
        self.removed |= 1 << field as usize;
    }

    /// The lines, without the hop-by-hop fields, and the proxy's fields, in a header map.
    pub fn to_map(&self) -> HeaderMap {
        let mut map =
            HeaderMap::with_capacity(self.lines.len() + self.touched.count_ones() as usize);
        for line in &self.lines {
            // httparse checked every name and value; these do not fail.
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(self.bytes(line.name)),
                HeaderValue::from_maybe_shared(
                    self.head
                        .slice(line.value.0 as usize..line.value.1 as usize),
                ),
            ) else {
                continue;
            };
            map.append(name, value);
        }
        // What a map holds is passed on as it is: this hop's fields go now.
        crate::headers::strip_hop_by_hop(&mut map);
        for (i, field) in ProxyField::each(self.touched) {
            match self.value_of(i).map(HeaderValue::from_bytes) {
                Some(Ok(value)) => {
                    map.insert(field.header_name(), value);
                }
                _ => {
                    map.remove(field.name());
                }
            }
        }
        map
    }
}

impl From<HeaderMap> for RequestFields {
    fn from(map: HeaderMap) -> RequestFields {
        RequestFields(Repr::Map(map))
    }
}

impl From<Lines> for RequestFields {
    fn from(lines: Lines) -> RequestFields {
        RequestFields(Repr::Lines(lines))
    }
}

impl Default for RequestFields {
    fn default() -> RequestFields {
        RequestFields(Repr::Map(HeaderMap::new()))
    }
}

impl RequestFields {
    /// The first value of `name` (lower case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        match &self.0 {
            Repr::Map(map) => map.get(name).map(HeaderValue::as_bytes),
            Repr::Lines(lines) => match lines.set_entry(name) {
                Some(value) => value,
                None => lines.first_value(name_tag(name.as_bytes()), name),
            },
        }
    }

    /// The first value of `name` (lower case) when it is visible ASCII, as
    /// `HeaderValue::to_str` takes it.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        match &self.0 {
            Repr::Map(map) => map.get(name)?.to_str().ok(),
            // httparse let no control character but tab through, and the proxy's own values
            // have none: visible ASCII is ASCII here.
            Repr::Lines(_) => std::str::from_utf8(self.get(name)?)
                .ok()
                .filter(|value| value.is_ascii()),
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every value of `name` (lower case), in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        let (map, set, client) = match &self.0 {
            Repr::Map(map) => (
                Some(map.get_all(name).into_iter().map(HeaderValue::as_bytes)),
                None,
                None,
            ),
            Repr::Lines(lines) => match lines.set_entry(name) {
                Some(value) => (None, value, None),
                None => (
                    None,
                    None,
                    Some(lines.client_values(name_tag(name.as_bytes()), name)),
                ),
            },
        };
        map.into_iter()
            .flatten()
            .chain(set)
            .chain(client.into_iter().flatten())
    }

    /// The first value of one of the proxy's fields, the client's or the proxy's own.
    pub fn get_proxy(&self, field: ProxyField) -> Option<&[u8]> {
        match &self.0 {
            Repr::Map(map) => map.get(field.name()).map(HeaderValue::as_bytes),
            Repr::Lines(lines) => {
                let i = field as usize;
                if lines.touched & (1 << i) != 0 {
                    lines.value_of(i)
                } else if lines.present & (1 << i) != 0 {
                    lines.first_value(PROXY_TAGS[i], field.name())
                } else {
                    None
                }
            }
        }
    }

    /// The first `Content-Type`.
    pub fn content_type(&self) -> Option<&[u8]> {
        match &self.0 {
            Repr::Map(map) => map.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes),
            Repr::Lines(lines) if lines.present & CONTENT_TYPE != 0 => {
                lines.first_value(name_tag(b"content-type"), "content-type")
            }
            Repr::Lines(_) => None,
        }
    }

    /// Whether a trace header is among the fields: `traceparent`, `b3` or any `x-b3-*`.
    pub fn traced(&self) -> bool {
        match &self.0 {
            Repr::Map(map) => map.keys().any(|name| {
                let name = name.as_str();
                name == "traceparent" || name == "b3" || name.starts_with("x-b3-")
            }),
            Repr::Lines(lines) => {
                let visible = (lines.present & !lines.touched) | (lines.touched & !lines.removed);
                visible & TRACE != 0
            }
        }
    }

    /// Sets `name` to `value`, replacing every value it had. `value` must be one a field may
    /// hold (no control character but tab): a header map refuses another, and the call
    /// returns false.
    pub fn insert(&mut self, field: ProxyField, value: &[u8]) -> bool {
        if let Repr::Lines(lines) = &mut self.0 {
            // The proxy's own values are hex, digits, a scheme from the URI, and values taken
            // from fields httparse checked: checked here only in debug builds.
            debug_assert!(valid_value(value), "{value:?}");
            if lines.set(field, value) {
                return true;
            }
            // Past what lines keep: the fields become a header map.
        }
        match HeaderValue::from_bytes(value) {
            Ok(value) => {
                self.map_mut().insert(field.header_name(), value);
                true
            }
            Err(_) => false,
        }
    }

    /// Removes every value of `field`.
    pub fn remove(&mut self, field: ProxyField) {
        match &mut self.0 {
            Repr::Map(map) => {
                map.remove(field.name());
            }
            Repr::Lines(lines) => lines.remove(field),
        }
    }

    /// Removes the hop-by-hop fields from a map (lines never pass them on).
    pub fn strip_hop_by_hop(&mut self) {
        if let Repr::Map(map) = &mut self.0 {
            crate::headers::strip_hop_by_hop(map);
        }
    }

    /// The fields as a header map, built from the lines the first time it is asked for.
    pub fn map_mut(&mut self) -> &mut HeaderMap {
        if let Repr::Lines(lines) = &self.0 {
            self.0 = Repr::Map(lines.to_map());
        }
        match &mut self.0 {
            Repr::Map(map) => map,
            Repr::Lines(_) => unreachable!("lines were just replaced by a map"),
        }
    }

    /// A copy as a header map (for a mirror).
    pub fn to_map(&self) -> HeaderMap {
        match &self.0 {
            Repr::Map(map) => map.clone(),
            Repr::Lines(lines) => lines.to_map(),
        }
    }

    /// About how many bytes the fields take on the wire.
    pub fn wire_len(&self) -> usize {
        match &self.0 {
            Repr::Map(map) => 48 * map.len(),
            Repr::Lines(lines) => lines.head.len() + lines.values.len() + 160,
        }
    }

    /// Appends the fields for the upstream request: every one but `Host`, the framing fields
    /// (written from the body's framing) and, for a map, nothing the caller has not already
    /// stripped. Lines go as they arrived, neighbours in one copy; the proxy's fields follow.
    /// Returns whether the client's fields had a `Content-Length`.
    pub fn encode(&self, out: &mut Vec<u8>) -> bool {
        match &self.0 {
            Repr::Map(map) => {
                let mut had_length = false;
                for (name, value) in map {
                    if name == header::CONTENT_LENGTH {
                        had_length = true;
                        continue;
                    }
                    if name == header::TRANSFER_ENCODING || name == header::HOST {
                        continue;
                    }
                    out.extend_from_slice(name.as_str().as_bytes());
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(value.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                had_length
            }
            Repr::Lines(lines) => {
                let mut had_length = false;
                let mut run = (0usize, 0usize);
                for line in &lines.lines {
                    let name = lines.bytes(line.name);
                    if !line.passes {
                        had_length |= name.eq_ignore_ascii_case(b"content-length");
                        continue;
                    }
                    if lines.touched != 0 && lines.hidden(line) {
                        continue;
                    }
                    let (start, end) = (line.name.0 as usize, line.end as usize);
                    if start != run.1 {
                        out.extend_from_slice(&lines.head[run.0..run.1]);
                        run.0 = start;
                    }
                    run.1 = end;
                }
                out.extend_from_slice(&lines.head[run.0..run.1]);
                for (i, field) in ProxyField::each(lines.touched) {
                    if let Some(value) = lines.value_of(i) {
                        out.extend_from_slice(field.name().as_bytes());
                        out.extend_from_slice(b": ");
                        out.extend_from_slice(value);
                        out.extend_from_slice(b"\r\n");
                    }
                }
                had_length
            }
        }
    }
}

/// The table's view of the request's fields. A repeated field gives its first value; a value
/// that is not visible ASCII is absent.
impl mesh_table::Headers for RequestFields {
    fn get(&self, lowercase_name: &str) -> Option<&[u8]> {
        match &self.0 {
            Repr::Map(map) => {
                // A request has a handful of fields: comparing names is cheaper than parsing
                // and hashing the name for a lookup. `iter` yields a name's first value first.
                let value = if map.keys_len() <= 16 {
                    map.iter()
                        .find(|(name, _)| name.as_str() == lowercase_name)
                        .map(|(_, value)| value)
                } else {
                    map.get(lowercase_name)
                };
                value?.to_str().ok().map(str::as_bytes)
            }
            // httparse let no control character but tab through: visible ASCII is ASCII.
            Repr::Lines(_) => self.get(lowercase_name).filter(|value| value.is_ascii()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::h1::{self, RequestFraming};

    /// The fields of a request head, parsed as the server parses them.
    pub(crate) fn lines(head: &str) -> RequestFields {
        let mut buf = BytesMut::from(head);
        h1::parse_request_head(&mut buf, 64 * 1024, 100)
            .expect("a valid head")
            .expect("a whole head")
            .fields
    }

    fn upstream_head(fields: &RequestFields, framing: RequestFraming) -> String {
        let mut out = Vec::new();
        h1::encode_request_head(&mut out, &http::Method::GET, "/p", fields, framing, "up:80");
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_are_looked_up_ignoring_case_and_the_first_value_wins() {
        let fields = lines(
            "GET / HTTP/1.1\r\nHost: a\r\nX-User: first\r\nx-user: second\r\n\
             X-Binary: \u{ff}\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(matches!(fields.0, Repr::Lines(_)));
        assert_eq!(fields.get_str("x-user"), Some("first"));
        assert_eq!(
            mesh_table::Headers::get(&fields, "x-user"),
            Some(b"first".as_slice())
        );
        assert_eq!(mesh_table::Headers::get(&fields, "x-binary"), None);
        assert_eq!(
            fields.get_all("x-user").collect::<Vec<_>>(),
            [b"first".as_slice(), b"second"]
        );
        assert_eq!(fields.get_str("host"), Some("a"));
        assert_eq!(fields.get("x-binary"), Some("\u{ff}".as_bytes()));
        assert_eq!(fields.get_str("x-binary"), None, "not visible ASCII");
        assert_eq!(fields.get("x-absent"), None);
        assert!(!fields.traced());
        assert_eq!(fields.get_proxy(ProxyField::RequestId), None);
        assert_eq!(fields.content_type(), None);
    }

    #[test]
    fn names_compare_ignoring_case_eight_bytes_at_a_time() {
        for (name, known, same) in [
            (&b"Content-Length"[..], &b"content-length"[..], true),
            (b"CONTENT-LENGTH", b"content-length", true),
            (b"content-lengtH", b"content-length", true),
            (b"content-lengt", b"content-length", false),
            (b"content_length", b"content-length", false),
            (b"Content-Lengtg", b"content-length", false),
            (b"Dontent-Length", b"content-length", false),
            (b"TE", b"te", true),
            (b"tf", b"te", false),
            (b"X-B3-", b"x-b3-", true),
            (b"", b"", true),
        ] {
            assert_eq!(is_name(name, known), same, "{name:?} {known:?}");
            assert_eq!(name.eq_ignore_ascii_case(known), same, "{name:?} {known:?}");
        }
        // Every token byte against every lower-case letter, digit and `-`.
        let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        for b in (0..=255u8).filter(|&b| tchar(b)) {
            for k in (b'a'..=b'z').chain(b'0'..=b'9').chain([b'-']) {
                assert_eq!(
                    is_name(&[b], &[k]),
                    [b].eq_ignore_ascii_case(&[k]),
                    "{b} {k}"
                );
            }
        }
    }

    #[test]
    fn known_names_are_found_as_lines_and_in_a_map() {
        let head = "GET / HTTP/1.1\r\nHost: a\r\nX-Request-ID: id-1\r\nCONTENT-TYPE: application/grpc\r\n\
                    x-forwarded-for: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n\r\n";
        let as_lines = lines(head);
        let as_map = RequestFields::from(as_lines.to_map());
        for fields in [&as_lines, &as_map] {
            assert_eq!(
                fields.get_proxy(ProxyField::RequestId),
                Some(b"id-1".as_slice())
            );
            assert_eq!(
                fields.get_proxy(ProxyField::ForwardedFor),
                Some(b"10.0.0.1".as_slice())
            );
            assert_eq!(
                fields.get_proxy(ProxyField::ForwardedProto),
                Some(b"https".as_slice())
            );
            assert_eq!(fields.get_proxy(ProxyField::Traceparent), None);
            assert_eq!(fields.content_type(), Some(b"application/grpc".as_slice()));
            assert!(!fields.traced());
        }
        // Any `x-b3-*` name, or `traceparent` or `b3`, in any case, is a trace header.
        for trace in [
            "X-B3-Flags: 1",
            "x-b3-other: 1",
            "TraceParent: x",
            "B3: 0",
            "X-B3-SpanId: 1",
        ] {
            let fields = lines(&format!("GET / HTTP/1.1\r\nHost: a\r\n{trace}\r\n\r\n"));
            assert!(fields.traced(), "{trace}");
            assert!(RequestFields::from(fields.to_map()).traced(), "{trace}");
        }
        // The proxy's own field counts as soon as it is set.
        let mut fields = lines("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(!fields.traced());
        fields.insert(ProxyField::Traceparent, b"00-x");
        assert!(fields.traced());
        assert_eq!(
            fields.get_proxy(ProxyField::Traceparent),
            Some(b"00-x".as_slice())
        );
    }

    #[test]
    fn the_table_sees_the_first_value_of_a_header_in_small_and_large_maps() {
        for extra in [0, 40] {
            let mut headers = HeaderMap::new();
            for i in 0..extra {
                headers.insert(
                    HeaderName::from_bytes(format!("x-filler-{i}").as_bytes()).unwrap(),
                    "f".parse().unwrap(),
                );
            }
            headers.append("x-user", "first".parse().unwrap());
            headers.append("x-user", "second".parse().unwrap());
            headers.insert("x-binary", HeaderValue::from_bytes(b"\xff").unwrap());
            let fields = RequestFields::from(headers);
            assert_eq!(fields.get("x-user").map(|_| ()), Some(()));
            let view: &dyn mesh_table::Headers = &fields;
            assert_eq!(
                view.get("x-user"),
                Some(b"first".as_slice()),
                "{extra} other headers"
            );
            assert_eq!(view.get("x-absent"), None, "{extra} other headers");
            assert_eq!(view.get("x-binary"), None, "{extra} other headers");
        }
    }

    #[test]
    fn what_the_proxy_sets_hides_the_clients_fields_of_that_name() {
        let mut fields = lines(
            "GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: client\r\nAccept: */*\r\n\
             x-request-id: again\r\nB3: 1\r\n\r\n",
        );
        assert!(fields.insert(ProxyField::RequestId, b"proxy"));
        let mut map = RequestFields::default();
        assert!(!map.insert(ProxyField::ForwardedFor, b"a\r\nb"));
        assert_eq!(map.get("x-forwarded-for"), None);
        let mut huge = lines("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n");
        let value = "v".repeat(70_000);
        assert!(huge.insert(ProxyField::ForwardedFor, value.as_bytes()));
        assert!(matches!(huge.0, Repr::Map(_)), "past 64 KiB: a map");
        assert_eq!(huge.get_str("x-forwarded-for"), Some(value.as_str()));
        assert_eq!(huge.get_str("x-a"), Some("1"));
        let long = "v".repeat(200);
        assert!(fields.insert(ProxyField::ForwardedFor, long.as_bytes()));
        assert_eq!(fields.get_str("x-forwarded-for"), Some(long.as_str()));
        fields.remove(ProxyField::ForwardedFor);
        fields.remove(ProxyField::B3);
        assert_eq!(fields.get_str("x-request-id"), Some("proxy"));
        assert_eq!(fields.get_all("x-request-id").count(), 1);
        assert_eq!(fields.get("b3"), None);
        assert!(!fields.traced(), "b3 removed");
        assert_eq!(
            upstream_head(&fields, RequestFraming::Empty),
            "GET /p HTTP/1.1\r\nhost: up:80\r\nAccept: */*\r\nx-request-id: proxy\r\n\r\n"
        );
        // The same fields as a map.
        let map = fields.to_map();
        assert_eq!(map.get_all("x-request-id").iter().count(), 1);
        assert_eq!(map["x-request-id"], "proxy");
        assert!(!map.contains_key("b3"));
        assert_eq!(map["accept"], "*/*");
    }

    #[test]
    fn lines_pass_on_as_they_arrived_without_host_framing_or_hop_by_hop_fields() {
        let fields = lines(
            "POST / HTTP/1.1\r\nHost: client\r\nX-A: 1\r\nX-B:  2  \r\nContent-Length: 5\r\n\
             TE: trailers\r\nUpgrade: websocket\r\nX-C: 3\r\nConnection: keep-alive\r\n\
             Keep-Alive: 5\r\nProxy-Connection: x\r\nTrailer: x\r\nX-D: 4\r\n\r\nhello",
        );
        assert!(matches!(fields.0, Repr::Lines(_)));
        assert_eq!(
            upstream_head(&fields, RequestFraming::Length(5)),
            "GET /p HTTP/1.1\r\nhost: up:80\r\nX-A: 1\r\nX-B:  2  \r\nX-C: 3\r\nX-D: 4\r\n\
             content-length: 5\r\n\r\n"
        );
        // A map built from them leaves out the same fields.
        let mut fields = fields;
        let map = fields.map_mut();
        let mut names: Vec<_> = map.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["content-length", "host", "x-a", "x-b", "x-c", "x-d"]
        );
        assert_eq!(map["x-b"], "2");
        // (A map removes by swapping: the order of the fields may change.)
        let head = upstream_head(&fields, RequestFraming::Length(5));
        let mut head: Vec<_> = head.split("\r\n").collect();
        head.sort_unstable();
        assert_eq!(
            head,
            [
                "",
                "",
                "GET /p HTTP/1.1",
                "content-length: 5",
                "host: up:80",
                "x-a: 1",
                "x-b: 2",
                "x-c: 3",
                "x-d: 4"
            ]
        );
    }

    #[test]
    fn a_connection_naming_fields_or_a_bare_lf_gives_a_stripped_map() {
        let named = lines(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: x-private\r\nX-Private: 1\r\nX-Kept: 2\r\n\r\n",
        );
        assert!(matches!(named.0, Repr::Map(_)));
        assert_eq!(named.get("x-private"), None);
        assert_eq!(named.get("connection"), None);
        assert_eq!(
            upstream_head(&named, RequestFraming::Empty),
            "GET /p HTTP/1.1\r\nhost: up:80\r\nx-kept: 2\r\n\r\n"
        );
        let bare = lines("GET / HTTP/1.1\nHost: a\nX-A: 1\n\n");
        assert!(matches!(bare.0, Repr::Map(_)));
        assert_eq!(
            upstream_head(&bare, RequestFraming::Empty),
            "GET /p HTTP/1.1\r\nhost: up:80\r\nx-a: 1\r\n\r\n"
        );
    }

    #[test]
    fn a_length_beside_a_transfer_coding_is_dropped() {
        let fields = lines(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        assert_eq!(fields.get("content-length"), None);
        assert_eq!(
            upstream_head(&fields, RequestFraming::Chunked),
            "GET /p HTTP/1.1\r\nhost: up:80\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }
}
