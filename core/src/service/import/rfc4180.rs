//! A strict CSV reader (RFC 4180) for imports: it finds the quoting mistakes the `csv` crate
//! forgives, and never lets one row swallow the next.
//!
//! The `csv` crate reads an unterminated quote to the end of the file, so every row after it
//! became part of one cell ("2 rows read, 2 created"), and it reads `"abc"def` as `abcdef`. This
//! reader reports both as a broken row at the line where the row started, then goes on with the
//! line after the one where the broken field started: a quote that is never closed was most
//! likely meant to close on its own line, so the rows after it are read on their own.
//!
//! What it accepts is what the `csv` crate accepted from well-formed files: `,` between
//! fields, `\n`, `\r\n` or `\r` between rows, blank lines (and lines of only blanks) skipped, a UTF-8 byte order mark
//! dropped, `""` for a quote inside a quoted field, fields trimmed. Blanks around a quoted field
//! are allowed (the crate kept the quotes of ` "a, b"` and split it at the comma). A quote inside
//! an unquoted field is kept as text (`5'10"`), as before: it cannot merge rows.

use std::io::{self, Read};

/// Bytes asked of the underlying reader at a time.
const CHUNK: usize = 64 * 1024;

/// What [`Reader::read`] found next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// A record, which started at this 1-based line.
    Record(u64),
    /// Text that is not a record; reading goes on after it.
    Broken(Broken),
    /// The end of the input.
    End,
}

/// A row that is not well-formed CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The 1-based line where the row started.
    pub line: u64,
    /// What is wrong, in words for the person who wrote the file.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first non-blank byte of a field.
    FieldStart,
    /// In a field that did not start with a quote.
    Unquoted,
    /// In a quoted field.
    Quoted,
    /// Just after a quote in a quoted field: its end, or the first half of a `""`.
    QuoteInQuoted,
    /// After a quoted field's closing quote and blanks: only a delimiter or a line end may follow.
    AfterQuoted,
    /// Skipping the rest of the line where a broken field started.
    SkipLine,
}

/// Reads records from CSV text, strictly.
pub struct Reader<R> {
    reader: R,
    /// Input read but not yet given out; starts at the current record, so a broken field can be
    /// read again from the line after its start.
    buf: Vec<u8>,
    /// The next byte to look at, in `buf`.
    pos: usize,
    /// Where the current record and field start, in `buf`.
    record_start: usize,
    field_start: usize,
    /// The line of `buf[pos]`, and where the current record and field started.
    line: u64,
    record_line: u64,
    field_line: u64,
    state: State,
    /// The current record's field bytes, one after another, and where each field ends.
    bytes: Vec<u8>,
    ends: Vec<usize>,
    /// Whether the current record has anything in it yet (a blank line has not).
    started: bool,
    eof: bool,
    bom_checked: bool,
}

impl<R: Read> Reader<R> {
    /// A reader of `reader`'s text.
    pub fn new(reader: R) -> Reader<R> {
        Reader {
            reader,
            buf: Vec::with_capacity(CHUNK),
            pos: 0,
            record_start: 0,
            field_start: 0,
            line: 1,
            record_line: 1,
            field_line: 1,
            state: State::FieldStart,
            bytes: Vec::new(),
            ends: Vec::new(),
            started: false,
            eof: false,
            bom_checked: false,
        }
    }

    /// Reads the next record into `record` (its fields trimmed), or says why the next row is
    /// broken, or that the input has ended.
    pub fn read(&mut self, record: &mut csv::StringRecord) -> io::Result<Next> {
        if !self.bom_checked {
            while self.buf.len() - self.pos < 3 && self.fill()? {}
            if self.buf[self.pos..].starts_with(b"\xef\xbb\xbf") {
                self.pos += 3;
                self.record_start = self.pos;
                self.field_start = self.pos;
            }
            self.bom_checked = true;
        }
        loop {
            if self.pos == self.buf.len() && !self.fill()? {
                return Ok(self.at_end(record));
            }
            let byte = self.buf[self.pos];
            self.pos += 1;
            match (self.state, byte) {
                (State::SkipLine, b'\n' | b'\r') => {
                    if byte == b'\n' {
                        self.line += 1;
                    }
                    self.start_record();
                }
                (State::SkipLine, _) => {}
                // Blanks before a field are trimmed anyway; a line of nothing else is blank.
                (State::FieldStart, b' ' | b'\t') => {}
                (State::FieldStart, b'"') => {
                    self.started = true;
                    self.state = State::Quoted;
                    self.field_start = self.pos - 1;
                    self.field_line = self.line;
                }
                (State::FieldStart | State::Unquoted | State::QuoteInQuoted | State::AfterQuoted, b',') => {
                    self.started = true;
                    self.ends.push(self.bytes.len());
                    self.state = State::FieldStart;
                }
                (State::FieldStart | State::Unquoted | State::QuoteInQuoted | State::AfterQuoted, b'\n' | b'\r') => {
                    let blank = !self.started;
                    if byte == b'\n' {
                        self.line += 1;
                    }
                    if blank {
                        self.start_record();
                        continue;
                    }
                    self.ends.push(self.bytes.len());
                    let next = self.finish(record);
                    self.start_record();
                    return Ok(next);
                }
                (State::FieldStart | State::Unquoted, _) => {
                    self.started = true;
                    self.state = State::Unquoted;
                    self.bytes.push(byte);
                }
                (State::Quoted, b'"') => self.state = State::QuoteInQuoted,
                (State::Quoted, _) => {
                    if byte == b'\n' {
                        self.line += 1;
                    }
                    self.bytes.push(byte);
                }
                (State::QuoteInQuoted, b'"') => {
                    self.bytes.push(b'"');
                    self.state = State::Quoted;
                }
                (State::QuoteInQuoted | State::AfterQuoted, b' ' | b'\t') => self.state = State::AfterQuoted,
                (State::QuoteInQuoted | State::AfterQuoted, _) => {
                    let shown = if byte.is_ascii_graphic() {
                        format!("`{}`", char::from(byte))
                    } else {
                        format!("the byte 0x{byte:02x}")
                    };
                    // A quote that closes the field on a later line was most likely never meant
                    // to: the field's own closing quote is missing.
                    let reason = if self.line == self.field_line {
                        format!(
                            "{} is followed by {shown} after its closing quote (a quote inside a quoted \
                             field is written twice: `\"\"`)",
                            self.field_name()
                        )
                    } else {
                        format!(
                            "{} is not closed on its line (the quote on line {} that would close it is \
                             followed by {shown})",
                            self.field_name(),
                            self.line
                        )
                    };
                    return Ok(self.broken(reason));
                }
            }
        }
    }

