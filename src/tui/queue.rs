//! The brief queue's view state: the rows on screen, in order, after the
//! filter, sort and grouping; the cursor; the marked set.

use crate::model::brief::{Brief, BriefStatus};
use nucleo::pattern::{CaseMatching, Normalization, Pattern};
use nucleo::{Config, Matcher, Utf32Str};
use std::collections::BTreeSet;

/// How the queue is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Priority, then due date: what needs attention first.
    Urgency,
    Due,
    /// Newest first.
    Age,
    Title,
}

impl Sort {
    pub fn next(self) -> Sort {
        match self {
            Sort::Urgency => Sort::Due,
            Sort::Due => Sort::Age,
            Sort::Age => Sort::Title,
            Sort::Title => Sort::Urgency,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Sort::Urgency => "urgency",
            Sort::Due => "due",
            Sort::Age => "newest",
            Sort::Title => "title",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Queue {
    /// Every brief from the replica.
    pub all: Vec<Brief>,
    /// Indexes into `all` in display order.
    pub rows: Vec<usize>,
    pub cursor: usize,
    /// Ids of marked briefs (stable across reloads).
    pub marked: BTreeSet<String>,
    /// Where visual mode started, as a row index.
    pub visual_from: Option<usize>,
    pub filter: String,
    pub sort: Sort,
    /// Active work first, one group per status.
    pub group_by_status: bool,
    /// While grouped, delivered and cancelled briefs are folded away below
    /// the list.
    pub fold_closed: bool,
    /// How many briefs the fold hides (after the filter).
    pub folded: usize,
    /// First row shown, kept so the cursor stays in view.
    pub offset: usize,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            all: Vec::new(),
            rows: Vec::new(),
            cursor: 0,
            marked: BTreeSet::new(),
            visual_from: None,
            filter: String::new(),
            sort: Sort::Urgency,
            group_by_status: true,
            fold_closed: true,
            folded: 0,
            offset: 0,
        }
    }
}

impl Queue {
    /// Replaces the briefs, keeping the cursor on the same brief if it is still there.
    pub fn set_briefs(&mut self, briefs: Vec<Brief>) {
        let current = self.selected().map(|b| b.id.clone());
        self.all = briefs;
        let ids: BTreeSet<&str> = self.all.iter().map(|b| b.id.as_str()).collect();
        self.marked.retain(|id| ids.contains(id.as_str()));
        self.recompute(current.as_deref());
    }

    /// Re-applies filter, sort and grouping.
    pub fn recompute(&mut self, keep: Option<&str>) {
        let mut rows: Vec<usize> = if self.filter.trim().is_empty() {
            (0..self.all.len()).collect()
        } else {
            fuzzy_filter(&self.all, &self.filter)
        };
        let all = &self.all;
        let before = rows.len();
        if self.folds() {
            rows.retain(|&i| !is_closed(all[i].status));
        }
        self.folded = before - rows.len();
        let filtered = !self.filter.trim().is_empty();
        rows.sort_by(|&a, &b| {
            let (x, y) = (&all[a], &all[b]);
            let group = if self.group_by_status {
                status_rank(x.status).cmp(&status_rank(y.status))
            } else {
                std::cmp::Ordering::Equal
            };
            group.then_with(|| {
                if filtered && self.sort == Sort::Urgency {
                    // Keep fuzzy relevance order within groups.
                    return std::cmp::Ordering::Equal;
                }
                compare(x, y, self.sort)
            })
        });
        self.rows = rows;
        self.cursor = keep
            .and_then(|id| self.rows.iter().position(|&i| self.all[i].id == id))
            .unwrap_or(self.cursor)
            .min(self.rows.len().saturating_sub(1));
    }

    /// Whether closed briefs are folded away now.
    pub fn folds(&self) -> bool {
        self.group_by_status && self.fold_closed
    }

    /// The next grouping: by status with closed work folded, by status with
    /// everything shown, not grouped. Returns what it is now, for people.
    pub fn cycle_grouping(&mut self) -> &'static str {
        let keep = self.selected().map(|b| b.id.clone());
        let said = match (self.group_by_status, self.fold_closed) {
            (true, true) => {
                self.fold_closed = false;
                "grouped by status, delivered and cancelled shown"
            }
            (true, false) => {
                self.group_by_status = false;
                "not grouped"
            }
            (false, _) => {
                self.group_by_status = true;
                self.fold_closed = true;
                "grouped by status, delivered and cancelled folded"
            }
        };
        self.recompute(keep.as_deref());
        said
    }

