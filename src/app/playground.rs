//! The prompt playground's state: an editable input line with history, slash
//! commands for the sampling settings, the transcript of generations (each
//! token with its probability, alternatives and entropy), and the token
//! cursor that selects one generated token to show its alternatives. On a
//! masked LM's run (BERT) a line is a text whose `[MASK]`s are filled (each
//! mask's top-k candidates) instead of a prompt to continue.

use crate::train::{FillResult, SampleSettings, TokenAlts};

/// What a masked LM fills; a line without it gets a hint.
pub const MASK: &str = "[MASK]";
/// Candidates asked for per mask.
pub const FILL_K: usize = 5;

/// A one-line text editor; `cursor` counts chars.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputLine {
    pub text: String,
    pub cursor: usize,
}

impl InputLine {
    fn byte_at(&self, char_idx: usize) -> usize {
        self.text
            .char_indices()
            .nth(char_idx)
            .map(|(i, _)| i)
            .unwrap_or(self.text.len())
    }
    pub fn len_chars(&self) -> usize {
        self.text.chars().count()
    }
    pub fn insert(&mut self, c: char) {
        let at = self.byte_at(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
    }
    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }
    pub fn delete(&mut self) {
        if self.cursor < self.len_chars() {
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }
    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }
    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.len_chars());
    }
    pub fn home(&mut self) {
        self.cursor = 0;
    }
    pub fn end(&mut self) {
        self.cursor = self.len_chars();
    }
    pub fn set(&mut self, text: &str) {
        self.text = text.to_string();
        self.cursor = self.len_chars();
    }
    pub fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }
}

/// One block of the transcript.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Prompt(String),
    Output {
        id: u64,
        text: String,
        /// Per generated token: where it ends in `text`, its probability,
        /// that step's alternatives.
        tokens: Vec<GenToken>,
        /// (tokens, tokens/s) once done.
        done: Option<(usize, f64)>,
    },
    /// A masked LM's fill of the text the line before it: `None` until
    /// the answer comes.
    Fill {
        id: u64,
        result: Option<FillResult>,
    },
    Info(String),
    Error(String),
}

/// One generated token of an output.
#[derive(Debug, Clone, PartialEq)]
pub struct GenToken {
    /// The byte offset in the output's text where the token ends.
    pub end: usize,
    /// The probability the model gave it.
    pub prob: f32,
    /// That step's most likely tokens and entropy (None from older trainers).
    pub alts: Option<TokenAlts>,
}

/// A generated token in the transcript: the index of its output entry and
/// its index among that output's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenAt {
    pub entry: usize,
    pub token: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Playground {
    pub input: InputLine,
    pub history: Vec<String>,
    /// Position while browsing history (None: editing a new line).
    pub history_pos: Option<usize>,
    /// The unfinished line saved when history browsing starts.
    pub draft: String,
    pub settings: SampleSettings,
    pub transcript: Vec<Entry>,
    /// Lines scrolled up from the bottom (0 follows new output).
    pub scroll: usize,
    pub next_id: u64,
    /// The selected generated token (left/right move it), whose
    /// alternatives the pane shows; None: no selection.
    pub token_cursor: Option<TokenAt>,
}

pub const HELP_TEXT: &str =
    "commands: /temp X (0 = greedy), /top_k N (0 = off), /top_p X (1 = off), \
/max N, /seed N, /clear, /help; Enter sends the prompt, Esc leaves input, up/down browse history";

/// What submitting a line did.
#[derive(Debug, Clone, PartialEq)]
pub enum Submit {
    Nothing,
    Generate {
        id: u64,
        prompt: String,
    },
    /// A masked LM fills the `[MASK]`s of `text`.
    Fill {
        id: u64,
        text: String,
    },
    Settings,
}

/// The hint for a line with no `[MASK]` on a masked LM's run.
pub fn no_mask_hint(example: &str) -> String {
    format!("no [MASK] in the text: this is a masked LM, it fills each [MASK] instead of generating; e.g. {example}")
}

impl Playground {
    pub fn new(settings: SampleSettings) -> Playground {
        Playground {
            input: InputLine::default(),
            history: Vec::new(),
            history_pos: None,
            draft: String::new(),
            settings,
            transcript: Vec::new(),
            scroll: 0,
            next_id: 1,
            token_cursor: None,
        }
    }

