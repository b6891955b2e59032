//! Shell completions and man pages. `spoke completions SHELL` prints clap's
//! script for the shell plus a small layer that completes ids (briefs,
//! assets, approval requests, knowledge documents) by asking the hidden
//! `spoke __complete KIND PREFIX`, which reads them from the replica.
//! `spoke man` writes roff pages for `spoke` and every subcommand.
//!
//! Where an id goes is read from the command tree, so a new subcommand
//! taking an `id` completes without touching this file.

use super::Cli;
use super::output::outln;
use crate::service::Hub;
use anyhow::{Context, Result};
use clap::{ArgAction, CommandFactory, ValueEnum};
use std::io::Write;
use std::path::Path;

/// A shell `spoke completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Which ids a word takes, by the top-level subcommand it sits under.
fn kind_of_top(name: &str) -> Option<&'static str> {
    match name {
        "brief" => Some("brief"),
        "asset" => Some("asset"),
        "approvals" | "approve" | "reject" | "request-changes" => Some("approval"),
        "kb" => Some("kb"),
        _ => None,
    }
}

/// Which ids an option's value is, by the option's name.
fn kind_of_option(long: &str) -> Option<&'static str> {
    match long {
        "brief" => Some("brief"),
        "asset" | "version-of" => Some("asset"),
        _ => None,
    }
}

/// What the shell layer needs to know about the command tree.
#[derive(Debug, Default, PartialEq, Eq)]
struct Slots {
    /// Subcommand paths, `brief` and `brief/show`.
    paths: Vec<String>,
    /// Paths whose first positional argument is an id, with its kind.
    ids: Vec<(String, &'static str)>,
    /// Options (`--brief`) whose value is an id, with its kind.
    id_options: Vec<(String, &'static str)>,
    /// Every option spelling that takes a value (`--home`, `-o`).
    value_options: Vec<String>,
}

fn slots(cmd: &clap::Command) -> Slots {
    fn walk(cmd: &clap::Command, path: &str, top: Option<&str>, out: &mut Slots) {
        for arg in cmd.get_arguments() {
            let takes_value = matches!(arg.get_action(), ArgAction::Set | ArgAction::Append);
            if arg.is_positional() || !takes_value {
                continue;
            }
            let mut spellings: Vec<String> = Vec::new();
            if let Some(long) = arg.get_long() {
                spellings.push(format!("--{long}"));
                if let Some(kind) = kind_of_option(long) {
                    let option = format!("--{long}");
                    if !out.id_options.iter().any(|(o, _)| *o == option) {
                        out.id_options.push((option, kind));
                    }
                }
            }
            if let Some(short) = arg.get_short() {
                spellings.push(format!("-{short}"));
            }
            for s in spellings {
                if !out.value_options.contains(&s) {
                    out.value_options.push(s);
                }
            }
        }
        if !path.is_empty()
            && let Some(kind) = top.and_then(kind_of_top)
            && cmd
                .get_positionals()
                .next()
                .is_some_and(|a| a.get_id().as_str() == "id")
        {
            out.ids.push((path.to_owned(), kind));
        }
        // `help SUBCOMMAND` takes no ids; its paths would only lengthen the scripts.
        for sub in cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            let name = sub.get_name();
            let sub_path = if path.is_empty() {
                name.to_owned()
            } else {
                format!("{path}/{name}")
            };
            out.paths.push(sub_path.clone());
            walk(sub, &sub_path, top.or(Some(name)), out);
        }
    }
    let mut out = Slots::default();
    walk(cmd, "", None, &mut out);
    out
}

/// The command as completions and man pages see it.
fn command() -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    cmd
}

