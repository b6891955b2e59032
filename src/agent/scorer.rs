//! The deterministic assignment scorer: who should take a brief, by skills, load and time.
//!
//! Every number here is computed from the hub's data, so a lead can check it;
//! the agent may explain a ranking in words but never invents its numbers.
//! A candidate's score is a weighted sum of three parts, each in `0..=1`:
//!
//! - **skills** ([`SKILLS_WEIGHT`]): wanted skills the member has / wanted skills
//!   ([`wanted_skills`]); 1.0 when the brief wants nothing in particular.
//!   Deliverable channels ask for skills through the hub's channel table
//!   ([`ChannelSkills`]); tags, specs and channels the table does not name go
//!   through the keyword families below.
//! - **load** ([`LOAD_WEIGHT`]): `1 - (assigned + pending) / capacity`, clamped:
//!   other briefs in flight assigned to them ([`load_of`]) plus assignment
//!   proposals for them still waiting for approval ([`pending_load_of`]).
//! - **time** ([`TIME_WEIGHT`]): `min(1, working hours before due / hours needed)`,
//!   hours counted in the member's own zone ([`working_hours_between`]).
//!
//! The weights sum to 1, so the score is in `0..=1` too. Scores within
//! [`TIE_MARGIN`] of each other are a tie, broken by working hours left before
//! the due time in each candidate's zone (more first), then by load including
//! pending proposals (less first), and only then by handle.

use crate::model::brief::{Brief, BriefStatus};
use crate::model::input::{parse_hours, parse_zone};
use crate::model::member::{Member, Role, WEEKDAYS};
use crate::model::proposal::{Proposal, ProposalKind, ProposalStatus};
use crate::model::skills::ChannelSkills;
use crate::service::{BriefFilter, Hub};
use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// Weight of the skills part: the right skills matter most.
pub const SKILLS_WEIGHT: f64 = 0.45;
/// Weight of the load part: spreading work keeps people from drowning.
pub const LOAD_WEIGHT: f64 = 0.25;
/// Weight of the time part: working hours they really have before the due date.
pub const TIME_WEIGHT: f64 = 0.30;
/// Scores this close to the best of a group are a tie (a near-tie is still
/// a coin toss; the tie-breakers say more than a hundredth of a point).
pub const TIE_MARGIN: f64 = 0.02;

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