    pub fn history_prev(&mut self) {
        if self.history.is_empty() {
            return;
        }
        let pos = match self.history_pos {
            None => {
                self.draft = self.input.text.clone();
                self.history.len() - 1
            }
            Some(p) => p.saturating_sub(1),
        };
        self.history_pos = Some(pos);
        let line = self.history[pos].clone();
        self.input.set(&line);
    }

    pub fn history_next(&mut self) {
        match self.history_pos {
            None => {}
            Some(p) if p + 1 < self.history.len() => {
                self.history_pos = Some(p + 1);
                let line = self.history[p + 1].clone();
                self.input.set(&line);
            }
            Some(_) => {
                self.history_pos = None;
                let draft = std::mem::take(&mut self.draft);
                self.input.set(&draft);
            }
        }
    }

    /// Enter on a masked LM's run: a slash command changes settings; a text
    /// with `[MASK]` becomes a fill request; one without gets a hint.
    pub fn submit_fill(&mut self) -> Submit {
        match self.submit() {
            Submit::Generate { id, prompt } => {
                // `submit` added the prompt and an empty output: a fill instead.
                self.transcript.pop();
                if prompt.contains(MASK) {
                    self.transcript.push(Entry::Fill { id, result: None });
                    Submit::Fill { id, text: prompt }
                } else {
                    let example = if prompt.chars().count() > 1 {
                        let mut c: Vec<char> = prompt.chars().collect();
                        let mid = c.len() / 2;
                        c.remove(mid);
                        let (a, b) = c.split_at(mid);
                        format!(
                            "{}{MASK}{}",
                            a.iter().collect::<String>(),
                            b.iter().collect::<String>()
                        )
                    } else {
                        format!("{prompt}{MASK}")
                    };
                    self.transcript.push(Entry::Info(no_mask_hint(&example)));
                    Submit::Nothing
                }
            }
            other => other,
        }
    }

    /// A masked LM's answer to a fill.
    pub fn on_filled(&mut self, r: FillResult) {
        if let Some(Entry::Fill { result, .. }) = self
            .transcript
            .iter_mut()
            .rev()
            .find(|e| matches!(e, Entry::Fill { id, .. } if *id == r.id))
        {
            *result = Some(r);
        }
    }

