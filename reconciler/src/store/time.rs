//! `DbTime`: a point in time as the store keeps it, and the one clock that stamps rows.
//!
//! Both backends keep microseconds (PostgreSQL's precision), so a time is truncated to them on
//! the way in and reads back exactly. PostgreSQL stores a `timestamptz`; SQLite stores TEXT in
//! RFC 3339 UTC with exactly six fractional digits (`2024-05-01T12:00:00.000000Z`), one width for
//! every time, so that text order is time order and the cursors that compare times stay right.
//!
//! The times the store assigns (`seen_at`, an audit entry's `at`, a run's `created_at`, ...) come
//! from [`DbTime::now`], the application's clock, on both backends: never the database's `now()`.

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};

/// A UTC time with microsecond precision, encoded the same way on every write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct DbTime(DateTime<Utc>);

impl DbTime {
    /// Now, by the application's clock: the one source of the times the store assigns.
    pub(crate) fn now() -> DbTime {
        DbTime::from(Utc::now())
    }

    /// The SQLite form: fixed-width RFC 3339 with six fractional digits and `Z`.
    fn text(self) -> String {
        self.0.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }

    fn parse(text: &str) -> Result<DbTime, BoxDynError> {
        let time = DateTime::parse_from_rfc3339(text)
            .map_err(|e| format!("bad timestamp `{text}`: {e}"))?;
        Ok(DbTime::from(time.with_timezone(&Utc)))
    }
}

impl From<DateTime<Utc>> for DbTime {
    fn from(time: DateTime<Utc>) -> DbTime {
        DbTime(time.trunc_subsecs(6))
    }
}

impl From<DbTime> for DateTime<Utc> {
    fn from(time: DbTime) -> DateTime<Utc> {
        time.0
    }
}

impl Type<Sqlite> for DbTime {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for DbTime {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(self.text(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for DbTime {
    fn decode(value: SqliteValueRef<'r>) -> Result<DbTime, BoxDynError> {
        DbTime::parse(<&str as Decode<Sqlite>>::decode(value)?)
    }
}

impl Type<Postgres> for DbTime {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for DbTime {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        Encode::<Postgres>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for DbTime {
    fn decode(value: PgValueRef<'r>) -> Result<DbTime, BoxDynError> {
        <DateTime<Utc> as Decode<Postgres>>::decode(value).map(DbTime)
    }
}

#[cfg(test)]
mod tests {
    use super::DbTime;
    use chrono::{DateTime, TimeZone, Utc};

    #[test]
    fn text_is_fixed_width_and_round_trips_to_the_microsecond() {
        let time = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
            + chrono::Duration::nanoseconds(123_456_789);
        let db = DbTime::from(time);
        assert_eq!(db.text(), "2024-05-01T12:00:00.123456Z");
        assert_eq!(DbTime::parse(&db.text()).unwrap(), db);
        let whole = DbTime::from(Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap());
        assert_eq!(whole.text(), "2024-05-01T12:00:00.000000Z");
        assert_eq!(
            DateTime::<Utc>::from(db).timestamp_subsec_nanos(),
            123_456_000
        );
    }

    #[test]
    fn text_order_is_time_order() {
        let early = DbTime::from(Utc.with_ymd_and_hms(2024, 5, 1, 9, 59, 59).unwrap());
        let late = DbTime::from(Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap());
        assert!(early.text() < late.text());
        assert!(early < late);
    }
}