/// Skill families: a canonical skill and the words (of tags, specs, channels
/// the hub's table does not name, and members' skills) that mean it. A
/// trailing `s` is ignored, so `reels` and `icons` match. Two skills of one
/// family are the same skill to the scorer: a brief wanting `video` is
/// matched by a member with `motion`.
const SKILL_KEYWORDS: &[(&str, &[&str])] = &[
    ("3d", &["3d", "cgi", "render", "blender", "c4d"]),
    (
        "audio",
        &["audio", "podcast", "sound", "radio", "voiceover"],
    ),
    ("branding", &["branding", "brand", "logo", "identity"]),
    (
        "copy",
        &[
            "copy",
            "copywriting",
            "headline",
            "tagline",
            "script",
            "blog",
        ],
    ),
    (
        "digital",
        &["digital", "web", "website", "banner", "display", "html5"],
    ),
    ("email", &["email", "newsletter", "mailchimp", "crm"]),
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
    (
        "social",
        &[
            "social",
            "linkedin",
            "instagram",
            "facebook",
            "twitter",
            "pinterest",
        ],
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
    /// Assignment proposals for them waiting for approval, on other briefs
    /// (see [`pending_load_of`]).
    pub pending: usize,
    pub capacity: usize,
    /// Working hours in their zone from now until the due date; 0 when there
    /// is no due date or it has passed.
    pub working_hours_before_due: f64,
    /// The due instant on their wall clock, e.g. `Tue 01 Dec 02:00 Asia/Tokyo`.
    pub local_due: Option<String>,
    /// The due instant falls outside `07:00..22:00` in their zone.
    pub due_in_their_night: bool,
    /// The due instant falls outside their working hours.
    pub due_outside_hours: bool,
    /// False when assigned plus pending work reaches their capacity; such
    /// candidates rank last.
    pub eligible: bool,
    /// When their score tied with others': what set their place among them.
    pub tie_break: Option<String>,
    /// One paragraph with the numbers, for the lead (and for the agent to quote).
    pub rationale: String,
    pub parts: ScoreParts,
}

impl Candidate {
    /// Assigned plus pending: the load the score and eligibility count.
    pub fn total_load(&self) -> usize {
        self.load + self.pending
    }
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

/// What the scorer weighs besides the brief itself.
#[derive(Debug, Clone, Copy)]
pub struct Team<'a> {
    pub members: &'a [Member],
    /// Every brief, for load (the brief being scored is skipped).
    pub briefs: &'a [Brief],
    /// Every proposal; pending assignment proposals count as load.
    pub proposals: &'a [Proposal],
    pub channel_skills: &'a ChannelSkills,
}

/// The skills a brief asks for: each deliverable channel through the hub's
/// `table` (the whole channel, else each of its words), and the words of
/// tags, specs and channels the table does not name through the keyword
/// families. Lowercase, one per family, sorted.
pub fn wanted_skills(brief: &Brief, table: &ChannelSkills) -> Vec<String> {
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    let mut want = |skill: &str| {
        wanted
            .entry(canonical(skill))
            .or_insert_with(|| skill.to_owned());
    };
    for d in &brief.deliverables {
        let channel = d.channel.trim().to_lowercase();
        if let Some(skills) = table.skills_for(&channel) {
            skills.iter().for_each(|s| want(s));
        } else {
            for word in words(&channel) {
                match table.skills_for(&word) {
                    Some(skills) => skills.iter().for_each(|s| want(s)),
                    None => {
                        if let Some(s) = skill_for_word(word) {
                            want(s);
                        }
                    }
                }
            }
        }
    }
    let texts = brief
        .tags
        .iter()
        .map(String::as_str)
        .chain(brief.deliverables.iter().map(|d| d.spec.as_str()));
    for skill in texts.flat_map(words).filter_map(skill_for_word) {
        want(skill);
    }
    let mut out: Vec<String> = wanted.into_values().collect();
    out.sort();
    out
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

/// Assignment proposals naming `handle` that wait for approval, on briefs
/// still in flight that are not already theirs, other than `except_brief`.
/// Approved ones are assignments already (counted by [`load_of`]); rejected
/// and withdrawn ones are nobody's load.
pub fn pending_load_of(
    handle: &str,
    proposals: &[Proposal],
    briefs: &[Brief],
    except_brief: Option<&str>,
) -> usize {
    let briefs: BTreeMap<&str, &Brief> = briefs.iter().map(|b| (b.id.as_str(), b)).collect();
    let mut counted: BTreeSet<&str> = BTreeSet::new();
    for p in proposals {
        if p.deleted
            || p.kind != Some(ProposalKind::Assignment)
            || p.status != ProposalStatus::Pending
            || p.payload["assignee"].as_str() != Some(handle)
        {
            continue;
        }
        let Some(id) = p.payload["brief"].as_str().or(p.brief.as_deref()) else {
            continue;
        };
        if Some(id) == except_brief {
            continue;
        }
        let Some(b) = briefs.get(id) else {
            continue;
        };
        if b.deleted || !IN_FLIGHT.contains(&b.status) || b.assignees.iter().any(|a| a == handle) {
            continue;
        }
        // Two pending proposals of one brief to one person are one job.
        counted.insert(id);
    }
    counted.len()
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

/// Ranks the people who could take `brief` with Spoke's default channel
/// table and no pending proposals; see [`rank`].
pub fn score_candidates(
    brief: &Brief,
    members: &[Member],
    briefs: &[Brief],
    now: Timestamp,
) -> Vec<Candidate> {
    let table = ChannelSkills::default();
    rank(
        brief,
        &Team {
            members,
            briefs,
            proposals: &[],
            channel_skills: &table,
        },
        now,
    )
}

/// Ranks the people who could take `brief` with everything the hub knows:
/// its members, briefs, pending proposals and channel table.
pub fn rank_in_hub(hub: &Hub, brief: &Brief, now: Timestamp) -> anyhow::Result<Vec<Candidate>> {
    let members = hub.members()?;
    let briefs = hub.briefs(&BriefFilter::default())?;
    let proposals = hub.proposals()?;
    let table = hub.channel_skills()?;
    Ok(rank(
        brief,
        &Team {
            members: &members,
            briefs: &briefs,
            proposals: &proposals,
            channel_skills: &table,
        },
        now,
    ))
}

/// Ranks the people who could take `brief`: eligible ones first, then by
/// score; scores within [`TIE_MARGIN`] of the best of their group tie, and a
/// tie goes to more working hours before the due, then less load (pending
/// proposals included), then the handle. Agents, read-only and deleted
/// members are left out. Load counts other briefs, never `brief` itself, so
/// the current assignee is not penalised for the work being weighed.
pub fn rank(brief: &Brief, team: &Team<'_>, now: Timestamp) -> Vec<Candidate> {
    let wanted = wanted_skills(brief, team.channel_skills);
    let needed = hours_needed(brief);
    let mut out: Vec<Candidate> = team
        .members
        .iter()
        .filter(|m| !m.deleted && !m.has_role(Role::Agent) && !m.has_role(Role::ReadOnly))
        .map(|m| {
            let load = load_among(&m.handle, team.briefs.iter().filter(|b| b.id != brief.id));
            let pending = pending_load_of(&m.handle, team.proposals, team.briefs, Some(&brief.id));
            score_member(brief, m, &wanted, (load, pending), needed, now)
        })
        .collect();
    out.sort_by(|a, b| {
        b.eligible
            .cmp(&a.eligible)
            .then(b.score.total_cmp(&a.score))
            .then_with(|| tie_order(a, b))
    });
    // Groups of near-equal scores, each led by its best score, re-ordered by
    // the tie-breakers. Grouping from the leader keeps the order total.
    let mut start = 0;
    while start < out.len() {
        let lead = &out[start];
        let end = out[start..]
            .iter()
            .position(|c| c.eligible != lead.eligible || lead.score - c.score > TIE_MARGIN + 1e-9)
            .map_or(out.len(), |n| start + n);
        let group = &mut out[start..end];
        group.sort_by(tie_order);
        describe_tie(group);
        start = end;
    }
    out
}

/// The tie-breakers in order: more working hours before the due, less load
/// (assigned + pending), then the handle.
fn tie_order(a: &Candidate, b: &Candidate) -> Ordering {
    b.working_hours_before_due
        .total_cmp(&a.working_hours_before_due)
        .then(a.total_load().cmp(&b.total_load()))
        .then_with(|| a.handle.cmp(&b.handle))
}

/// Says, for each member of a tied group, what set their place in it, and
/// appends it to their rationale. A group of one is no tie.
fn describe_tie(group: &mut [Candidate]) {
    if group.len() < 2 {
        if let Some(c) = group.first_mut() {
            c.rationale.push_str(" No tie.");
        }
        return;
    }
    let infos: Vec<(String, f64, usize)> = group
        .iter()
        .map(|c| (c.handle.clone(), c.working_hours_before_due, c.total_load()))
        .collect();
    for (i, c) in group.iter_mut().enumerate() {
        let others: Vec<String> = infos
            .iter()
            .filter(|(h, _, _)| *h != c.handle)
            .map(|(h, _, _)| format!("@{h}"))
            .collect();
        let (side, other) = if i + 1 < infos.len() {
            ("ahead of", &infos[i + 1])
        } else {
            ("behind", &infos[i - 1])
        };
        let mine = &infos[i];
        let factor = if (mine.1 - other.1).abs() > 1e-9 {
            format!(
                "working hours before the due in their zones ({:.1} h vs {:.1} h)",
                mine.1, other.1
            )
        } else if mine.2 != other.2 {
            format!("load, assigned + pending ({} vs {})", mine.2, other.2)
        } else {
            "handle order, as hours and load are equal".to_owned()
        };
        let text = format!(
            "tied with {} (scores within {TIE_MARGIN:.2}); {side} @{} on {factor}",
            others.join(", "),
            other.0
        );
        c.rationale.push_str(&format!(" Tie-break: {text}."));
        c.tie_break = Some(text);
    }
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
    (load, pending): (usize, usize),
    needed: f64,
    now: Timestamp,
) -> Candidate {
    let has = member_skills(member);
    let matched: Vec<String> = wanted
        .iter()
        .filter(|w| has.contains(&canonical(w)))
        .cloned()
        .collect();
    let skills = if wanted.is_empty() {
        1.0
    } else {
        matched.len() as f64 / wanted.len() as f64
    };

    let capacity = member.capacity as usize;
    let total = load + pending;
    let load_part = (1.0 - total as f64 / capacity.max(1) as f64).clamp(0.0, 1.0);

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
        pending,
        capacity,
        working_hours_before_due: hours,
        due_in_their_night: due.as_ref().is_some_and(|d| d.2),
        due_outside_hours: due
            .as_ref()
            .is_some_and(|(at, _, _)| !due_within_hours(member, *at)),
        local_due: due.as_ref().map(|d| d.1.clone()),
        eligible: total < capacity,
        tie_break: None,
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
        "skills: no particular skills wanted".to_owned()
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
            "skills: {} of {} wanted skills ({detail})",
            c.skills_matched.len(),
            c.skills_wanted.len()
        )
    };
    let mut load = format!(
        "load: {} assigned + {} pending of {} capacity",
        c.load, c.pending, c.capacity
    );
    if !c.eligible {
        load.push_str(if c.total_load() > c.capacity {
            " (over capacity, not eligible)"
        } else {
            " (at capacity, not eligible)"
        });
    }
    let time = match &c.local_due {
        None => format!(
            "hours before due: no due date, so time counts as neutral ({NEUTRAL_TIME:.1}) for everyone"
        ),
        Some(local) => {
            // The zone is named once in the sentence, so the clock goes without it.
            let clock = local
                .strip_suffix(zone)
                .map_or(local.as_str(), str::trim_end);
            let mut when = format!("{clock} their time");
            match (c.due_in_their_night, c.due_outside_hours) {
                (true, _) => when.push_str(", at night, outside their working hours"),
                (false, true) => when.push_str(", outside their working hours"),
                _ => {}
            }
            if due_passed {
                format!(
                    "hours before due: none, the due date has passed ({clock} their time in {zone}), so time scores 0"
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
                    "hours before due: {lead}{hours:.1} working hours in {zone} ({when}), \
                     against about {needed:.0} needed{tail}"
                )
            }
        }
    };
    let p = &c.parts;
    format!(
        "@{}: {skills}; {time}; {load}. Score {:.3} = {SKILLS_WEIGHT:.2} x skills {:.2} \
         + {LOAD_WEIGHT:.2} x load {:.2} + {TIME_WEIGHT:.2} x time {:.2}.",
        c.handle, c.score, p.skills, p.load, p.time
    )
}

/// Whether `at` falls on one of the member's working days, inside its
/// hours, the closing time included (a due at 17:00 is fine for a 09:00-17:00 day).
fn due_within_hours(member: &Member, at: Timestamp) -> bool {
    let local = at.to_zoned_datetime(member_zone(member));
    WEEKDAYS
        .iter()
        .find(|(_, w)| *w == local.weekday())
        .and_then(|(name, _)| member.hours.get(*name))
        .and_then(|range| parse_hours(range).ok())
        .is_some_and(|(open, close)| open <= local.time() && local.time() <= close)
}

/// The member's zone, read as UTC when unknown (as [`Member::local_time`] does).
fn member_zone(member: &Member) -> TimeZone {
    parse_zone(&member.tz).unwrap_or(TimeZone::UTC)
}

/// A skill as the scorer compares it: its family's name when it belongs to
/// one (`video` is `motion`), else itself, lowercased.
fn canonical(skill: &str) -> String {
    let skill = skill.trim().to_lowercase();
    skill_for_word(skill.clone())
        .map(str::to_owned)
        .unwrap_or(skill)
}

/// A member's skills as the scorer compares them: each one whole, and each
/// of its words, through [`canonical`], so `Video editing` counts as `motion`
/// and `social media` as `social`.
fn member_skills(member: &Member) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for skill in &member.skills {
        out.insert(canonical(skill));
        out.extend(words(skill).map(|w| canonical(&w)));
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
                .contains("hours before due: 2.0 working hours in Asia/Tokyo (Wed 02 Dec 02:00 their time, at night, outside their working hours)"),
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
                .contains("load: 2 assigned + 0 pending of 2 capacity (at capacity, not eligible)"),
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
        assert_eq!(
            wanted_skills(&b, &ChannelSkills::default()),
            ["3d", "copy", "email", "motion", "social"]
        );
        let team = [
            designer("max", "Europe/Lisbon", &["illustration"]),
            designer("amy", "Europe/Lisbon", &["Video editing"]),
            designer("zoe", "Europe/Lisbon", &["motion", "3d", "copywriting"]),
        ];
        let ranked = score_candidates(&b, &team, &[], ts("2026-11-30T08:00:00Z"));

        assert_eq!(handles(&ranked), ["zoe", "amy", "max"]);
        assert_eq!(ranked[0].skills_matched, ["3d", "copy", "motion"]);
        assert_eq!(ranked[0].parts.skills, 0.6);
        let amy = find(&ranked, "amy");
        assert_eq!(amy.skills_matched, ["motion"]);
        assert!(
            amy.rationale
                .contains("1 of 5 wanted skills (motion; lacks 3d, copy, email, social)"),
            "{}",
            amy.rationale
        );
        assert_eq!(find(&ranked, "max").parts.skills, 0.0);
    }

    #[test]
    fn a_brief_without_skill_words_wants_nothing_and_everyone_matches() {
        let b = brief("b-1", &["intranet:1200x627"], &["q4-launch"], None);
        assert!(wanted_skills(&b, &ChannelSkills::default()).is_empty());
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

    fn assignment_proposal(
        id: &str,
        brief: &str,
        assignee: &str,
        status: ProposalStatus,
    ) -> Proposal {
        Proposal {
            id: id.to_owned(),
            kind: Some(ProposalKind::Assignment),
            payload: serde_json::json!({"brief": brief, "assignee": assignee}),
            rationale: None,
            citations: Vec::new(),
            brief: Some(brief.to_owned()),
            status,
            author: Some("spoke-bot".to_owned()),
            deleted: false,
        }
    }

    /// Ready, unassigned briefs wanting `social`, due Thu 03 Dec 15:00 UTC.
    fn ready(id: &str) -> Brief {
        let mut b = brief(
            id,
            &["linkedin:1200x627"],
            &[],
            Some(("2026-12-03T15:00", "UTC")),
        );
        b.status = BriefStatus::Ready;
        b
    }

    /// Three social designers alike but for their zones: the due time is
    /// 02:00 Friday in Sydney, 10:00 in New York, 15:00 in Lisbon.
    fn three_zones() -> [Member; 3] {
        [
            designer("ada", "Australia/Sydney", &["social"]),
            designer("bea", "America/New_York", &["social"]),
            designer("cleo", "Europe/Lisbon", &["social"]),
        ]
    }

    #[test]
    fn a_tie_across_zones_goes_to_the_most_working_hours_before_the_due() {
        let now = ts("2026-11-30T08:00:00Z");
        let ranked = score_candidates(&ready("b-1"), &three_zones(), &[], now);

        // All three score the full 1.0: skills, load and time are all maxed.
        assert!(ranked.iter().all(|c| c.score == 1.0), "{ranked:#?}");
        // Lisbon: Mon 8 + Tue 8 + Wed 8 + Thu 09-15 = 30 h; New York: 3 days
        // and Thu 09-10 = 25 h; Sydney: Monday is over, Tue-Thu = 24 h.
        assert_eq!(handles(&ranked), ["cleo", "bea", "ada"]);
        assert_eq!(find(&ranked, "cleo").working_hours_before_due, 30.0);
        assert_eq!(find(&ranked, "bea").working_hours_before_due, 25.0);
        let ada = find(&ranked, "ada");
        assert_eq!(ada.working_hours_before_due, 24.0);
        assert_eq!(
            ada.local_due.as_deref(),
            Some("Fri 04 Dec 02:00 Australia/Sydney")
        );
        assert!(ada.due_outside_hours && ada.due_in_their_night);
        assert!(!find(&ranked, "cleo").due_outside_hours);
        assert!(
            ada.rationale.contains("outside their working hours"),
            "{}",
            ada.rationale
        );
        let cleo = find(&ranked, "cleo");
        assert_eq!(
            cleo.tie_break.as_deref(),
            Some(
                "tied with @bea, @ada (scores within 0.02); ahead of @bea on working hours \
                 before the due in their zones (30.0 h vs 25.0 h)"
            )
        );
        assert!(
            cleo.rationale.contains("Tie-break: tied with @bea, @ada"),
            "{}",
            cleo.rationale
        );
    }

    #[test]
    fn equal_hours_tie_goes_to_the_lighter_load_pending_included() {
        let now = ts("2026-11-30T08:00:00Z");
        let team = [
            designer("ada", "UTC", &["social"]),
            designer("bea", "UTC", &["social"]),
        ];
        let mut ada = team[0].clone();
        ada.capacity = 100;
        let mut bea = team[1].clone();
        bea.capacity = 100;
        // One brief in flight for ada, a pending proposal for bea and one
        // for ada: 2 against 1, a score gap of 0.0025, well inside a tie.
        let other = ready("b-9");
        let mut held = ready("b-8");
        held.assignees = vec!["ada".to_owned()];
        let briefs = [ready("b-1"), held, other];
        let proposals = [
            assignment_proposal("p-1", "b-9", "bea", ProposalStatus::Pending),
            assignment_proposal("p-2", "b-9", "ada", ProposalStatus::Pending),
        ];
        let table = ChannelSkills::default();
        let team = Team {
            members: &[ada, bea],
            briefs: &briefs,
            proposals: &proposals,
            channel_skills: &table,
        };
        let ranked = rank(&briefs[0], &team, now);
        assert_eq!(handles(&ranked), ["bea", "ada"]);
        assert_eq!((ranked[0].load, ranked[0].pending), (0, 1));
        assert_eq!((ranked[1].load, ranked[1].pending), (1, 1));
        assert!(
            ranked[0]
                .tie_break
                .as_deref()
                .is_some_and(|t| t.ends_with("ahead of @ada on load, assigned + pending (1 vs 2)")),
            "{:?}",
            ranked[0].tie_break
        );
        assert!(
            ranked[1]
                .rationale
                .contains("load: 1 assigned + 1 pending of 100 capacity"),
            "{}",
            ranked[1].rationale
        );
    }

    #[test]
    fn a_near_tie_goes_to_more_hours_even_against_a_slightly_higher_score() {
        let now = ts("2026-11-30T08:00:00Z");
        let mut lisbon = designer("cleo", "Europe/Lisbon", &["social"]);
        lisbon.capacity = 100;
        let mut sydney = designer("ada", "Australia/Sydney", &["social"]);
        sydney.capacity = 100;
        let mut held = ready("b-8");
        held.assignees = vec!["cleo".to_owned()];
        let briefs = [ready("b-1"), held];
        let ranked = score_candidates(&briefs[0], &[sydney, lisbon], &briefs, now);
        let (ada, cleo) = (find(&ranked, "ada"), find(&ranked, "cleo"));
        assert!(ada.score > cleo.score && ada.score - cleo.score <= TIE_MARGIN);
        assert_eq!(handles(&ranked), ["cleo", "ada"]);
    }

    #[test]
    fn a_pending_proposal_counts_as_load_so_the_next_brief_goes_elsewhere() {
        let now = ts("2026-11-30T08:00:00Z");
        let briefs = [ready("b-1"), ready("b-2")];
        let table = ChannelSkills::default();
        let team = three_zones();
        let before = rank(
            &briefs[1],
            &Team {
                members: &team,
                briefs: &briefs,
                proposals: &[],
                channel_skills: &table,
            },
            now,
        );
        assert_eq!(before[0].handle, "cleo");
        // cleo was proposed for b-1 and nobody decided yet.
        let proposals = [assignment_proposal(
            "p-1",
            "b-1",
            "cleo",
            ProposalStatus::Pending,
        )];
        let after = rank(
            &briefs[1],
            &Team {
                members: &team,
                briefs: &briefs,
                proposals: &proposals,
                channel_skills: &table,
            },
            now,
        );
        assert_eq!(after[0].handle, "bea");
        let cleo = find(&after, "cleo");
        assert_eq!((cleo.load, cleo.pending), (0, 1));
        assert!(
            cleo.rationale.contains("0 assigned + 1 pending of 3"),
            "{}",
            cleo.rationale
        );
        // Scoring b-1 itself, its own proposal is not load.
        let own = rank(
            &briefs[0],
            &Team {
                members: &team,
                briefs: &briefs,
                proposals: &proposals,
                channel_skills: &table,
            },
            now,
        );
        assert_eq!(find(&own, "cleo").pending, 0);
    }

    #[test]
    fn only_open_proposals_on_briefs_in_flight_count_as_pending() {
        let mut done = ready("b-3");
        done.status = BriefStatus::Delivered;
        let mut theirs = ready("b-4");
        theirs.assignees = vec!["ana".to_owned()];
        let briefs = [ready("b-1"), ready("b-2"), done, theirs];
        let mut deleted = assignment_proposal("p-6", "b-2", "ana", ProposalStatus::Pending);
        deleted.deleted = true;
        let proposals = [
            assignment_proposal("p-1", "b-1", "ana", ProposalStatus::Pending),
            // The same brief twice is one job.
            assignment_proposal("p-2", "b-1", "ana", ProposalStatus::Pending),
            assignment_proposal("p-3", "b-2", "ana", ProposalStatus::Applied),
            assignment_proposal("p-4", "b-2", "ana", ProposalStatus::Rejected),
            assignment_proposal("p-5", "b-3", "ana", ProposalStatus::Pending),
            deleted,
            assignment_proposal("p-7", "b-4", "ana", ProposalStatus::Pending),
            assignment_proposal("p-8", "b-2", "bo", ProposalStatus::Pending),
        ];
        assert_eq!(pending_load_of("ana", &proposals, &briefs, None), 1);
        assert_eq!(pending_load_of("ana", &proposals, &briefs, Some("b-1")), 0);
        assert_eq!(pending_load_of("bo", &proposals, &briefs, None), 1);
    }

    #[test]
    fn social_channels_want_social_and_a_video_skill_matches_motion() {
        let table = ChannelSkills::default();
        let linkedin = brief("b-1", &["LinkedIn:1200x627"], &[], None);
        assert_eq!(wanted_skills(&linkedin, &table), ["social"]);
        let tiktok = brief("b-2", &["tiktok:1080x1920"], &[], None);
        assert_eq!(wanted_skills(&tiktok, &table), ["social", "video"]);
        let ranked = score_candidates(
            &tiktok,
            &[
                designer("kenji", "UTC", &["motion"]),
                designer("priya", "UTC", &["social media"]),
            ],
            &[],
            ts("2026-12-01T10:00:00Z"),
        );
        assert_eq!(find(&ranked, "kenji").skills_matched, ["video"]);
        assert_eq!(find(&ranked, "priya").skills_matched, ["social"]);
        let print = brief("b-3", &["48-sheet:6096x3048"], &[], None);
        assert_eq!(wanted_skills(&print, &table), ["print"]);
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
                prop_assert_eq!(c.eligible, c.load + c.pending < c.capacity);
                let prefix = format!("@{}:", c.handle);
                prop_assert!(c.rationale.starts_with(&prefix), "{}", c.rationale);
            }
            for pair in ranked.windows(2) {
                let (a, z) = (&pair[0], &pair[1]);
                // Within a tie a lower score may lead, but never by more
                // than the margin, and only on the tie-breakers' order.
                let tied = a.tie_break.is_some() && z.tie_break.is_some()
                    && a.eligible == z.eligible
                    && (a.score - z.score).abs() <= TIE_MARGIN + 1e-9;
                let in_order = (a.eligible && !z.eligible)
                    || (a.eligible == z.eligible && !tied && a.score > z.score)
                    || (tied && tie_order(a, z) == Ordering::Less);
                prop_assert!(in_order, "{} before {}", a.rationale, z.rationale);
            }
        }
    }
}