    /// Enter: a slash command changes settings; other text becomes a request.
    pub fn submit(&mut self) -> Submit {
        let line = self.input.take();
        self.history_pos = None;
        self.draft.clear();
        if line.trim().is_empty() {
            return Submit::Nothing;
        }
        if self.history.last() != Some(&line) {
            self.history.push(line.clone());
            if self.history.len() > 500 {
                self.history.remove(0);
            }
        }
        self.scroll = 0;
        if let Some(cmd) = line.strip_prefix('/') {
            self.slash(cmd.trim());
            return Submit::Settings;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.transcript.push(Entry::Prompt(line.clone()));
        self.transcript.push(Entry::Output {
            id,
            text: String::new(),
            tokens: Vec::new(),
            done: None,
        });
        Submit::Generate { id, prompt: line }
    }

    fn slash(&mut self, cmd: &str) {
        let mut parts = cmd.split_whitespace();
        let name = parts.next().unwrap_or("");
        let arg = parts.next();
        let s = &mut self.settings;
        let result: Result<String, String> = match (name, arg) {
            ("clear", _) => {
                self.transcript.clear();
                self.token_cursor = None;
                return;
            }
            ("help", _) => Ok(HELP_TEXT.to_string()),
            ("temp" | "temperature", Some(v)) => match v.parse::<f32>() {
                Ok(t) if t.is_finite() && t >= 0.0 => {
                    s.temperature = t;
                    Ok(format!("temperature = {t}"))
                }
                _ => Err(format!("/temp {v}: need a number >= 0")),
            },
            ("top_k", Some(v)) => match v.parse::<usize>() {
                Ok(k) => {
                    s.top_k = k;
                    Ok(format!("top_k = {k}"))
                }
                Err(_) => Err(format!("/top_k {v}: need a whole number >= 0")),
            },
            ("top_p", Some(v)) => match v.parse::<f32>() {
                Ok(p) if p > 0.0 && p <= 1.0 => {
                    s.top_p = p;
                    Ok(format!("top_p = {p}"))
                }
                _ => Err(format!("/top_p {v}: need a number in (0, 1]")),
            },
            ("max", Some(v)) => match v.parse::<usize>() {
                Ok(n) if n >= 1 => {
                    s.max_new_tokens = n;
                    Ok(format!("max new tokens = {n}"))
                }
                _ => Err(format!("/max {v}: need a whole number >= 1")),
            },
            ("seed", Some(v)) => match v.parse::<u64>() {
                Ok(n) => {
                    s.seed = n;
                    Ok(format!("seed = {n}"))
                }
                Err(_) => Err(format!("/seed {v}: need a whole number")),
            },
            ("temp" | "temperature" | "top_k" | "top_p" | "max" | "seed", None) => {
                Err(format!("/{name} needs a value; /help lists the commands"))
            }
            _ => Err(format!("unknown command /{name}; try /help")),
        };
        match result {
            Ok(msg) => self.transcript.push(Entry::Info(msg)),
            Err(msg) => self.transcript.push(Entry::Error(msg)),
        }
    }

    /// A generated token, the probability the model gave it and that step's
    /// alternatives.
    pub fn on_token(&mut self, id: u64, text: &str, prob: f32, alts: Option<TokenAlts>) {
        if let Some(Entry::Output {
            text: t, tokens, ..
        }) = self.output_mut(id)
        {
            if t.len() < 1 << 20 {
                t.push_str(text);
                tokens.push(GenToken {
                    end: t.len(),
                    prob,
                    alts,
                });
            }
        } else {
            self.transcript.push(Entry::Output {
                id,
                text: text.to_string(),
                tokens: vec![GenToken {
                    end: text.len(),
                    prob,
                    alts,
                }],
                done: None,
            });
        }
    }

    /// Every generated token's place in the transcript, in order.
    fn token_places(&self) -> Vec<TokenAt> {
        let mut out = Vec::new();
        for (entry, e) in self.transcript.iter().enumerate() {
            if let Entry::Output { tokens, .. } = e {
                out.extend((0..tokens.len()).map(|token| TokenAt { entry, token }));
            }
        }
        out
    }

    /// Moves the token cursor by `delta` generated tokens (across outputs),
    /// staying on the first / last; from no selection, starts on the last
    /// token. Returns false when there is no generated token.
    pub fn move_token(&mut self, delta: isize) -> bool {
        let places = self.token_places();
        if places.is_empty() {
            self.token_cursor = None;
            return false;
        }
        let i = match self
            .token_cursor
            .and_then(|c| places.iter().position(|&p| p == c))
        {
            None => places.len() - 1,
            Some(i) => (i as isize + delta).clamp(0, places.len() as isize - 1) as usize,
        };
        self.token_cursor = Some(places[i]);
        true
    }

    /// The selected token: its text, probability and alternatives.
    pub fn selected_token(&self) -> Option<(&str, &GenToken)> {
        let c = self.token_cursor?;
        let Entry::Output { text, tokens, .. } = self.transcript.get(c.entry)? else {
            return None;
        };
        let start = c.token.checked_sub(1).map_or(0, |i| tokens[i].end);
        let tok = tokens.get(c.token)?;
        Some((text.get(start..tok.end).unwrap_or(""), tok))
    }

    /// The last prompt and the answer that followed it, as one text (what
    /// the attention pane probes from the playground; a fill: the filled text).
    pub fn last_exchange(&self) -> Option<String> {
        let i = self
            .transcript
            .iter()
            .rposition(|e| matches!(e, Entry::Prompt(_)))?;
        let Entry::Prompt(p) = &self.transcript[i] else {
            return None;
        };
        // A masked LM's fill: the text as filled.
        if let Some(Entry::Fill {
            result: Some(r), ..
        }) = self.transcript.get(i + 1)
        {
            if r.error.is_none() {
                return Some(r.filled());
            }
        }
        let answer = self.transcript[i + 1..].iter().find_map(|e| match e {
            Entry::Output { text, .. } => Some(text.as_str()),
            _ => None,
        });
        Some(format!("{p}{}", answer.unwrap_or("")))
    }

    pub fn on_done(&mut self, id: u64, tokens: usize, tps: f64) {
        if let Some(Entry::Output { done, .. }) = self.output_mut(id) {
            *done = Some((tokens, tps));
        }
    }

    fn output_mut(&mut self, id: u64) -> Option<&mut Entry> {
        self.transcript
            .iter_mut()
            .rev()
            .find(|e| matches!(e, Entry::Output { id: i, .. } if *i == id))
    }

    /// The settings as the pane title shows them.
    pub fn settings_label(&self) -> String {
        let s = &self.settings;
        format!(
            "temp {} · top_k {} · top_p {} · max {} · seed {}",
            s.temperature, s.top_k, s.top_p, s.max_new_tokens, s.seed
        )
    }
}
