//! HTTP/1.1 over buffers. The client side, for upstream connections: request heads out,
//! response heads and bodies in; the pool (`pool.rs`) does its I/O. The server side, for
//! downstream connections: request heads and bodies in, response heads out; `downstream.rs`
//! does its I/O. Both read bodies with [`BodyFraming`].
//!
//! What it accepts follows RFC 9112 as hyper and Envoy read it: a response with both
//! `Transfer-Encoding` and `Content-Length` is framed by the first and its connection is not
//! reused; a transfer coding other than a final `chunked` reads to the connection's close;
//! differing `Content-Length` values are refused; HEAD, 1xx, 204 and 304 responses have no
//! body. Chunk extensions are skipped; trailers are read and dropped.

use std::io;
use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version, header};

use crate::fields::{Line, Lines, RequestFields, is_name, name_tag};

/// Response heads larger than this are refused (Envoy's default header limit is 60 KiB).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Response header fields beyond this many are refused (hyper's default).
pub const MAX_HEADERS: usize = 100;
/// A chunk-size or trailer line longer than this is refused.
const MAX_LINE_BYTES: usize = 4096;

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// How a request body goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body.
    Empty,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked` (a streamed body of unknown length).
    Chunked,
}

impl RequestFraming {
    /// How `body` goes on the wire: a body of unknown length is chunked.
    pub fn of(body: &impl hyper::body::Body) -> RequestFraming {
        if body.is_end_stream() {
            RequestFraming::Empty
        } else {
            match body.size_hint().exact() {
                Some(n) => RequestFraming::Length(n),
                None => RequestFraming::Chunked,
            }
        }
    }
}

/// The request-target for the upstream, in origin form (RFC 9112 §3.2.1): the client's path
/// and query as they came, with `/` for an empty path (`GET http://x?q` goes on as `/?q`,
/// never as `?q`, which no server accepts). `*` (a server-wide OPTIONS) stays.
pub fn origin_form(uri: &Uri) -> PathAndQuery {
    match uri.path_and_query() {
        Some(pq) if pq.as_str().starts_with('/') || pq.as_str() == "*" => pq.clone(),
        Some(pq) => PathAndQuery::try_from(format!("/{}", pq.as_str()))
            .unwrap_or_else(|_| PathAndQuery::from_static("/")),
        None => PathAndQuery::from_static("/"),
    }
}

/// Writes the request line and header fields of an origin-form request. The caller has
/// removed hop-by-hop fields from a header map (lines leave them out themselves). `Host` is
/// `authority`, and `Content-Length` and `Transfer-Encoding` come from `framing`, whatever
/// the client sent.
pub fn encode_request_head(
    out: &mut Vec<u8>,
    method: &Method,
    path_and_query: &str,
    fields: &RequestFields,
    framing: RequestFraming,
    authority: &str,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(b"\r\n");
    let had_length = fields.encode(out);
    match framing {
        // A POST, PUT or PATCH without a body still says so: some servers answer 411
        // otherwise.
        RequestFraming::Empty => {
            if had_length || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
                out.extend_from_slice(b"content-length: 0\r\n");
            }
        }
        RequestFraming::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            write_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        RequestFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one piece of a request body, framed.
pub fn encode_data(out: &mut Vec<u8>, data: &[u8], framing: RequestFraming) {
    if framing == RequestFraming::Chunked {
        if data.is_empty() {
            // An empty chunk would end the body.
            return;
        }
        write_hex(out, data.len() as u64);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(data);
    }
}

/// Appends what ends a body: the last chunk for a chunked body, nothing otherwise.
pub fn encode_end(out: &mut Vec<u8>, framing: RequestFraming) {
    if framing == RequestFraming::Chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
}

fn write_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn write_hex(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 16];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = crate::headers::HEX[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// A response head, with what its body's framing and the connection's reuse follow from.
/// The fields that framed this hop (`Transfer-Encoding`, `Keep-Alive`, and `Connection` unless
/// it names other fields) are read here and left out: the proxy would drop them.
///
/// The other fields are usually not parsed into `headers` at all: `fields` keeps their lines
/// as they arrived, for the server to copy out (see [`RawFields`]), and `headers` holds only
/// what the proxy itself reads (`grpc-status`). When the lines cannot be passed on as they
/// are (a bare LF line end, `Connection` naming fields to remove, lines too scattered), every
/// field goes into `headers` and `fields` is `None`.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub fields: Option<RawFields>,
    pub framing: BodyFraming,
    /// Whether the connection may carry another request once the body has been read.
    pub keep_alive: bool,
}

/// Runs of field lines a [`RawFields`] holds; a head whose kept lines are more scattered
/// than this is parsed into a header map instead.
const MAX_RUNS: usize = 6;

/// Response header fields passed on as they arrived: the head's bytes, shared without a
/// copy, and the runs of whole field lines (each ending in CRLF) to pass on. httparse has
/// checked every line; the hop-by-hop and framing fields are not in the runs.
#[derive(Clone, Debug)]
pub struct RawFields {
    head: Bytes,
    runs: [(u32, u32); MAX_RUNS],
    len: u8,
    has_date: bool,
}

impl RawFields {
    /// Whether a `Date` field is among them.
    pub fn has_date(&self) -> bool {
        self.has_date
    }

    /// Appends the field lines, as they arrived.
    pub fn write(&self, out: &mut Vec<u8>) {
        for &(start, end) in &self.runs[..usize::from(self.len)] {
            out.extend_from_slice(&self.head[start as usize..end as usize]);
        }
    }

    /// Adds the fields to `headers`, for a header operation on the response or an HTTP/2
    /// client.
    pub fn add_to(&self, headers: &mut HeaderMap) {
        for &(start, end) in &self.runs[..usize::from(self.len)] {
            let mut at = start as usize;
            let end = end as usize;
            while at < end {
                let line_end = self.head[at..end]
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .map_or(end, |i| at + i);
                let line = &self.head[at..line_end];
                if let Some(colon) = line.iter().position(|&b| b == b':') {
                    let rest = &line[colon + 1..];
                    let value_start = at + colon + 1 + (rest.len() - rest.trim_ascii_start().len());
                    let value_end = value_start + rest.trim_ascii().len();
                    if let (Ok(name), Ok(value)) = (
                        HeaderName::from_bytes(&line[..colon]),
                        HeaderValue::from_maybe_shared(self.head.slice(value_start..value_end)),
                    ) {
                        headers.append(name, value);
                    }
                }
                at = line_end + 2;
            }
        }
    }
}

/// What the proxy does with a response field, told from its name without parsing it into a
/// `HeaderName`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    /// `TE`, `Trailer`, `Upgrade`, `Proxy-Connection`: this hop's, dropped.
    HopByHop,
    /// Requests only: `Host` and `Expect`.
    Host,
    Expect,
    /// Read by the proxy (`grpc-status`): parsed into the header map.
    Read,
    Date,
    Other,
}

