//! Telling the user that something new waits on them, beyond the badge and
//! the toast: the terminal's bell and a desktop notification through the
//! terminal (OSC 9 or OSC 777), wrapped for tmux when inside it.

use super::osc;
use crate::config::NotifyConfig;

/// Which desktop-notification sequence the terminal understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `ESC ] 9 ; TEXT BEL`: kitty, iTerm2, WezTerm, Ghostty, Windows Terminal.
    Osc9,
    /// `ESC ] 777 ; notify ; TITLE ; BODY BEL`: foot, urxvt, VTE terminals.
    Osc777,
}

impl Protocol {
    /// The configured protocol, or the one the terminal is known for.
    pub fn choose(configured: Option<&str>, var: &dyn Fn(&str) -> Option<String>) -> Protocol {
        match configured {
            Some("osc777") => return Protocol::Osc777,
            Some("osc9") => return Protocol::Osc9,
            _ => {}
        }
        let term = var("TERM").unwrap_or_default();
        let vte = var("VTE_VERSION").is_some_and(|v| !v.is_empty());
        if vte || term.starts_with("foot") || term.contains("rxvt") {
            Protocol::Osc777
        } else {
            Protocol::Osc9
        }
    }
}

/// What to write when something new arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notifier {
    bell: bool,
    desktop: Option<Protocol>,
    in_tmux: bool,
}

impl Notifier {
    pub fn new(config: &NotifyConfig, var: &dyn Fn(&str) -> Option<String>) -> Notifier {
        Notifier {
            bell: config.bell,
            desktop: config
                .desktop
                .then(|| Protocol::choose(config.protocol.as_deref(), var)),
            in_tmux: var("TMUX").is_some_and(|v| !v.is_empty()),
        }
    }

    /// From the process's environment.
    pub fn from_env(config: &NotifyConfig) -> Notifier {
        Notifier::new(config, &|name| std::env::var(name).ok())
    }

    /// The bytes for one notification; empty when nothing is configured.
    pub fn bytes(&self, title: &str, body: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(protocol) = self.desktop {
            let sequence = match protocol {
                Protocol::Osc9 => osc::notify(&format!("{title}: {body}")),
                Protocol::Osc777 => osc::notify_777(title, body),
            };
            out.extend(osc::for_terminal(&sequence, self.in_tmux));
        }
        // tmux watches for the bell itself and passes it on.
        if self.bell {
            out.extend_from_slice(osc::BELL);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn config(bell: bool, desktop: bool, protocol: Option<&str>) -> NotifyConfig {
        NotifyConfig {
            bell,
            desktop,
            protocol: protocol.map(str::to_owned),
        }
    }

    #[test]
    fn nothing_is_written_unless_the_config_asks() {
        let n = Notifier::new(
            &config(false, false, None),
            &env(&[("TERM", "xterm-kitty")]),
        );
        assert!(n.bytes("Spoke", "news").is_empty());
    }

    #[test]
    fn osc9_plain_and_through_tmux() {
        let plain = Notifier::new(&config(true, true, None), &env(&[("TERM", "xterm-kitty")]));
        assert_eq!(
            plain.bytes("Spoke: Cover", "waits on you"),
            b"\x1b]9;Spoke: Cover: waits on you\x07\x07".to_vec()
        );
        let tmux = Notifier::new(
            &config(false, true, Some("osc9")),
            &env(&[
                ("TERM", "screen-256color"),
                ("TMUX", "/tmp/tmux-0/default,1,0"),
            ]),
        );
        assert_eq!(
            tmux.bytes("Spoke", "news"),
            b"\x1bPtmux;\x1b\x1b]9;Spoke: news\x07\x1b\\".to_vec()
        );
    }

    #[test]
    fn osc777_for_vte_and_foot_with_the_title_apart() {
        for vars in [
            &[("TERM", "xterm-256color"), ("VTE_VERSION", "7600")][..],
            &[("TERM", "foot")][..],
        ] {
            let owned: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            let var = move |name: &str| {
                owned
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            let n = Notifier::new(&config(false, true, None), &var);
            assert_eq!(
                n.bytes("Spoke; Cover", "asked; twice"),
                b"\x1b]777;notify;Spoke Cover;asked; twice\x07".to_vec()
            );
        }
    }
}
