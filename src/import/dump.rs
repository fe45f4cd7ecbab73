//! Reading the rows of one table out of a `mysqldump` file, without a server.
//!
//! The file is SQL as `mysqldump` writes it (and as people edit it): `--`, `#` and
//! `/* … */` comments, the version-conditional comments `/*!40103 … */` whose content is
//! SQL, strings in single or double quotes with backslash escapes and doubled quotes,
//! back-quoted names, multi-row `INSERT … VALUES (…),(…);`, `NULL`. The tokenizer knows
//! the line of every token, so an error names the line to look at.
//!
//! What is taken from the file: the column order of the table's `CREATE TABLE` (an
//! `INSERT` without a column list follows it), its `INSERT`/`REPLACE` rows, and whether
//! the dump was written with `SET TIME_ZONE='+00:00'` (mysqldump's default `--tz-utc`: its
//! `TIMESTAMP` values are then UTC).

use super::Value;

/// A token of the dump.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// A bare word: keyword, name or number (`INSERT`, `NULL`, `12.5`, `-3`).
    Word(String),
    /// A back-quoted name, unquoted.
    Name(String),
    /// A quoted string, unescaped.
    Str(String),
    /// One of `( ) , ; = .`, or another single character.
    Punct(char),
}

/// Where the tokenizer gave up: the rest of the file cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {what}")]
pub struct SyntaxError {
    /// 1-based line.
    pub line: u64,
    /// What is wrong and how to fix it.
    pub what: String,
}

/// Splits SQL text into tokens with their lines.
pub struct Tokenizer<'a> {
    src: &'a [u8],
    pos: usize,
    line: u64,
    /// Inside a `/*! … */` conditional comment (its `*/` is dropped).
    conditional: bool,
}

impl<'a> Tokenizer<'a> {
    /// A tokenizer over `src`.
    pub fn new(src: &'a [u8]) -> Tokenizer<'a> {
        Tokenizer {
            src,
            pos: 0,
            line: 1,
            conditional: false,
        }
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.src.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek(0)?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// Skips blanks and comments; `Err` on a comment that never ends.
    fn skip_blank(&mut self) -> Result<(), SyntaxError> {
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some(c), _) if c.is_ascii_whitespace() => {
                    self.bump();
                }
                (Some(b'#'), _) => self.skip_line(),
                (Some(b'-'), Some(b'-'))
                    if self.peek(2).is_none_or(|c| c.is_ascii_whitespace()) =>
                {
                    self.skip_line()
                }
                (Some(b'/'), Some(b'*')) if self.peek(2) == Some(b'!') => {
                    self.pos += 3;
                    while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                        self.pos += 1;
                    }
                    self.conditional = true;
                }
                (Some(b'/'), Some(b'*')) => {
                    let line = self.line;
                    self.pos += 2;
                    loop {
                        match self.bump() {
                            Some(b'*') if self.peek(0) == Some(b'/') => {
                                self.pos += 1;
                                break;
                            }
                            Some(_) => {}
                            None => {
                                return Err(SyntaxError {
                                    line,
                                    what: "a `/*` comment is never closed: the file is cut \
                                           short or damaged; dump the table again"
                                        .into(),
                                })
                            }
                        }
                    }
                }
                (Some(b'*'), Some(b'/')) if self.conditional => {
                    self.pos += 2;
                    self.conditional = false;
                }
                _ => return Ok(()),
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == b'\n' {
                break;
            }
        }
    }

    /// A quoted string or name; the opening quote is at `pos`.
    fn quoted(&mut self, quote: u8) -> Result<String, SyntaxError> {
        let line = self.line;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(SyntaxError {
                    line,
                    what: format!(
                        "a {} opened here is never closed: the file is cut short or damaged; \
                         dump the table again",
                        if quote == b'`' { "name" } else { "string" }
                    ),
                });
            };
            if c == quote {
                if self.peek(0) == Some(quote) {
                    self.pos += 1;
                    out.push(quote);
                    continue;
                }
                break;
            }
            if c == b'\\' && quote != b'`' {
                let Some(e) = self.bump() else { continue };
                out.push(match e {
                    b'0' => 0,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 8,
                    b'Z' => 26,
                    other => other,
                });
                continue;
            }
            out.push(c);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// The next token and its line; `None` at the end.
    pub fn next_token(&mut self) -> Result<Option<(Token, u64)>, SyntaxError> {
        self.skip_blank()?;
        let line = self.line;
        let Some(c) = self.peek(0) else {
            return Ok(None);
        };
        let tok = match c {
            b'\'' | b'"' => Token::Str(self.quoted(c)?),
            b'`' => Token::Name(self.quoted(c)?),
            c if is_word(c) || (c == b'-' && self.peek(1).is_some_and(is_word)) => {
                let start = self.pos;
                self.pos += 1;
                while self.peek(0).is_some_and(|c| {
                    is_word(c)
                        || ((c == b'+' || c == b'-')
                            && matches!(self.src.get(self.pos - 1), Some(b'e' | b'E')))
                }) {
                    self.pos += 1;
                }
                Token::Word(String::from_utf8_lossy(&self.src[start..self.pos]).into_owned())
            }
            // One ASCII character (bytes from 0x80 are word characters).
            c => {
                self.pos += 1;
                Token::Punct(char::from(c))
            }
        };
        Ok(Some((tok, line)))
    }
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'$' || c >= 0x80
}