    pub fn selected(&self) -> Option<&Brief> {
        self.rows.get(self.cursor).map(|&i| &self.all[i])
    }

    pub fn brief(&self, id: &str) -> Option<&Brief> {
        self.all.iter().find(|b| b.id == id)
    }

    pub fn move_by(&mut self, delta: isize) {
        if self.rows.is_empty() {
            self.cursor = 0;
            return;
        }
        let last = self.rows.len() - 1;
        self.cursor = (self.cursor as isize + delta).clamp(0, last as isize) as usize;
    }

    pub fn goto(&mut self, row: usize) {
        self.cursor = row.min(self.rows.len().saturating_sub(1));
    }

    pub fn toggle_mark(&mut self) {
        if let Some(id) = self.selected().map(|b| b.id.clone())
            && !self.marked.remove(&id)
        {
            self.marked.insert(id);
        }
    }

    /// Marks every row between where visual mode started and the cursor.
    pub fn extend_visual(&mut self) {
        if let Some(from) = self.visual_from {
            let (a, b) = (from.min(self.cursor), from.max(self.cursor));
            for row in a..=b {
                if let Some(&i) = self.rows.get(row) {
                    self.marked.insert(self.all[i].id.clone());
                }
            }
        }
    }

    /// The briefs an action applies to: the marked set, or the cursor's brief.
    pub fn targets(&self) -> Vec<&Brief> {
        if self.marked.is_empty() {
            self.selected().into_iter().collect()
        } else {
            self.all
                .iter()
                .filter(|b| self.marked.contains(&b.id))
                .collect()
        }
    }

    /// Keeps the cursor inside a window of `height` rows.
    pub fn scroll_into_view(&mut self, height: usize) {
        if height == 0 {
            return;
        }
        if self.cursor < self.offset {
            self.offset = self.cursor;
        } else if self.cursor >= self.offset + height {
            self.offset = self.cursor + 1 - height;
        }
        self.offset = self.offset.min(self.rows.len().saturating_sub(1));
    }
}

/// Groups in the order work needs attention: what is moving, what is
/// ready to start, what is still being shaped, what waits, what is done.
const GROUP_ORDER: [BriefStatus; 9] = [
    BriefStatus::InProgress,
    BriefStatus::InReview,
    BriefStatus::Approved,
    BriefStatus::Ready,
    BriefStatus::Intake,
    BriefStatus::Draft,
    BriefStatus::OnHold,
    BriefStatus::Delivered,
    BriefStatus::Cancelled,
];

fn status_rank(s: BriefStatus) -> usize {
    GROUP_ORDER.iter().position(|x| *x == s).unwrap_or(0)
}

fn is_closed(s: BriefStatus) -> bool {
    matches!(s, BriefStatus::Delivered | BriefStatus::Cancelled)
}

fn compare(x: &Brief, y: &Brief, sort: Sort) -> std::cmp::Ordering {
    let due = |b: &Brief| b.due.as_ref().map(|d| d.at);
    let by_due = || match (due(x), due(y)) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    };
    match sort {
        Sort::Urgency => x.priority.cmp(&y.priority).then_with(by_due),
        Sort::Due => by_due().then_with(|| x.priority.cmp(&y.priority)),
        Sort::Age => y.created_at.cmp(&x.created_at),
        Sort::Title => x.title.to_lowercase().cmp(&y.title.to_lowercase()),
    }
    .then_with(|| x.id.cmp(&y.id))
}

