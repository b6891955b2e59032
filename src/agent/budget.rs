//! Fitting a prompt into the model's context window before it is sent.
//!
//! Tokens are counted with a conservative estimate (no tokenizer ships with
//! an OpenAI-compatible server): about four characters of ASCII text to a
//! token, two of other alphabetic scripts, and one token for each CJK, kana
//! or Hangul character. What does not fit is dropped in this order: the
//! oldest history first (the question itself always stays), then the
//! lowest-ranked retrieved passages. A prompt that cannot fit even then is
//! refused before anything is sent, saying by how much.

use super::provider::ChatMessage;

/// Tokens a message costs beyond its text (role, separators).
const PER_MESSAGE: usize = 4;

/// An estimate of the tokens `text` takes, rounded up; never below the
/// real count for common tokenizers on ordinary prose.
pub fn estimate_tokens(text: &str) -> usize {
    // In quarters of a token.
    let mut quarters = 0usize;
    for c in text.chars() {
        quarters += if c.is_ascii() {
            1
        } else if is_wide(c) {
            4
        } else {
            2
        };
    }
    quarters.div_ceil(4)
}

fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF      // Hangul Jamo
        | 0x2E80..=0x9FFF    // CJK radicals, kana, CJK ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0xFF00..=0xFFEF    // full-width forms
        | 0x20000..=0x3FFFF) // CJK extensions
}

/// The tokens a list of messages takes.
pub fn messages_tokens(messages: &[ChatMessage]) -> usize {
    messages
        .iter()
        .map(|m| {
            estimate_tokens(&m.content)
                + m.tool_calls
                    .iter()
                    .map(|c| estimate_tokens(&c.name) + estimate_tokens(&c.arguments))
                    .sum::<usize>()
                + PER_MESSAGE
        })
        .sum()
}

/// What was kept to fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// The system prompt, then the history kept.
    pub messages: Vec<ChatMessage>,
    /// How many of the passages (best first) the system prompt holds.
    pub passages: usize,
    pub dropped_history: usize,
    pub dropped_passages: usize,
    /// The estimated size of what will be sent.
    pub tokens: usize,
}

/// Why a prompt was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the prompt needs about {needed} tokens with no history and no retrieved passages, but the \
     model's context leaves {budget} for it ({context} minus {answer} for the answer): shorten \
     the message, or set [agent] context_tokens if the model's window is larger"
)]
pub struct TooLong {
    pub needed: usize,
    pub budget: usize,
    pub context: usize,
    pub answer: usize,
}

/// Fits a prompt into `context` tokens, keeping `answer` of them for the
/// reply. `system_for(n)` builds the system prompt with the best `n` of
/// `passages`; `history` ends with the question.
pub fn fit(
    context: usize,
    answer: usize,
    passages: usize,
    mut system_for: impl FnMut(usize) -> String,
    history: &[ChatMessage],
) -> Result<Fitted, TooLong> {
    let budget = context.saturating_sub(answer);
    let mut keep = passages;
    let mut start = 0;
    let mut system = system_for(keep);
    loop {
        let system_tokens = estimate_tokens(&system) + PER_MESSAGE;
        let tokens = system_tokens + messages_tokens(&history[start..]);
        if tokens <= budget {
            let mut messages = vec![ChatMessage::system(system)];
            messages.extend_from_slice(&history[start..]);
            return Ok(Fitted {
                messages,
                passages: keep,
                dropped_history: start,
                dropped_passages: passages - keep,
                tokens,
            });
        }
        if start + 1 < history.len() {
            start += 1;
        } else if keep > 0 {
            keep -= 1;
            system = system_for(keep);
        } else {
            return Err(TooLong {
                needed: tokens,
                budget,
                context,
                answer,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_are_per_script() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        // Each kanji or kana is a token of its own.
        assert_eq!(estimate_tokens("見出しの文字"), 6);
        // Accented Latin costs more than ASCII, less than CJK.
        assert_eq!(estimate_tokens("éééé"), 2);
    }

    fn history(n: usize, words: usize) -> Vec<ChatMessage> {
        (0..n)
            .map(|i| ChatMessage::user(format!("message {i} {}", "word ".repeat(words))))
            .collect()
    }

    fn system(n: usize) -> String {
        let mut s = "You are the studio's agent.".to_owned();
        for i in 0..n {
            s.push_str(&format!("\n[{}] {}", i + 1, "passage text ".repeat(40)));
        }
        s
    }

    #[test]
    fn everything_is_kept_when_it_fits() {
        let h = history(3, 10);
        let f = fit(8192, 1024, 4, system, &h).expect("fits");
        assert_eq!(
            (f.passages, f.dropped_history, f.dropped_passages),
            (4, 0, 0)
        );
        assert_eq!(f.messages.len(), 4);
        assert!(f.tokens <= 8192 - 1024);
    }

    #[test]
    fn the_oldest_history_goes_first_then_the_lowest_passages_and_the_question_stays() {
        let h = history(10, 100);
        let all = estimate_tokens(&system(4)) + messages_tokens(&h) + PER_MESSAGE;
        // Room for the passages and about three messages.
        let per_message = messages_tokens(&h[..1]);
        let room = estimate_tokens(&system(4)) + PER_MESSAGE + 3 * per_message + 10;
        let f = fit(room + 100, 100, 4, system, &h).expect("fits");
        assert!(all > room);
        assert_eq!(f.passages, 4, "passages outrank old history");
        assert_eq!(f.dropped_history, 7);
        assert_eq!(f.messages.last(), h.last(), "the question stays");
        // Tighter: all history but the question goes, then passages.
        let tight = estimate_tokens(&system(2)) + PER_MESSAGE + per_message + 5;
        let f = fit(tight, 0, 4, system, &h).expect("fits");
        assert_eq!(f.dropped_history, 9);
        assert_eq!(f.passages, 2);
        assert_eq!(f.messages.len(), 2);
    }

    #[test]
    fn a_question_too_long_for_the_window_is_refused_before_sending() {
        let h = vec![ChatMessage::user("word ".repeat(4000))];
        let err = fit(2048, 512, 3, system, &h).expect_err("too long");
        assert_eq!(err.budget, 1536);
        assert!(err.needed > 1536);
        let text = err.to_string();
        assert!(
            text.contains("context_tokens") && text.contains("1536"),
            "{text}"
        );
    }
}
