//! Search over the jobs and datasets of the lineage by name, as Marquez's `GET /api/v1/search`
//! answers. Pure.
//!
//! A name matches when the query is found in it, ignoring case, the query read as SQL `LIKE`
//! reads a pattern (Marquez matches `name ILIKE '%' || q || '%'`): `%` stands for any run of
//! characters, `_` for one, and `\` makes the next character plain. Only names are matched, not
//! namespaces.
//!
//! Order (Marquez's own `ORDER BY` binds the sort as a value, so its order is the database's):
//! by `NAME`, names in byte order, then namespace, then jobs before datasets; by `UPDATE_AT`, the
//! most recently updated first, nodes no event named (declared only, no time) last, ties by name
//! as above.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use super::{time, Kind, NodeRef};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Name,
    UpdatedAt,
}

impl Sort {
    /// Marquez's values, `NAME` and `UPDATE_AT` (also `name`, `updated_at`, any case).
    pub fn parse(s: &str) -> Result<Sort, String> {
        match s.to_ascii_uppercase().as_str() {
            "NAME" => Ok(Sort::Name),
            "UPDATE_AT" | "UPDATED_AT" => Ok(Sort::UpdatedAt),
            _ => Err(format!("`sort` must be NAME or UPDATE_AT, not {s:?}")),
        }
    }
}

/// Marquez's `filter`: `JOB` or `DATASET`, any case.
pub fn parse_filter(s: &str) -> Result<Kind, String> {
    match s.to_ascii_uppercase().as_str() {
        "JOB" => Ok(Kind::Job),
        "DATASET" => Ok(Kind::Dataset),
        _ => Err(format!("`filter` must be JOB or DATASET, not {s:?}")),
    }
}

/// What to look for.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    pub q: &'a str,
    pub filter: Option<Kind>,
    pub sort: Sort,
    /// Only nodes of this namespace.
    pub namespace: Option<&'a str>,
    /// Only nodes updated before this day began (UTC).
    pub before: Option<NaiveDate>,
    /// Only nodes updated on or after this day (UTC).
    pub after: Option<NaiveDate>,
}

/// A job or dataset, and when an event last named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub node: NodeRef,
    pub updated_at: Option<DateTime<Utc>>,
}

impl Hit {
    /// Marquez's `SearchResult`.
    pub fn json(&self) -> Value {
        json!({
            "type": self.node.kind,
            "name": self.node.name,
            "updatedAt": self.updated_at.map(time),
            "namespace": self.node.namespace,
            "nodeId": self.node.id(),
        })
    }
}

