//! The deterministic assignment scorer: who should take a brief, by skills, load and time.
//!
//! Every number here is computed from the hub's data, so a lead can check it;
//! the agent may explain a ranking in words but never invents its numbers.
//! A candidate's score is a weighted sum of three parts, each in `0..=1`:
//!
//! - **skills** ([`SKILLS_WEIGHT`]): wanted skills the member has / wanted skills
//!   ([`wanted_skills`]); 1.0 when the brief wants nothing in particular.
//! - **load** ([`LOAD_WEIGHT`]): `1 - load / capacity`, clamped, where load counts
//!   the other briefs in flight assigned to them ([`load_of`]).
//! - **time** ([`TIME_WEIGHT`]): `min(1, working hours before due / hours needed)`,
//!   hours counted in the member's own zone ([`working_hours_between`]).
//!
//! The weights sum to 1, so the score is in `0..=1` too.

use crate::model::brief::{Brief, BriefStatus};
use crate::model::input::{parse_hours, parse_zone};
use crate::model::member::{Member, Role, WEEKDAYS};
use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use std::collections::BTreeSet;

/// Weight of the skills part: the right skills matter most.
pub const SKILLS_WEIGHT: f64 = 0.45;
/// Weight of the load part: spreading work keeps people from drowning.
pub const LOAD_WEIGHT: f64 = 0.25;
/// Weight of the time part: working hours they really have before the due date.
pub const TIME_WEIGHT: f64 = 0.30;

/// Estimated working hours per unit of deliverable quantity (`instagram*3` is 24 h).
pub const HOURS_PER_DELIVERABLE: f64 = 8.0;
/// The least a brief is estimated to need, even with no deliverables listed.
pub const MIN_HOURS_NEEDED: f64 = 8.0;
/// The time part when a brief has no due date: the same for everyone, so it
/// does not change the ranking, and half-way because we simply do not know.
pub const NEUTRAL_TIME: f64 = 0.5;
/// [`working_hours_between`] stops counting this many days after its start, so
/// a far-off due date costs a bounded walk; by then time scores 1 anyway.
pub const MAX_WALK_DAYS: i64 = 60;
/// A due instant at or after this local time, or before [`NIGHT_ENDS`], falls
/// in the candidate's night.
pub const NIGHT_STARTS: Time = Time::constant(22, 0, 0, 0);
/// See [`NIGHT_STARTS`]: the day runs `07:00..22:00` local time.
pub const NIGHT_ENDS: Time = Time::constant(7, 0, 0, 0);

/// The statuses that count as a member's load: work handed over and not yet
/// signed off. Draft and intake briefs are not anyone's work yet, on-hold ones
/// are parked, and approved, delivered and cancelled ones are done.
pub const IN_FLIGHT: [BriefStatus; 3] = [
    BriefStatus::Ready,
    BriefStatus::InProgress,
    BriefStatus::InReview,
];

/// Keywords (whole words of tags, deliverable channels and specs) and the
/// skill each one asks for. A tag that names a skill (`motion`, `3d`) counts too.
/// A trailing `s` is ignored, so `reels` and `icons` match.
const SKILL_KEYWORDS: &[(&str, &[&str])] = &[
    ("3d", &["3d", "cgi", "render", "blender", "c4d"]),
    ("branding", &["branding", "logo", "identity"]),
    (
        "copy",
        &[
            "copy",
            "copywriting",
            "email",
            "newsletter",
            "headline",
            "tagline",
            "script",
            "blog",
        ],
    ),
    (
        "illustration",
        &["illustration", "illustrated", "drawing", "icon", "mascot"],
    ),
    (
        "motion",
        &[
            "motion",
            "animation",
            "animated",
            "video",
            "reel",
            "tiktok",
            "youtube",
            "short",
            "gif",
            "mp4",
        ],
    ),
    (
        "photo",
        &["photo", "photography", "shoot", "retouch", "retouching"],
    ),
    (
        "print",
        &["print", "poster", "ooh", "billboard", "brochure", "flyer"],
    ),
];