/// `spoke completions SHELL`.
pub fn completions(shell: Shell) -> Result<()> {
    let script = script(shell);
    let mut out = std::io::stdout().lock();
    out.write_all(script.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// The whole script for `shell`.
pub fn script(shell: Shell) -> String {
    let mut cmd = command();
    let slots = slots(&cmd);
    let mut generated = Vec::new();
    let target = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(target, &mut cmd, "spoke", &mut generated);
    let generated = String::from_utf8_lossy(&generated).into_owned();
    match shell {
        Shell::Bash => format!("{generated}\n{}", bash_layer(&slots)),
        Shell::Zsh => zsh_script(&generated, &slots),
        Shell::Fish => format!("{generated}\n{}", fish_layer(&slots)),
    }
}

/// `a|b|c` for a shell `case` pattern (words are plain: letters, `-`, `/`).
fn alternatives<'a>(words: impl Iterator<Item = &'a str>) -> String {
    words.collect::<Vec<_>>().join("|")
}

/// A function for bash and zsh alike: given the words between `spoke` and
/// the word being completed, prints the kind of id that word is, if any.
fn posix_kind_function(s: &Slots) -> String {
    let mut by_kind: Vec<(&str, Vec<&str>)> = Vec::new();
    for (path, kind) in &s.ids {
        match by_kind.iter_mut().find(|(k, _)| k == kind) {
            Some((_, paths)) => paths.push(path),
            None => by_kind.push((kind, vec![path])),
        }
    }
    let mut kinds = String::new();
    for (kind, paths) in &by_kind {
        kinds.push_str(&format!(
            "        {}) echo {kind} ;;\n",
            alternatives(paths.iter().copied())
        ));
    }
    let mut options = String::new();
    for (option, kind) in &s.id_options {
        options.push_str(&format!("            {option}) echo {kind} ;;\n"));
    }
    format!(
        r#"# The kind of id (brief, asset, approval, kb) the word being completed is.
__spoke_id_kind() {{
    local w sub="" opt="" positional=0 next
    for w in "$@"; do
        if [[ -n $opt ]]; then opt=""; continue; fi
        case "$w" in
            --*=*) continue ;;
            {value_options}) opt="$w"; continue ;;
            -*) continue ;;
        esac
        if (( positional == 0 )); then
            next="${{sub:+$sub/}}$w"
            case "$next" in
                {paths}) sub="$next"; continue ;;
            esac
        fi
        positional=$(( positional + 1 ))
    done
    if [[ -n $opt ]]; then
        case "$opt" in
{options}        esac
        return 0
    fi
    (( positional == 0 )) || return 0
    case "$sub" in
{kinds}    esac
}}
"#,
        value_options = alternatives(s.value_options.iter().map(String::as_str)),
        paths = alternatives(s.paths.iter().map(String::as_str)),
    )
}