/// One row found in the dump.
#[derive(Debug, Clone, PartialEq)]
pub struct DumpRow {
    /// Line of its opening parenthesis.
    pub line: u64,
    /// Its values, in the order of `columns`.
    pub values: Vec<Value>,
    /// The column names the values follow.
    pub columns: std::sync::Arc<Vec<String>>,
}

/// A row the dump holds but that cannot be read as a row (counted, reported, skipped).
#[derive(Debug, Clone, PartialEq)]
pub struct BadRow {
    /// Its line.
    pub line: u64,
    /// What is wrong and the fix.
    pub what: String,
}

/// What the parser hands on, in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A row of the table.
    Row(DumpRow),
    /// A row that could not be read.
    Bad(BadRow),
}

/// Reads the rows of `table` from a dump.
pub struct DumpReader<'a> {
    tok: Tokenizer<'a>,
    table: String,
    /// The table's columns from its `CREATE TABLE` (or the default order).
    columns: std::sync::Arc<Vec<String>>,
    /// Column name and first type word of the table's `CREATE TABLE`.
    types: Vec<(String, String)>,
    /// The dump said `SET TIME_ZONE='+00:00'`.
    pub tz_utc: bool,
    /// `INSERT` statements for the table seen so far.
    pub inserts: u64,
}

/// The statement so far, as tokens with lines.
type Stmt = Vec<(Token, u64)>;

impl<'a> DumpReader<'a> {
    /// A reader of `table`'s rows; `default_columns` is the order an `INSERT` without a
    /// column list follows when the dump has no `CREATE TABLE` for the table.
    pub fn new(src: &'a [u8], table: &str, default_columns: &[&str]) -> DumpReader<'a> {
        DumpReader {
            tok: Tokenizer::new(src),
            table: table.to_string(),
            columns: std::sync::Arc::new(default_columns.iter().map(|c| c.to_string()).collect()),
            types: Vec::new(),
            tz_utc: false,
            inserts: 0,
        }
    }

    /// True when the table's `CREATE TABLE` declares `column` as `DATETIME` (wall time,
    /// which `--tz-utc` does not convert, unlike `TIMESTAMP`).
    pub fn created_is_datetime(&self, column: &str) -> bool {
        self.types
            .iter()
            .any(|(c, t)| c.eq_ignore_ascii_case(column) && t.eq_ignore_ascii_case("DATETIME"))
    }

    /// Reads statements until one of the table's `INSERT`s and returns its rows;
    /// `Ok(None)` at the end of the file.
    pub fn next_insert(&mut self) -> Result<Option<Vec<Item>>, SyntaxError> {
        loop {
            let Some(stmt) = self.statement()? else {
                return Ok(None);
            };
            if let Some(items) = self.interpret(&stmt) {
                return Ok(Some(items));
            }
        }
    }

    /// The next statement's tokens (up to `;` or the end); `None` at the end.
    fn statement(&mut self) -> Result<Option<Stmt>, SyntaxError> {
        let mut stmt = Vec::new();
        while let Some((t, line)) = self.tok.next_token()? {
            if t == Token::Punct(';') {
                if stmt.is_empty() {
                    continue;
                }
                return Ok(Some(stmt));
            }
            stmt.push((t, line));
        }
        Ok((!stmt.is_empty()).then_some(stmt))
    }

    fn is_table(&self, t: Option<&(Token, u64)>) -> bool {
        match t {
            Some((Token::Name(n) | Token::Word(n), _)) => n
                .rsplit('.')
                .next()
                .unwrap_or(n)
                .eq_ignore_ascii_case(&self.table),
            _ => false,
        }
    }

    /// The rows of an `INSERT` into the table; records `SET TIME_ZONE` and `CREATE TABLE`.
    fn interpret(&mut self, stmt: &Stmt) -> Option<Vec<Item>> {
        let word = |i: usize| match stmt.get(i) {
            Some((Token::Word(w), _)) => Some(w.to_ascii_uppercase()),
            _ => None,
        };
        match word(0).as_deref() {
            Some("SET") => {
                if word(1).as_deref() == Some("TIME_ZONE") {
                    self.tz_utc = matches!(stmt.get(3), Some((Token::Str(s), _))
                        if matches!(s.as_str(), "+00:00" | "UTC" | "+0:00"));
                }
                None
            }
            Some("CREATE") => {
                let at = stmt.iter().position(
                    |(t, _)| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case("TABLE")),
                )?;
                let mut i = at + 1;
                // IF NOT EXISTS
                while matches!(word(i).as_deref(), Some("IF" | "NOT" | "EXISTS")) {
                    i += 1;
                }
                if self.is_table(stmt.get(i)) {
                    if let Some(cols) = create_columns(&stmt[i + 1..]) {
                        self.columns =
                            std::sync::Arc::new(cols.iter().map(|(c, _)| c.clone()).collect());
                        self.types = cols;
                    }
                }
                None
            }
            Some("INSERT" | "REPLACE") => {
                let mut i = 1;
                while matches!(
                    word(i).as_deref(),
                    Some("IGNORE" | "INTO" | "LOW_PRIORITY" | "DELAYED" | "HIGH_PRIORITY")
                ) {
                    i += 1;
                }
                if !self.is_table(stmt.get(i)) {
                    return None;
                }
                self.inserts += 1;
                Some(self.insert_rows(&stmt[i + 1..], stmt[0].1))
            }
            _ => None,
        }
    }

