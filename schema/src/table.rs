//! Iceberg table declarations as written in `workspace.yaml` (`spec.lakehouse.tables`): column
//! types and partition transforms, parsed once here for validation and for the lakehouse target
//! (which turns them into Iceberg's JSON forms). Pure.

use std::fmt;

/// An Iceberg primitive type. Nested types (struct, list, map) are not declarable yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Decimal { precision: u8, scale: u8 },
    Date,
    Time,
    Timestamp,
    Timestamptz,
    String,
    Uuid,
    Fixed(u32),
    Binary,
}

const TYPES: &str = "boolean, int, long, float, double, decimal(P, S), date, time, timestamp, timestamptz, string, uuid, fixed[L], binary";

impl ColumnType {
    /// Parses the YAML spelling, which is Iceberg's own (`long`, `decimal(10, 2)`, `fixed[16]`).
    pub fn parse(text: &str) -> Result<ColumnType, String> {
        let t = text.trim();
        let simple = match t {
            "boolean" => Some(ColumnType::Boolean),
            "int" => Some(ColumnType::Int),
            "long" => Some(ColumnType::Long),
            "float" => Some(ColumnType::Float),
            "double" => Some(ColumnType::Double),
            "date" => Some(ColumnType::Date),
            "time" => Some(ColumnType::Time),
            "timestamp" => Some(ColumnType::Timestamp),
            "timestamptz" => Some(ColumnType::Timestamptz),
            "string" => Some(ColumnType::String),
            "uuid" => Some(ColumnType::Uuid),
            "binary" => Some(ColumnType::Binary),
            _ => None,
        };
        if let Some(s) = simple {
            return Ok(s);
        }
        if let Some(args) = t.strip_prefix("decimal(").and_then(|r| r.strip_suffix(')')) {
            let (p, s) = args
                .split_once(',')
                .ok_or_else(|| format!("`{text}`: write decimal(P, S)"))?;
            let p: u8 = p
                .trim()
                .parse()
                .map_err(|_| format!("`{text}`: precision must be a number"))?;
            let s: u8 = s
                .trim()
                .parse()
                .map_err(|_| format!("`{text}`: scale must be a number"))?;
            if p == 0 || p > 38 {
                return Err(format!("`{text}`: precision must be 1 to 38"));
            }
            if s > p {
                return Err(format!("`{text}`: scale must not exceed precision"));
            }
            return Ok(ColumnType::Decimal {
                precision: p,
                scale: s,
            });
        }
        if let Some(len) = t.strip_prefix("fixed[").and_then(|r| r.strip_suffix(']')) {
            let len: u32 = len
                .trim()
                .parse()
                .map_err(|_| format!("`{text}`: write fixed[L] with a length"))?;
            if len == 0 {
                return Err(format!("`{text}`: length must be at least 1"));
            }
            return Ok(ColumnType::Fixed(len));
        }
        Err(format!(
            "`{}` is not an Iceberg column type: use one of {TYPES}",
            text.escape_debug()
        ))
    }

    /// Whether Iceberg can change a column of this type into `to` in place (type promotion:
    /// int to long, float to double, a decimal to a wider precision of the same scale).
    pub fn promotes_to(self, to: ColumnType) -> bool {
        match (self, to) {
            (a, b) if a == b => true,
            (ColumnType::Int, ColumnType::Long) | (ColumnType::Float, ColumnType::Double) => true,
            (
                ColumnType::Decimal {
                    precision: p1,
                    scale: s1,
                },
                ColumnType::Decimal {
                    precision: p2,
                    scale: s2,
                },
            ) => s1 == s2 && p2 >= p1,
            _ => false,
        }
    }
}

/// Iceberg's JSON spelling (`decimal(10, 2)`, `fixed[16]`).
impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Boolean => f.write_str("boolean"),
            ColumnType::Int => f.write_str("int"),
            ColumnType::Long => f.write_str("long"),
            ColumnType::Float => f.write_str("float"),
            ColumnType::Double => f.write_str("double"),
            ColumnType::Decimal { precision, scale } => write!(f, "decimal({precision}, {scale})"),
            ColumnType::Date => f.write_str("date"),
            ColumnType::Time => f.write_str("time"),
            ColumnType::Timestamp => f.write_str("timestamp"),
            ColumnType::Timestamptz => f.write_str("timestamptz"),
            ColumnType::String => f.write_str("string"),
            ColumnType::Uuid => f.write_str("uuid"),
            ColumnType::Fixed(n) => write!(f, "fixed[{n}]"),
            ColumnType::Binary => f.write_str("binary"),
        }
    }
}

/// A partition transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    Identity,
    Year,
    Month,
    Day,
    Hour,
    Bucket(u32),
    Truncate(u32),
}

impl Transform {
    /// Iceberg's spelling: `identity`, `day`, `bucket[16]`, `truncate[4]`.
    pub fn iceberg(self) -> String {
        match self {
            Transform::Identity => "identity".into(),
            Transform::Year => "year".into(),
            Transform::Month => "month".into(),
            Transform::Day => "day".into(),
            Transform::Hour => "hour".into(),
            Transform::Bucket(n) => format!("bucket[{n}]"),
            Transform::Truncate(n) => format!("truncate[{n}]"),
        }
    }