/// Rows whose id, title, status, assignees or tags match `query`, best first.
fn fuzzy_filter(all: &[Brief], query: &str) -> Vec<usize> {
    let mut matcher = Matcher::new(Config::DEFAULT);
    let pattern = Pattern::parse(query, CaseMatching::Smart, Normalization::Smart);
    let mut buf = Vec::new();
    let mut scored: Vec<(u32, usize)> = all
        .iter()
        .enumerate()
        .filter_map(|(i, b)| {
            let haystack = format!(
                "{} {} {} {} {}",
                b.title,
                b.id,
                b.status,
                b.assignees.join(" "),
                b.tags.join(" ")
            );
            pattern
                .score(Utf32Str::new(&haystack, &mut buf), &mut matcher)
                .map(|s| (s, i))
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EntityRecord;
    use crate::model::brief::Priority;

    fn brief(id: &str, title: &str, priority: Priority, status: BriefStatus) -> Brief {
        let mut b = Brief::from_record(id, &EntityRecord::default());
        b.title = title.into();
        b.priority = priority;
        b.status = status;
        b
    }

    fn queue() -> Queue {
        let mut q = Queue::default();
        q.set_briefs(vec![
            brief(
                "b-1",
                "Spring launch film",
                Priority::P2,
                BriefStatus::Ready,
            ),
            brief(
                "b-2",
                "Holiday email header",
                Priority::P0,
                BriefStatus::Draft,
            ),
            brief("b-3", "Podcast cover", Priority::P1, BriefStatus::Ready),
        ]);
        q
    }

    #[test]
    fn urgency_sort_puts_the_highest_priority_first() {
        let mut q = queue();
        q.group_by_status = false;
        q.recompute(None);
        let ids: Vec<&str> = q.rows.iter().map(|&i| q.all[i].id.as_str()).collect();
        assert_eq!(ids, ["b-2", "b-3", "b-1"]);
    }

    #[test]
    fn fuzzy_filter_keeps_matches_and_the_cursor_follows_its_brief() {
        let mut q = queue();
        q.goto(2); // b-1
        q.filter = "sprng".into();
        q.recompute(Some("b-1"));
        assert_eq!(q.rows.len(), 1);
        assert_eq!(q.selected().map(|b| b.id.as_str()), Some("b-1"));
    }

    #[test]
    fn the_queue_opens_grouped_active_work_first_with_closed_work_folded() {
        let mut q = queue();
        let mut more = q.all.clone();
        more.push(brief(
            "b-4",
            "Old film",
            Priority::P0,
            BriefStatus::Delivered,
        ));
        more.push(brief(
            "b-5",
            "Dropped",
            Priority::P0,
            BriefStatus::Cancelled,
        ));
        more.push(brief("b-6", "Cut", Priority::P3, BriefStatus::InProgress));
        q.set_briefs(more);
        let ids =
            |q: &Queue| -> Vec<String> { q.rows.iter().map(|&i| q.all[i].id.clone()).collect() };
        // In progress, then ready (by urgency within), then draft; the
        // delivered and cancelled are folded away and counted.
        assert_eq!(ids(&q), ["b-6", "b-3", "b-1", "b-2"]);
        assert_eq!(q.folded, 2);
        assert_eq!(
            q.cycle_grouping(),
            "grouped by status, delivered and cancelled shown"
        );
        assert_eq!(ids(&q), ["b-6", "b-3", "b-1", "b-2", "b-4", "b-5"]);
        assert_eq!(q.folded, 0);
        assert_eq!(q.cycle_grouping(), "not grouped");
        assert_eq!(ids(&q), ["b-2", "b-4", "b-5", "b-3", "b-1", "b-6"]);
        q.cycle_grouping();
        assert_eq!(ids(&q).len(), 4, "back to folded");
    }

    #[test]
    fn visual_mode_marks_the_range_and_targets_are_the_marked_set() {
        let mut q = queue();
        q.visual_from = Some(0);
        q.goto(1);
        q.extend_visual();
        assert_eq!(q.marked.len(), 2);
        assert_eq!(q.targets().len(), 2);
        q.marked.clear();
        assert_eq!(q.targets().len(), 1, "without marks, the cursor's brief");
    }

    #[test]
    fn scrolling_keeps_the_cursor_visible() {
        let mut q = Queue::default();
        q.set_briefs(
            (0..50)
                .map(|i| brief(&format!("b-{i:02}"), "x", Priority::P2, BriefStatus::Draft))
                .collect(),
        );
        q.goto(30);
        q.scroll_into_view(10);
        assert!(q.offset <= 30 && 30 < q.offset + 10);
        q.goto(0);
        q.scroll_into_view(10);
        assert_eq!(q.offset, 0);
    }
}
