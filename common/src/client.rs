//! A small blocking HTTP/1.1 client over `std::net::TcpStream`, for tests and for node-to-node
//! calls between Flash servers.
//!
//! Responses are framed by [`crate::response_reader`], the one response reader (the cluster's
//! proxy uses it too): `Content-Length`, chunked, or read-to-close, and no body for HEAD, 1xx,
//! 204 and 304.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::response_reader::ResponseReader;

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
        let mut reader = ResponseReader::new(head_request, 64 * 1024, u64::MAX);
        let mut eof = false;
        let done = loop {
            match reader.advance(&mut self.buf, eof) {
                Ok(Some(done)) => break done,
                Ok(None) => eof = !self.fill_or_eof()?,
                // The server closed before the response was whole: the caller may retry.
                Err(e) if eof => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, e.reason)),
                Err(e) => return Err(malformed(e.reason)),
            }
        };
        let head_bytes = &self.buf[done.head_start..];
        let headers = reader
            .head()
            .fields(head_bytes)
            .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        let res = ClientResponse { status: reader.head().status, headers, body: self.buf[done.body].to_vec() };
        self.buf.drain(..done.consumed);
        Ok(res)
    }

    /// Reads more bytes; false at end of stream.
    fn fill_or_eof(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }
}
