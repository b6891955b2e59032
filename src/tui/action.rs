//! Everything a key (or the command palette, or a finished background task)
//! can ask the app to do. Keymaps name actions by [`Action::name`].

use std::fmt;

/// The panes of the app, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pane {
    Briefs,
    Assets,
    Chat,
    Approvals,
    Team,
}

impl Pane {
    pub const ALL: [Pane; 5] = [
        Pane::Briefs,
        Pane::Assets,
        Pane::Chat,
        Pane::Approvals,
        Pane::Team,
    ];

    /// The name used for keymap sections (`[briefs]`) and tabs.
    pub fn name(self) -> &'static str {
        match self {
            Pane::Briefs => "briefs",
            Pane::Assets => "assets",
            Pane::Chat => "chat",
            Pane::Approvals => "approvals",
            Pane::Team => "team",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Pane::Briefs => "Briefs",
            Pane::Assets => "Assets",
            Pane::Chat => "Chat",
            Pane::Approvals => "Approvals",
            Pane::Team => "Team",
        }
    }

    pub fn parse(name: &str) -> Option<Pane> {
        Pane::ALL.into_iter().find(|p| p.name() == name)
    }
}

macro_rules! actions {
    ($($variant:ident => $name:literal, $help:literal;)*) => {
        /// A user-invokable action. Keymaps, the help overlay and the command
        /// palette all go through [`Action::ALL`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $($variant,)*
        }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The name keymaps use, e.g. `move_down`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }

            /// What the action does, for the palette when a binding gives no description.
            pub fn help(self) -> &'static str {
                match self {
                    $(Action::$variant => $help,)*
                }
            }

            pub fn from_name(name: &str) -> Option<Action> {
                match name {
                    $($name => Some(Action::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

actions! {
    Quit => "quit", "Quit Spoke";
    MoveDown => "move_down", "Move the cursor down";
    MoveUp => "move_up", "Move the cursor up";
    PageDown => "page_down", "Move down a page";
    PageUp => "page_up", "Move up a page";
    GotoTop => "goto_top", "Go to the first row";
    GotoBottom => "goto_bottom", "Go to the last row";
    NextPane => "next_pane", "Next pane";
    PrevPane => "prev_pane", "Previous pane";
    ShowBriefs => "show_briefs", "Show the brief queue";
    ShowAssets => "show_assets", "Show the asset browser";
    ShowChat => "show_chat", "Show the agent chat";
    ShowApprovals => "show_approvals", "Show the approvals";
    ShowTeam => "show_team", "Show the team across time zones";
    Filter => "filter", "Filter the list (fuzzy)";
    Help => "help", "Show the key bindings";
    Palette => "palette", "Open the command palette";
    Cancel => "cancel", "Close the popup or clear the filter and marks";
    Confirm => "confirm", "Open or confirm";
    ToggleMark => "toggle_mark", "Mark or unmark the row (for bulk actions)";
    VisualMode => "visual_mode", "Mark a range from here (visual mode)";
    ClearMarks => "clear_marks", "Clear all marks";
    Undo => "undo", "Undo the last change";
    ToggleDetail => "toggle_detail", "Show or hide the detail pane";
    CycleSort => "cycle_sort", "Change the sort order";
    ToggleGroup => "toggle_group", "Group the queue by status";
    NewBrief => "new_brief", "Add a new brief";
    SetStatus => "set_status", "Set the status of the brief(s)";
    SetPriority => "set_priority", "Set the priority of the brief(s)";
    Assign => "assign", "Assign a member to the brief(s)";
    Tag => "tag", "Add or remove tags";
    Snooze => "snooze", "Snooze the brief(s) until a date";
    Comment => "comment", "Comment on the brief";
    StatusNext => "status_next", "Move the brief(s) to the next status in the lifecycle";
    PriorityUp => "priority_up", "Raise the priority";
    PriorityDown => "priority_down", "Lower the priority";
    Refresh => "refresh", "Reload from the local replica";
    Approve => "approve", "Approve the request(s)";
    ApproveWithChanges => "approve_with_changes", "Approve with changes (asks for a comment)";
    RequestChanges => "request_changes", "Send back with the changes needed (asks for a comment)";
    Reject => "reject", "Reject (asks for a comment)";
    Revoke => "revoke", "Withdraw my decision while the request is open";
    Search => "search", "Search briefs, comments, chat, assets and knowledge";
    Compose => "compose", "Write a message to the team and the agent";
    FollowCitation => "follow_citation", "Open a source the agent cited";
    NewLine => "new_line", "Start a new line in the text";
    CursorLeft => "cursor_left", "Move the text cursor left";
    CursorRight => "cursor_right", "Move the text cursor right";
    WordLeft => "word_left", "Move the text cursor a word left";
    WordRight => "word_right", "Move the text cursor a word right";
    LineStart => "line_start", "Move the text cursor to the start of the line";
    LineEnd => "line_end", "Move the text cursor to the end of the line";
    DeleteBack => "delete_back", "Delete the character before the cursor";
    DeleteForward => "delete_forward", "Delete the character under the cursor";
    DeleteWordBack => "delete_word_back", "Delete the word before the cursor";
    DeleteToStart => "delete_to_start", "Delete to the start of the line";
    DeleteToEnd => "delete_to_end", "Delete to the end of the line";
    CopyId => "copy_id", "Copy the id to the clipboard (OSC 52, works over SSH)";
    CopyText => "copy_text", "Copy the text to the clipboard (OSC 52, works over SSH)";
    OpenEditor => "open_editor", "Edit the text in $VISUAL or $EDITOR";
    Suspend => "suspend", "Suspend Spoke to the shell (fg brings it back)";
    OpenAsset => "open_asset", "Open the asset's file in your viewer";
    SaveAsset => "save_asset", "Save the asset's file to a path";
    Generate => "generate", "Generate AI drafts for the brief with a template";
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for a in Action::ALL {
            assert_eq!(Action::from_name(a.name()), Some(*a));
            assert!(seen.insert(a.name()), "duplicate name {}", a.name());
        }
        assert_eq!(Action::from_name("fly"), None);
    }
}
