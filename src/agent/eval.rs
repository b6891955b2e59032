//! `spoke agent eval`: a fixed set of scenarios run against the configured
//! model on a hub made for the purpose (in a temporary folder, never the
//! user's replica), scored on what can be checked without judging prose:
//! - tool calls whose arguments were valid and that ran;
//! - intake phrasings accepted, against those refused and replaced by the
//!   rules' questions;
//! - answers citing the guideline that holds the answer, by the number the
//!   model was given, with no citation to a number it was never given;
//! - proposals made where one was asked for.

use super::chat;
use super::intake;
use super::provider::Provider;
use crate::config::SearchConfig;
use crate::model::proposal::ProposalKind;
use crate::search::index::SearchIndex;
use crate::service::threads::GENERAL_THREAD;
use crate::service::{Hub, NewBrief, NewHub, NewMember};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// A chat scenario: a question, and what a good answer does.
struct Ask {
    name: &'static str,
    question: &'static str,
    /// The title of the guideline the answer should cite, if any.
    cite: Option<&'static str>,
    /// The kind of proposal the answer should make, if any.
    propose: Option<ProposalKind>,
}

const ASKS: &[Ask] = &[
    Ask {
        name: "tone",
        question: "What tone of voice should our copy use? Answer in two sentences and cite the guideline.",
        cite: Some("Voice"),
        propose: None,
    },
    Ask {
        name: "logo",
        question: "How much clear space does the logo need around it? Cite the guideline.",
        cite: Some("Logo"),
        propose: None,
    },
    Ask {
        name: "assign",
        question: "Propose who should take the LinkedIn carousel brief. Use the tools.",
        cite: None,
        propose: Some(ProposalKind::Assignment),
    },
    Ask {
        name: "missing",
        question: "Which briefs are still missing information? Use the tools to check.",
        cite: None,
        propose: None,
    },
];

const GUIDELINES: &[(&str, &str)] = &[
    (
        "voice.md",
        "# Voice\n\n## Tone of voice\n\nWarm, plain and specific. We write like a colleague \
         who knows the work: short sentences, concrete nouns. Never shout in capitals and never \
         use exclamation marks in headlines.\n",
    ),
    (
        "logo.md",
        "# Logo\n\n## Clear space\n\nKeep clear space around the logo equal to the height of \
         the letter N in the wordmark. Never place the logo smaller than 24 pixels high on \
         screen or 10 mm in print.\n",
    ),
    (
        "newsletter.md",
        "# Holiday newsletter case study\n\n## What worked\n\nWe sent it on a Tuesday at 10:00 \
         in each reader's time zone. Subject lines stayed under 45 characters.\n",
    ),
];

/// One scenario's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    /// `ok`, or what went wrong.
    pub outcome: String,
    pub tool_calls: usize,
    pub valid_tool_calls: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cited_right: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intake_accepted: Option<bool>,
    pub seconds: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub model: String,
    pub rows: Vec<Row>,
    pub tool_calls: usize,
    pub valid_tool_calls: usize,
    pub intake_accepted: usize,
    pub intake_fallen_back: usize,
    pub citations_right: usize,
    pub citations_asked: usize,
    pub proposals_made: usize,
    pub proposals_expected: usize,
}

impl Report {
    fn new(model: String, rows: Vec<Row>) -> Report {
        let count = |f: &dyn Fn(&Row) -> Option<bool>, want: bool| {
            rows.iter().filter(|r| f(r) == Some(want)).count()
        };
        Report {
            model,
            tool_calls: rows.iter().map(|r| r.tool_calls).sum(),
            valid_tool_calls: rows.iter().map(|r| r.valid_tool_calls).sum(),
            intake_accepted: count(&|r| r.intake_accepted, true),
            intake_fallen_back: count(&|r| r.intake_accepted, false),
            citations_right: count(&|r| r.cited_right, true),
            citations_asked: rows.iter().filter(|r| r.cited_right.is_some()).count(),
            proposals_made: count(&|r| r.proposed, true),
            proposals_expected: rows.iter().filter(|r| r.proposed.is_some()).count(),
            rows,
        }
    }

    /// The table people read, and the totals under it.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<18} {:>6} {:>6} {:>7} {:>9} {:>7} {:>7}  outcome\n",
            "scenario", "calls", "valid", "cited", "proposed", "intake", "secs"
        );
        let flag = |b: Option<bool>| match b {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        for r in &self.rows {
            out.push_str(&format!(
                "{:<18} {:>6} {:>6} {:>7} {:>9} {:>7} {:>7.1}  {}\n",
                r.scenario,
                r.tool_calls,
                r.valid_tool_calls,
                flag(r.cited_right),
                flag(r.proposed),
                flag(r.intake_accepted),
                r.seconds,
                r.outcome
            ));
        }
        let share = |a: usize, b: usize| {
            if b == 0 {
                "-".to_owned()
            } else {
                format!("{a}/{b} ({:.0}%)", 100.0 * a as f64 / b as f64)
            }
        };
        out.push_str(&format!(
            "\nmodel {}\nvalid tool calls      {}\nintake accepted       {} (fallen back to the rules: {})\ncitations right       {}\nproposals made        {}\n",
            self.model,
            share(self.valid_tool_calls, self.tool_calls),
            share(
                self.intake_accepted,
                self.intake_accepted + self.intake_fallen_back
            ),
            self.intake_fallen_back,
            share(self.citations_right, self.citations_asked),
            share(self.proposals_made, self.proposals_expected),
        ));
        out
    }
}

