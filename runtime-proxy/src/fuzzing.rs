//! Properties of the proxy's HTTP/1.1 readers and writers over arbitrary bytes, for the fuzz
//! targets `request_wire` and `response_wire` (`fuzz/`), for `tests/fuzz_regressions.rs`,
//! which replays their committed inputs, and for the mutation tests in `h1.rs`. Each entry
//! point takes any input and panics only when a property breaks:
//!
//! - [`request_wire`]: a client's bytes read as the server reads them give the same request
//!   (head, body, where it ends) whether they arrive in one piece or in small pieces, and
//!   what the proxy writes upstream from it is exactly one request with the same body.
//! - [`response_wire`]: the same for an upstream's bytes read as the pool reads them, and
//!   what the proxy writes to its client from it.
//!
//! Not part of the proxy's interface: hidden from its documentation.

use bytes::BytesMut;
use http::{Method, StatusCode, Version};

use crate::fields::ProxyField;
use crate::h1::{self, BodyFraming, ConnectionField, Decoded, RequestFraming, ResponseFraming};

/// What was reached, so that a test can tell its inputs exercise both readers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reached {
    pub head: bool,
    pub body: bool,
}

/// How a body read stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyEnd {
    /// The framing said the body ended; so many bytes of the wire were used in all.
    End { used: usize },
    /// A framing error.
    Refused,
    /// The wire ended first.
    Short,
}

/// Bytes handed to a reader `step` at a time, as a socket may deliver them (also used by
/// `h1.rs`'s tests).
pub(crate) struct Pieces<'w> {
    wire: &'w [u8],
    fed: usize,
    step: usize,
}

