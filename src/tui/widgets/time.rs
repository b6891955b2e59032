//! Times as people say them: "in 3h", "2d ago".

use jiff::{SignedDuration, Timestamp};

/// "in 3h", "2d ago", "now".
pub fn relative(at: Timestamp, now: Timestamp) -> String {
    let d: SignedDuration = at.duration_since(now);
    let secs = d.as_secs();
    let abs = secs.unsigned_abs();
    let text = if abs < 60 {
        return "now".into();
    } else if abs < 3600 {
        format!("{}m", abs / 60)
    } else if abs < 86_400 {
        format!("{}h", abs / 3600)
    } else if abs < 86_400 * 60 {
        format!("{}d", abs / 86_400)
    } else {
        format!("{}mo", abs / (86_400 * 30))
    };
    if secs >= 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// How old something is: "3d", or "-" when unknown.
pub fn age(at: Option<Timestamp>, now: Timestamp) -> String {
    match at {
        Some(t) => relative(t, now)
            .trim_end_matches(" ago")
            .trim_start_matches("in ")
            .to_owned(),
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        let now: Timestamp = "2026-11-24T10:00:00Z".parse().expect("ts");
        let at = |s: &str| -> Timestamp { s.parse().expect("ts") };
        assert_eq!(relative(at("2026-11-24T13:00:00Z"), now), "in 3h");
        assert_eq!(relative(at("2026-11-22T10:00:00Z"), now), "2d ago");
        assert_eq!(relative(at("2026-11-24T10:00:30Z"), now), "now");
    }
}
