//! A small blocking HTTP/1.1 client over `std::net::TcpStream`, for tests and for node-to-node
//! calls between Flash servers.
//!
//! It reuses the server's pieces where they fit (the chunked decoder, the trimming rules) and
//! `httparse` for the response head, so it frames responses exactly as the servers frame
//! requests: `Content-Length`, chunked, or read-to-close, and no body for HEAD, 1xx, 204 and 304.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::chunked::ChunkedDecoder;
use crate::parse::trim;
use crate::response::status_has_body;

/// A response as the client received it.
#[derive(Debug, Clone)]
pub struct ClientResponse {
    /// The status code.
    pub status: u16,
    /// Every field, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, decoded.
    pub body: Vec<u8>,
}

impl ClientResponse {
    /// The first value of field `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One connection to a server; requests on it are sent one after another (keep-alive).
pub struct Client {
    /// The connection.
    stream: TcpStream,
    /// Bytes received but not yet part of a returned response.
    buf: Vec<u8>,
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("malformed response: {what}"))
}

impl Client {
    /// Connects, with a timeout on every read and write so that a silent server fails the
    /// caller instead of hanging it.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Client { stream, buf: Vec::new() })
    }

    /// Wraps a connected stream (its timeouts are left as they are).
    pub fn from_stream(stream: TcpStream) -> io::Result<Client> {
        Ok(Client { stream, buf: Vec::new() })
    }

    /// Gives the connection back, for tests that hold it open.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// The underlying stream, for tests that need to send raw bytes.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Sends one request and reads its response.
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<ClientResponse> {
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: flash\r\n");
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes)?;
        self.read_response(method == "HEAD")
    }

    /// `GET target`.
    pub fn get(&mut self, target: &str) -> io::Result<ClientResponse> {
        self.request("GET", target, &[], b"")
    }

    /// Reads the next response; `head_request` says it answers a HEAD (so it has no body).
    pub fn read_response(&mut self, head_request: bool) -> io::Result<ClientResponse> {
        loop {
            let (status, headers, head_len) = {
                let mut fields = [httparse::EMPTY_HEADER; 64];
                let mut res = httparse::Response::new(&mut fields);
                match res.parse(&self.buf).map_err(|e| malformed(&e.to_string()))? {
                    httparse::Status::Complete(n) => {
                        let headers: Vec<(String, String)> = res
                            .headers
                            .iter()
                            .map(|h| (h.name.to_string(), String::from_utf8_lossy(trim(h.value)).into_owned()))
                            .collect();
                        (res.code.unwrap_or(0), headers, n)
                    }
                    httparse::Status::Partial => {
                        self.fill()?;
                        continue;
                    }
                }
            };
            self.buf.drain(..head_len);
            // An interim 100 Continue is followed by the real response.
            if (100..200).contains(&status) {
                continue;
            }
            let mut res = ClientResponse { status, headers, body: Vec::new() };
            if head_request || !status_has_body(status) {
                return Ok(res);
            }
            let chunked = res.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
            if chunked {
                res.body = self.read_chunked()?;
            } else if let Some(len) = res.header("content-length") {
                let len: usize = len.parse().map_err(|_| malformed("Content-Length"))?;
                while self.buf.len() < len {
                    self.fill()?;
                }
                res.body = self.buf.drain(..len).collect();
            } else {
                while self.fill_or_eof()? {}
                res.body = std::mem::take(&mut self.buf);
            }
            return Ok(res);
        }
    }

    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut decoder = ChunkedDecoder::default();
        let (mut read, mut write) = (0, 0);
        loop {
            let done =
                decoder.decode(&mut self.buf, &mut read, &mut write, u64::MAX).map_err(|e| malformed(e.reason))?;
            if done {
                let body = self.buf[..write].to_vec();
                self.buf.drain(..read);
                return Ok(body);
            }
            self.fill()?;
        }
    }

    /// Reads more bytes; end of stream here is an error (the response is incomplete).
    fn fill(&mut self) -> io::Result<()> {
        if self.fill_or_eof()? {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-response"))
        }
    }

    /// Reads more bytes; false at end of stream.
    fn fill_or_eof(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }
}