    fn insert_rows(&self, rest: &[(Token, u64)], line: u64) -> Vec<Item> {
        let mut columns = self.columns.clone();
        let mut i = 0;
        if matches!(rest.first(), Some((Token::Punct('('), _))) {
            let (cols, next) = group(rest, 0);
            let names: Vec<String> = cols
                .iter()
                .filter_map(|(t, _)| match t {
                    Token::Name(n) | Token::Word(n) => Some(n.clone()),
                    _ => None,
                })
                .collect();
            columns = std::sync::Arc::new(names);
            i = next;
        }
        match rest.get(i) {
            Some((Token::Word(w), _))
                if w.eq_ignore_ascii_case("VALUES") || w.eq_ignore_ascii_case("VALUE") => {}
            _ => {
                return vec![Item::Bad(BadRow {
                    line,
                    what: "an INSERT into the table without VALUES (INSERT … SELECT or SET \
                           cannot be read from a dump): dump with mysqldump's defaults"
                        .into(),
                })]
            }
        }
        i += 1;
        let mut items = Vec::new();
        while i < rest.len() {
            let row_line = rest[i].1;
            if rest[i].0 != Token::Punct('(') {
                items.push(Item::Bad(BadRow {
                    line: row_line,
                    what: format!(
                        "expected `(` to start a row, found {}: the rest of this INSERT is \
                         skipped; fix the row or dump the table again",
                        describe(&rest[i].0)
                    ),
                }));
                break;
            }
            let (vals, next) = group(rest, i);
            items.push(row_of(vals, row_line, &columns));
            i = next;
            if matches!(rest.get(i), Some((Token::Punct(','), _))) {
                i += 1;
            }
        }
        items
    }
}

/// The tokens inside the parenthesised group opening at `at`, and the index after it.
fn group(toks: &[(Token, u64)], at: usize) -> (&[(Token, u64)], usize) {
    let mut depth = 0usize;
    for (j, (t, _)) in toks.iter().enumerate().skip(at) {
        match t {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => {
                depth -= 1;
                if depth == 0 {
                    return (&toks[at + 1..j], j + 1);
                }
            }
            _ => {}
        }
    }
    (&toks[(at + 1).min(toks.len())..], toks.len())
}

fn describe(t: &Token) -> String {
    match t {
        Token::Word(w) => format!("`{w}`"),
        Token::Name(n) => format!("the name `{n}`"),
        Token::Str(_) => "a string".into(),
        Token::Punct(c) => format!("`{c}`"),
    }
}

