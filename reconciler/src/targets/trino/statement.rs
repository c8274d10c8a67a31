//! The SQL text olo sends to Trino: quoting, a first check that a statement only reads, and
//! the statements of dynamic catalog management.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{QueryRequest, Trino, TrinoError};

// ---------------------------------------------------------------------------------------------
// SQL text.

/// `name` as a Trino delimited identifier: in double quotes, inner double quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `s` as a Trino string literal: in single quotes, inner single quotes doubled. `None` for text
/// holding a NUL, which would reach C-string APIs cut short.
pub fn quote_literal(s: &str) -> Option<String> {
    (!s.contains('\0')).then(|| format!("'{}'", s.replace('\'', "''")))
}

/// The first keywords a read-only statement may start with.
const READ_ONLY_KEYWORDS: [&str; 6] = ["SELECT", "WITH", "SHOW", "DESCRIBE", "EXPLAIN", "VALUES"];

/// Checks that `sql` is one statement that only reads, and returns it without its trailing `;`
/// (and any comment after it), as Trino wants it.
///
/// It must start (after blanks, comments and opening parentheses) with SELECT, WITH, SHOW,
/// DESCRIBE, EXPLAIN or VALUES, and not with EXPLAIN ANALYZE, which runs the statement it
/// explains. This is a first line of defence, for a clear message before anything is sent:
/// Trino's access rules for the calling user are the real guard (a SELECT can still call a table
/// function such as `system.query` that runs SQL in a connected database).
pub fn read_only(sql: &str) -> Result<&str, String> {
    let statement = single_statement(sql)?;
    let mut lexer = Lexer::new(statement);
    let keyword = lexer.first_keyword();
    let allowed = || {
        format!(
            "only a query can run here: a statement starting with {} (not EXPLAIN ANALYZE)",
            READ_ONLY_KEYWORDS.join(", ")
        )
    };
    if !READ_ONLY_KEYWORDS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(keyword))
    {
        return Err(if keyword.is_empty() && lexer.peek().is_none() {
            format!("there is no statement; {}", allowed())
        } else if keyword.is_empty() {
            format!("the statement does not start with a keyword; {}", allowed())
        } else {
            format!("`{keyword}` changes things or is not known; {}", allowed())
        });
    }
    if keyword.eq_ignore_ascii_case("EXPLAIN") && lexer.keyword().eq_ignore_ascii_case("ANALYZE") {
        return Err(format!("EXPLAIN ANALYZE runs the statement; {}", allowed()));
    }
    Ok(statement)
}

/// `sql` up to its first `;` outside literals, quoted identifiers and comments, provided only
/// blanks and comments follow.
fn single_statement(sql: &str) -> Result<&str, String> {
    let mut lexer = Lexer::new(sql);
    while let Some(c) = lexer.peek() {
        match c {
            '\'' | '"' => lexer.quoted(c)?,
            '-' if lexer.rest().starts_with("--") => lexer.line_comment(),
            '/' if lexer.rest().starts_with("/*") => lexer.block_comment()?,
            ';' => {
                let end = lexer.at;
                lexer.bump();
                lexer.skip_blanks_and_comments()?;
                if lexer.peek().is_some() {
                    return Err("only one statement can run at a time".into());
                }
                return Ok(&sql[..end]);
            }
            _ => lexer.bump(),
        }
    }
    Ok(sql)
}

/// Just enough of Trino's lexer to find statement boundaries and keywords.
struct Lexer<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer { text, at: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.at += c.len_utf8();
        }
    }

    /// Past a literal or identifier quoted with `quote` (where a doubled quote stands for one).
    fn quoted(&mut self, quote: char) -> Result<(), String> {
        self.bump();
        loop {
            match self.peek() {
                None if quote == '\'' => return Err("a string literal is not closed".into()),
                None => return Err("a quoted identifier is not closed".into()),
                Some(c) if c == quote => {
                    self.bump();
                    if self.peek() != Some(quote) {
                        return Ok(());
                    }
                    self.bump();
                }
                Some(_) => self.bump(),
            }
        }
    }

    fn line_comment(&mut self) {
        match self.rest().find('\n') {
            Some(end) => self.at += end + 1,
            None => self.at = self.text.len(),
        }
    }

    fn block_comment(&mut self) -> Result<(), String> {
        match self.rest()[2..].find("*/") {
            Some(end) => {
                self.at += 2 + end + 2;
                Ok(())
            }
            None => Err("a /* comment is not closed".into()),
        }
    }

    fn skip_blanks_and_comments(&mut self) -> Result<(), String> {
        loop {
            let rest = self.rest();
            if rest.starts_with("--") {
                self.line_comment();
            } else if rest.starts_with("/*") {
                self.block_comment()?;
            } else if self.peek().is_some_and(char::is_whitespace) {
                self.bump();
            } else {
                return Ok(());
            }
        }
    }

    /// The first keyword, past blanks, comments and opening parentheses (`(SELECT 1)`). Only
    /// called on text [`single_statement`] accepted, so comments are closed.
    fn first_keyword(&mut self) -> &'a str {
        loop {
            let _ = self.skip_blanks_and_comments();
            if self.peek() != Some('(') {
                return self.keyword();
            }
            self.bump();
        }
    }

    /// The word here, past blanks and comments (empty if none).
    fn keyword(&mut self) -> &'a str {
        let _ = self.skip_blanks_and_comments();
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.at += len;
        &rest[..len]
    }
}

