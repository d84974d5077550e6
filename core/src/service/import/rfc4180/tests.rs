//! Tests of the strict CSV reader, each run over several chunk sizes.

use crate::service::import::rfc4180::{Next, Reader, check};

/// Reads `input` in chunks of `chunk` bytes (to cross buffer boundaries anywhere) and renders
/// every record as `line: a|b|c` and every broken row as `line: ! reason`.
fn render(input: &str, chunk: usize) -> Vec<String> {
    struct Trickle<'a>(&'a [u8], usize);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let mut reader = Reader::new(Trickle(input.as_bytes(), chunk));
    let mut record = csv::StringRecord::new();
    let mut out = Vec::new();
    loop {
        match reader.read(&mut record).unwrap() {
            Next::Record(line) => out.push(format!("{line}: {}", record.iter().collect::<Vec<_>>().join("|"))),
            Next::Broken(broken) => out.push(format!("{}: ! {}", broken.line, broken.reason)),
            Next::End => return out,
        }
    }
}

#[track_caller]
fn check_reads(input: &str, expect: &[&str]) {
    for chunk in [1, 2, 3, 7, 64 * 1024] {
        assert_eq!(render(input, chunk), expect, "read {chunk} bytes at a time: {input:?}");
    }
}

const UNCLOSED: &str = "a quoted field is never closed: its closing quote is missing";

#[test]
fn well_formed_text_reads_as_the_csv_crate_reads_it() {
    check_reads("a,b\n1,2\n", &["1: a|b", "2: 1|2"]);
    check_reads("a,b\r\n1,2\r\n", &["1: a|b", "2: 1|2"]);
    check_reads("a,b\r1,2", &["1: a|b", "1: 1|2"]);
    check_reads("\u{feff}a,b\n1,2", &["1: a|b", "2: 1|2"]);
    check_reads("a,b\n\n   \n1,2\n\n", &["1: a|b", "4: 1|2"]);
    check_reads(" a , b ,\n,,\n", &["1: a|b|", "2: ||"]);
    check_reads("\"a, b\",\"say \"\"hi\"\"\"\n", &["1: a, b|say \"hi\""]);
    check_reads("\"two\nlines\",x\ny,z\n", &["1: two\nlines|x", "3: y|z"]);
    check_reads(" \"padded\" ,x\n", &["1: padded|x"]);
    check_reads("5'10\",tall\n", &["1: 5'10\"|tall"]);
    check_reads("", &[]);
    check_reads("\n\n", &[]);
}

/// The `csv` crate read an unterminated quote to the end of the file: the rows after it became
/// one cell. Here the row is broken, and the rows after it are read on their own.
#[test]
fn an_unterminated_quote_breaks_its_row_and_not_the_rows_after_it() {
    check_reads(
        "first,last\nAda,\"Lovelace,ada@example.org\nGrace,Hopper\nAlan,Turing\n",
        &["1: first|last", &format!("2: ! {UNCLOSED}"), "3: Grace|Hopper", "4: Alan|Turing"],
    );
    check_reads("a\n\"open", &["1: a", &format!("2: ! {UNCLOSED}")]);
    // A well-formed quoted field over two lines, then a broken one starting on the row's
    // second line: the row is named by its first line, the field by its own.
    check_reads(
        "\"note\nmore\",\"open\nnext,row\n",
        &["1: ! the quoted field starting on line 2 is never closed: its closing quote is missing", "3: next|row"],
    );
}

#[test]
fn a_closing_quote_followed_by_text_breaks_its_row() {
    let junk = "a quoted field is followed by `d` after its closing quote (a quote inside a quoted field is \
                written twice: `\"\"`)";
    check_reads("\"abc\"def,x\nok,row\n", &[&format!("1: ! {junk}"), "2: ok|row"]);
    check_reads("x,\"abc\"def\r\nok,row", &[&format!("1: ! {junk}"), "2: ok|row"]);
    // The quote opened on line 2 meets the quote of line 3, followed by text: line 2 is
    // broken, and line 3 is read again on its own.
    check_reads(
        "a,b\nAda,\"Love\nGrace,\"Hopper\",x\n",
        &[
            "1: a|b",
            "2: ! a quoted field is not closed on its line (the quote on line 3 that would close it is followed \
             by `H`)",
            "3: Grace|Hopper|x",
        ],
    );
}

#[test]
fn text_that_is_not_utf8_breaks_only_its_row() {
    let mut input = b"a,b\n".to_vec();
    input.extend_from_slice(b"\xff\xfe,x\nok,row\n");
    let mut reader = Reader::new(input.as_slice());
    let mut record = csv::StringRecord::new();
    let mut seen = Vec::new();
    loop {
        match reader.read(&mut record).unwrap() {
            Next::Record(line) => seen.push(format!("{line}: {}", record.iter().collect::<Vec<_>>().join("|"))),
            Next::Broken(broken) => seen.push(format!("{}: ! {}", broken.line, broken.reason)),
            Next::End => break,
        }
    }
    assert_eq!(seen, ["1: a|b", "2: ! is not UTF-8 text (save the file as UTF-8 CSV)", "3: ok|row"]);
}

#[test]
fn check_counts_records_and_lists_broken_rows() {
    let summary = check("a,b\n\"x\"y,1\n2,3\n");
    assert_eq!(summary.records, 2);
    assert_eq!(summary.broken.iter().map(|b| b.line).collect::<Vec<_>>(), [2]);
    assert_eq!(check("").records, 0);
}
