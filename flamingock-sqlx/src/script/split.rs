//! Leaf: splits an SQL file into its statements, for files that run outside a transaction, one
//! statement at a time (PostgreSQL runs a multi-statement simple query in an implicit
//! transaction, so `CREATE INDEX CONCURRENTLY` must be sent on its own).
//!
//! A `;` ends a statement only outside string literals (`'..'`, with `''`; backslash escapes on
//! MySQL and in PostgreSQL's `E'..'`), quoted identifiers (`".."`, `` `..` ``), comments (`--`,
//! MySQL's `#`, `/* .. */`, nested on PostgreSQL), PostgreSQL's dollar quotes (`$$..$$`,
//! `$tag$..$tag$`) and the `BEGIN ... END` body of a `CREATE TRIGGER`, `FUNCTION`, `PROCEDURE` or
//! `EVENT` (SQLite and MySQL triggers, MySQL routines, PostgreSQL's `BEGIN ATOMIC`). Client
//! commands such as the `mysql` tool's `DELIMITER` are not SQL and are not understood.

/// The SQL dialect whose quoting rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScriptDialect {
    /// SQLite's quoting, and `CREATE TRIGGER ... BEGIN ... END` bodies.
    Sqlite,
    /// PostgreSQL's quoting, with `$$` / `$tag$` bodies and nested block comments.
    Postgres,
    /// MySQL's and MariaDB's quoting, with backslash escapes and routine and trigger bodies.
    MySql,
}

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptStatement {
    /// The statement's text, trimmed, without its closing `;`.
    pub text: String,
    /// The 1-based line of the file it starts on.
    pub line: u32,
}

/// The statements of `sql`, in order. Pieces holding only whitespace and comments are dropped.
pub fn split_statements(sql: &str, dialect: ScriptDialect) -> Vec<ScriptStatement> {
    Splitter::new(sql, dialect).run()
}

struct Splitter<'a> {
    sql: &'a str,
    bytes: &'a [u8],
    dialect: ScriptDialect,
    i: usize,
    line: u32,
    statements: Vec<ScriptStatement>,
    /// Where the current statement starts (byte), and its line once it has code.
    start: usize,
    start_line: Option<u32>,
    /// The first words of the current statement, upper-cased, to tell a routine from the rest.
    head: Vec<String>,
    /// Open `BEGIN`/`CASE` blocks in the current routine.
    depth: u32,
}

/// How many leading words are looked at to tell `CREATE .. TRIGGER` and the like.
const HEAD_WORDS: usize = 8;

impl<'a> Splitter<'a> {
    fn new(sql: &'a str, dialect: ScriptDialect) -> Self {
        Self {
            sql,
            bytes: sql.as_bytes(),
            dialect,
            i: 0,
            line: 1,
            statements: Vec::new(),
            start: 0,
            start_line: None,
            head: Vec::new(),
            depth: 0,
        }
    }