fn field_kind(name: &[u8]) -> FieldKind {
    let is = |known: &[u8]| is_name(name, known);
    match name.len() {
        2 if is(b"te") => FieldKind::HopByHop,
        4 if is(b"date") => FieldKind::Date,
        4 if is(b"host") => FieldKind::Host,
        6 if is(b"expect") => FieldKind::Expect,
        7 if is(b"trailer") || is(b"upgrade") => FieldKind::HopByHop,
        10 if is(b"connection") => FieldKind::Connection,
        10 if is(b"keep-alive") => FieldKind::KeepAlive,
        11 if is(b"grpc-status") => FieldKind::Read,
        14 if is(b"content-length") => FieldKind::ContentLength,
        16 if is(b"proxy-connection") => FieldKind::HopByHop,
        17 if is(b"transfer-encoding") => FieldKind::TransferEncoding,
        _ => FieldKind::Other,
    }
}

/// Parses a response head from the front of `buf`, taking its bytes out of `buf` (the
/// fields keep referring to them, without a copy). `Ok(None)`: not all of it is there yet.
/// `method` is the request's: a response to HEAD has no body.
pub fn parse_response_head(
    buf: &mut BytesMut,
    method: &Method,
) -> io::Result<Option<ResponseHead>> {
    // Slots left uninitialised: zeroing a hundred of them cost more than the parse.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let len = match config.parse_response_with_uninit_headers(&mut parsed, buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err(invalid(format!(
                "the response head is larger than {MAX_HEAD_BYTES} bytes"
            )));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(invalid(format!(
                "the response has more than {MAX_HEADERS} header fields"
            )));
        }
        Err(e) => return Err(invalid(format!("invalid response head: {e}"))),
    };
    let code = parsed.code.unwrap_or(0);
    let status = StatusCode::from_u16(code)
        .map_err(|_| invalid(format!("invalid response status {code}")))?;
    let version = if parsed.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let base = buf.as_ptr() as usize;
    let count = parsed.headers.len();
    let mut few = [Span::default(); FEW_HEADERS];
    let mut many = Vec::new();
    let spans = locate_fields(parsed.headers, base, &mut few, &mut many);
    let head = buf.split_to(len).freeze();
    let bodiless = *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;

    // One pass over the names: the framing, and the runs of lines to pass on as they are.
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked = false;
    let mut connection = ConnectionTokens::default();
    let mut fields = RawFields {
        head: Bytes::new(),
        runs: [(0, 0); MAX_RUNS],
        len: 0,
        has_date: false,
    };
    let mut raw = true;
    let mut read_fields = 0;
    for (i, span) in spans.iter().enumerate() {
        let name = &head[span.name.0..span.name.1];
        let value = &head[span.value.0..span.value.1];
        let kind = field_kind(name);
        match kind {
            FieldKind::ContentLength => {
                merge_content_length(value, &mut content_length).map_err(|e| match e {
                    LengthError::Invalid => invalid("invalid Content-Length in the response"),
                    LengthError::Differing => {
                        invalid("differing Content-Length values in the response")
                    }
                })?;
            }
            FieldKind::TransferEncoding => {
                transfer_encoding = true;
                // Only the last coding counts: `chunked` must be last when it is there at all.
                chunked = value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
            FieldKind::Connection => {
                connection.add(value);
            }
            FieldKind::Read => read_fields += 1,
            FieldKind::Date => fields.has_date = true,
            FieldKind::HopByHop
            | FieldKind::KeepAlive
            | FieldKind::Host
            | FieldKind::Expect
            | FieldKind::Other => {}
        }
        // A `Content-Length` is passed on only where the body is not this hop's to frame.
        let passed = matches!(
            kind,
            FieldKind::Other | FieldKind::Date | FieldKind::Host | FieldKind::Expect
        ) || (kind == FieldKind::ContentLength && bodiless);
        if raw && passed {
            let start = span.name.0;
            let end = spans.get(i + 1).map_or(len - 2, |next| next.name.0);
            raw = head[..end].ends_with(b"\r\n") && push_run(&mut fields, start, end);
        }
    }
    // A response with no body keeps its `Content-Length` unless a transfer coding says the
    // length is wrong: that one is removed below, from a header map.
    raw &= !(connection.names_fields || (bodiless && transfer_encoding));

    let mut headers;
    if raw {
        fields.head = head.clone();
        headers = HeaderMap::with_capacity(read_fields);
        if read_fields > 0 {
            for span in spans.iter() {
                let name = &head[span.name.0..span.name.1];
                if field_kind(name) == FieldKind::Read {
                    append_field(&mut headers, &head, span)?;
                }
            }
        }
    } else {
        headers = HeaderMap::with_capacity(count);
        for span in spans.iter() {
            let kind = field_kind(&head[span.name.0..span.name.1]);
            // `Connection` is kept only when it names fields, which the proxy removes by it.
            let keep = match kind {
                FieldKind::TransferEncoding => false,
                FieldKind::Connection => connection.names_fields,
                _ => kind != FieldKind::KeepAlive,
            };
            if keep {
                append_field(&mut headers, &head, span)?;
            }
        }
    }

    let mut keep_alive = connection.keeps_alive(version);
    if transfer_encoding {
        // The transfer coding frames the body: a Content-Length beside it is wrong and must
        // not reach the client (RFC 9112, 6.3), and an HTTP/1.0 message with a transfer
        // coding is faulty framing, its connection not to be reused.
        headers.remove(header::CONTENT_LENGTH);
        if version == Version::HTTP_10 {
            keep_alive = false;
        }
    }
    let framing = if bodiless {
        if status == StatusCode::SWITCHING_PROTOCOLS {
            keep_alive = false;
        }
        BodyFraming::Length(0)
    } else if transfer_encoding {
        // Both framings at once is how request smuggling starts: never reuse the connection.
        if content_length.is_some() {
            keep_alive = false;
        }
        if chunked {
            BodyFraming::Chunked(Chunk::Size)
        } else {
            keep_alive = false;
            BodyFraming::UntilClose
        }
    } else if let Some(n) = content_length {
        BodyFraming::Length(n)
    } else {
        keep_alive = false;
        BodyFraming::UntilClose
    };
    Ok(Some(ResponseHead {
        status,
        version,
        headers,
        fields: raw.then_some(fields),
        framing,
        keep_alive,
    }))
}

