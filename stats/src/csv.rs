//! A small RFC 4180 CSV reader, just enough for the CDC table.
//!
//! The workspace has no CSV dependency and the table needs only quoted fields (with `""` for a
//! quote inside), commas and line breaks inside quotes, and CRLF or LF line ends. The reader
//! works over the whole file in memory and hands out borrowed fields, so a row costs no
//! allocation unless a field holds an escaped quote.

use std::borrow::Cow;

/// Iterates over the records of a CSV text, yielding each as a vector of fields.
pub struct Records<'a> {
    /// The whole file, without a byte-order mark.
    text: &'a str,
    /// Byte offset of the next record in `text`.
    pos: usize,
    /// 1-based line number of the next record, for error messages.
    line: usize,
}

impl<'a> Records<'a> {
    /// Starts reading `text` at its first record.
    pub fn new(text: &'a str) -> Records<'a> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Records { text, pos: 0, line: 1 }
    }

    /// Reads the next record into `fields` (cleared first) and returns its first line number,
    /// `Ok(None)` at the end of the text, or an error naming the line of an unclosed quote.
    pub fn next_into(&mut self, fields: &mut Vec<Cow<'a, str>>) -> Result<Option<usize>, String> {
        fields.clear();
        let bytes = self.text.as_bytes();
        // Blank lines carry no record; skipping them also absorbs a final line break.
        while self.pos < bytes.len() && (bytes[self.pos] == b'\n' || bytes[self.pos] == b'\r') {
            if bytes[self.pos] == b'\n' {
                self.line += 1;
            }
            self.pos += 1;
        }
        if self.pos >= bytes.len() {
            return Ok(None);
        }
        let first_line = self.line;
        loop {
            let (field, end) = self.field(self.pos, first_line)?;
            fields.push(field);
            match bytes.get(end) {
                Some(b',') => self.pos = end + 1,
                Some(b'\r') | Some(b'\n') => {
                    self.pos = end;
                    return Ok(Some(first_line));
                }
                None => {
                    self.pos = end;
                    return Ok(Some(first_line));
                }
                Some(_) => return Err(format!("line {}: unexpected character after a closing quote", self.line)),
            }
        }
    }

    /// Reads one field starting at `start`; returns it and the offset just past it.
    fn field(&mut self, start: usize, first_line: usize) -> Result<(Cow<'a, str>, usize), String> {
        let bytes = self.text.as_bytes();
        if bytes.get(start) != Some(&b'"') {
            let end = bytes[start..]
                .iter()
                .position(|&b| b == b',' || b == b'\n' || b == b'\r')
                .map_or(bytes.len(), |n| start + n);
            return Ok((Cow::Borrowed(&self.text[start..end]), end));
        }
        let mut owned: Option<String> = None;
        let mut run = start + 1;
        let mut i = start + 1;
        loop {
            match bytes.get(i) {
                None => return Err(format!("line {first_line}: a quoted field is never closed")),
                Some(b'"') if bytes.get(i + 1) == Some(&b'"') => {
                    // An escaped quote: keep the text so far plus one quote, skip the pair.
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(&self.text[run..=i]);
                    i += 2;
                    run = i;
                }
                Some(b'"') => {
                    let field = match owned {
                        Some(mut s) => {
                            s.push_str(&self.text[run..i]);
                            Cow::Owned(s)
                        }
                        None => Cow::Borrowed(&self.text[run..i]),
                    };
                    return Ok((field, i + 1));
                }
                Some(b'\n') => {
                    self.line += 1;
                    i += 1;
                }
                Some(_) => i += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Result<Vec<Vec<String>>, String> {
        let mut records = Records::new(text);
        let mut fields = Vec::new();
        let mut out = Vec::new();
        while records.next_into(&mut fields)?.is_some() {
            out.push(fields.iter().map(|f| f.to_string()).collect());
        }
        Ok(out)
    }

    #[test]
    fn plain_quoted_and_escaped_fields() {
        let rows = all("a,b,c\r\n1,\"x, y\",\"say \"\"hi\"\"\"\n,\"two\nlines\",\n").unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0], ["a", "b", "c"]);
        assert_eq!(rows[1], ["1", "x, y", "say \"hi\""]);
        assert_eq!(rows[2], ["", "two\nlines", ""]);
    }

    #[test]
    fn unclosed_quote_names_its_line() {
        let err = all("a\n\"never closed\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn garbage_after_closing_quote_is_an_error() {
        assert!(all("\"a\"b,c\n").is_err());
    }
}