    /// What a complete record gives: its fields, or why it is not text.
    fn finish(&mut self, record: &mut csv::StringRecord) -> Next {
        record.clear();
        let mut start = 0;
        for &end in &self.ends {
            match std::str::from_utf8(&self.bytes[start..end]) {
                Ok(text) => record.push_field(text.trim()),
                Err(_) => {
                    return Next::Broken(Broken {
                        line: self.record_line,
                        reason: "is not UTF-8 text (save the file as UTF-8 CSV)".to_owned(),
                    });
                }
            }
            start = end;
        }
        Next::Record(self.record_line)
    }

    /// The end of the input, in the middle of a record or not.
    fn at_end(&mut self, record: &mut csv::StringRecord) -> Next {
        match self.state {
            State::Quoted => {
                let reason = format!("{} is never closed: its closing quote is missing", self.field_name());
                self.broken(reason)
            }
            State::SkipLine => {
                self.start_record();
                Next::End
            }
            _ if !self.started => Next::End,
            _ => {
                self.ends.push(self.bytes.len());
                let next = self.finish(record);
                self.start_record();
                next
            }
        }
    }

    /// Reports the current record as broken and goes back to skip the rest of the line where
    /// the broken field started; reading resumes on the line after it.
    fn broken(&mut self, reason: String) -> Next {
        let broken = Broken { line: self.record_line, reason };
        self.pos = self.field_start;
        self.record_start = self.field_start;
        self.line = self.field_line;
        self.bytes.clear();
        self.ends.clear();
        self.state = State::SkipLine;
        Next::Broken(broken)
    }

    /// How a message names the current quoted field.
    fn field_name(&self) -> String {
        if self.field_line == self.record_line {
            "a quoted field".to_owned()
        } else {
            format!("the quoted field starting on line {}", self.field_line)
        }
    }

    fn start_record(&mut self) {
        self.record_start = self.pos;
        self.field_start = self.pos;
        self.record_line = self.line;
        self.field_line = self.line;
        self.state = State::FieldStart;
        self.bytes.clear();
        self.ends.clear();
        self.started = false;
    }

    /// Reads more input, keeping the current record; false at the end of the input.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let keep = self.record_start;
        if keep > 0 {
            self.buf.drain(..keep);
            self.pos -= keep;
            self.field_start -= keep;
            self.record_start = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + CHUNK, 0);
        let read = loop {
            match self.reader.read(&mut self.buf[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(len + read);
        self.eof = read == 0;
        Ok(!self.eof)
    }
}

/// What a whole text holds: how many records, and every broken row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Well-formed records, the header included.
    pub records: u64,
    /// Broken rows, in order.
    pub broken: Vec<Broken>,
}

/// Reads all of `text` strictly (a check before handing a file to something else to parse).
pub fn check(text: &str) -> Summary {
    let mut reader = Reader::new(text.as_bytes());
    let mut record = csv::StringRecord::new();
    let mut summary = Summary::default();
    loop {
        // Reading from a byte slice cannot fail.
        match reader.read(&mut record) {
            Ok(Next::Record(_)) => summary.records += 1,
            Ok(Next::Broken(broken)) => summary.broken.push(broken),
            Ok(Next::End) | Err(_) => return summary,
        }
    }
}

/// The cells of the records of `text` starting at the lines `wanted` picks, with their lines,
/// in order (to hand rejected rows back as they were written).
pub fn records_at(text: &str, wanted: impl Fn(u64) -> bool) -> Vec<(u64, Vec<String>)> {
    let mut reader = Reader::new(text.as_bytes());
    let mut record = csv::StringRecord::new();
    let mut out = Vec::new();
    loop {
        match reader.read(&mut record) {
            Ok(Next::Record(line)) if wanted(line) => out.push((line, record.iter().map(str::to_owned).collect())),
            Ok(Next::Record(_) | Next::Broken(_)) => {}
            Ok(Next::End) | Err(_) => return out,
        }
    }
}

#[cfg(test)]
mod tests;