fn bash_layer(s: &Slots) -> String {
    format!(
        r#"# Ids from the replica: `spoke __complete KIND PREFIX` prints `ID<TAB>TITLE` lines.
{kind_fn}
_spoke_with_ids() {{
    local line="${{COMP_LINE:0:COMP_POINT}}" cur="" kind i w
    local -a words=() data=()
    read -ra words <<< "$line"
    if [[ -n $line && $line != *[[:space:]] && ${{#words[@]}} -gt 0 ]]; then
        cur="${{words[${{#words[@]}}-1]}}"
        unset "words[${{#words[@]}}-1]"
    fi
    kind=$(__spoke_id_kind "${{words[@]:1}}")
    if [[ -n $kind && $cur != -* ]]; then
        for (( i = 1; i < ${{#words[@]}}; i++ )); do
            w="${{words[i]}}"
            case "$w" in
                --home|--config) data+=("$w" "${{words[i+1]/#\~/$HOME}}") ;;
                --home=*|--config=*) data+=("$w") ;;
            esac
        done
        COMPREPLY=()
        local id rest
        while IFS=$'\t' read -r id rest; do
            [[ -n $id ]] && COMPREPLY+=("$id")
        done < <(command spoke "${{data[@]}}" __complete "$kind" "$cur" 2>/dev/null)
        return 0
    fi
    _spoke "$@"
}}

if [[ "${{BASH_VERSINFO[0]}}" -eq 4 && "${{BASH_VERSINFO[1]}}" -ge 4 || "${{BASH_VERSINFO[0]}}" -gt 4 ]]; then
    complete -F _spoke_with_ids -o nosort -o bashdefault -o default spoke
else
    complete -F _spoke_with_ids -o bashdefault -o default spoke
fi
"#,
        kind_fn = posix_kind_function(s)
    )
}

/// clap's zsh script with its `_spoke` renamed `_spoke_clap`, and a
/// `_spoke` in front that offers ids where they go and defers otherwise.
/// The file works both sourced and as `_spoke` in `$fpath`.
fn zsh_script(generated: &str, s: &Slots) -> String {
    const DEFINITION: &str = "\n_spoke() {\n";
    const TRAILER: &str = "if [ \"$funcstack[1]\" = \"_spoke\" ]; then";
    let layer = format!(
        r#"# Ids from the replica: `spoke __complete KIND PREFIX` prints `ID<TAB>TITLE` lines.
{kind_fn}
_spoke() {{
    local kind w i line id title
    local -a data ids
    kind=$(__spoke_id_kind "${{(@Q)words[2,CURRENT-1]}}")
    if [[ -n $kind && ${{words[CURRENT]}} != -* ]]; then
        for (( i = 2; i < CURRENT; i++ )); do
            w="${{(Q)words[i]}}"
            case "$w" in
                --home|--config) data+=("$w" "${{${{(Q)words[i+1]}}/#\~/$HOME}}") ;;
                --home=*|--config=*) data+=("$w") ;;
            esac
        done
        for line in ${{(f)"$(command spoke "${{data[@]}}" __complete "$kind" "${{(Q)words[CURRENT]}}" 2>/dev/null)"}}; do
            [[ -n $line ]] || continue
            id="${{line%%$'\t'*}}"
            title="${{line#*$'\t'}}"
            ids+=("${{id//:/\\:}}:$title")
        done
        _describe -t "$kind-ids" "$kind id" ids
        return
    fi
    _spoke_clap "$@"
}}

"#,
        kind_fn = posix_kind_function(s)
    );
    match (generated.find(DEFINITION), generated.rfind(TRAILER)) {
        (Some(def), Some(trailer)) if def < trailer => {
            let renamed = format!(
                "{}\n_spoke_clap() {{\n{}",
                &generated[..def],
                &generated[def + DEFINITION.len()..trailer]
            );
            format!("{renamed}{layer}{}", &generated[trailer..])
        }
        // clap's layout changed: ids are not offered, the rest still works.
        _ => generated.to_owned(),
    }
}

fn fish_layer(s: &Slots) -> String {
    let quoted = |items: &mut dyn Iterator<Item = &str>| {
        items
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut id_cases = String::new();
    for (path, kind) in &s.ids {
        id_cases.push_str(&format!("        case '{path}'\n            echo {kind}\n"));
    }
    let mut option_cases = String::new();
    for (option, kind) in &s.id_options {
        option_cases.push_str(&format!(
            "            case '{option}'\n                echo {kind}\n"
        ));
    }
    format!(
        r#"# Ids from the replica: `spoke __complete KIND PREFIX` prints `ID<TAB>TITLE` lines.
set -g __spoke_value_options {value_options}
set -g __spoke_paths {paths}

function __spoke_id_kind
    set -l sub ''
    set -l opt ''
    set -l positional 0
    for w in (commandline -opc)[2..-1]
        if test -n "$opt"
            set opt ''
            continue
        end
        if string match -q -- '--*=*' $w
            continue
        else if contains -- $w $__spoke_value_options
            set opt $w
            continue
        else if string match -q -- '-*' $w
            continue
        end
        if test $positional -eq 0
            set -l next $w
            if test -n "$sub"
                set next "$sub/$w"
            end
            if contains -- $next $__spoke_paths
                set sub $next
                continue
            end
        end
        set positional (math $positional + 1)
    end
    if test -n "$opt"
        switch $opt
{option_cases}        end
        return 0
    end
    test $positional -eq 0; or return 0
    switch $sub
{id_cases}    end
end

function __spoke_at_id
    set -l kind (__spoke_id_kind)
    test -n "$kind"
end

function __spoke_ids
    set -l kind (__spoke_id_kind)
    test -n "$kind"; or return 0
    set -l data
    set -l words (commandline -opc)
    for i in (seq 2 (count $words))
        switch $words[$i]
            case '--home' '--config'
                set -a data $words[$i] $words[(math $i + 1)]
            case '--home=*' '--config=*'
                set -a data $words[$i]
        end
    end
    command spoke $data __complete $kind (commandline -ct) 2>/dev/null
end

complete -c spoke -n '__spoke_at_id' -f -a '(__spoke_ids)'
"#,
        value_options = quoted(&mut s.value_options.iter().map(String::as_str)),
        paths = quoted(&mut s.paths.iter().map(String::as_str)),
    )
}

/// `spoke __complete KIND [PREFIX]`: ids of that kind starting with the
/// prefix, one `ID<TAB>TITLE` a line. Quiet and successful whatever goes
/// wrong: a shell is waiting.
pub fn ids(home: Option<&Path>, config: Option<&Path>, kind: &str, prefix: &str) -> Result<()> {
    let Some(home) = home.map(Path::to_path_buf).or_else(|| {
        crate::config::Config::load(config)
            .ok()
            .and_then(|(c, _)| c.home)
            .or_else(crate::config::default_home)
    }) else {
        return Ok(());
    };
    let Ok(hub) = Hub::open(&home, None) else {
        return Ok(());
    };
    let rows: Vec<(String, String)> = match kind {
        "brief" => hub
            .briefs(&crate::service::BriefFilter::default())
            .map(|list| list.into_iter().map(|b| (b.id, b.title)).collect()),
        "asset" => hub.assets().map(|list| {
            list.into_iter()
                .filter(|a| !a.deleted)
                .map(|a| (a.id, a.title))
                .collect()
        }),
        "approval" => hub.approvals(false).map(|list| {
            list.into_iter()
                .map(|a| {
                    let status = crate::model::serde_name(a.status);
                    (a.id, format!("{} ({status})", a.title))
                })
                .collect()
        }),
        "kb" => hub
            .knowledge_docs()
            .map(|list| list.into_iter().map(|d| (d.id, d.title)).collect()),
        _ => Ok(Vec::new()),
    }
    .unwrap_or_default();
    let mut out = std::io::stdout().lock();
    for (id, title) in rows.iter().filter(|(id, _)| id.starts_with(prefix)) {
        let title: String = title
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if writeln!(out, "{id}\t{title}").is_err() {
            break;
        }
    }
    let _ = out.flush();
    Ok(())
}

/// `spoke man [--out DIR]`: every page into DIR, or `spoke.1` to stdout.
pub fn man(out_dir: Option<&Path>, json: bool) -> Result<()> {
    let Some(dir) = out_dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(man_command())
            .render(&mut page)
            .context("rendering the man page")?;
        let mut out = std::io::stdout().lock();
        out.write_all(&page)?;
        out.flush()?;
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("writing man pages to {}", dir.display()))?;
    let pages = page_names(&man_command());
    if json {
        return super::print_json(&serde_json::json!({ "dir": dir, "pages": pages }));
    }
    outln!(
        "wrote {} man pages to {} (read one with `man -l {}`)",
        pages.len(),
        dir.display(),
        dir.join("spoke.1").display()
    )?;
    Ok(())
}

/// The command as `clap_mangen::generate_to` sees it: no `help` subcommand
/// (every page documents `--help` already).
fn man_command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The file names `clap_mangen::generate_to` writes: one per visible command.
fn page_names(cmd: &clap::Command) -> Vec<String> {
    let mut names = vec![format!(
        "{}.1",
        cmd.get_display_name().unwrap_or_else(|| cmd.get_name())
    )];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        names.extend(page_names(sub));
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_found_where_the_command_tree_puts_them() {
        let s = slots(&command());
        assert!(s.paths.iter().any(|p| p == "brief/show"));
        assert!(s.ids.contains(&("brief/show".to_owned(), "brief")));
        assert!(s.ids.contains(&("asset/show".to_owned(), "asset")));
        assert!(s.ids.contains(&("approve".to_owned(), "approval")));
        assert!(s.ids.contains(&("approvals/show".to_owned(), "approval")));
        assert!(
            !s.paths.iter().any(|p| p.starts_with("__")),
            "hidden commands stay out"
        );
        assert!(s.value_options.iter().any(|o| o == "--home"));
        assert!(!s.value_options.iter().any(|o| o == "--json"));
        assert!(s.id_options.contains(&("--brief".to_owned(), "brief")));
    }

    #[test]
    fn the_zsh_script_wraps_clap_s_function() {
        let script = script(Shell::Zsh);
        assert!(script.contains("_spoke_clap() {"), "clap's layout changed");
        assert!(script.contains("__spoke_id_kind"));
        assert_eq!(script.matches("\n_spoke() {").count(), 1);
    }
}