// ---------------------------------------------------------------------------------------------
// Dynamic catalog management (Trino with `catalog.management=dynamic`).

/// `CREATE CATALOG "name" USING connector WITH ("property" = 'value', ...)`, properties in name
/// order. Values may be `${ENV:NAME}` references, which Trino resolves from its own environment:
/// pass those for secrets, never the secrets themselves. `InvalidRequest` for a NUL in any part.
pub fn create_catalog_sql(
    name: &str,
    connector: &str,
    properties: &BTreeMap<String, String>,
) -> Result<String, TrinoError> {
    let mut sql = format!(
        "CREATE CATALOG {} USING {}",
        catalog_ident(name)?,
        connector_ident(connector)?
    );
    if !properties.is_empty() {
        let properties = properties
            .iter()
            .map(|(property, value)| {
                let unquotable = || {
                    TrinoError::InvalidRequest(format!(
                        "property `{property}` of catalog `{name}` holds a NUL character"
                    ))
                };
                if property.contains('\0') {
                    return Err(unquotable());
                }
                let value = quote_literal(value).ok_or_else(unquotable)?;
                Ok(format!("{} = {value}", quote_ident(property)))
            })
            .collect::<Result<Vec<_>, TrinoError>>()?;
        sql.push_str(&format!(" WITH ({})", properties.join(", ")));
    }
    Ok(sql)
}

/// `DROP CATALOG "name"`.
pub fn drop_catalog_sql(name: &str) -> Result<String, TrinoError> {
    Ok(format!("DROP CATALOG {}", catalog_ident(name)?))
}

/// The names of the catalogs `user` can see (`SHOW CATALOGS`).
pub async fn show_catalogs(trino: &dyn Trino, user: &str) -> Result<Vec<String>, TrinoError> {
    // Every catalog: a list cut short would make catalogs look missing.
    let request = QueryRequest::new(user, "SHOW CATALOGS", usize::MAX);
    let page = trino.query(&request).await?;
    page.rows
        .iter()
        .map(|row| match row.first() {
            Some(Value::String(name)) => Ok(name.clone()),
            other => Err(TrinoError::Protocol(format!(
                "SHOW CATALOGS answered {other:?} for a catalog name"
            ))),
        })
        .collect()
}

fn catalog_ident(name: &str) -> Result<String, TrinoError> {
    if name.is_empty() || name.contains('\0') {
        return Err(TrinoError::InvalidRequest(format!(
            "`{name}` cannot be a catalog name"
        )));
    }
    Ok(quote_ident(name))
}