/// Adds one located field to `headers`, its value sharing `head`.
fn append_field(headers: &mut HeaderMap, head: &Bytes, span: &Span) -> io::Result<()> {
    let name = HeaderName::from_bytes(&head[span.name.0..span.name.1])
        .map_err(|_| invalid("invalid response header name"))?;
    let value = HeaderValue::from_maybe_shared(head.slice(span.value.0..span.value.1))
        .map_err(|_| invalid("invalid response header value"))?;
    headers.append(name, value);
    Ok(())
}

/// Extends the last run when `start` is where it ends, or starts a new one; false when all
/// runs are taken.
fn push_run(fields: &mut RawFields, start: usize, end: usize) -> bool {
    let (Ok(start), Ok(end)) = (u32::try_from(start), u32::try_from(end)) else {
        return false;
    };
    let len = usize::from(fields.len);
    if len > 0 && fields.runs[len - 1].1 == start {
        fields.runs[len - 1].1 = end;
        return true;
    }
    if len == MAX_RUNS {
        return false;
    }
    fields.runs[len] = (start, end);
    fields.len += 1;
    true
}

/// Header fields up to this many are located without an allocation.
const FEW_HEADERS: usize = 24;

/// Where one header field's name and value lie in a response head.
#[derive(Clone, Copy, Default)]
struct Span {
    name: (usize, usize),
    value: (usize, usize),
}

/// What `Connection` fields say, across all of a head's.
#[derive(Default)]
struct ConnectionTokens {
    close: bool,
    keep_alive: bool,
    /// A token other than `close` and `keep-alive`: a field to remove at this hop.
    names_fields: bool,
}

impl ConnectionTokens {
    /// Reads one field's value; true when it names fields.
    fn add(&mut self, value: &[u8]) -> bool {
        let mut names_fields = false;
        for token in value.split(|&b| b == b',') {
            let token = token.trim_ascii();
            let is_close = token.eq_ignore_ascii_case(b"close");
            let is_keep_alive = token.eq_ignore_ascii_case(b"keep-alive");
            self.close |= is_close;
            self.keep_alive |= is_keep_alive;
            names_fields |= !(is_close || is_keep_alive || token.is_empty());
        }
        self.names_fields |= names_fields;
        names_fields
    }

    /// Whether the connection may carry another message: HTTP/1.1 unless `close`, HTTP/1.0
    /// only with `keep-alive`.
    fn keeps_alive(&self, version: Version) -> bool {
        !self.close && (version == Version::HTTP_11 || self.keep_alive)
    }
}

enum LengthError {
    Invalid,
    Differing,
}

/// Adds one `Content-Length` field's value to what earlier ones said. A list of equal values
/// (`5, 5`) is one length, as hyper and Envoy read it.
fn merge_content_length(value: &[u8], seen: &mut Option<u64>) -> Result<(), LengthError> {
    for item in value.split(|&b| b == b',') {
        let n = parse_content_length(item).ok_or(LengthError::Invalid)?;
        if seen.is_some_and(|seen| seen != n) {
            return Err(LengthError::Differing);
        }
        *seen = Some(n);
    }
    Ok(())
}

fn parse_content_length(bytes: &[u8]) -> Option<u64> {
    let digits = bytes.trim_ascii();
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// Where the reading of a body (a response's or a request's) stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// This many bytes are still to come; `Length(0)` is a body read to its end.
    Length(u64),
    Chunked(Chunk),
    /// Everything until the upstream closes the connection.
    UntilClose,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk's data, with this many bytes to go.
    Data(u64),
    /// After a chunk's data, before its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty line.
    Trailers,
}

/// One step of reading a body from a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Data(Bytes),
    /// The body ended (for `UntilClose`, only the connection's close says so).
    End,
    /// More bytes must be read first.
    NeedMore,
}

impl BodyFraming {
    pub fn is_done(&self) -> bool {
        *self == BodyFraming::Length(0)
    }

    /// Takes the next piece of the body out of `buf`. With `framing_only`, stops before any
    /// data (to learn whether the body has ended without taking data out). A framing error
    /// leaves `buf` as it was.
    pub fn decode(&mut self, buf: &mut BytesMut, framing_only: bool) -> io::Result<Decoded> {
        loop {
            match self {
                BodyFraming::Length(0) => return Ok(Decoded::End),
                BodyFraming::Length(rest) => {
                    if buf.is_empty() || framing_only {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = (*rest).min(buf.len() as u64);
                    *rest -= n;
                    return Ok(Decoded::Data(buf.split_to(n as usize).freeze()));
                }
                BodyFraming::UntilClose => {
                    if buf.is_empty() || framing_only {
                        return Ok(Decoded::NeedMore);
                    }
                    return Ok(Decoded::Data(buf.split().freeze()));
                }
                BodyFraming::Chunked(chunk) => match chunk {
                    Chunk::Size => {
                        let Some(end) = line_end(buf)? else {
                            return Ok(Decoded::NeedMore);
                        };
                        let size = parse_chunk_size(&buf[..end])?;
                        buf.advance(end + 2);
                        *chunk = if size == 0 {
                            Chunk::Trailers
                        } else {
                            Chunk::Data(size)
                        };
                    }
                    Chunk::Data(rest) => {
                        if buf.is_empty() || framing_only {
                            return Ok(Decoded::NeedMore);
                        }
                        let n = (*rest).min(buf.len() as u64);
                        *rest -= n;
                        if *rest == 0 {
                            *chunk = Chunk::DataEnd;
                        }
                        return Ok(Decoded::Data(buf.split_to(n as usize).freeze()));
                    }
                    Chunk::DataEnd => {
                        if buf.len() < 2 {
                            return Ok(Decoded::NeedMore);
                        }
                        if &buf[..2] != b"\r\n" {
                            return Err(invalid("a chunk's data is not followed by CRLF"));
                        }
                        buf.advance(2);
                        *chunk = Chunk::Size;
                    }
                    Chunk::Trailers => {
                        let Some(end) = line_end(buf)? else {
                            return Ok(Decoded::NeedMore);
                        };
                        buf.advance(end + 2);
                        if end == 0 {
                            *self = BodyFraming::Length(0);
                        }
                    }
                },
            }
        }
    }

    /// The body's remaining length, when the framing says it.
    pub fn remaining(&self) -> Option<u64> {
        match self {
            BodyFraming::Length(n) => Some(*n),
            _ => None,
        }
    }
}

/// The length of the CRLF-terminated line at the front of `buf`, if it is all there.
fn line_end(buf: &[u8]) -> io::Result<Option<usize>> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(end) if end <= MAX_LINE_BYTES => Ok(Some(end)),
        Some(_) => Err(invalid("a chunk line is too long")),
        None if buf.len() > MAX_LINE_BYTES => Err(invalid("a chunk line is too long")),
        None => Ok(None),
    }
}