/// The candidates that match, in the query's order.
pub fn search(candidates: impl IntoIterator<Item = Hit>, q: &Query<'_>) -> Vec<Hit> {
    let pattern = Pattern::new(q.q);
    let day = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let (before, after) = (q.before.and_then(day), q.after.and_then(day));
    let mut hits: Vec<Hit> = candidates
        .into_iter()
        .filter(|h| q.filter.is_none_or(|k| h.node.kind == k))
        .filter(|h| q.namespace.is_none_or(|ns| h.node.namespace == ns))
        .filter(|h| before.is_none_or(|b| h.updated_at.is_some_and(|t| t < b)))
        .filter(|h| after.is_none_or(|a| h.updated_at.is_some_and(|t| t >= a)))
        .filter(|h| pattern.found_in(&h.node.name))
        .collect();
    let by_name = |a: &Hit, b: &Hit| {
        (&a.node.name, &a.node.namespace, a.node.kind).cmp(&(
            &b.node.name,
            &b.node.namespace,
            b.node.kind,
        ))
    };
    match q.sort {
        Sort::Name => hits.sort_by(by_name),
        Sort::UpdatedAt => hits.sort_by(|a, b| {
            match (a.updated_at, b.updated_at) {
                (Some(x), Some(y)) => y.cmp(&x),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
            .then_with(|| by_name(a, b))
        }),
    }
    hits.dedup();
    hits
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Char(char),
    One,
    Any,
}

/// A `LIKE` pattern, lowercased, wrapped in `%` so it matches anywhere.
#[derive(Debug, Clone)]
struct Pattern(Vec<Token>);

impl Pattern {
    fn new(q: &str) -> Pattern {
        let mut tokens = vec![Token::Any];
        let mut chars = q.chars().flat_map(char::to_lowercase);
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '%' => Token::Any,
                '_' => Token::One,
                '\\' => match chars.next() {
                    Some(next) => Token::Char(next),
                    None => Token::Char('\\'),
                },
                c => Token::Char(c),
            });
        }
        tokens.push(Token::Any);
        tokens.dedup_by(|a, b| *a == Token::Any && *b == Token::Any);
        Pattern(tokens)
    }

    /// Whether the pattern matches the whole of `text` (which, wrapped in `%`, is finding it
    /// anywhere), ignoring case.
    fn found_in(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
        // matched[j]: the tokens so far match text[..j].
        let mut matched = vec![false; text.len() + 1];
        matched[0] = true;
        for token in &self.0 {
            let mut next = vec![false; text.len() + 1];
            match token {
                Token::Any => {
                    let mut any = false;
                    for j in 0..=text.len() {
                        any |= matched[j];
                        next[j] = any;
                    }
                }
                Token::One => next[1..].copy_from_slice(&matched[..text.len()]),
                Token::Char(c) => {
                    for j in 1..=text.len() {
                        next[j] = matched[j - 1] && text[j - 1] == *c;
                    }
                }
            }
            matched = next;
        }
        matched[text.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32) -> Option<DateTime<Utc>> {
        Some(Utc.with_ymd_and_hms(2026, 11, day, 4, 30, 0).unwrap())
    }

    fn candidates() -> Vec<Hit> {
        vec![
            Hit {
                node: NodeRef::job("sales", "orders_daily"),
                updated_at: at(27),
            },
            Hit {
                node: NodeRef::dataset("sales", "silver.orders"),
                updated_at: at(28),
            },
            Hit {
                node: NodeRef::dataset("sales", "gold.revenue"),
                updated_at: None,
            },
            Hit {
                node: NodeRef::dataset("default", "ORDERS"),
                updated_at: at(26),
            },
            Hit {
                node: NodeRef::job("default", "silver.orders"),
                updated_at: at(28),
            },
        ]
    }

    fn query(q: &str) -> Query<'_> {
        Query {
            q,
            filter: None,
            sort: Sort::Name,
            namespace: None,
            before: None,
            after: None,
        }
    }

    fn ids(hits: &[Hit]) -> Vec<String> {
        hits.iter().map(|h| h.node.id()).collect()
    }

    #[test]
    fn names_match_anywhere_ignoring_case_sorted_by_name() {
        assert_eq!(
            ids(&search(candidates(), &query("Orders"))),
            [
                "dataset:default:ORDERS",
                "job:sales:orders_daily",
                // The same name: by namespace.
                "job:default:silver.orders",
                "dataset:sales:silver.orders",
            ]
        );
        assert!(search(candidates(), &query("refunds")).is_empty());
        // The namespace is not matched.
        assert!(search(candidates(), &query("sales")).is_empty());
    }

    #[test]
    fn like_wildcards_and_escapes() {
        let names = |q: &str| -> Vec<String> {
            search(candidates(), &query(q))
                .into_iter()
                .map(|h| h.node.name)
                .collect()
        };
        assert_eq!(names("s_lver"), ["silver.orders", "silver.orders"]);
        assert_eq!(names("gold%rev"), ["gold.revenue"]);
        assert_eq!(names("%"), names(""));
        assert_eq!(names("").len(), 5);
        // `_` is any one character unless escaped.
        assert_eq!(names("orders_"), ["orders_daily"]);
        assert_eq!(names("s\\_"), ["orders_daily"]);
        assert!(names("r\\%").is_empty());
        for (pattern, text, found) in [
            ("abc", "xxABCxx", true),
            ("a_c", "abc", true),
            ("a_c", "ac", false),
            ("a%c", "ac", true),
            ("a%c", "abbbc", true),
            ("a%c", "ab", false),
            ("ünï", "xÜNÏx", true),
        ] {
            assert_eq!(
                Pattern::new(pattern).found_in(text),
                found,
                "{pattern} in {text}"
            );
        }
    }

    #[test]
    fn filters_by_kind_namespace_and_day() {
        let q = Query {
            filter: Some(Kind::Dataset),
            ..query("o")
        };
        assert_eq!(
            ids(&search(candidates(), &q)),
            [
                "dataset:default:ORDERS",
                "dataset:sales:gold.revenue",
                "dataset:sales:silver.orders"
            ]
        );
        let q = Query {
            namespace: Some("sales"),
            ..query("orders")
        };
        assert_eq!(
            ids(&search(candidates(), &q)),
            ["job:sales:orders_daily", "dataset:sales:silver.orders"]
        );
        // Days are UTC; a node without a time is in no range.
        let q = Query {
            after: NaiveDate::from_ymd_opt(2026, 11, 27),
            before: NaiveDate::from_ymd_opt(2026, 11, 28),
            ..query("")
        };
        assert_eq!(ids(&search(candidates(), &q)), ["job:sales:orders_daily"]);
    }

    #[test]
    fn by_update_time_newest_first_unseen_last() {
        let q = Query {
            sort: Sort::UpdatedAt,
            ..query("")
        };
        assert_eq!(
            ids(&search(candidates(), &q)),
            [
                "job:default:silver.orders",
                "dataset:sales:silver.orders",
                "job:sales:orders_daily",
                "dataset:default:ORDERS",
                "dataset:sales:gold.revenue",
            ]
        );
        assert_eq!(Sort::parse("update_at"), Ok(Sort::UpdatedAt));
        assert_eq!(Sort::parse("updated_at"), Ok(Sort::UpdatedAt));
        assert_eq!(Sort::parse("Name"), Ok(Sort::Name));
        assert!(Sort::parse("size").is_err());
        assert_eq!(parse_filter("dataset"), Ok(Kind::Dataset));
        assert!(parse_filter("run").is_err());
    }

    #[test]
    fn a_hit_in_marquez_shape() {
        let hit = &search(candidates(), &query("revenue"))[0];
        assert_eq!(
            hit.json(),
            json!({
                "type": "DATASET",
                "name": "gold.revenue",
                "updatedAt": null,
                "namespace": "sales",
                "nodeId": "dataset:sales:gold.revenue",
            })
        );
        assert_eq!(
            search(candidates(), &query("orders_daily"))[0].json()["updatedAt"],
            "2026-11-27T04:30:00Z"
        );
    }
}
