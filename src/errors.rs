//! Error messages as one line: the chain of causes joined with ": ", each
//! said once (a message that already quotes its cause, as
//! `cannot write: {source}` does, does not get it appended a second time).

/// `e` and its causes on one line, without repeats.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("checkpoint {path}: cannot write: {source}")]
    struct Write {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from_raw_os_error(28);
        let e = anyhow::Error::from(Write {
            path: "ck/model.safetensors".into(),
            source: io,
        });
        assert_eq!(format!("{e:#}").matches("os error 28").count(), 2);
        let line = one_line(&e);
        assert_eq!(line.matches("os error 28").count(), 1, "{line}");
        assert!(line.starts_with("checkpoint ck/model.safetensors: cannot write: "));
    }

    #[test]
    fn context_and_a_new_cause_are_kept() {
        let e = anyhow::anyhow!("inner\nsecond line").context("outer");
        assert_eq!(one_line(&e), "outer: inner second line");
    }
}