/// A chunk-size line: hex digits, then optional spaces or tabs and `;extensions`. A bare CR
/// or LF anywhere in the line is refused: readers that split lines differently would see
/// another body (request smuggling).
fn parse_chunk_size(line: &[u8]) -> io::Result<u64> {
    if line.iter().any(|&b| b == b'\r' || b == b'\n') {
        return Err(invalid("a bare CR or LF in a chunk-size line"));
    }
    let digits_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let (digits, rest) = line.split_at(digits_end);
    let rest_start = rest
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(rest.len());
    let rest = &rest[rest_start..];
    if digits.is_empty() || digits.len() > 15 || !(rest.is_empty() || rest[0] == b';') {
        return Err(invalid("invalid chunk size"));
    }
    Ok(digits.iter().fold(0u64, |n, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => b - b'A' + 10,
        };
        (n << 4) | u64::from(digit)
    }))
}

// ---------------------------------------------------------------------------------------
// The server side: request heads in, response heads out (`downstream.rs` does the I/O).

/// A request head that cannot be served: the status to answer with before closing, and why.
#[derive(Debug, PartialEq, Eq)]
pub struct BadRequest {
    pub status: u16,
    pub reason: &'static str,
}

const fn bad(status: u16, reason: &'static str) -> BadRequest {
    BadRequest { status, reason }
}

/// A request head, with its body's framing and whether the connection may carry another
/// request. As for responses, the fields that framed this hop (`Transfer-Encoding`,
/// `Keep-Alive`, `Connection` unless it names other fields, and `Expect: 100-continue`, which
/// this hop answers) are read here and left out of `headers`.
#[derive(Debug)]
pub struct RequestHead {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub fields: RequestFields,
    /// `Length(0)` when the request has no body.
    pub framing: BodyFraming,
    pub keep_alive: bool,
    /// The client waits for `100 Continue` before it sends the body.
    pub expect_continue: bool,
}

/// Parses a request head from the front of `buf`, taking its bytes out of `buf` (header
/// values keep referring to them). `Ok(None)`: not all of it is there yet.
///
/// Refused with 431: a head over `max_bytes` or with over `max_headers` fields. Refused with
/// 400 (RFC 9112 §6): a transfer coding in an HTTP/1.0 request or one whose last coding is not
/// `chunked`, a `Content-Length` that is not digits or differs from another, and anything
/// httparse finds malformed (such as a space before a field's colon). Refused with 501: a
/// coding before the final `chunked` (`gzip, chunked`), which Envoy refuses too. A request with both
/// `Transfer-Encoding` and `Content-Length` is framed by the first and closes its connection.
pub fn parse_request_head(
    buf: &mut BytesMut,
    max_bytes: usize,
    max_headers: usize,
) -> Result<Option<RequestHead>, BadRequest> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut more = Vec::new();
    let slots = if max_headers <= MAX_HEADERS {
        &mut slots[..max_headers]
    } else {
        more.resize_with(max_headers, MaybeUninit::uninit);
        &mut more[..]
    };
    let mut parsed = httparse::Request::new(&mut []);
    let config = httparse::ParserConfig::default();
    let len = match config.parse_request_with_uninit_headers(&mut parsed, buf, slots) {
        Ok(httparse::Status::Complete(len)) if len > max_bytes => {
            return Err(bad(431, "the request head is too large"));
        }
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > max_bytes => {
            return Err(bad(431, "the request head is too large"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(bad(431, "the request has too many header fields"));
        }
        Err(_) => return Err(bad(400, "malformed request head")),
    };
    let version = if parsed.version == Some(1) {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let method = Method::from_bytes(parsed.method.unwrap_or("").as_bytes())
        .map_err(|_| bad(400, "invalid method"))?;
    let base = buf.as_ptr() as usize;
    let target = parsed.path.unwrap_or("");
    let target_start = target.as_ptr() as usize - base;
    let target_span = (target_start, target_start + target.len());
    let count = parsed.headers.len();
    let mut few = [Span::default(); FEW_HEADERS];
    let mut many = Vec::new();
    let spans = locate_fields(parsed.headers, base, &mut few, &mut many);
    let head = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(target_span.0..target_span.1))
        .map_err(|_| bad(400, "invalid request target"))?;

    let mut lines = Vec::with_capacity(count);
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked = false;
    let mut connection = ConnectionTokens::default();
    let mut expect_continue = false;
    let mut other_coding = false;
    for (i, span) in spans.iter().enumerate() {
        let name = &head[span.name.0..span.name.1];
        let value = &head[span.value.0..span.value.1];
        let passes = match field_kind(name) {
            FieldKind::ContentLength => {
                merge_content_length(value, &mut content_length).map_err(|e| match e {
                    LengthError::Invalid => bad(400, "invalid Content-Length"),
                    LengthError::Differing => bad(400, "differing Content-Length values"),
                })?;
                false
            }
            FieldKind::TransferEncoding => {
                // Every coding across all the fields: `chunked` once, and last.
                for coding in value.split(|&b| b == b',') {
                    if chunked {
                        return Err(bad(400, "a transfer coding after chunked"));
                    }
                    chunked = coding.trim_ascii().eq_ignore_ascii_case(b"chunked");
                    other_coding |= !chunked;
                }
                transfer_encoding = true;
                continue;
            }
            FieldKind::Connection => {
                // Kept only when it names fields, which the proxy removes by it.
                if !connection.add(value) {
                    continue;
                }
                false
            }
            FieldKind::KeepAlive => continue,
            FieldKind::Expect if value.eq_ignore_ascii_case(b"100-continue") => {
                expect_continue = true;
                continue;
            }
            FieldKind::HopByHop | FieldKind::Host => false,
            _ => true,
        };
        // A line ends where the next begins; the last, before the blank line.
        let end = spans.get(i + 1).map_or(len - 2, |next| next.name.0);
        lines.push(Line {
            name: (span.name.0 as u32, span.name.1 as u32),
            value: (span.value.0 as u32, span.value.1 as u32),
            end: end as u32,
            tag: name_tag(name),
            passes,
        });
    }

    let mut keep_alive = connection.keeps_alive(version);
    let framing = if transfer_encoding {
        if version == Version::HTTP_10 {
            return Err(bad(400, "a transfer coding in an HTTP/1.0 request"));
        }
        if !chunked {
            return Err(bad(400, "the last transfer coding is not chunked"));
        }
        if other_coding {
            // The upstream would get the body still coded, with nothing saying so.
            return Err(bad(
                501,
                "transfer codings other than chunked are not supported",
            ));
        }
        if content_length.is_some() {
            // Both framings: how smuggling starts. The coding wins, the length goes, and the
            // connection closes after this request (RFC 9112 §6.1).
            lines.retain(|line| {
                !head[line.name.0 as usize..line.name.1 as usize]
                    .eq_ignore_ascii_case(b"content-length")
            });
            keep_alive = false;
        }
        BodyFraming::Chunked(Chunk::Size)
    } else {
        BodyFraming::Length(content_length.unwrap_or(0))
    };
    // A `Connection` naming fields, or a line not ending in CRLF: a header map, which the
    // proxy strips field by field and writes out anew.
    let lines = Lines::new(head, lines);
    let fields = if connection.names_fields || !lines.ends_in_crlf() {
        RequestFields::from(lines.to_map())
    } else {
        RequestFields::from(lines)
    };
    Ok(Some(RequestHead {
        method,
        uri,
        version,
        fields,
        framing,
        keep_alive,
        expect_continue,
    }))
}

/// Where each parsed field lies relative to `base`, so that the head can be frozen once and
/// the values point into it. Most heads have few fields: those fit on the stack.
fn locate_fields<'s>(
    fields: &[httparse::Header<'_>],
    base: usize,
    few: &'s mut [Span; FEW_HEADERS],
    many: &'s mut Vec<Span>,
) -> &'s [Span] {
    let spans = if fields.len() <= FEW_HEADERS {
        &mut few[..fields.len()]
    } else {
        many.resize(fields.len(), Span::default());
        &mut many[..]
    };
    for (span, field) in spans.iter_mut().zip(fields) {
        let name = field.name.as_ptr() as usize - base;
        let value = field.value.as_ptr() as usize - base;
        *span = Span {
            name: (name, name + field.name.len()),
            value: (value, value + field.value.len()),
        };
    }
    spans
}

