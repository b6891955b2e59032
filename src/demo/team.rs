//! The demo studio's people: a follow-the-sun team whose zones, hours and
//! days leave no hour of the week without someone at work.

use crate::model::Member;
use crate::model::member::Role;
use crate::service::NewMember;

/// One member of the demo studio.
pub struct Teammate {
    pub handle: &'static str,
    pub name: &'static str,
    pub tz: &'static str,
    pub roles: &'static [Role],
    pub hours: &'static str,
    pub days: &'static str,
    pub skills: &'static [&'static str],
}

impl Teammate {
    /// The role their relay token carries (their first).
    pub fn token_role(&self) -> &'static str {
        self.roles.first().map_or("creative", |r| r.as_str())
    }

    /// The member record a lead writes for them.
    pub fn new_member(&self) -> NewMember {
        let mut new = NewMember::new(self.handle, self.tz);
        new.name = Some(self.name.to_owned());
        new.roles = self.roles.to_vec();
        new.hours = Some(self.hours.to_owned());
        new.days = Some(self.days.to_owned());
        new.skills = self.skills.iter().map(|s| (*s).to_owned()).collect();
        new
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Whoever runs the demo: the studio's lead in Lisbon.
pub const YOU: Teammate = Teammate {
    handle: "ana",
    name: "Ana Costa",
    tz: "Europe/Lisbon",
    roles: &[Role::Lead],
    hours: "09:00-17:30",
    days: "mon-fri",
    skills: &["art-direction"],
};

/// The agent that asks the clarifying questions and proposes assignments.
pub const AGENT: Teammate = Teammate {
    handle: "scout",
    name: "Scout (agent)",
    tz: "UTC",
    roles: &[Role::Agent],
    hours: "00:00-23:59",
    days: "mon-sun",
    skills: &["intake", "search"],
};

/// The people the demo simulates, besides you and the agent.
pub const TEAM: &[Teammate] = &[
    Teammate {
        handle: "maya",
        name: "Maya Brooks",
        tz: "America/New_York",
        roles: &[Role::Lead, Role::Reviewer],
        hours: "08:30-18:00",
        days: "mon-fri",
        skills: &["brand", "copy"],
    },
    Teammate {
        handle: "kenji",
        name: "Kenji Watanabe",
        tz: "Asia/Tokyo",
        roles: &[Role::Creative],
        hours: "09:30-18:30",
        days: "tue-sat",
        skills: &["motion", "3d", "product"],
    },
    Teammate {
        handle: "priya",
        name: "Priya Raman",
        tz: "Asia/Kolkata",
        roles: &[Role::Creative],
        hours: "10:00-19:00",
        days: "tue-sat",
        skills: &["illustration", "social", "linkedin", "instagram"],
    },
    Teammate {
        handle: "tom",
        name: "Tom Walsh",
        tz: "Australia/Sydney",
        roles: &[Role::Creative],
        hours: "08:00-17:00",
        days: "sun-thu",
        skills: &["video", "edit", "ooh"],
    },
    Teammate {
        handle: "jordan",
        name: "Jordan Lee",
        tz: "America/Los_Angeles",
        roles: &[Role::Creative],
        hours: "09:00-18:00",
        days: "wed-sun",
        skills: &["design", "layout", "email"],
    },
    Teammate {
        handle: "lucia",
        name: "Lucia Ferreira",
        tz: "America/Sao_Paulo",
        roles: &[Role::Requester],
        hours: "09:00-19:00",
        days: "wed-sun",
        skills: &["marketing"],
    },
    Teammate {
        handle: "noor",
        name: "Noor Haddad",
        tz: "Asia/Dubai",
        roles: &[Role::Requester],
        hours: "09:00-18:00",
        days: "sun-thu",
        skills: &["partnerships"],
    },
];

/// A teammate by handle.
pub fn teammate(handle: &str) -> Option<&'static Teammate> {
    TEAM.iter().find(|t| t.handle == handle)
}

/// Whether a member is at work at `at`, judged as the hub judges it.
pub fn at_work(member: &Member, at: jiff::Timestamp) -> bool {
    member.is_working_at(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{Hub, NewHub};

    /// Someone besides you is at work in every half hour of a whole year,
    /// weekends and every daylight-saving change included.
    #[test]
    fn the_studio_follows_the_sun_all_week_all_year() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut hub = Hub::init(
            dir.path(),
            NewHub {
                name: "Demo",
                handle: YOU.handle,
                tz: YOU.tz,
                display_name: None,
            },
        )
        .expect("init");
        for t in TEAM {
            hub.add_member(t.new_member()).expect("member");
        }
        let team: Vec<Member> = TEAM
            .iter()
            .map(|t| hub.member(t.handle).expect("read").expect("member"))
            .collect();
        let start: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
        let mut uncovered = Vec::new();
        for step in 0..(366 * 48) {
            let at = start + jiff::SignedDuration::from_mins(30 * step);
            if !team.iter().any(|m| at_work(m, at)) {
                uncovered.push(at);
            }
        }
        assert!(
            uncovered.is_empty(),
            "nobody at work at {} times, e.g. {:?}",
            uncovered.len(),
            uncovered.first()
        );
        // And nobody works around the clock: presence really changes.
        let first = &team[0];
        assert!((0..48).any(|h| !at_work(first, start + jiff::SignedDuration::from_mins(30 * h))));
    }
}
