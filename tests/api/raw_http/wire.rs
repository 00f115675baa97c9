//! The raw side of the raw-HTTP tests: a request as the bytes that go on the
//! wire (no client encodes anything), and a minimal reader of the answer.

use std::{fmt, net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Longest a test waits for an answer: well above the app's request timeout.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// How the body is framed.
#[derive(Clone, Debug)]
pub enum Framing {
    /// No Content-Length nor Transfer-Encoding (body bytes, if any, follow
    /// anyway and become the start of the next request).
    Bare,
    Length,
    /// Content-Length off by this much from the bytes sent.
    LengthOff(i64),
    /// A Content-Length value that is not one length.
    LengthText(&'static str),
    /// Good chunks of these sizes (the rest in a last one).
    Chunked(Vec<usize>),
    /// A chunked body broken this way.
    BrokenChunks(&'static str),
    /// Both headers (Transfer-Encoding wins; the request must not be
    /// smuggled past as two).
    Both,
}

#[derive(Clone)]
pub struct RawRequest {
    pub method: Vec<u8>,
    pub target: Vec<u8>,
    pub version: &'static str,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub framing: Framing,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn get(target: &str) -> RawRequest {
        RawRequest {
            method: b"GET".to_vec(),
            target: target.as_bytes().to_vec(),
            version: "HTTP/1.1",
            headers: vec![(b"host".to_vec(), b"t".to_vec())],
            framing: Framing::Bare,
            body: vec![],
        }
    }

    pub fn wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(&self.method);
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.push(b' ');
        out.extend_from_slice(self.version.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        let len = self.body.len();
        let body = match &self.framing {
            Framing::Bare => self.body.clone(),
            Framing::Length => framed_by_length(&mut out, len.to_string(), &self.body),
            Framing::LengthOff(off) => framed_by_length(&mut out, (len as i64 + off).max(0).to_string(), &self.body),
            Framing::LengthText(text) => framed_by_length(&mut out, text.to_string(), &self.body),
            Framing::Chunked(sizes) => chunked(&mut out, sizes, &self.body, ""),
            Framing::BrokenChunks(how) => chunked(&mut out, &[3], &self.body, how),
            Framing::Both => {
                out.extend_from_slice(format!("content-length: {}\r\n", len + 3).as_bytes());
                chunked(&mut out, &[], &self.body, "")
            }
        };
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        out
    }

    /// Framed so that the connection can carry another request after it.
    pub fn reusable(&self) -> bool {
        let framed = match self.framing {
            Framing::Bare => self.body.is_empty(),
            Framing::Length | Framing::Chunked(_) | Framing::Both => true,
            _ => false,
        };
        let no_line_breaks = |b: &[u8]| !b.iter().any(|c| matches!(c, b'\r' | b'\n'));
        framed
            && self.version == "HTTP/1.1"
            && no_line_breaks(&self.method)
            && no_line_breaks(&self.target)
            && self.headers.iter().all(|(n, v)| no_line_breaks(n) && no_line_breaks(v))
    }

    /// Answered without a body (RFC 9110: a response to HEAD has none).
    pub fn is_head(&self) -> bool {
        self.method == b"HEAD"
    }

    /// A method some route serves: only such requests may succeed.
    pub fn may_succeed(&self) -> bool {
        self.method == b"GET" || self.method == b"POST"
    }
}

fn framed_by_length(head: &mut Vec<u8>, value: String, body: &[u8]) -> Vec<u8> {
    head.extend_from_slice(format!("content-length: {value}\r\n").as_bytes());
    body.to_vec()
}

/// `body` in chunks of `sizes` (then the rest), or broken as `how` says.
fn chunked(head: &mut Vec<u8>, sizes: &[usize], body: &[u8], how: &str) -> Vec<u8> {
    head.extend_from_slice(b"transfer-encoding: chunked\r\n");
    let mut out = Vec::new();
    let mut rest = body;
    for size in sizes.iter().copied().chain([usize::MAX]) {
        let (chunk, after) = rest.split_at(size.min(rest.len()));
        rest = after;
        if chunk.is_empty() {
            continue;
        }
        match how {
            "bad_size" => out.extend_from_slice(b"zz\r\n"),
            "size_too_big" => out.extend_from_slice(format!("{:x}\r\n", chunk.len() + 5).as_bytes()),
            "size_too_small" => out.extend_from_slice(format!("{:x}\r\n", chunk.len().saturating_sub(1)).as_bytes()),
            "huge_size" => out.extend_from_slice(b"ffffffffffffffffff\r\n"),
            "extension" => out.extend_from_slice(format!("{:x};a=\"\u{e9}\"\r\n", chunk.len()).as_bytes()),
            _ => out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes()),
        }
        out.extend_from_slice(chunk);
        if how != "no_crlf" {
            out.extend_from_slice(b"\r\n");
        }
    }
    match how {
        "no_last_chunk" => {}
        "trailer_junk" => out.extend_from_slice(b"0\r\nx\xff: \x01\r\n\r\n"),
        _ => out.extend_from_slice(b"0\r\n\r\n"),
    }
    out
}

/// The request as it goes on the wire, escaped: what a failure shows.
impl fmt::Debug for RawRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wire = self.wire();
        let shown = &wire[..wire.len().min(600)];
        write!(f, "b\"{}\"", shown.escape_ascii())?;
        if wire.len() > shown.len() {
            write!(f, "... ({} bytes)", wire.len())?;
        }
        Ok(())
    }
}

pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn closes(&self) -> bool {
        self.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Why no answer came.
#[derive(Debug)]
pub struct NoAnswer {
    /// Closed (or reset) before one byte of an answer.
    pub before_any_byte: bool,
    pub what: String,
}

fn broken(what: String) -> NoAnswer {
    NoAnswer { before_any_byte: false, what }
}

impl fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Conn, NoAnswer> {
        let stream = TcpStream::connect(addr).await.map_err(|e| broken(format!("connect: {e}")))?;
        Ok(Conn { stream, buf: Vec::new() })
    }

    /// Sends `req` and reads its answer (skipping 1xx interim answers).
    pub async fn exchange(&mut self, req: &RawRequest) -> Result<Answer, NoAnswer> {
        // A server that answered early and closed may refuse the rest of the
        // bytes; its answer is still there to read.
        let _ = self.stream.write_all(&req.wire()).await;
        loop {
            let answer = self.read_answer(req.is_head()).await?;
            if !(100..200).contains(&answer.status) {
                return Ok(answer);
            }
        }
    }

    async fn read_answer(&mut self, head_only: bool) -> Result<Answer, NoAnswer> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status = match status_line.split(' ').collect::<Vec<_>>()[..] {
            ["HTTP/1.1" | "HTTP/1.0", code, ..] => code.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| broken(format!("not an HTTP status line: {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut answer = Answer { status, headers, body: Vec::new() };
        if head_only || (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(answer);
        }
        if answer.header("transfer-encoding").is_some() {
            return Err(broken("a chunked answer (the service sends whole bodies)".into()));
        }
        match answer.header("content-length").map(str::parse::<usize>) {
            Some(Ok(len)) => {
                while self.buf.len() < len {
                    self.fill().await.map_err(|e| broken(format!("body cut short: {e}")))?;
                }
                answer.body = self.buf.drain(..len).collect();
            }
            Some(Err(_)) => return Err(broken("a bad content-length".into())),
            None => {
                while self.fill().await.is_ok() {}
                answer.body = std::mem::take(&mut self.buf);
            }
        }
        Ok(answer)
    }

    /// Reads more bytes; an error at the end of the stream or after `ANSWER_WITHIN`.
    async fn fill(&mut self) -> Result<(), NoAnswer> {
        let mut chunk = [0u8; 16 * 1024];
        let got = self.buf.len();
        let said = |what: String| NoAnswer { before_any_byte: got == 0, what };
        match tokio::time::timeout(ANSWER_WITHIN, self.stream.read(&mut chunk)).await {
            Ok(Ok(0)) => Err(said(format!("closed after {got} bytes"))),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Ok(Err(e)) => Err(said(format!("{e} after {got} bytes"))),
            Err(_) => Err(broken(format!("no answer within {ANSWER_WITHIN:?} ({got} bytes)"))),
        }
    }
}