    fn peek(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.i + offset).copied()
    }

    /// Moves past one byte, counting lines.
    fn bump(&mut self) {
        if self.bytes[self.i] == b'\n' {
            self.line += 1;
        }
        self.i += 1;
    }

    fn mark_code(&mut self) {
        if self.start_line.is_none() {
            self.start_line = Some(self.line);
        }
    }

    fn run(mut self) -> Vec<ScriptStatement> {
        while self.i < self.bytes.len() {
            let byte = self.bytes[self.i];
            match byte {
                b'-' if self.peek(1) == Some(b'-') => self.line_comment(),
                b'#' if self.dialect == ScriptDialect::MySql => self.line_comment(),
                b'/' if self.peek(1) == Some(b'*') => self.block_comment(),
                b'\'' => {
                    self.mark_code();
                    let backslash = self.dialect == ScriptDialect::MySql || self.escape_string();
                    self.quoted(b'\'', backslash);
                }
                b'"' => {
                    self.mark_code();
                    self.quoted(b'"', self.dialect == ScriptDialect::MySql);
                }
                b'`' if self.dialect != ScriptDialect::Postgres => {
                    self.mark_code();
                    self.quoted(b'`', false);
                }
                b'$' if self.dialect == ScriptDialect::Postgres => {
                    self.mark_code();
                    self.dollar();
                }
                b';' => {
                    if self.depth == 0 {
                        self.finish(self.i);
                        self.i += 1;
                        self.start = self.i;
                    } else {
                        self.i += 1;
                    }
                }
                b if b.is_ascii_alphabetic() || b == b'_' => {
                    self.mark_code();
                    self.word();
                }
                b if b.is_ascii_whitespace() => self.bump(),
                _ => {
                    self.mark_code();
                    self.bump();
                }
            }
        }
        self.finish(self.bytes.len());
        self.statements
    }

    /// Ends the current statement at byte `end` (exclusive).
    fn finish(&mut self, end: usize) {
        if let Some(line) = self.start_line.take() {
            let text = self.sql[self.start..end].trim();
            // Leading comments stay part of the statement; the line is that of its first code.
            self.statements.push(ScriptStatement {
                text: text.to_owned(),
                line,
            });
        }
        self.head.clear();
        self.depth = 0;
    }

    fn line_comment(&mut self) {
        while self.i < self.bytes.len() && self.bytes[self.i] != b'\n' {
            self.i += 1;
        }
    }

    fn block_comment(&mut self) {
        let nests = self.dialect == ScriptDialect::Postgres;
        let mut level = 0;
        while self.i < self.bytes.len() {
            if self.peek(0) == Some(b'/') && self.peek(1) == Some(b'*') {
                if level > 0 && !nests {
                    self.i += 2;
                    continue;
                }
                level += 1;
                self.i += 2;
            } else if self.peek(0) == Some(b'*') && self.peek(1) == Some(b'/') {
                level -= 1;
                self.i += 2;
                if level == 0 {
                    return;
                }
            } else {
                self.bump();
            }
        }
    }

    /// Whether the `'` at `i` opens PostgreSQL's `E'..'` (backslash escapes): an `E` right before
    /// it that is a word of its own.
    fn escape_string(&self) -> bool {
        if self.dialect != ScriptDialect::Postgres || self.i == 0 {
            return false;
        }
        let before = self.bytes[self.i - 1];
        if !matches!(before, b'E' | b'e') {
            return false;
        }
        self.i < 2 || !is_word_byte(self.bytes[self.i - 2])
    }

    /// A literal or quoted identifier opened by `quote` at `i`; a doubled quote stays inside.
    fn quoted(&mut self, quote: u8, backslash: bool) {
        self.i += 1;
        while self.i < self.bytes.len() {
            let byte = self.bytes[self.i];
            if backslash && byte == b'\\' {
                self.i += 1;
                if self.i < self.bytes.len() {
                    self.bump();
                }
                continue;
            }
            if byte == quote {
                if self.peek(1) == Some(quote) {
                    self.i += 2;
                    continue;
                }
                self.i += 1;
                return;
            }
            self.bump();
        }
    }

    /// `$tag$ .. $tag$` (or `$$ .. $$`) at `i`; a `$` that opens no such quote (`$1`) is skipped.
    fn dollar(&mut self) {
        let rest = &self.bytes[self.i + 1..];
        let tag_len = rest
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count();
        let tag_ok = tag_len == 0 || !rest[0].is_ascii_digit();
        if !tag_ok || rest.get(tag_len) != Some(&b'$') {
            self.i += 1;
            return;
        }
        let delimiter = &self.sql[self.i..self.i + tag_len + 2];
        let body_start = self.i + delimiter.len();
        match self.sql[body_start..].find(delimiter) {
            Some(offset) => {
                let end = body_start + offset + delimiter.len();
                while self.i < end {
                    self.bump();
                }
            }
            None => {
                // Unterminated: the rest is the body, as the server will say.
                while self.i < self.bytes.len() {
                    self.bump();
                }
            }
        }
    }

    fn word(&mut self) {
        let start = self.i;
        while self.i < self.bytes.len() && is_word_byte(self.bytes[self.i]) {
            self.i += 1;
        }
        let word = self.sql[start..self.i].to_ascii_uppercase();
        if self.head.len() < HEAD_WORDS {
            self.head.push(word.clone());
        }
        if self.is_routine() {
            match word.as_str() {
                "BEGIN" | "CASE" => self.depth += 1,
                // `END IF`, `END LOOP`, ... close blocks that were not counted: look ahead.
                "END" if !self.next_word_closes_uncounted() => {
                    self.depth = self.depth.saturating_sub(1);
                }
                _ => {}
            }
        }
    }

    /// Whether the word after the `END` just read is `IF`, `LOOP`, `WHILE` or `REPEAT`.
    fn next_word_closes_uncounted(&self) -> bool {
        let rest = &self.sql[self.i..];
        let rest = rest.trim_start();
        let next: String = rest
            .bytes()
            .take_while(|b| is_word_byte(*b))
            .map(|b| b.to_ascii_uppercase() as char)
            .collect();
        matches!(next.as_str(), "IF" | "LOOP" | "WHILE" | "REPEAT")
    }

    /// `CREATE [..] TRIGGER | FUNCTION | PROCEDURE | EVENT`: a statement that may have a
    /// `BEGIN ... END` body.
    fn is_routine(&self) -> bool {
        self.head.first().is_some_and(|w| w == "CREATE")
            && self
                .head
                .iter()
                .any(|w| matches!(w.as_str(), "TRIGGER" | "FUNCTION" | "PROCEDURE" | "EVENT"))
    }
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80
}

#[cfg(test)]
mod tests {
    use super::ScriptDialect::{MySql, Postgres, Sqlite};
    use super::*;

    fn texts(sql: &str, dialect: ScriptDialect) -> Vec<String> {
        split_statements(sql, dialect)
            .into_iter()
            .map(|s| s.text)
            .collect()
    }