/// One row's values: comma-separated literals.
fn row_of(vals: &[(Token, u64)], line: u64, columns: &std::sync::Arc<Vec<String>>) -> Item {
    let mut values = Vec::new();
    let mut expect_value = true;
    let mut negative = false;
    for (t, _) in vals {
        match (t, expect_value) {
            (Token::Punct(','), false) => expect_value = true,
            (Token::Punct('-'), true) => negative = !negative,
            (Token::Punct('+'), true) => {}
            (Token::Word(w), true) if w.eq_ignore_ascii_case("NULL") => {
                values.push(Value::Null);
                expect_value = false;
            }
            (Token::Word(w), true) => {
                let w = if negative { format!("-{w}") } else { w.clone() };
                negative = false;
                values.push(Value::Text(w));
                expect_value = false;
            }
            (Token::Str(s), true) => {
                values.push(Value::Text(s.clone()));
                expect_value = false;
            }
            (t, _) => {
                return Item::Bad(BadRow {
                    line,
                    what: format!(
                        "unexpected {} in a row: fix the row or dump the table again",
                        describe(t)
                    ),
                })
            }
        }
    }
    if values.len() != columns.len() {
        return Item::Bad(BadRow {
            line,
            what: format!(
                "a row of {} values for {} columns: the INSERT names no columns and the dump \
                 has no CREATE TABLE for the table; dump with mysqldump --complete-insert",
                values.len(),
                columns.len()
            ),
        });
    }
    Item::Row(DumpRow {
        line,
        values,
        columns: columns.clone(),
    })
}