/// How a response body goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body: the response to HEAD, 1xx, 204 and 304. A `Content-Length` among the fields
    /// is kept (it says what a GET would have had).
    Bodiless,
    Length(u64),
    Chunked,
    /// Until the connection closes (an HTTP/1.0 client and a body of unknown length).
    UntilClose,
}

/// Writes a response's status line and fields: `fields` as they arrived, then `headers`.
/// `Content-Length`, `Transfer-Encoding` and `Connection` come from `framing` and
/// `connection`, not from `headers`; `date` is added when neither has a `Date`. An HTTP/1.0 client is told `keep-alive` when it stays open.
pub fn encode_response_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    fields: Option<&RawFields>,
    framing: ResponseFraming,
    connection: ConnectionField,
    date: &[u8],
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has_date = false;
    if let Some(fields) = fields {
        fields.write(out);
        has_date = fields.has_date();
    }
    for (name, value) in headers {
        if (*name == header::CONTENT_LENGTH && framing != ResponseFraming::Bodiless)
            || *name == header::TRANSFER_ENCODING
            || *name == header::CONNECTION
        {
            continue;
        }
        has_date |= *name == header::DATE;
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_date {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(date);
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        ResponseFraming::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            write_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        ResponseFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        ResponseFraming::Bodiless | ResponseFraming::UntilClose => {}
    }
    match connection {
        ConnectionField::Close => out.extend_from_slice(b"connection: close\r\n"),
        ConnectionField::KeepAlive => out.extend_from_slice(b"connection: keep-alive\r\n"),
        ConnectionField::None => {}
    }
    out.extend_from_slice(b"\r\n");
}

/// What a response's `Connection` field says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionField {
    /// `close`: the connection closes after this response.
    Close,
    /// `keep-alive`, which an HTTP/1.0 client needs to hear.
    KeepAlive,
    /// No field: HTTP/1.1 keeps the connection open.
    None,
}

impl ConnectionField {
    pub fn of(keep_alive: bool, http10: bool) -> ConnectionField {
        match (keep_alive, http10) {
            (false, _) => ConnectionField::Close,
            (true, true) => ConnectionField::KeepAlive,
            (true, false) => ConnectionField::None,
        }
    }
}

