//! The words the search index holds for a text, shared by the store, which indexes records and
//! queries with them, and by the migration that rebuilt PostgreSQL's documents with them.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The words of `text`: letters and digits only (every other character separates words), in
/// lower case, with diacritics removed, each followed by one space but the last.
///
/// This is what SQLite's FTS5 `unicode61 remove_diacritics 2` tokenizer makes of a text, so a
/// PostgreSQL document built from these words (`to_tsvector('simple', words)`) matches the same
/// queries: `ada@engines.example` is the three words `ada engines example` on both databases,
/// where PostgreSQL's own parser would keep one e-mail token that no word of a query matches.
pub fn search_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut gap = false;
    for c in text.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        if c.is_alphanumeric() {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.extend(c.to_lowercase());
        } else {
            gap = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::search_words;

    #[test]
    fn words_are_letters_and_digits_in_lower_case_without_diacritics() {
        assert_eq!(search_words("Ada@Engines.example"), "ada engines example");
        assert_eq!(search_words("  José Müller-Lüdenscheidt, #42 "), "jose muller ludenscheidt 42");
        assert_eq!(search_words("日本 🦀 Ωmega"), "日本 ωmega");
        assert_eq!(search_words("first4242 don't"), "first4242 don t");
        assert_eq!(search_words(""), "");
        assert_eq!(search_words("--- !!"), "");
    }
}