/// One member's standing for a brief, with every number behind the score.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub handle: String,
    /// Weighted sum of [`ScoreParts`], rounded to 3 decimals, in `0..=1`.
    pub score: f64,
    /// Wanted skills this member has, sorted.
    pub skills_matched: Vec<String>,
    /// Every skill the brief wants, sorted (see [`wanted_skills`]).
    pub skills_wanted: Vec<String>,
    /// Other briefs in flight assigned to them (see [`load_of`]).
    pub load: usize,
    pub capacity: usize,
    /// Working hours in their zone from now until the due date; 0 when there
    /// is no due date or it has passed.
    pub working_hours_before_due: f64,
    /// The due instant on their wall clock, e.g. `Tue 01 Dec 02:00 Asia/Tokyo`.
    pub local_due: Option<String>,
    /// The due instant falls outside `07:00..22:00` in their zone.
    pub due_in_their_night: bool,
    /// False when they are at or over capacity; such candidates rank last.
    pub eligible: bool,
    /// One paragraph with the numbers, for the lead (and for the agent to quote).
    pub rationale: String,
    pub parts: ScoreParts,
}

/// The three parts of a score, each in `0..=1` (weights: [`SKILLS_WEIGHT`],
/// [`LOAD_WEIGHT`], [`TIME_WEIGHT`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreParts {
    pub skills: f64,
    pub load: f64,
    pub time: f64,
}

impl ScoreParts {
    /// The weighted sum, rounded to 3 decimals so equal-looking scores are equal.
    pub fn total(&self) -> f64 {
        let sum = SKILLS_WEIGHT * self.skills + LOAD_WEIGHT * self.load + TIME_WEIGHT * self.time;
        (sum * 1000.0).round() / 1000.0
    }
}

/// The skills a brief asks for, read from its tags and its deliverables'
/// channels and specs through [`SKILL_KEYWORDS`]: lowercase, deduped, sorted.
pub fn wanted_skills(brief: &Brief) -> Vec<String> {
    let texts = brief.tags.iter().map(String::as_str).chain(
        brief
            .deliverables
            .iter()
            .flat_map(|d| [d.channel.as_str(), d.spec.as_str()]),
    );
    let wanted: BTreeSet<&str> = texts.flat_map(words).filter_map(skill_for_word).collect();
    wanted.into_iter().map(str::to_owned).collect()
}

/// Briefs in flight (statuses in [`IN_FLIGHT`], not deleted) assigned to `handle`.
pub fn load_of(handle: &str, briefs: &[Brief]) -> usize {
    load_among(handle, briefs.iter())
}

fn load_among<'a>(handle: &str, briefs: impl Iterator<Item = &'a Brief>) -> usize {
    briefs
        .filter(|b| !b.deleted && IN_FLIGHT.contains(&b.status))
        .filter(|b| b.assignees.iter().any(|a| a == handle))
        .count()
}