/// Appends one piece of a response body, framed.
pub fn encode_response_data(out: &mut Vec<u8>, data: &[u8], framing: ResponseFraming) {
    match framing {
        ResponseFraming::Chunked if !data.is_empty() => {
            write_hex(out, data.len() as u64);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        ResponseFraming::Chunked | ResponseFraming::Bodiless => {}
        ResponseFraming::Length(_) | ResponseFraming::UntilClose => out.extend_from_slice(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &Method, text: &str) -> io::Result<Option<ResponseHead>> {
        parse_response_head(&mut BytesMut::from(text), method)
    }

    impl ResponseHead {
        /// Every field, parsed or passed on.
        fn all(&self) -> HeaderMap {
            let mut headers = self.headers.clone();
            if let Some(fields) = &self.fields {
                fields.add_to(&mut headers);
            }
            headers
        }
    }

    fn passed_on(head: &ResponseHead) -> Option<String> {
        let mut out = Vec::new();
        head.fields.as_ref()?.write(&mut out);
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn response_fields_pass_on_as_they_arrived() {
        let nginx = complete(
            "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 08:04:03 GMT\r\n\
             Content-Type: text/plain\r\nContent-Length: 11\r\nConnection: keep-alive\r\n\
             x-upstream:  v1 \r\ngrpc-status: 0\r\nTE: trailers\r\nkeep-alive: timeout=5\r\n\r\n",
        );
        // Framing and hop-by-hop lines are left out, the rest is kept byte for byte; what
        // the proxy reads is parsed.
        assert_eq!(
            passed_on(&nginx).unwrap(),
            "Server: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 08:04:03 GMT\r\n\
             Content-Type: text/plain\r\nx-upstream:  v1 \r\n"
        );
        assert!(nginx.fields.as_ref().unwrap().has_date());
        assert_eq!(nginx.headers.len(), 1);
        assert_eq!(nginx.headers["grpc-status"], "0");
        let all = nginx.all();
        assert_eq!(all["x-upstream"], "v1");
        assert_eq!(all["server"], "nginx/1.22.1");
        assert_eq!(all.len(), 5);
        assert_eq!(nginx.framing, BodyFraming::Length(11));

        // A response without a body passes its length on.
        let to_head = head(
            &Method::HEAD,
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nx-a: 1\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            passed_on(&to_head).unwrap(),
            "Content-Length: 10\r\nx-a: 1\r\n"
        );

        // Parsed into a header map instead: bare LF line ends, `Connection` naming a field,
        // lines scattered over more runs than a `RawFields` holds.
        for text in [
            "HTTP/1.1 200 OK\nx-a: 1\nContent-Length: 0\n\n",
            "HTTP/1.1 200 OK\r\nx-a: 1\r\nContent-Length: 0\r\nConnection: x-a\r\n\r\n",
            "HTTP/1.1 200 OK\r\na: 1\r\nte: x\r\nb: 1\r\nte: x\r\nc: 1\r\nte: x\r\nd: 1\r\nte: x\r\n\
             e: 1\r\nte: x\r\nf: 1\r\nte: x\r\ng: 1\r\nContent-Length: 0\r\n\r\n",
        ] {
            let parsed = complete(text);
            assert!(parsed.fields.is_none(), "{text:?}");
            assert!(parsed.headers.contains_key("x-a") || parsed.headers.contains_key("g"));
        }
        let six_runs = complete(
            "HTTP/1.1 200 OK\r\na: 1\r\nte: x\r\nb: 1\r\nte: x\r\nc: 1\r\nte: x\r\nd: 1\r\nte: x\r\n\
             e: 1\r\nte: x\r\nf: 1\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(
            passed_on(&six_runs).unwrap(),
            "a: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\nf: 1\r\n"
        );
    }

    use crate::fuzzing::Pieces;

    fn complete(text: &str) -> ResponseHead {
        head(&Method::GET, text).unwrap().unwrap()
    }

    /// Decodes a whole body from `wire`, fed in pieces of `step` bytes.
    fn body(mut framing: BodyFraming, wire: &[u8], step: usize) -> io::Result<(Vec<u8>, usize)> {
        let mut pieces = Pieces::new(wire, step);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        loop {
            match framing.decode(&mut buf, false)? {
                Decoded::Data(data) => out.extend_from_slice(&data),
                Decoded::End => return Ok((out, buf.len())),
                Decoded::NeedMore if pieces.feed(&mut buf) => {}
                Decoded::NeedMore => return Err(invalid("the wire ended first")),
            }
        }
    }

    #[test]
    fn a_request_head_carries_its_framing_and_no_client_framing() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("reviews:9080"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-a", HeaderValue::from_static("2"));
        let mut out = Vec::new();
        encode_request_head(
            &mut out,
            &Method::PUT,
            "/p?q=1",
            &RequestFields::from(headers.clone()),
            RequestFraming::Length(12345),
            "10.0.0.1:9080",
        );
        // `Host` is the authority given, whatever the fields say.
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "PUT /p?q=1 HTTP/1.1\r\nhost: 10.0.0.1:9080\r\nx-a: 1\r\nx-a: 2\r\n\
             content-length: 12345\r\n\r\n"
        );

        let mut out = Vec::new();
        encode_request_head(
            &mut out,
            &Method::GET,
            "/",
            &RequestFields::default(),
            RequestFraming::Empty,
            "10.0.0.1:9080",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET / HTTP/1.1\r\nhost: 10.0.0.1:9080\r\n\r\n"
        );

        let mut out = Vec::new();
        encode_request_head(
            &mut out,
            &Method::POST,
            "/",
            &RequestFields::from(headers),
            RequestFraming::Chunked,
            "x",
        );
        encode_data(&mut out, b"hello, world!!!!", RequestFraming::Chunked);
        encode_data(&mut out, b"", RequestFraming::Chunked);
        encode_end(&mut out, RequestFraming::Chunked);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with("transfer-encoding: chunked\r\n\r\n10\r\nhello, world!!!!\r\n0\r\n\r\n")
        );

        let mut out = Vec::new();
        encode_request_head(
            &mut out,
            &Method::POST,
            "/",
            &RequestFields::default(),
            RequestFraming::Empty,
            "x",
        );
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with("content-length: 0\r\n\r\n")
        );
    }

    #[test]
    fn a_response_head_is_parsed_and_taken_out_of_the_buffer() {
        let mut buf = BytesMut::from(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nbody!",
        );
        let head = parse_response_head(&mut buf, &Method::GET)
            .unwrap()
            .unwrap();
        assert_eq!(head.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(head.version, Version::HTTP_11);
        assert_eq!(head.framing, BodyFraming::Length(5));
        assert!(head.keep_alive);
        let all = head.all();
        let values: Vec<_> = all.get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
        assert_eq!(&buf[..], b"body!");

        // Not all there yet: nothing is taken.
        let mut partial = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Len");
        assert!(
            parse_response_head(&mut partial, &Method::GET)
                .unwrap()
                .is_none()
        );
        assert_eq!(partial.len(), 28);
    }

    #[test]
    fn framing_and_reuse_follow_the_head() {
        let chunked = complete("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(chunked.framing, BodyFraming::Chunked(Chunk::Size));
        assert!(chunked.keep_alive);

        let smuggling =
            complete("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n");
        assert_eq!(smuggling.framing, BodyFraming::Chunked(Chunk::Size));
        assert!(!smuggling.keep_alive);
        // The client must not be told a length the chunks do not follow.
        assert!(!smuggling.all().contains_key("content-length"));

        let old_chunked = complete(
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n",
        );
        assert!(!old_chunked.keep_alive);

        let listed = complete("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n");
        assert_eq!(listed.framing, BodyFraming::Length(5));

        let not_chunked = complete("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!(not_chunked.framing, BodyFraming::UntilClose);
        assert!(!not_chunked.keep_alive);

        let unframed = complete("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(unframed.framing, BodyFraming::UntilClose);
        assert!(!unframed.keep_alive);

        let close = complete("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: Close\r\n\r\n");
        assert!(!close.keep_alive);
        assert!(!close.all().contains_key("connection"));
        assert!(!chunked.all().contains_key("transfer-encoding"));
        let naming = complete(
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close, x-hop\r\nx-hop: 1\r\n\r\n",
        );
        assert!(!naming.keep_alive);
        assert_eq!(naming.all()["connection"], "close, x-hop");

        let old = complete("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert!(!old.keep_alive);
        let old_kept =
            complete("HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
        assert!(old_kept.keep_alive);

        for text in [
            "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
            "HTTP/1.1 100 Continue\r\n\r\n",
        ] {
            assert_eq!(complete(text).framing, BodyFraming::Length(0), "{text}");
        }
        let to_head = head(
            &Method::HEAD,
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(to_head.framing, BodyFraming::Length(0));
        assert_eq!(to_head.all()["content-length"], "10");
    }

    #[test]
    fn malformed_heads_are_refused() {
        for text in [
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "SSH-2.0-OpenSSH_9.6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        ] {
            assert!(head(&Method::GET, text).is_err(), "{text:?}");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
        assert!(head(&Method::GET, &format!("HTTP/1.1 200 OK\r\n{many}\r\n")).is_err());
        let huge = format!("HTTP/1.1 200 OK\r\nx: {}", "v".repeat(MAX_HEAD_BYTES));
        assert!(head(&Method::GET, &huge).is_err());
    }

    #[test]
    fn bodies_decode_whatever_the_pieces_they_arrive_in() {
        let chunked =
            b"5;ext=1\r\nhello\r\n1 \r\n,\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        for step in [1, 2, 3, 7, 100] {
            let (data, _) = body(BodyFraming::Chunked(Chunk::Size), chunked, step).unwrap();
            assert_eq!(data, b"hello, world", "step {step}");
        }
        // What follows the body stays in the buffer, for the next response.
        let mut buf = BytesMut::from(&chunked[..]);
        let mut framing = BodyFraming::Chunked(Chunk::Size);
        while framing.decode(&mut buf, false).unwrap() != Decoded::End {}
        assert_eq!(&buf[..], b"NEXT");
        assert!(framing.is_done());

        for step in [1, 4, 100] {
            let (data, left) = body(BodyFraming::Length(5), b"12345NEXT", step).unwrap();
            assert_eq!(data, b"12345");
            assert!(left <= 4);
        }
    }

    #[test]
    fn framing_only_stops_before_data_and_finds_the_end() {
        let mut buf = BytesMut::from(&b"3\r\nabc\r\n0\r\n\r\n"[..]);
        let mut framing = BodyFraming::Chunked(Chunk::Size);
        assert_eq!(framing.decode(&mut buf, true).unwrap(), Decoded::NeedMore);
        assert_eq!(framing, BodyFraming::Chunked(Chunk::Data(3)));
        assert_eq!(
            framing.decode(&mut buf, false).unwrap(),
            Decoded::Data(Bytes::from_static(b"abc"))
        );
        assert_eq!(framing.decode(&mut buf, true).unwrap(), Decoded::End);
        assert!(buf.is_empty());
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for wire in [
            &b"zz\r\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhelloXX0\r\n\r\n",
            b"1234567890abcdef0\r\n",
            b"5 x\r\nhello\r\n0\r\n\r\n",
            b"5\n;x\r\nhello\r\n0\r\n\r\n",
            b"5;a\nb\r\nhello\r\n0\r\n\r\n",
        ] {
            assert!(
                body(BodyFraming::Chunked(Chunk::Size), wire, 100).is_err(),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        let long = vec![b'1'; MAX_LINE_BYTES + 10];
        assert!(body(BodyFraming::Chunked(Chunk::Size), &long, 100_000).is_err());
    }

    /// A small deterministic generator (SplitMix64), so that a failure can be replayed.
    struct Mix(u64);

    impl Mix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// `seed` with one to four bytes changed, inserted or removed, or cut short.
        fn mangle(&mut self, seed: &[u8]) -> Vec<u8> {
            let mut wire = seed.to_vec();
            for _ in 0..1 + self.below(4) {
                let at = self.below(wire.len() + 1);
                match self.below(4) {
                    0 if at < wire.len() => wire[at] = self.next() as u8,
                    1 => wire.insert(at, b"\r\n:;0 9aZ\x00\x7f"[self.below(11)]),
                    2 if at < wire.len() => {
                        wire.remove(at);
                    }
                    _ => wire.truncate(at),
                }
            }
            wire
        }
    }

    #[test]
    fn the_upstream_target_is_in_origin_form() {
        for (target, upstream) in [
            ("/a?b", "/a?b"),
            ("http://x?q=1", "/?q=1"),
            ("http://x:80", "/"),
            ("http://x/p", "/p"),
            ("*", "*"),
        ] {
            let uri: Uri = target.parse().unwrap();
            assert_eq!(origin_form(&uri).as_str(), upstream, "{target}");
        }
    }

    #[test]
    fn mangled_responses_give_errors_or_bodies_never_panics() {
        // Valid responses of every framing, then 20,000 mutations of them (bytes changed,
        // inserted, removed; cut anywhere), through the fuzz target's checks
        // (`crate::fuzzing::response_wire`): read whole and in pieces of 1 to 16 bytes, the
        // reader gives the same head, body and end, or an error both times; a response it
        // reads whole relays to the client as exactly one response with the same body.
        let seeds: [&[u8]; 5] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.0 404 Not Found\r\nConnection: keep-alive, x-hop\r\nx-hop: 1\r\n\r\ngone",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
        ];
        let mut mix = Mix(0x6d65_7368);
        let (mut heads, mut bodies) = (0, 0);
        for round in 0..20_000 {
            // The piece size, and one response in eight to a HEAD request.
            let head_request = if mix.below(8) == 0 { 0x80 } else { 0 };
            let mut data = vec![mix.below(16) as u8 | head_request];
            data.extend(mix.mangle(seeds[round % seeds.len()]));
            let reached = crate::fuzzing::response_wire(&data);
            heads += usize::from(reached.head);
            bodies += usize::from(reached.body);
        }
        // The mutations leave enough intact for both readers to be exercised.
        assert!(
            heads > 4_000 && bodies > 2_000,
            "{heads} heads, {bodies} bodies"
        );
    }

    #[test]
    fn mangled_requests_give_refusals_or_bodies_never_panics() {
        // As for responses, through `crate::fuzzing::request_wire`: the same request read
        // whole and in pieces, a refusal always 400, 431 or 501, and what goes upstream
        // parses again as one request with the proxy's `Host` and `x-request-id` and the same
        // body, with nothing after it.
        let seeds: [&[u8]; 6] = [
            b"POST /a?b=c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nTE: t\r\nX-B: 2\r\nX-Request-Id: c\r\n\r\n",
            b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            b"GET http://x:80/p HTTP/1.0\r\nConnection: keep-alive, x-hop\r\nx-hop: 1\r\n\r\n",
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2, 2\r\n\r\nok",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
        ];
        let mut mix = Mix(0x6865_6164);
        let (mut heads, mut bodies) = (0, 0);
        for round in 0..20_000 {
            let mut data = vec![mix.next() as u8];
            data.extend(mix.mangle(seeds[round % seeds.len()]));
            let reached = crate::fuzzing::request_wire(&data);
            heads += usize::from(reached.head);
            bodies += usize::from(reached.body);
        }
        assert!(
            heads > 3_000 && bodies > 800,
            "{heads} heads, {bodies} bodies"
        );
    }

    fn request(text: &str) -> Result<Option<RequestHead>, BadRequest> {
        parse_request_head(&mut BytesMut::from(text), 64 * 1024, MAX_HEADERS)
    }

    #[test]
    fn request_heads_carry_framing_and_keep_alive() {
        let mut buf = BytesMut::from(
            "POST /a?b=c HTTP/1.1\r\nHost: reviews\r\nContent-Length: 5, 5\r\n\
             Connection: keep-alive, x-hop\r\nx-hop: 1\r\nExpect: 100-continue\r\n\r\nhelloGET",
        );
        let head = parse_request_head(&mut buf, 64 * 1024, MAX_HEADERS)
            .unwrap()
            .unwrap();
        assert_eq!(head.method, Method::POST);
        assert_eq!(head.uri, "/a?b=c");
        assert_eq!(head.version, Version::HTTP_11);
        assert_eq!(head.framing, BodyFraming::Length(5));
        assert!(head.keep_alive && head.expect_continue);
        // `Connection` names a field: both go at once (the fields are a map). `Expect` goes.
        assert!(!head.fields.contains("connection"));
        assert!(!head.fields.contains("x-hop"));
        assert!(head.fields.contains("host"));
        assert!(!head.fields.contains("expect"));
        assert_eq!(
            &buf[..],
            b"helloGET",
            "the body and what follows stay in the buffer"
        );

        let head = request("GET http://ratings:9080/r HTTP/1.0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            head.uri.authority().map(|a| a.as_str()),
            Some("ratings:9080")
        );
        assert!(!head.keep_alive, "HTTP/1.0 closes unless asked");
        assert_eq!(head.framing, BodyFraming::Length(0));
        let head = request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.keep_alive && head.fields.to_map().is_empty());
        let head = request("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!head.keep_alive);

        let head =
            request("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nContent-Length: 3\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(head.framing, BodyFraming::Chunked(Chunk::Size));
        assert!(
            !head.keep_alive,
            "both framings: the connection closes after it"
        );
        assert!(!head.fields.contains("content-length"));
        assert!(!head.fields.contains("transfer-encoding"));

        assert!(
            request("GET / HTTP/1.1\r\nHost: reviews\r\n")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn bad_request_heads_get_400_or_431() {
        let status = |text: &str| request(text).err().map(|e| e.status);
        for text in [
            "GET / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
            "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "GET / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "G\x01T / HTTP/1.1\r\n\r\n",
            "GET /a b HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(status(text), Some(400), "{text:?}");
        }
        let gzip =
            "GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(status(gzip), Some(501));
        let mut many = String::from("GET / HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            many.push_str(&format!("x-{i}: {i}\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(status(&many), Some(431));
        let big = format!("GET / HTTP/1.1\r\nx-big: {}\r\n\r\n", "a".repeat(70 * 1024));
        assert_eq!(status(&big), Some(431));
        let unfinished = format!("GET / HTTP/1.1\r\nx-big: {}", "a".repeat(70 * 1024));
        assert_eq!(status(&unfinished), Some(431), "refused before it ends");
        assert_eq!(
            parse_request_head(
                &mut BytesMut::from("GET / HTTP/1.1\r\na: 1\r\nb: 2\r\n\r\n"),
                1024,
                1
            )
            .err()
            .map(|e| e.status),
            Some(431),
            "a lower field limit"
        );
    }

    #[test]
    fn response_heads_take_framing_and_connection_from_the_server() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        headers.insert("x-a", HeaderValue::from_static("1"));
        let date = b"Thu, 26 Nov 2026 08:00:00 GMT";
        let encode = |status: u16, framing, keep_alive, http10, headers: &HeaderMap| {
            let mut out = Vec::new();
            let status = StatusCode::from_u16(status).unwrap();
            let connection = ConnectionField::of(keep_alive, http10);
            encode_response_head(&mut out, status, headers, None, framing, connection, date);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            encode(200, ResponseFraming::Length(5), true, false, &headers),
            "HTTP/1.1 200 OK\r\nx-a: 1\r\ndate: Thu, 26 Nov 2026 08:00:00 GMT\r\n\
             content-length: 5\r\n\r\n"
        );
        assert_eq!(
            encode(
                599,
                ResponseFraming::Chunked,
                false,
                false,
                &HeaderMap::new()
            ),
            "HTTP/1.1 599 \r\ndate: Thu, 26 Nov 2026 08:00:00 GMT\r\n\
             transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        );
        // A response to HEAD keeps the length a GET would have had; the upstream's own
        // `Date` is kept.
        headers.insert(header::DATE, HeaderValue::from_static("then"));
        assert_eq!(
            encode(200, ResponseFraming::Bodiless, true, true, &headers),
            "HTTP/1.1 200 OK\r\ncontent-length: 999\r\nx-a: 1\r\ndate: then\r\n\
             connection: keep-alive\r\n\r\n"
        );
        let mut out = Vec::new();
        encode_response_data(&mut out, b"hello", ResponseFraming::Chunked);
        encode_response_data(&mut out, b"", ResponseFraming::Chunked);
        encode_response_data(&mut out, b"!", ResponseFraming::Length(1));
        assert_eq!(out, b"5\r\nhello\r\n!");
    }
}