/// A connector name as Trino writes them (`iceberg`, `delta_lake`) bare, anything else quoted.
fn connector_ident(connector: &str) -> Result<String, TrinoError> {
    let plain = connector.starts_with(|c: char| c.is_ascii_lowercase())
        && connector
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        Ok(connector.to_string())
    } else if connector.is_empty() || connector.contains('\0') {
        Err(TrinoError::InvalidRequest(format!(
            "`{connector}` cannot be a connector name"
        )))
    } else {
        Ok(quote_ident(connector))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_double_their_quotes() {
        assert_eq!(quote_ident("lake"), r#""lake""#);
        assert_eq!(quote_ident(r#"a"b""#), r#""a""b""""#);
        assert_eq!(quote_ident("it's"), r#""it's""#);
        assert_eq!(quote_literal("rest").as_deref(), Some("'rest'"));
        assert_eq!(quote_literal("it's").as_deref(), Some("'it''s'"));
        assert_eq!(quote_literal(r#"a"b"#).as_deref(), Some(r#"'a"b'"#));
        assert_eq!(quote_literal("").as_deref(), Some("''"));
        assert_eq!(quote_literal("a\0b"), None);
    }

    #[test]
    fn queries_pass_the_read_only_check_without_their_trailing_semicolon() {
        let cases = [
            ("SELECT 1", "SELECT 1"),
            ("select * from t;", "select * from t"),
            ("  \n\tSELECT 1 ;  -- done\n", "  \n\tSELECT 1 "),
            (
                "WITH x AS (SELECT 1) SELECT * FROM x",
                "WITH x AS (SELECT 1) SELECT * FROM x",
            ),
            ("SHOW CATALOGS", "SHOW CATALOGS"),
            ("describe lake.sales.orders", "describe lake.sales.orders"),
            ("EXPLAIN SELECT 1", "EXPLAIN SELECT 1"),
            ("EXPLAIN (TYPE IO) SELECT 1", "EXPLAIN (TYPE IO) SELECT 1"),
            ("VALUES (1, 'a')", "VALUES (1, 'a')"),
            ("((SELECT 1))", "((SELECT 1))"),
            ("-- why\n/* how; */ SELECT 1", "-- why\n/* how; */ SELECT 1"),
            (
                "SELECT 'a;b', \"c;d\" FROM t",
                "SELECT 'a;b', \"c;d\" FROM t",
            ),
            ("SELECT 'it''s; fine'", "SELECT 'it''s; fine'"),
            ("SELECT \"x\"\";\" FROM t;", "SELECT \"x\"\";\" FROM t"),
            ("SELECT 1 -- a; b\n", "SELECT 1 -- a; b\n"),
            ("SELECT 1; /* end */", "SELECT 1"),
            ("SELECT/**/1", "SELECT/**/1"),
        ];
        for (sql, sent) in cases {
            assert_eq!(read_only(sql), Ok(sent), "{sql:?}");
        }
    }

    #[test]
    fn statements_that_write_or_come_in_twos_are_refused() {
        let refused = [
            ("INSERT INTO t VALUES 1", "`INSERT` changes things"),
            ("  -- c\nDROP TABLE t", "`DROP` changes things"),
            ("/* SELECT */ DELETE FROM t", "`DELETE` changes things"),
            ("CREATE CATALOG x USING memory", "`CREATE` changes things"),
            ("SELECTX 1", "`SELECTX` changes things"),
            (
                "EXPLAIN ANALYZE INSERT INTO t VALUES 1",
                "EXPLAIN ANALYZE runs",
            ),
            ("explain /* c */ analyze SELECT 1", "EXPLAIN ANALYZE runs"),
            ("SELECT 1; DROP TABLE t", "only one statement"),
            ("SELECT 1;;", "only one statement"),
            ("SELECT ';'; SELECT 2", "only one statement"),
            ("SELECT 'unclosed; DROP TABLE t", "not closed"),
            ("SELECT \"unclosed", "not closed"),
            ("SELECT 1 /* unclosed", "not closed"),
            ("", "there is no statement"),
            ("  -- only a comment", "there is no statement"),
            (";", "there is no statement"),
            ("'SELECT' 1", "does not start with a keyword"),
        ];
        for (sql, message) in refused {
            let err = read_only(sql).expect_err(sql);
            assert!(err.contains(message), "{sql:?}: {err}");
        }
        assert_eq!(
            read_only("UPDATE t SET a = 1").unwrap_err(),
            "`UPDATE` changes things or is not known; only a query can run here: a statement \
             starting with SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, VALUES (not EXPLAIN ANALYZE)"
        );
    }

    #[test]
    fn catalog_statements_quote_every_name_and_value() {
        let properties = BTreeMap::from([
            (
                "iceberg.rest-catalog.uri".to_string(),
                "http://lakekeeper:8181/catalog".to_string(),
            ),
            ("iceberg.catalog.type".to_string(), "rest".to_string()),
            (
                "iceberg.rest-catalog.warehouse".to_string(),
                "it's".to_string(),
            ),
            (r#"odd"name"#.to_string(), "${ENV:LAKE_SECRET}".to_string()),
        ]);
        assert_eq!(
            create_catalog_sql("lake", "iceberg", &properties).unwrap(),
            "CREATE CATALOG \"lake\" USING iceberg WITH (\"iceberg.catalog.type\" = 'rest', \
             \"iceberg.rest-catalog.uri\" = 'http://lakekeeper:8181/catalog', \
             \"iceberg.rest-catalog.warehouse\" = 'it''s', \"odd\"\"name\" = '${ENV:LAKE_SECRET}')"
        );
        assert_eq!(
            create_catalog_sql("a\"b", "Odd Connector", &BTreeMap::new()).unwrap(),
            r#"CREATE CATALOG "a""b" USING "Odd Connector""#
        );
        assert_eq!(drop_catalog_sql("lake").unwrap(), r#"DROP CATALOG "lake""#);

        let nul = BTreeMap::from([("k".to_string(), "a\0b".to_string())]);
        let err = create_catalog_sql("lake", "iceberg", &nul).unwrap_err();
        assert_eq!(
            err.to_string(),
            "could not send the query to Trino: property `k` of catalog `lake` holds a NUL character"
        );
        for (name, connector) in [("", "iceberg"), ("a\0", "iceberg"), ("lake", "")] {
            assert!(
                matches!(
                    create_catalog_sql(name, connector, &BTreeMap::new()),
                    Err(TrinoError::InvalidRequest(_))
                ),
                "{name:?} {connector:?}"
            );
        }
        assert!(drop_catalog_sql("").is_err());
    }
}