    #[test]
    fn statements_split_at_semicolons_with_their_lines() {
        let sql = "CREATE TABLE a (x INT);\n\nINSERT INTO a VALUES (1);\nSELECT 1";
        let statements = split_statements(sql, Sqlite);
        assert_eq!(
            statements,
            [
                ScriptStatement {
                    text: "CREATE TABLE a (x INT)".into(),
                    line: 1
                },
                ScriptStatement {
                    text: "INSERT INTO a VALUES (1)".into(),
                    line: 3
                },
                ScriptStatement {
                    text: "SELECT 1".into(),
                    line: 4
                },
            ]
        );
    }

    #[test]
    fn semicolons_in_quotes_and_identifiers_do_not_split() {
        let sql = "INSERT INTO t VALUES ('a;b', 'it''s; fine');\nSELECT \"odd;name\" FROM t;";
        assert_eq!(
            texts(sql, Postgres),
            [
                "INSERT INTO t VALUES ('a;b', 'it''s; fine')",
                "SELECT \"odd;name\" FROM t"
            ]
        );
        let sql = "SELECT `a;b` FROM t; INSERT INTO t VALUES ('x\\';y');";
        assert_eq!(
            texts(sql, MySql),
            ["SELECT `a;b` FROM t", "INSERT INTO t VALUES ('x\\';y')"]
        );
        // A backslash is an ordinary character in a standard PostgreSQL string...
        assert_eq!(
            texts("SELECT 'C:\\'; SELECT 2;", Postgres),
            ["SELECT 'C:\\'", "SELECT 2"]
        );
        // ...and an escape in E'..'.
        assert_eq!(
            texts("SELECT E'a\\';b'; SELECT 2;", Postgres),
            ["SELECT E'a\\';b'", "SELECT 2"]
        );
    }

    #[test]
    fn comments_do_not_split_and_comment_only_pieces_are_dropped() {
        let sql = "-- first; not a statement\nCREATE TABLE a (x INT); /* a; b */\n/* outer /* inner; */ still; */ SELECT 1;\n-- trailing; comment\n";
        assert_eq!(
            texts(sql, Postgres),
            [
                "-- first; not a statement\nCREATE TABLE a (x INT)",
                "/* a; b */\n/* outer /* inner; */ still; */ SELECT 1"
            ]
        );
        let statements = split_statements(sql, Postgres);
        assert_eq!(statements[0].line, 2);
        assert_eq!(
            texts("SELECT 1; # mysql; comment\nSELECT 2;", MySql),
            ["SELECT 1", "# mysql; comment\nSELECT 2"]
        );
    }

    #[test]
    fn dollar_quoted_bodies_do_not_split() {
        let sql = "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;\n\
                   CREATE FUNCTION g() RETURNS text AS $body$ SELECT 'a;$$;b'; $body$ LANGUAGE sql;\n\
                   SELECT $1::int;";
        assert_eq!(
            texts(sql, Postgres),
            [
                "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql",
                "CREATE FUNCTION g() RETURNS text AS $body$ SELECT 'a;$$;b'; $body$ LANGUAGE sql",
                "SELECT $1::int"
            ]
        );
    }

    #[test]
    fn trigger_and_routine_bodies_do_not_split() {
        let sqlite = "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  INSERT INTO log VALUES (new.x);\n  UPDATE a SET y = CASE WHEN new.x > 0 THEN 1 ELSE 0 END;\nEND;\nSELECT 1;";
        assert_eq!(
            texts(sqlite, Sqlite),
            [
                "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  INSERT INTO log VALUES (new.x);\n  UPDATE a SET y = CASE WHEN new.x > 0 THEN 1 ELSE 0 END;\nEND",
                "SELECT 1"
            ]
        );
        let mysql = "CREATE DEFINER = 'app'@'%' TRIGGER t BEFORE INSERT ON a FOR EACH ROW BEGIN\n  IF new.x < 0 THEN SET new.x = 0; END IF;\n  WHILE new.x > 10 DO SET new.x = new.x - 10; END WHILE;\nEND;\nINSERT INTO a VALUES (1);";
        assert_eq!(
            texts(mysql, MySql),
            [
                "CREATE DEFINER = 'app'@'%' TRIGGER t BEFORE INSERT ON a FOR EACH ROW BEGIN\n  IF new.x < 0 THEN SET new.x = 0; END IF;\n  WHILE new.x > 10 DO SET new.x = new.x - 10; END WHILE;\nEND",
                "INSERT INTO a VALUES (1)"
            ]
        );
        let atomic = "CREATE FUNCTION one() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\nSELECT one();";
        assert_eq!(
            texts(atomic, Postgres),
            [
                "CREATE FUNCTION one() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END",
                "SELECT one()"
            ]
        );
    }

    #[test]
    fn a_transaction_begin_is_an_ordinary_statement() {
        assert_eq!(
            texts(
                "BEGIN; INSERT INTO a VALUES (1); END; SELECT CASE WHEN 1 THEN 2 END;",
                Sqlite
            ),
            [
                "BEGIN",
                "INSERT INTO a VALUES (1)",
                "END",
                "SELECT CASE WHEN 1 THEN 2 END"
            ]
        );
    }
}
