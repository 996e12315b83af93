//! Pages of a user's rows, newest first: `?limit=&cursor=` in, `next_cursor` out. The cursor
//! is the last row's `(created_at, id)`, so a page never repeats or skips a row while rows
//! are added or removed between two pages. Shared by `GET /files` and `GET /uploads`.

use actix_web::http::StatusCode;
use serde::Deserialize;

use crate::error::{ApiError, Code};

/// Rows per page when `limit` is absent.
pub const DEFAULT_PAGE: u32 = 100;
/// The most rows one page may ask for.
pub const MAX_PAGE: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("limit must be between 1 and {max}")]
    InvalidLimit { max: u32 },
    #[error("cursor is not one this server gave out")]
    InvalidCursor,
}

impl From<PageError> for ApiError {
    fn from(e: PageError) -> Self {
        let code = match e {
            PageError::InvalidLimit { .. } => Code::InvalidLimit,
            PageError::InvalidCursor => Code::InvalidCursor,
        };
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
    }
}

/// `?limit=&cursor=`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Entries per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page asked for: how many rows, and after which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    /// `(created_at, id)` of the last row of the page before.
    pub after: Option<(i64, String)>,
}

impl Page {
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, PageError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(PageError::InvalidLimit { max: MAX_PAGE });
        }
        let after = cursor.map(parse_cursor).transpose()?;
        Ok(Self { limit, after })
    }

    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// `(created_at, id)` to read after (everything when none).
    pub fn after(&self) -> (i64, &str) {
        self.after.as_ref().map_or((i64::MAX, ""), |(at, id)| (*at, id.as_str()))
    }

    /// Cuts the fetched rows to the page; answers the cursor of the next page, if one follows.
    pub fn cut<T>(&self, rows: &mut Vec<T>, key: impl Fn(&T) -> (i64, &str)) -> Option<String> {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        more.then(|| {
            rows.last().map(|r| {
                let (at, id) = key(r);
                format!("{at}.{id}")
            })
        })
        .flatten()
    }
}

fn parse_cursor(c: &str) -> Result<(i64, String), PageError> {
    let (at, id) = c.split_once('.').ok_or(PageError::InvalidCursor)?;
    let at = at.parse().map_err(|_| PageError::InvalidCursor)?;
    if id.is_empty() || id.len() > 64 {
        return Err(PageError::InvalidCursor);
    }
    Ok((at, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any cursor: a verdict, never a panic; the cursors this server gives out round-trip.
        #[test]
        fn cursors(s in "\\PC{0,80}", at in any::<i64>(), id in "[a-z0-9_]{1,64}") {
            let _ = parse_cursor(&s);
            let given = format!("{at}.{id}");
            prop_assert_eq!(parse_cursor(&given).ok(), Some((at, id)));
        }
    }

    #[test]
    fn limits_and_cursors() {
        assert_eq!(Page::parse(None, None).unwrap(), Page { limit: DEFAULT_PAGE, after: None });
        assert!(matches!(Page::parse(Some(0), None), Err(PageError::InvalidLimit { .. })));
        assert!(matches!(Page::parse(Some(MAX_PAGE + 1), None), Err(PageError::InvalidLimit { .. })));
        assert_eq!(Page::parse(Some(5), Some("17.fi_a")).unwrap().after(), (17, "fi_a"));
        for bad in ["", "17", "x.fi_a", "17.", &format!("1.{}", "a".repeat(65))] {
            assert!(matches!(Page::parse(None, Some(bad)), Err(PageError::InvalidCursor)), "{bad:?}");
        }
    }

    #[test]
    fn a_cut_page_names_its_last_row() {
        let page = Page::parse(Some(2), None).unwrap();
        let mut rows = vec![(30, "c"), (20, "b"), (10, "a")];
        assert_eq!(page.cut(&mut rows, |r| (r.0, r.1)), Some("20.b".to_owned()));
        assert_eq!(rows.len(), 2);
        let mut last = vec![(10, "a")];
        assert_eq!(page.cut(&mut last, |r| (r.0, r.1)), None);
    }
}