/// Hours inside the member's working hours, on their wall clock, between two
/// instants. Walks day by day in their zone, turning each day's `09:00-17:00`
/// into real instants with jiff, so a DST day's shift is as long as it really
/// is. Counts at most [`MAX_WALK_DAYS`] days from `from`; an unknown zone is
/// read as UTC and unreadable hours as a day off, as [`Member::is_working_at`] does.
pub fn working_hours_between(member: &Member, from: Timestamp, to: Timestamp) -> f64 {
    if to <= from {
        return 0.0;
    }
    let tz = member_zone(member);
    let start = from.to_zoned_datetime(tz.clone());
    let to = start
        .checked_add(MAX_WALK_DAYS.days())
        .map_or(to, |cap| to.min(cap.timestamp()));
    let last_day = to.to_zoned_datetime(tz.clone()).date();
    let mut day = start.date();
    let mut seconds = 0.0;
    while day <= last_day {
        let window = WEEKDAYS
            .iter()
            .find(|(_, w)| *w == day.weekday())
            .and_then(|(name, _)| member.hours.get(*name))
            .and_then(|range| parse_hours(range).ok());
        if let Some((open, close)) = window {
            let instant = |t: Time| {
                day.to_datetime(t)
                    .to_zoned_datetime(tz.clone())
                    .map(|z| z.timestamp())
            };
            if let (Ok(open), Ok(close)) = (instant(open), instant(close)) {
                let (a, b) = (open.max(from), close.min(to));
                if a < b {
                    seconds += b.duration_since(a).as_secs_f64();
                }
            }
        }
        match day.tomorrow() {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    seconds / 3600.0
}

/// Ranks the people who could take `brief`: eligible ones first, then by
/// score, ties by handle. Agents, read-only and deleted members are left out.
/// Load counts the other briefs in `briefs`, never `brief` itself, so the
/// current assignee is not penalised for the work being weighed.
pub fn score_candidates(
    brief: &Brief,
    members: &[Member],
    briefs: &[Brief],
    now: Timestamp,
) -> Vec<Candidate> {
    let wanted = wanted_skills(brief);
    let needed = hours_needed(brief);
    let mut out: Vec<Candidate> = members
        .iter()
        .filter(|m| !m.deleted && !m.has_role(Role::Agent) && !m.has_role(Role::ReadOnly))
        .map(|m| {
            let load = load_among(&m.handle, briefs.iter().filter(|b| b.id != brief.id));
            score_member(brief, m, &wanted, load, needed, now)
        })
        .collect();
    out.sort_by(|a, b| {
        b.eligible
            .cmp(&a.eligible)
            .then(b.score.total_cmp(&a.score))
            .then_with(|| a.handle.cmp(&b.handle))
    });
    out
}

/// Working hours the brief is estimated to need: [`HOURS_PER_DELIVERABLE`]
/// per unit of quantity, at least [`MIN_HOURS_NEEDED`].
pub fn hours_needed(brief: &Brief) -> f64 {
    let units: f64 = brief
        .deliverables
        .iter()
        .map(|d| f64::from(d.quantity))
        .sum();
    (units * HOURS_PER_DELIVERABLE).max(MIN_HOURS_NEEDED)
}

fn score_member(
    brief: &Brief,
    member: &Member,
    wanted: &[String],
    load: usize,
    needed: f64,
    now: Timestamp,
) -> Candidate {
    let has = member_skills(member);
    let matched: Vec<String> = wanted
        .iter()
        .filter(|w| has.contains(w.as_str()))
        .cloned()
        .collect();
    let skills = if wanted.is_empty() {
        1.0
    } else {
        matched.len() as f64 / wanted.len() as f64
    };

    let capacity = member.capacity as usize;
    let load_part = (1.0 - load as f64 / capacity.max(1) as f64).clamp(0.0, 1.0);

    let zone = member_zone(member);
    let zone_name = zone.iana_name().unwrap_or("UTC").to_owned();
    let due = brief.due.as_ref().map(|due| {
        let local = due.at.to_zoned_datetime(zone.clone());
        let clock = local.time();
        let label = format!("{} {zone_name}", local.strftime("%a %d %b %H:%M"));
        (due.at, label, clock < NIGHT_ENDS || clock >= NIGHT_STARTS)
    });
    let (hours, time) = match &due {
        None => (0.0, NEUTRAL_TIME),
        Some((at, _, _)) if *at <= now => (0.0, 0.0),
        Some((at, _, _)) => {
            let hours = working_hours_between(member, now, *at);
            (hours, (hours / needed).min(1.0))
        }
    };

    let parts = ScoreParts {
        skills,
        load: load_part,
        time,
    };
    let mut c = Candidate {
        handle: member.handle.clone(),
        score: parts.total(),
        skills_matched: matched,
        skills_wanted: wanted.to_vec(),
        load,
        capacity,
        working_hours_before_due: hours,
        due_in_their_night: due.as_ref().is_some_and(|d| d.2),
        local_due: due.as_ref().map(|d| d.1.clone()),
        eligible: load < capacity,
        rationale: String::new(),
        parts,
    };
    let walk_capped = due.as_ref().is_some_and(|(at, _, _)| {
        now.to_zoned_datetime(zone.clone())
            .checked_add(MAX_WALK_DAYS.days())
            .is_ok_and(|cap| *at > cap.timestamp())
    });
    let due_passed = due.as_ref().is_some_and(|(at, _, _)| *at <= now);
    c.rationale = rationale(&c, &zone_name, needed, due_passed, walk_capped);
    c
}

fn rationale(
    c: &Candidate,
    zone: &str,
    needed: f64,
    due_passed: bool,
    walk_capped: bool,
) -> String {
    let skills = if c.skills_wanted.is_empty() {
        "no particular skills wanted".to_owned()
    } else {
        let missing: Vec<&str> = c
            .skills_wanted
            .iter()
            .filter(|w| !c.skills_matched.contains(w))
            .map(String::as_str)
            .collect();
        let mut detail = c.skills_matched.join(", ");
        if !missing.is_empty() {
            if !detail.is_empty() {
                detail.push_str("; ");
            }
            detail.push_str(&format!("lacks {}", missing.join(", ")));
        }
        format!(
            "{} of {} wanted skills ({detail})",
            c.skills_matched.len(),
            c.skills_wanted.len()
        )
    };
    let mut load = format!("{} of {} briefs in flight", c.load, c.capacity);
    if !c.eligible {
        load.push_str(if c.load > c.capacity {
            " (over capacity, not eligible)"
        } else {
            " (at capacity, not eligible)"
        });
    }
    let time = match &c.local_due {
        None => format!("no due date, so time counts as neutral ({NEUTRAL_TIME:.1}) for everyone"),
        Some(local) => {
            // The zone is named once in the sentence, so the clock goes without it.
            let clock = local
                .strip_suffix(zone)
                .map_or(local.as_str(), str::trim_end);
            let night = if c.due_in_their_night {
                ", at night"
            } else {
                ""
            };
            let when = format!("{clock} their time{night}");
            if due_passed {
                format!(
                    "the due date has passed ({clock} their time in {zone}{night}), so time scores 0"
                )
            } else {
                let hours = c.working_hours_before_due;
                let (lead, tail) = if walk_capped {
                    (
                        "at least ",
                        format!("; counted over the next {MAX_WALK_DAYS} days only"),
                    )
                } else {
                    ("", String::new())
                };
                format!(
                    "{lead}{hours:.1} working hours in {zone} before the due date ({when}), \
                     against about {needed:.0} needed{tail}"
                )
            }
        }
    };
    let p = &c.parts;
    format!(
        "@{}: {skills}; {load}; {time}. Score {:.3} = {SKILLS_WEIGHT:.2} x skills {:.2} \
         + {LOAD_WEIGHT:.2} x load {:.2} + {TIME_WEIGHT:.2} x time {:.2}.",
        c.handle, c.score, p.skills, p.load, p.time
    )
}

/// The member's zone, read as UTC when unknown (as [`Member::local_time`] does).
fn member_zone(member: &Member) -> TimeZone {
    parse_zone(&member.tz).unwrap_or(TimeZone::UTC)
}

/// A member's skills as written (lowercased), plus the canonical skill any of
/// their words maps to, so `Video editing` counts as `motion`.
fn member_skills(member: &Member) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for skill in &member.skills {
        let skill = skill.trim().to_lowercase();
        out.extend(words(&skill).filter_map(skill_for_word).map(str::to_owned));
        out.insert(skill);
    }
    out
}

/// Lowercase runs of letters and digits: `instagram-reel:1080x1920` gives
/// `instagram`, `reel`, `1080x1920`.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

fn skill_for_word(word: String) -> Option<&'static str> {
    let singular = word.strip_suffix('s').filter(|w| w.len() >= 2);
    SKILL_KEYWORDS
        .iter()
        .find(|(skill, keywords)| {
            [Some(word.as_str()), singular]
                .into_iter()
                .flatten()
                .any(|w| w == *skill || keywords.contains(&w))
        })
        .map(|(skill, _)| *skill)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::brief::{Deliverable, Due};
    use crate::model::record::EntityRecord;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const MON_FRI: [&str; 5] = ["mon", "tue", "wed", "thu", "fri"];

    fn member(handle: &str, tz: &str, days: &[&str], hours: &str, skills: &[&str]) -> Member {
        Member {
            handle: handle.to_owned(),
            name: handle.to_owned(),
            roles: vec![Role::Creative],
            tz: tz.to_owned(),
            hours: days
                .iter()
                .map(|d| ((*d).to_owned(), hours.to_owned()))
                .collect::<BTreeMap<_, _>>(),
            skills: skills.iter().map(|s| (*s).to_owned()).collect(),
            capacity: 3,
            deleted: false,
        }
    }

    fn designer(handle: &str, tz: &str, skills: &[&str]) -> Member {
        member(handle, tz, &MON_FRI, "09:00-17:00", skills)
    }

    fn brief(id: &str, deliverables: &[&str], tags: &[&str], due: Option<(&str, &str)>) -> Brief {
        let mut b = Brief::from_record(id, &EntityRecord::default());
        b.title = format!("Brief {id}");
        b.deliverables = deliverables
            .iter()
            .map(|d| Deliverable::parse(d).expect("deliverable"))
            .collect();
        b.tags = tags.iter().map(|t| (*t).to_owned()).collect();
        b.due = due.map(|(at, zone)| Due::parse(at, zone).expect("due"));
        b
    }

    fn in_flight(id: &str, status: BriefStatus, assignee: &str) -> Brief {
        let mut b = brief(id, &["linkedin:1200x627"], &[], None);
        b.status = status;
        b.assignees = vec![assignee.to_owned()];
        b
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    fn find<'a>(ranked: &'a [Candidate], handle: &str) -> &'a Candidate {
        ranked
            .iter()
            .find(|c| c.handle == handle)
            .unwrap_or_else(|| panic!("no candidate @{handle}"))
    }

    fn handles(ranked: &[Candidate]) -> Vec<&str> {
        ranked.iter().map(|c| c.handle.as_str()).collect()
    }

    #[test]
    fn a_due_date_at_night_for_one_candidate_is_flagged_and_costs_them_time() {
        // Due Tue 17:00 in Lisbon is Wed 02:00 in Tokyo; at Tue 06:00 UTC the
        // Tokyo designer has 2 hours of Tuesday left, the Lisbon one all 8.
        let b = brief(
            "b-1",
            &["tiktok:1080x1920"],
            &[],
            Some(("2026-12-01T17:00", "Europe/Lisbon")),
        );
        let team = [
            designer("kenji", "Asia/Tokyo", &["motion"]),
            designer("marta", "Europe/Lisbon", &["motion"]),
        ];
        let ranked = score_candidates(&b, &team, &[], ts("2026-12-01T06:00:00Z"));

        assert_eq!(handles(&ranked), ["marta", "kenji"]);
        let kenji = find(&ranked, "kenji");
        assert!(kenji.due_in_their_night);
        assert_eq!(
            kenji.local_due.as_deref(),
            Some("Wed 02 Dec 02:00 Asia/Tokyo")
        );
        assert_eq!(kenji.working_hours_before_due, 2.0);
        assert_eq!(kenji.parts.time, 0.25);
        assert!(
            kenji
                .rationale
                .contains("2.0 working hours in Asia/Tokyo before the due date (Wed 02 Dec 02:00 their time, at night)"),
            "{}",
            kenji.rationale
        );
        let marta = find(&ranked, "marta");
        assert!(!marta.due_in_their_night);
        assert_eq!(
            marta.local_due.as_deref(),
            Some("Tue 01 Dec 17:00 Europe/Lisbon")
        );
        assert_eq!(marta.working_hours_before_due, 8.0);
        assert_eq!(marta.parts.time, 1.0);
        assert!(!marta.rationale.contains("at night"), "{}", marta.rationale);
    }

    #[test]
    fn working_hours_across_a_weekend_count_only_working_days() {
        let lisbon = designer("marta", "Europe/Lisbon", &[]);
        // Fri 15:00 to Mon 11:00 (Lisbon is on UTC in November): 2 h + 2 h.
        let hours = working_hours_between(
            &lisbon,
            ts("2026-11-27T15:00:00Z"),
            ts("2026-11-30T11:00:00Z"),
        );
        assert_eq!(hours, 4.0);
        let weekend_only = working_hours_between(
            &lisbon,
            ts("2026-11-28T00:00:00Z"),
            ts("2026-11-30T00:00:00Z"),
        );
        assert_eq!(weekend_only, 0.0);
        // A weekend worker gets exactly their Saturday shift.
        let saturdays = member("sol", "Europe/Lisbon", &["sat"], "10:00-12:00", &[]);
        let hours = working_hours_between(
            &saturdays,
            ts("2026-11-27T00:00:00Z"),
            ts("2026-11-30T11:00:00Z"),
        );
        assert_eq!(hours, 2.0);
        assert_eq!(
            working_hours_between(
                &lisbon,
                ts("2026-11-30T11:00:00Z"),
                ts("2026-11-27T15:00:00Z")
            ),
            0.0,
            "a backwards range has no hours"
        );
    }

    #[test]
    fn working_hours_across_a_dst_change_are_exact() {
        // New York falls back at 02:00 on Sun 2026-11-01: 00:00-04:00 that
        // night lasts 5 real hours, and Monday 09:00 is already EST (14:00 UTC).
        let mut night = member("nyx", "America/New_York", &["sun"], "00:00-04:00", &[]);
        night
            .hours
            .insert("mon".to_owned(), "09:00-17:00".to_owned());
        let fall_sunday = working_hours_between(
            &night,
            ts("2026-11-01T04:00:00Z"),
            ts("2026-11-01T12:00:00Z"),
        );
        assert_eq!(fall_sunday, 5.0);
        let through_monday_ten = working_hours_between(
            &night,
            ts("2026-10-31T12:00:00Z"),
            ts("2026-11-02T15:00:00Z"),
        );
        assert_eq!(through_monday_ten, 6.0);
        // Spring forward on Sun 2026-03-08: the same shift is 3 real hours.
        let spring_sunday = working_hours_between(
            &night,
            ts("2026-03-08T05:00:00Z"),
            ts("2026-03-08T12:00:00Z"),
        );
        assert_eq!(spring_sunday, 3.0);
    }

    #[test]
    fn working_hours_stop_counting_after_sixty_days_and_the_rationale_says_so() {
        let utc = designer("uma", "UTC", &[]);
        // Mon 2026-11-02 plus 60 days is Fri 2027-01-01 00:00: 8 weeks and
        // Mon-Thu, 44 working days of 8 hours.
        let hours =
            working_hours_between(&utc, ts("2026-11-02T00:00:00Z"), ts("2027-11-02T00:00:00Z"));
        assert_eq!(hours, 44.0 * 8.0);
        let b = brief("b-far", &["ooh"], &[], Some(("2027-11-02", "UTC")));
        let ranked = score_candidates(&b, &[utc], &[], ts("2026-11-02T00:00:00Z"));
        assert_eq!(ranked[0].parts.time, 1.0);
        assert!(
            ranked[0].rationale.contains("at least 352.0 working hours")
                && ranked[0].rationale.contains("next 60 days only"),
            "{}",
            ranked[0].rationale
        );
    }

    #[test]
    fn overloaded_member_is_ineligible_and_ranked_last() {
        let b = brief("b-new", &["reel"], &[], None);
        let mut ana = designer("ana", "Europe/Lisbon", &["motion"]);
        ana.capacity = 2;
        let bob = designer("bob", "Europe/Lisbon", &[]);
        let briefs = [
            in_flight("b-1", BriefStatus::InProgress, "ana"),
            in_flight("b-2", BriefStatus::InReview, "ana"),
            // Not load: not started, parked or finished.
            in_flight("b-3", BriefStatus::Draft, "ana"),
            in_flight("b-4", BriefStatus::OnHold, "ana"),
            in_flight("b-5", BriefStatus::Delivered, "ana"),
        ];
        let ranked = score_candidates(&b, &[ana, bob], &briefs, ts("2026-12-01T10:00:00Z"));

        assert_eq!(handles(&ranked), ["bob", "ana"]);
        let ana = find(&ranked, "ana");
        assert!(!ana.eligible);
        assert_eq!((ana.load, ana.capacity), (2, 2));
        assert_eq!(ana.parts.load, 0.0);
        assert!(
            ana.score > find(&ranked, "bob").score,
            "ana scores higher yet ranks last because she is full"
        );
        assert!(
            ana.rationale
                .contains("2 of 2 briefs in flight (at capacity, not eligible)"),
            "{}",
            ana.rationale
        );
        assert!(find(&ranked, "bob").eligible);
    }

    #[test]
    fn load_counts_only_briefs_in_flight_and_not_the_brief_being_scored() {
        let mut deleted = in_flight("b-4", BriefStatus::Ready, "ana");
        deleted.deleted = true;
        let briefs = [
            in_flight("b-1", BriefStatus::Ready, "ana"),
            in_flight("b-2", BriefStatus::InProgress, "ana"),
            in_flight("b-3", BriefStatus::Approved, "ana"),
            deleted,
            in_flight("b-5", BriefStatus::InReview, "bob"),
        ];
        assert_eq!(load_of("ana", &briefs), 2);
        assert_eq!(load_of("bob", &briefs), 1);
        assert_eq!(load_of("cy", &briefs), 0);

        // Re-scoring b-1, which ana already holds, counts only her other work.
        let ranked = score_candidates(
            &briefs[0],
            &[designer("ana", "UTC", &[])],
            &briefs,
            ts("2026-12-01T10:00:00Z"),
        );
        assert_eq!(ranked[0].load, 1);
    }

    #[test]
    fn skills_from_deliverables_and_tags_drive_the_ranking() {
        let b = brief(
            "b-1",
            &["instagram-reel:1080x1920*2", "email:600x200"],
            &["3D", "hero"],
            Some(("2026-12-04T17:00", "Europe/Lisbon")),
        );
        assert_eq!(wanted_skills(&b), ["3d", "copy", "motion"]);
        let team = [
            designer("max", "Europe/Lisbon", &["illustration"]),
            designer("amy", "Europe/Lisbon", &["Video editing"]),
            designer("zoe", "Europe/Lisbon", &["motion", "3d", "copywriting"]),
        ];
        let ranked = score_candidates(&b, &team, &[], ts("2026-11-30T08:00:00Z"));

        assert_eq!(handles(&ranked), ["zoe", "amy", "max"]);
        assert_eq!(ranked[0].skills_matched, ["3d", "copy", "motion"]);
        assert_eq!(ranked[0].parts.skills, 1.0);
        let amy = find(&ranked, "amy");
        assert_eq!(amy.skills_matched, ["motion"]);
        assert!(
            amy.rationale
                .contains("1 of 3 wanted skills (motion; lacks 3d, copy)"),
            "{}",
            amy.rationale
        );
        assert_eq!(find(&ranked, "max").parts.skills, 0.0);
    }

    #[test]
    fn a_brief_without_skill_words_wants_nothing_and_everyone_matches() {
        let b = brief("b-1", &["linkedin:1200x627"], &["q4-launch"], None);
        assert!(wanted_skills(&b).is_empty());
        let ranked = score_candidates(
            &b,
            &[designer("ana", "UTC", &[])],
            &[],
            ts("2026-12-01T10:00:00Z"),
        );
        assert_eq!(ranked[0].parts.skills, 1.0);
        assert!(ranked[0].rationale.contains("no particular skills wanted"));
    }

    #[test]
    fn agents_and_read_only_members_are_never_candidates() {
        let mut bot = designer("spoke-bot", "UTC", &["motion"]);
        bot.roles = vec![Role::Agent];
        let mut viewer = designer("client", "UTC", &["motion"]);
        viewer.roles = vec![Role::ReadOnly];
        let mut mixed = designer("lead-viewer", "UTC", &["motion"]);
        mixed.roles = vec![Role::Lead, Role::ReadOnly];
        let mut gone = designer("former", "UTC", &["motion"]);
        gone.deleted = true;
        let team = [bot, viewer, mixed, gone, designer("ana", "UTC", &[])];
        let b = brief("b-1", &["video"], &[], None);
        let ranked = score_candidates(&b, &team, &[], ts("2026-12-01T10:00:00Z"));
        assert_eq!(handles(&ranked), ["ana"]);
    }

    #[test]
    fn no_due_date_is_neutral_and_said_so() {
        let b = brief("b-1", &["video"], &[], None);
        let team = [
            designer("ana", "Asia/Tokyo", &["motion"]),
            designer("bea", "America/New_York", &["motion"]),
        ];
        let ranked = score_candidates(&b, &team, &[], ts("2026-12-01T10:00:00Z"));
        for c in &ranked {
            assert_eq!(c.parts.time, NEUTRAL_TIME);
            assert_eq!(c.local_due, None);
            assert!(!c.due_in_their_night);
            assert!(
                c.rationale
                    .contains("no due date, so time counts as neutral"),
                "{}",
                c.rationale
            );
        }
        assert_eq!(ranked[0].score, ranked[1].score);
    }

    #[test]
    fn a_due_date_in_the_past_gives_no_time() {
        let b = brief("b-1", &["video"], &[], Some(("2026-11-30T17:00", "UTC")));
        let ranked = score_candidates(
            &b,
            &[designer("ana", "UTC", &["motion"])],
            &[],
            ts("2026-12-01T10:00:00Z"),
        );
        assert_eq!(ranked[0].parts.time, 0.0);
        assert_eq!(ranked[0].working_hours_before_due, 0.0);
        assert!(
            ranked[0]
                .rationale
                .contains("the due date has passed (Mon 30 Nov 17:00 their time in UTC)"),
            "{}",
            ranked[0].rationale
        );
    }

    #[test]
    fn ties_break_by_handle_deterministically() {
        let b = brief("b-1", &["video"], &[], Some(("2026-12-03T17:00", "UTC")));
        let mut team = vec![
            designer("cleo", "UTC", &["motion"]),
            designer("ada", "UTC", &["motion"]),
            designer("bea", "UTC", &["motion"]),
        ];
        let now = ts("2026-12-01T10:00:00Z");
        let first = score_candidates(&b, &team, &[], now);
        assert_eq!(handles(&first), ["ada", "bea", "cleo"]);
        team.reverse();
        assert_eq!(score_candidates(&b, &team, &[], now), first);
    }

    const ZONES: [&str; 5] = [
        "UTC",
        "Europe/Lisbon",
        "America/New_York",
        "Asia/Tokyo",
        "Australia/Sydney",
    ];
    const SKILLS: [&str; 5] = ["motion", "copy", "3d", "photo", "illustration"];
    const DELIVERABLES: [&str; 5] = ["video*2", "email", "render", "linkedin:1200x627*3", "photo"];

    fn arb_member(i: usize) -> impl Strategy<Value = Member> {
        (
            0..ZONES.len(),
            proptest::collection::vec(any::<bool>(), 7),
            6u8..12,
            1u8..10,
            proptest::collection::vec(any::<bool>(), SKILLS.len()),
            0u32..4,
        )
            .prop_map(move |(zone, days, start, len, skills, capacity)| {
                let days: Vec<&str> = WEEKDAYS
                    .iter()
                    .zip(days)
                    .filter(|(_, on)| *on)
                    .map(|((d, _), _)| *d)
                    .collect();
                let skills: Vec<&str> = SKILLS
                    .iter()
                    .zip(skills)
                    .filter(|(_, on)| *on)
                    .map(|(s, _)| *s)
                    .collect();
                let hours = format!("{start:02}:00-{:02}:30", start + len);
                let mut m = member(&format!("m{i}"), ZONES[zone], &days, &hours, &skills);
                m.capacity = capacity;
                m
            })
    }

    proptest! {
        #[test]
        fn scores_are_within_bounds_and_sorted(
            team in (arb_member(0), arb_member(1), arb_member(2), arb_member(3), arb_member(4)),
            deliverables in proptest::collection::vec(0..DELIVERABLES.len(), 0..4),
            due_offset_hours in proptest::option::of(-48i64..2000),
            loads in proptest::collection::vec((0..5usize, 0..BriefStatus::ALL.len()), 0..12),
        ) {
            let team = [team.0, team.1, team.2, team.3, team.4];
            let now = ts("2026-10-30T12:34:00Z");
            let mut b = brief("b-x", &[], &[], None);
            b.deliverables = deliverables
                .iter()
                .map(|i| Deliverable::parse(DELIVERABLES[*i]).expect("deliverable"))
                .collect();
            b.due = due_offset_hours.map(|h| Due {
                at: now + jiff::SignedDuration::from_hours(h),
                tz: "Europe/Lisbon".to_owned(),
            });
            let briefs: Vec<Brief> = loads
                .iter()
                .enumerate()
                .map(|(i, (who, status))| {
                    in_flight(&format!("b-{i}"), BriefStatus::ALL[*status], &format!("m{who}"))
                })
                .collect();
            let ranked = score_candidates(&b, &team, &briefs, now);

            prop_assert_eq!(ranked.len(), team.len());
            for c in &ranked {
                for part in [c.score, c.parts.skills, c.parts.load, c.parts.time] {
                    prop_assert!((0.0..=1.0).contains(&part), "{} out of bounds: {}", part, c.rationale);
                }
                prop_assert_eq!(c.score, c.parts.total());
                prop_assert!(c.working_hours_before_due >= 0.0);
                prop_assert_eq!(c.eligible, c.load < c.capacity);
                let prefix = format!("@{}:", c.handle);
                prop_assert!(c.rationale.starts_with(&prefix), "{}", c.rationale);
            }
            for pair in ranked.windows(2) {
                let (a, z) = (&pair[0], &pair[1]);
                let in_order = (a.eligible && !z.eligible)
                    || (a.eligible == z.eligible
                        && (a.score > z.score || (a.score == z.score && a.handle < z.handle)));
                prop_assert!(in_order, "{} before {}", a.rationale, z.rationale);
            }
        }
    }
}