/// Column names of a `CREATE TABLE` body, each with the first word of its type.
fn create_columns(rest: &[(Token, u64)]) -> Option<Vec<(String, String)>> {
    if !matches!(rest.first(), Some((Token::Punct('('), _))) {
        return None;
    }
    let (body, _) = group(rest, 0);
    let mut cols: Vec<(String, String)> = Vec::new();
    let mut depth = 0usize;
    // Position within the current definition: 0 its name, 1 its type.
    let mut at = 0usize;
    let mut is_column = false;
    for (t, _) in body {
        match t {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => depth = depth.saturating_sub(1),
            Token::Punct(',') if depth == 0 => {
                at = 0;
                continue;
            }
            Token::Name(n) | Token::Word(n) if depth == 0 && at == 0 => {
                let kw = n.to_ascii_uppercase();
                is_column = !(matches!(t, Token::Word(_))
                    && matches!(
                        kw.as_str(),
                        "PRIMARY"
                            | "KEY"
                            | "UNIQUE"
                            | "INDEX"
                            | "CONSTRAINT"
                            | "FOREIGN"
                            | "FULLTEXT"
                            | "SPATIAL"
                            | "CHECK"
                            | "PERIOD"
                    ));
                if is_column {
                    cols.push((n.clone(), String::new()));
                }
            }
            Token::Word(w) if depth == 0 && at == 1 && is_column => {
                if let Some(last) = cols.last_mut() {
                    last.1 = w.clone();
                }
            }
            _ => {}
        }
        at += 1;
    }
    (!cols.is_empty()).then_some(cols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tokens(src: &str) -> Result<Vec<Token>, SyntaxError> {
        let mut t = Tokenizer::new(src.as_bytes());
        let mut out = Vec::new();
        while let Some((tok, _)) = t.next_token()? {
            out.push(tok);
        }
        Ok(out)
    }

    fn rows(src: &str) -> (Vec<Item>, bool) {
        let mut r = DumpReader::new(src.as_bytes(), "T", &["A", "B"]);
        let mut all = Vec::new();
        while let Some(items) = r.next_insert().unwrap() {
            all.extend(items);
        }
        (all, r.tz_utc)
    }

    fn texts(item: &Item) -> Vec<Option<String>> {
        match item {
            Item::Row(r) => r
                .values
                .iter()
                .map(|v| match v {
                    Value::Null => None,
                    Value::Text(t) => Some(t.clone()),
                })
                .collect(),
            Item::Bad(b) => panic!("bad row: {b:?}"),
        }
    }

    #[test]
    fn strings_escapes_and_doubled_quotes() {
        let t = tokens(r#"'it''s' "a \"b\"" 'x\ny\\z\'' `we``ird`"#).unwrap();
        assert_eq!(
            t,
            vec![
                Token::Str("it's".into()),
                Token::Str("a \"b\"".into()),
                Token::Str("x\ny\\z'".into()),
                Token::Name("we`ird".into()),
            ]
        );
    }

    #[test]
    fn multi_row_insert_with_nulls_comments_and_negatives() {
        let src = "-- MariaDB dump\n/*!40103 SET TIME_ZONE='+00:00' */;\n\
                   # a comment\nINSERT INTO `T` VALUES (1,NULL),(-2.5,'a;b'),\n(3, /* c */ 'x)');\n\
                   INSERT INTO `other` VALUES (9,9);";
        let (items, utc) = rows(src);
        assert!(utc);
        assert_eq!(items.len(), 3);
        assert_eq!(texts(&items[0]), vec![Some("1".into()), None]);
        assert_eq!(
            texts(&items[1]),
            vec![Some("-2.5".into()), Some("a;b".into())]
        );
        assert_eq!(texts(&items[2]), vec![Some("3".into()), Some("x)".into())]);
        match &items[2] {
            Item::Row(r) => assert_eq!(r.line, 5),
            Item::Bad(_) => unreachable!(),
        }
    }

    #[test]
    fn column_order_from_create_table_and_column_lists() {
        let src = "CREATE TABLE `T` (\n `B` int NOT NULL,\n `A` decimal(6,2) DEFAULT NULL,\n \
                   PRIMARY KEY (`B`)\n) ENGINE=InnoDB;\nINSERT INTO T VALUES (1,2);\n\
                   INSERT INTO T (`A`,`B`) VALUES (3,4);";
        let (items, utc) = rows(src);
        assert!(!utc);
        match (&items[0], &items[1]) {
            (Item::Row(a), Item::Row(b)) => {
                assert_eq!(*a.columns, vec!["B".to_string(), "A".to_string()]);
                assert_eq!(*b.columns, vec!["A".to_string(), "B".to_string()]);
            }
            _ => panic!("{items:?}"),
        }
    }

    #[test]
    fn a_bad_row_names_its_line_and_the_rest_is_read() {
        let src = "INSERT INTO T VALUES (1,2),\n(1,2,3),\n(5,6);";
        let (items, _) = rows(src);
        assert_eq!(items.len(), 3);
        match &items[1] {
            Item::Bad(b) => {
                assert_eq!(b.line, 2);
                assert!(b.what.contains("3 values for 2 columns"), "{}", b.what);
            }
            Item::Row(_) => panic!("{items:?}"),
        }
        assert_eq!(texts(&items[2]), vec![Some("5".into()), Some("6".into())]);
    }

    #[test]
    fn an_unclosed_string_is_a_syntax_error_with_its_line() {
        let mut r = DumpReader::new(
            b"INSERT INTO T VALUES (1,2);\nINSERT INTO T VALUES (1,'x",
            "T",
            &["A", "B"],
        );
        assert!(r.next_insert().unwrap().is_some());
        let e = r.next_insert().unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.what.contains("never closed"), "{e}");
    }

    /// A value as mysqldump would write it.
    fn literal(v: &Option<String>) -> String {
        match v {
            None => "NULL".into(),
            Some(s) => {
                let mut o = String::from("'");
                for c in s.chars() {
                    match c {
                        '\'' => o.push_str("\\'"),
                        '\\' => o.push_str("\\\\"),
                        '\n' => o.push_str("\\n"),
                        '\r' => o.push_str("\\r"),
                        '\0' => o.push_str("\\0"),
                        c => o.push(c),
                    }
                }
                o.push('\'');
                o
            }
        }
    }

    proptest! {
        /// Whatever the values, a dump of them reads back as the same rows.
        #[test]
        fn rows_round_trip(rows_in in proptest::collection::vec(
            proptest::collection::vec(proptest::option::of(".{0,12}"), 2..=2), 1..6),
            per_insert in 1usize..4)
        {
            let mut src = String::from("/*!40101 SET NAMES utf8mb4 */;\n");
            for chunk in rows_in.chunks(per_insert) {
                let vals: Vec<String> = chunk
                    .iter()
                    .map(|r| format!("({})", r.iter().map(literal).collect::<Vec<_>>().join(",")))
                    .collect();
                src.push_str(&format!("INSERT INTO `T` VALUES {};\n", vals.join(",")));
            }
            let (items, _) = rows(&src);
            let got: Vec<Vec<Option<String>>> = items.iter().map(texts).collect();
            prop_assert_eq!(got, rows_in);
        }

        /// Any bytes at all: the tokenizer ends (a token or an error), never panics.
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut r = DumpReader::new(&bytes, "T", &["A"]);
            let mut n = 0;
            while let Ok(Some(_)) = r.next_insert() {
                n += 1;
                prop_assert!(n < 1000);
            }
        }

        /// Numbers are taken as written, signs and exponents included.
        #[test]
        fn numbers_round_trip(x in proptest::num::f64::NORMAL, id in any::<i64>()) {
            let src = format!("INSERT INTO T VALUES ({id},{x:e});");
            let (items, _) = rows(&src);
            let got = texts(&items[0]);
            prop_assert_eq!(got[0].as_deref().map(|s| s.parse::<i64>().ok()), Some(Some(id)));
            prop_assert_eq!(got[1].as_deref().map(|s| s.parse::<f64>().ok()), Some(Some(x)));
        }
    }
}