/// Builds the evaluation hub in `dir`: a lead, three creatives in three
/// zones, three guidelines, two incomplete briefs and a ready one.
fn fixture(dir: &Path) -> Result<(Hub, SearchIndex, Vec<String>)> {
    let mut hub = Hub::init(
        &dir.join("hub"),
        NewHub {
            name: "Eval Studio",
            handle: "ana",
            tz: "Europe/Lisbon",
            display_name: None,
        },
    )?;
    for (handle, tz, skills) in [
        ("kenji", "Asia/Tokyo", "motion,3d"),
        ("maya", "America/New_York", "social,copy"),
        ("lucia", "Europe/Madrid", "print,design"),
    ] {
        let mut m = NewMember::new(handle, tz);
        m.roles = vec![crate::model::Role::Creative];
        m.hours = Some("09:00-17:30".into());
        m.skills = skills.split(',').map(str::to_owned).collect();
        hub.add_member(m)?;
    }
    let mut paths = Vec::new();
    for (name, text) in GUIDELINES {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        paths.push(path);
    }
    hub.add_knowledge(&paths)?;
    let mut incomplete = Vec::new();
    for (title, objective) in [
        ("Podcast cover art", None),
        ("Spring launch teaser", Some("Announce the spring range")),
    ] {
        let brief = hub.add_brief(NewBrief {
            title: title.into(),
            requester: Some("ana".into()),
            objective: objective.map(str::to_owned),
            ..NewBrief::default()
        })?;
        incomplete.push(brief.id);
    }
    let ready = hub.add_brief(NewBrief {
        title: "LinkedIn carousel".into(),
        requester: Some("ana".into()),
        objective: Some("Recruit designers in EMEA".into()),
        audience: Some("Senior designers in Europe".into()),
        key_message: Some("Do the best work of your career with us".into()),
        deliverables: vec!["linkedin:1080x1080*5".into()],
        due: Some("2027-03-01T17:00".into()),
        status: Some("intake".into()),
        ..NewBrief::default()
    })?;
    hub.move_brief(&ready.id, "ready", false)?;
    let mut index = hub.open_search(&SearchConfig::default())?;
    hub.refresh_search(&mut index, &mut |_, _| {})?;
    Ok((hub, index, incomplete))
}

/// Runs every scenario against `provider` on a fresh hub in `dir`.
pub fn run(
    provider: &dyn Provider,
    dir: &Path,
    cancel: &CancellationToken,
    mut progress: impl FnMut(&Row),
) -> Result<Report> {
    let (mut hub, index, incomplete) = fixture(dir)?;
    let mut rows = Vec::new();
    for id in &incomplete {
        let started = std::time::Instant::now();
        let outcome = intake::intake(&mut hub, Some(&index), Some(provider), id, cancel);
        let row = match outcome {
            Ok(Some(o)) => Row {
                scenario: format!("intake {}", short(id)),
                outcome: o
                    .model_error
                    .clone()
                    .map(|e| format!("rules used: {}", clip(&e, 80)))
                    .unwrap_or_else(|| "ok".to_owned()),
                tool_calls: 0,
                valid_tool_calls: 0,
                cited_right: None,
                proposed: None,
                intake_accepted: Some(o.phrased_by.is_some() && o.model_error.is_none()),
                seconds: started.elapsed().as_secs_f64(),
            },
            Ok(None) => failed(&format!("intake {}", short(id)), "nothing to ask", started),
            Err(e) => failed(&format!("intake {}", short(id)), &format!("{e:#}"), started),
        };
        progress(&row);
        rows.push(row);
    }
    for ask in ASKS {
        if cancel.is_cancelled() {
            break;
        }
        let started = std::time::Instant::now();
        let thread = GENERAL_THREAD;
        let row = match chat::answer(
            &mut hub,
            Some(&index),
            provider,
            thread,
            ask.question,
            cancel,
            &mut |_| {},
        ) {
            Ok(turn) => {
                let calls = turn.message.tools.len();
                let valid = turn
                    .message
                    .tools
                    .iter()
                    .filter(|u| !u.summary.starts_with("refused:"))
                    .count();
                let cited_right = ask.cite.map(|title| {
                    !turn.message.citations.is_empty()
                        && turn.message.citations.iter().any(|c| {
                            c.kind == "kb" && c.quote.as_deref().is_some_and(|q| q.contains(title))
                        })
                });
                let proposed = match ask.propose {
                    Some(kind) => Some(turn.proposals.iter().any(|p| {
                        hub.proposals()
                            .ok()
                            .into_iter()
                            .flatten()
                            .any(|q| q.id == *p && q.kind == Some(kind))
                    })),
                    None => None,
                };
                Row {
                    scenario: ask.name.to_owned(),
                    outcome: "ok".to_owned(),
                    tool_calls: calls,
                    valid_tool_calls: valid,
                    cited_right,
                    proposed,
                    intake_accepted: None,
                    seconds: started.elapsed().as_secs_f64(),
                }
            }
            Err(e) => {
                let mut row = failed(ask.name, &format!("{e:#}"), started);
                row.cited_right = ask.cite.map(|_| false);
                row.proposed = ask.propose.map(|_| false);
                row
            }
        };
        progress(&row);
        rows.push(row);
    }
    Ok(Report::new(provider.model().to_owned(), rows))
}

fn failed(scenario: &str, why: &str, started: std::time::Instant) -> Row {
    Row {
        scenario: scenario.to_owned(),
        outcome: format!("failed: {}", clip(why, 80)),
        tool_calls: 0,
        valid_tool_calls: 0,
        cited_right: None,
        proposed: None,
        intake_accepted: None,
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn short(id: &str) -> &str {
    id.get(..6).unwrap_or(id)
}

fn clip(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut out: String = line.chars().take(max).collect();
    if line.chars().count() > max {
        out.push('…');
    }
    out
}
