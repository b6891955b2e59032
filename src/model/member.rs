//! Members of a hub: people and agents, their roles, time zones and hours.

use super::input::{InputError, parse_hours, parse_zone};
use super::record::EntityRecord;
use jiff::Timestamp;
use jiff::civil::{Time, Weekday};
use serde::Serialize;
use std::collections::BTreeMap;

pub use spoke_relay::policy::{Role, UnknownRole};

impl From<UnknownRole> for InputError {
    fn from(e: UnknownRole) -> InputError {
        InputError::new(e.to_string())
    }
}

pub const WEEKDAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

/// Checks a handle: 1-32 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn validate_handle(handle: &str) -> Result<(), InputError> {
    let ok = !handle.is_empty()
        && handle.len() <= 32
        && handle
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        && handle.starts_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(InputError::new(format!(
            "bad handle `{handle}`: use 1-32 lowercase letters, digits, `.`, `_` or `-`, starting with a letter or digit"
        )))
    }
}

/// Parses a weekday list such as `mon-fri`, `mon,wed,fri` or `sat-sun`.
pub fn parse_days(text: &str) -> Result<Vec<&'static str>, InputError> {
    let bad = || {
        InputError::new(format!(
            "cannot read days `{text}`: use mon-fri, mon,tue,thu or sat-sun"
        ))
    };
    let index = |d: &str| {
        let d = d.trim().to_ascii_lowercase();
        WEEKDAYS
            .iter()
            .position(|(n, _)| d.starts_with(n))
            .ok_or_else(bad)
    };
    let mut days = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (index(a)?, index(b)?);
                let mut i = a;
                loop {
                    days.push(WEEKDAYS[i].0);
                    if i == b {
                        break;
                    }
                    i = (i + 1) % 7;
                }
            }
            None => days.push(WEEKDAYS[index(part)?].0),
        }
    }
    days.dedup();
    Ok(days)
}

/// Builds the `hours:DAY` registers for `start-end` on the given days.
pub fn hours_writes(days: &[&str], hours: &str) -> Result<Vec<(String, String)>, InputError> {
    let (start, end) = parse_hours(hours)?;
    let value = format!("{}-{}", start.strftime("%H:%M"), end.strftime("%H:%M"));
    Ok(days
        .iter()
        .map(|d| (format!("hours:{d}"), value.clone()))
        .collect())
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    pub handle: String,
    pub name: String,
    pub roles: Vec<Role>,
    pub tz: String,
    /// Working hours per weekday (`mon` -> `09:00-17:30`); missing days are off.
    pub hours: BTreeMap<String, String>,
    pub skills: Vec<String>,
    /// How many briefs in flight this member can carry.
    pub capacity: u32,
    pub deleted: bool,
}

impl Member {
    pub fn from_record(handle: &str, rec: &EntityRecord) -> Member {
        Member {
            handle: handle.to_owned(),
            name: rec.string("name").unwrap_or_else(|| handle.to_owned()),
            roles: rec
                .set_members("roles")
                .iter()
                .filter_map(|r| Role::parse(r).ok())
                .collect(),
            tz: rec.string("tz").unwrap_or_else(|| "UTC".to_owned()),
            hours: rec
                .map_entries("hours")
                .into_iter()
                .filter_map(|(d, v)| v.as_str().map(|s| (d, s.to_owned())))
                .collect(),
            skills: rec.set_members("skills"),
            capacity: rec.get_as("capacity").unwrap_or(3),
            deleted: rec.is_deleted(),
        }
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The member's wall-clock time at `at`.
    pub fn local_time(&self, at: Timestamp) -> jiff::ZonedDateTime {
        let tz = parse_zone(&self.tz).unwrap_or(jiff::tz::TimeZone::UTC);
        at.to_zoned_datetime(tz)
    }

    /// Whether `at` falls inside the member's working hours, in their zone.
    pub fn is_working_at(&self, at: Timestamp) -> bool {
        let local = self.local_time(at);
        let Some((day, _)) = WEEKDAYS.iter().find(|(_, w)| *w == local.weekday()) else {
            return false;
        };
        let Some(range) = self.hours.get(*day) else {
            return false;
        };
        match parse_hours(range) {
            Ok((start, end)) => {
                let now: Time = local.time();
                now >= start && now < end
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn day_ranges_wrap_and_lists_combine() {
        assert_eq!(
            parse_days("mon-fri").expect("ok"),
            ["mon", "tue", "wed", "thu", "fri"]
        );
        assert_eq!(parse_days("sat-mon").expect("ok"), ["sat", "sun", "mon"]);
        assert_eq!(parse_days("Mon,Thursday").expect("ok"), ["mon", "thu"]);
        assert!(parse_days("someday").is_err());
    }

    #[test]
    fn handles_and_roles_are_validated() {
        assert!(validate_handle("ana.silva").is_ok());
        assert!(validate_handle("Ana").is_err());
        assert!(validate_handle("-x").is_err());
        assert_eq!(Role::parse("read_only"), Ok(Role::ReadOnly));
        assert!(
            Role::parse("boss")
                .expect_err("bad")
                .to_string()
                .contains("creative")
        );
    }

    #[test]
    fn working_hours_are_judged_in_the_members_zone() {
        let mut rec = EntityRecord::default();
        let stamp = crate::model::op::Stamp {
            hlc: Default::default(),
            id: spoke_relay::proto::OpId {
                client: spoke_relay::proto::ClientId(1),
                seq: 1,
            },
        };
        let mut fields = std::collections::BTreeMap::new();
        fields.insert("tz".to_owned(), json!("Asia/Tokyo"));
        fields.insert("hours:tue".to_owned(), json!("09:00-17:00"));
        rec.merge(stamp, &crate::model::op::Change::Set(fields));
        let m = Member::from_record("kenji", &rec);
        // Tuesday 2026-12-01 01:00 UTC is 10:00 in Tokyo.
        let at: Timestamp = "2026-12-01T01:00:00Z".parse().expect("ts");
        assert!(m.is_working_at(at));
        let night: Timestamp = "2026-12-01T12:00:00Z".parse().expect("ts");
        assert!(!m.is_working_at(night));
    }
}