impl<'w> Pieces<'w> {
    pub(crate) fn new(wire: &'w [u8], step: usize) -> Pieces<'w> {
        Pieces { wire, fed: 0, step }
    }

    /// Appends the next piece to `buf`; false once the wire is used up.
    pub(crate) fn feed(&mut self, buf: &mut BytesMut) -> bool {
        if self.fed >= self.wire.len() {
            return false;
        }
        let next = (self.fed + self.step).min(self.wire.len());
        buf.extend_from_slice(&self.wire[self.fed..next]);
        self.fed = next;
        true
    }

    /// Bytes of the wire taken so far that `buf` no longer holds.
    fn used(&self, buf: &BytesMut) -> usize {
        self.fed - buf.len()
    }

    /// All of `wire` in a buffer at once.
    fn whole(wire: &'w [u8]) -> (Pieces<'w>, BytesMut) {
        let mut pieces = Pieces::new(wire, wire.len().max(1));
        let mut buf = BytesMut::new();
        pieces.feed(&mut buf);
        (pieces, buf)
    }
}

/// Reads a body the way the proxy does: decode, and read more when asked to.
fn read_body(
    framing: &mut BodyFraming,
    buf: &mut BytesMut,
    pieces: &mut Pieces<'_>,
) -> (Vec<u8>, BodyEnd) {
    let mut body = Vec::new();
    loop {
        match framing.decode(buf, false) {
            Ok(Decoded::Data(data)) => {
                assert!(!data.is_empty(), "the body reader gave an empty piece");
                body.extend_from_slice(&data);
            }
            Ok(Decoded::End) => {
                return (
                    body,
                    BodyEnd::End {
                        used: pieces.used(buf),
                    },
                );
            }
            Err(_) => return (body, BodyEnd::Refused),
            Ok(Decoded::NeedMore) if pieces.feed(buf) => {}
            Ok(Decoded::NeedMore) => return (body, BodyEnd::Short),
        }
    }
}

/// A request as read from a wire, in a form two reads can be compared by.
#[derive(Debug, PartialEq, Eq)]
enum RequestRead {
    /// Refused with this status (400, 431 or 501). Which of 400 and 431 can depend on how
    /// much had arrived when the reader gave up, so the status is not compared.
    Refused(u16),
    /// The head never completed.
    Partial,
    Read {
        method: Method,
        /// The request-target as it goes upstream.
        target: String,
        version: Version,
        keep_alive: bool,
        expect_continue: bool,
        body: Vec<u8>,
        end: BodyEnd,
        /// What the proxy writes upstream: the head with the proxy's fields and a framing
        /// for the body read, then that body (in two pieces, as a streamed one goes).
        forwarded: Vec<u8>,
    },
}

impl RequestRead {
    fn same_as(&self, other: &RequestRead) -> bool {
        match (self, other) {
            (RequestRead::Refused(_), RequestRead::Refused(_)) => true,
            _ => self == other,
        }
    }
}

/// Head limits as the server's defaults set them, scaled down so that a fuzzer reaches them.
const MAX_HEAD: usize = 1024;
const MAX_FIELDS: usize = 32;

fn read_request(wire: &[u8], step: usize) -> RequestRead {
    let mut pieces = Pieces::new(wire, step);
    let mut buf = BytesMut::new();
    let head = loop {
        match h1::parse_request_head(&mut buf, MAX_HEAD, MAX_FIELDS) {
            Ok(Some(head)) => break head,
            Ok(None) if pieces.feed(&mut buf) => {}
            Ok(None) => return RequestRead::Partial,
            Err(refused) => {
                assert!(
                    [400, 431, 501].contains(&refused.status),
                    "a request refused with {refused:?}"
                );
                return RequestRead::Refused(refused.status);
            }
        }
    };
    let mut framing = head.framing;
    let (body, end) = read_body(&mut framing, &mut buf, &mut pieces);
    let upstream_framing = match head.framing {
        BodyFraming::Chunked(_) => RequestFraming::Chunked,
        _ if body.is_empty() => RequestFraming::Empty,
        _ => RequestFraming::Length(body.len() as u64),
    };
    let mut fields = head.fields;
    fields.insert(ProxyField::RequestId, b"proxy-id");
    let target = h1::origin_form(&head.uri).as_str().to_owned();
    let mut forwarded = Vec::new();
    h1::encode_request_head(
        &mut forwarded,
        &head.method,
        &target,
        &fields,
        upstream_framing,
        "up",
    );
    let (first, second) = body.split_at(body.len() / 2);
    h1::encode_data(&mut forwarded, first, upstream_framing);
    h1::encode_data(&mut forwarded, second, upstream_framing);
    h1::encode_end(&mut forwarded, upstream_framing);
    RequestRead::Read {
        method: head.method,
        target,
        version: head.version,
        keep_alive: head.keep_alive,
        expect_continue: head.expect_continue,
        body,
        end,
        forwarded,
    }
}

/// Checks what the proxy sends upstream for a request whose body it read to the end: one
/// request, with the same method, target and body, the proxy's `Host` and `x-request-id`,
/// and nothing after it (no second request smuggled inside the first).
fn check_forwarded(read: &RequestRead) {
    let RequestRead::Read {
        method,
        target,
        body,
        end: BodyEnd::End { .. },
        forwarded,
        ..
    } = read
    else {
        return;
    };
    let (mut pieces, mut buf) = Pieces::whole(forwarded);
    let again = match h1::parse_request_head(&mut buf, 64 * 1024, 200) {
        Ok(Some(again)) => again,
        other => panic!("the upstream request does not parse ({other:?}): {forwarded:?}"),
    };
    assert_eq!(&again.method, method, "{forwarded:?}");
    assert_eq!(
        again.uri.path_and_query().map_or("/", |p| p.as_str()),
        target,
        "{forwarded:?}"
    );
    assert_eq!(again.fields.get_str("host"), Some("up"), "{forwarded:?}");
    assert_eq!(
        again.fields.get_all("x-request-id").collect::<Vec<_>>(),
        [b"proxy-id".as_slice()],
        "{forwarded:?}"
    );
    let mut framing = again.framing;
    let (again_body, end) = read_body(&mut framing, &mut buf, &mut pieces);
    assert_eq!(&again_body, body, "{forwarded:?}");
    assert_eq!(
        end,
        BodyEnd::End {
            used: forwarded.len()
        },
        "the upstream request does not end where it should: {forwarded:?}"
    );
}

/// `data`: one byte for the piece size (1 to 16), then what a client sends.
pub fn request_wire(data: &[u8]) -> Reached {
    let Some((&step, wire)) = data.split_first() else {
        return Reached::default();
    };
    let whole = read_request(wire, wire.len().max(1));
    let pieces = read_request(wire, 1 + usize::from(step % 16));
    assert!(
        whole.same_as(&pieces),
        "read whole: {whole:?}\nread in pieces of {}: {pieces:?}",
        1 + step % 16
    );
    check_forwarded(&whole);
    match whole {
        RequestRead::Read { body, .. } => Reached {
            head: true,
            body: !body.is_empty(),
        },
        _ => Reached::default(),
    }
}

/// A response as read from a wire.
#[derive(Debug, PartialEq, Eq)]
enum ResponseRead {
    Refused,
    Partial,
    Read {
        status: StatusCode,
        version: Version,
        keep_alive: bool,
        /// The fields passed on as they arrived, and those parsed into a map.
        raw_fields: Option<Vec<u8>>,
        headers: Vec<(String, Vec<u8>)>,
        framing: BodyFraming,
        body: Vec<u8>,
        end: BodyEnd,
        /// What the proxy writes to its client, for a response it read completely.
        relayed: Option<Vec<u8>>,
    },
}

fn read_response(wire: &[u8], step: usize, method: &Method) -> ResponseRead {
    let mut pieces = Pieces::new(wire, step);
    let mut buf = BytesMut::new();
    let head = loop {
        match h1::parse_response_head(&mut buf, method) {
            Ok(Some(head)) => break head,
            Ok(None) if pieces.feed(&mut buf) => {}
            Ok(None) => return ResponseRead::Partial,
            Err(_) => return ResponseRead::Refused,
        }
    };
    let raw_fields = head.fields.as_ref().map(|fields| {
        let mut out = Vec::new();
        fields.write(&mut out);
        out
    });
    let headers = head
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    let mut framing = head.framing;
    let (body, end) = read_body(&mut framing, &mut buf, &mut pieces);
    let relayed = relay(&head, &body, end, method);
    ResponseRead::Read {
        status: head.status,
        version: head.version,
        keep_alive: head.keep_alive,
        raw_fields,
        headers,
        framing: head.framing,
        body,
        end,
        relayed,
    }
}

/// What the proxy writes to its client for a response it read: `None` for a 1xx, or for a
/// body cut short or badly framed, which make the proxy drop its client's connection (a body
/// until close ends where the upstream closed).
fn relay(head: &h1::ResponseHead, body: &[u8], end: BodyEnd, method: &Method) -> Option<Vec<u8>> {
    let complete = match end {
        BodyEnd::End { .. } => true,
        BodyEnd::Short => head.framing == BodyFraming::UntilClose,
        BodyEnd::Refused => false,
    };
    if head.status.is_informational() || !complete {
        return None;
    }
    let bodiless = *method == Method::HEAD
        || head.status == StatusCode::NO_CONTENT
        || head.status == StatusCode::NOT_MODIFIED;
    let framing = match head.framing {
        _ if bodiless => ResponseFraming::Bodiless,
        BodyFraming::Length(_) => ResponseFraming::Length(body.len() as u64),
        // A body whose length the upstream did not give streams chunked.
        _ => ResponseFraming::Chunked,
    };
    let mut out = Vec::new();
    h1::encode_response_head(
        &mut out,
        head.status,
        &head.headers,
        head.fields.as_ref(),
        framing,
        ConnectionField::of(head.keep_alive, false),
        b"Thu, 26 Nov 2026 00:00:00 GMT",
    );
    let (first, second) = body.split_at(body.len() / 2);
    h1::encode_response_data(&mut out, first, framing);
    h1::encode_response_data(&mut out, second, framing);
    if framing == ResponseFraming::Chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    Some(out)
}

/// Checks what the proxy writes to its client: one response, with the same status and body,
/// and nothing after it.
fn check_relayed(read: &ResponseRead, method: &Method) {
    let ResponseRead::Read {
        status,
        body,
        relayed: Some(out),
        ..
    } = read
    else {
        return;
    };
    // An upstream head at the field limit gains the proxy's own fields (`date`, framing,
    // `connection`), which takes it past the limit of a reader like this one (a client with
    // no such limit reads it). That is the reader's limit, not a framing fault: stop here.
    let head_end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(out.len());
    let fields = out[..head_end].windows(2).filter(|w| w == b"\r\n").count();
    if fields > h1::MAX_HEADERS {
        return;
    }
    let (mut pieces, mut buf) = Pieces::whole(out);
    let again = match h1::parse_response_head(&mut buf, method) {
        Ok(Some(again)) => again,
        other => panic!("the relayed response does not parse ({other:?}): {out:?}"),
    };
    assert_eq!(&again.status, status, "{out:?}");
    let mut framing = again.framing;
    let (again_body, again_end) = read_body(&mut framing, &mut buf, &mut pieces);
    assert_eq!(&again_body, body, "{out:?}");
    assert_eq!(
        again_end,
        BodyEnd::End { used: out.len() },
        "the relayed response does not end where it should: {out:?}"
    );
}

/// `data`: one byte for the piece size (1 to 16) and the request's method (GET or HEAD),
/// then what an upstream sends.
pub fn response_wire(data: &[u8]) -> Reached {
    let Some((&control, wire)) = data.split_first() else {
        return Reached::default();
    };
    let method = if control & 0x80 != 0 {
        Method::HEAD
    } else {
        Method::GET
    };
    let step = 1 + usize::from(control % 16);
    let whole = read_response(wire, wire.len().max(1), &method);
    let pieces = read_response(wire, step, &method);
    assert_eq!(whole, pieces, "read whole, then in pieces of {step}");
    check_relayed(&whole, &method);
    match whole {
        ResponseRead::Read { body, .. } => Reached {
            head: true,
            body: !body.is_empty(),
        },
        _ => Reached::default(),
    }
}