    /// The partition field's name, as Spark and PyIceberg name it: `ts_day`, `id_bucket`.
    pub fn field_name(self, column: &str) -> String {
        match self {
            Transform::Identity => column.to_string(),
            Transform::Year => format!("{column}_year"),
            Transform::Month => format!("{column}_month"),
            Transform::Day => format!("{column}_day"),
            Transform::Hour => format!("{column}_hour"),
            Transform::Bucket(_) => format!("{column}_bucket"),
            Transform::Truncate(_) => format!("{column}_trunc"),
        }
    }

    /// Whether the transform applies to a column of this type.
    pub fn applies_to(self, t: ColumnType) -> bool {
        use ColumnType as C;
        match self {
            Transform::Identity => true,
            Transform::Year | Transform::Month | Transform::Day => {
                matches!(t, C::Date | C::Timestamp | C::Timestamptz)
            }
            Transform::Hour => matches!(t, C::Timestamp | C::Timestamptz),
            Transform::Bucket(_) => !matches!(t, C::Boolean | C::Float | C::Double),
            Transform::Truncate(_) => matches!(
                t,
                C::Int | C::Long | C::Decimal { .. } | C::String | C::Binary
            ),
        }
    }
}

/// Parses a partition entry: `country` (identity), `day(ts)`, `bucket(16, id)`,
/// `truncate(4, name)`. Returns the transform and the source column.
pub fn parse_partition(text: &str) -> Result<(Transform, String), String> {
    let t = text.trim();
    let bad = || {
        format!(
            "`{}` is not a partition: write a column name, year(col), month(col), day(col), hour(col), bucket(N, col) or truncate(W, col)",
            text.escape_debug()
        )
    };
    let Some((func, rest)) = t.split_once('(') else {
        return if is_column_name(t) {
            Ok((Transform::Identity, t.to_string()))
        } else {
            Err(bad())
        };
    };
    let args = rest.strip_suffix(')').ok_or_else(bad)?;
    let column_of = |c: &str| {
        let c = c.trim();
        if is_column_name(c) {
            Ok(c.to_string())
        } else {
            Err(bad())
        }
    };
    match func.trim() {
        "identity" => Ok((Transform::Identity, column_of(args)?)),
        "year" => Ok((Transform::Year, column_of(args)?)),
        "month" => Ok((Transform::Month, column_of(args)?)),
        "day" => Ok((Transform::Day, column_of(args)?)),
        "hour" => Ok((Transform::Hour, column_of(args)?)),
        f @ ("bucket" | "truncate") => {
            let (n, c) = args.split_once(',').ok_or_else(bad)?;
            let n: u32 = n.trim().parse().map_err(|_| bad())?;
            if n == 0 {
                return Err(format!("`{text}`: the width must be at least 1"));
            }
            let transform = if f == "bucket" {
                Transform::Bucket(n)
            } else {
                Transform::Truncate(n)
            };
            Ok((transform, column_of(c)?))
        }
        _ => Err(bad()),
    }
}

/// Column names: letters, digits and underscores, not starting with a digit.
pub fn is_column_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_parse_and_print_in_icebergs_spelling() {
        for t in [
            "boolean",
            "long",
            "decimal(10, 2)",
            "fixed[16]",
            "timestamptz",
            "uuid",
        ] {
            assert_eq!(ColumnType::parse(t).unwrap().to_string(), t);
        }
        assert_eq!(
            ColumnType::parse("decimal(10,2)").unwrap().to_string(),
            "decimal(10, 2)"
        );
        assert!(ColumnType::parse("decimal(40, 2)")
            .unwrap_err()
            .contains("1 to 38"));
        assert!(ColumnType::parse("decimal(4, 6)")
            .unwrap_err()
            .contains("scale"));
        assert!(ColumnType::parse("varchar")
            .unwrap_err()
            .contains("not an Iceberg column type"));
    }

    #[test]
    fn only_icebergs_promotions_are_in_place() {
        let p = |a: &str, b: &str| {
            ColumnType::parse(a)
                .unwrap()
                .promotes_to(ColumnType::parse(b).unwrap())
        };
        assert!(p("int", "long"));
        assert!(p("float", "double"));
        assert!(p("decimal(10, 2)", "decimal(12, 2)"));
        assert!(!p("decimal(10, 2)", "decimal(12, 3)"));
        assert!(!p("long", "int"));
        assert!(!p("long", "string"));
    }

    #[test]
    fn partitions_parse_with_their_transforms() {
        assert_eq!(
            parse_partition("country").unwrap(),
            (Transform::Identity, "country".into())
        );
        assert_eq!(
            parse_partition("day(ts)").unwrap(),
            (Transform::Day, "ts".into())
        );
        assert_eq!(
            parse_partition("bucket(16, id)").unwrap(),
            (Transform::Bucket(16), "id".into())
        );
        assert_eq!(Transform::Bucket(16).iceberg(), "bucket[16]");
        assert_eq!(Transform::Day.field_name("ts"), "ts_day");
        assert!(parse_partition("day(ts").is_err());
        assert!(parse_partition("bucket(0, id)").is_err());
        assert!(parse_partition("explode(x)").is_err());
        assert!(parse_partition("a-b").is_err());
        assert!(Transform::Day.applies_to(ColumnType::Timestamptz));
        assert!(!Transform::Day.applies_to(ColumnType::String));
    }
}
