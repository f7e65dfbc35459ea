//! YAML in free text: the whole value of a sensitive key, over however many lines YAML writes
//! it, and a `value` named by its sibling `name` (a Kubernetes env, `- name: DB_PASSWORD`).
//!
//! The pair rules ([`text`](super::text)) read a value on its key's line, up to a `,` or `;`;
//! on a line shaped like a YAML key a plain value runs to the line's end instead. YAML writes
//! one on the lines after it too: a block scalar (`password: |`, `>-`, `|2`), more indented lines (a
//! plain scalar, a sequence, a nested mapping; a sequence may also sit at its key's own
//! indentation, `env:` then `- name: …`), or a quoted scalar continued on the next lines. Only
//! a line shaped like a YAML key opens such a block: the key starts the line (after its
//! indentation and any `- `) and its `:` ends the line or is followed by a block scalar's
//! indicator, a tag, an anchor or a comment, so prose keeps its lines. In a YAML body (its
//! media type says so) a plain value on its key's line opens one too, as YAML folds the more
//! indented lines after it into it (`password: hunter\n  2more` is `hunter 2more`). Each line
//! is read once and a quoted scalar's lines are skipped past, so the scan is linear. In a YAML
//! body a flow mapping's values are read over its lines too (`{user: b, password:⏎  hunter2}`,
//! see [`flow_values`]).
//!
//! A Kubernetes `Secret` (`kind: Secret`) loses every value of its `data` and `stringData`
//! mappings, whatever their keys (`tls.key`, `DATABASE_URL`): only the `kind` tells them
//! apart, and it may come after them (`kubectl get -o yaml` sorts keys), so until it is read
//! they wait, as a `value` waits for its `name`.

use memchr::memchr;

use super::json::{Role, role_of};
use super::keys::KeyRules;
use super::printed::blanks;

/// The longest key read, as for the pair rules' keys: a longer text before a `:` is prose.
const LONGEST_KEY: usize = 64;

/// The spans of the whole values of sensitive YAML keys (and of `value` members named by a
/// sibling `name`), in no order, perhaps overlapping (the pair rules merge them with theirs).
/// When `cut` is true the text ends mid-body: a block open at its end runs to it, and a
/// `value` still waiting for its mapping's name goes. When `yaml` is true the text is a YAML
/// body's, whose plain values run on over the lines indented more than their key.
pub(super) fn block_values(
    text: &str,
    cut: bool,
    yaml: bool,
    keys: &KeyRules,
    keybuf: &mut String,
) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut reader = Reader {
        plain_runs_on: yaml,
        ..Reader::default()
    };
    // A text of one line is read too: a line that starts with a sensitive key loses the rest
    // of it (`password: too short, min 8`), where the pair rules stop at its `,`.
    let mut at = 0;
    while at < bytes.len() {
        let end = memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
        let line_end = if end > at && bytes[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        let read_to = reader.line(text, at, line_end, keys, keybuf).max(end);
        at = read_to + 1;
    }
    reader.finish(cut);
    if yaml {
        flow_values(text, keys, keybuf, &mut reader.spans);
    }
    reader.spans
}

/// Pushes the spans of the values of sensitive keys in the flow mappings of a YAML body
/// (`{user: b, password: hunter2}`), which YAML writes over lines too: a value on the line
/// after its key (`password:⏎    hunter2`), a plain scalar folded over lines (`hunter⏎  2more`),
/// a quoted one (`"a,⏎  b"`), a flow collection. A value runs to the `,` or closer after it
/// (a quoted one to its closing quote, a collection to its closer), its blanks and comments
/// left out. The pair rules read such a value on its key's line; here the lines after it.
///
/// A flow opens at a `{` where a node may start (a line's start, after a key's `:`, a `- `,
/// a `[`, `{` or `,`), and its lines are indented more than its opener's line: a line indented
/// no more, but for a closer, ends the reading (the flow was never closed) and is left to the
/// line rules. Each byte is read once: a `{` inside a flow read is not looked at again.
fn flow_values(text: &str, keys: &KeyRules, keybuf: &mut String, spans: &mut Vec<(usize, usize)>) {
    let bytes = text.as_bytes();
    // Where the reading of the last flow stopped: a `{` before it was read with it.
    let mut from = 0;
    // The start of the line of the last `{` looked at, and its indentation once told.
    let mut line_start = 0;
    let mut indent = None;
    let mut last = 0;
    for open in memchr::memchr_iter(b'{', bytes) {
        if let Some(at) = memchr::memrchr(b'\n', &bytes[last..open]) {
            line_start = last + at + 1;
            indent = None;
        }
        last = open;
        if open < from || !opens_a_flow(bytes, open) {
            continue;
        }
        let indent = *indent.get_or_insert_with(|| blanks(&bytes[line_start..]));
        from = Flow { text, indent }.read(open, keys, keybuf, spans);
    }
}

/// Whether the `{` at `open` opens a flow mapping: a node may start there, at a line's start
/// or after a key's `:`, a sequence's `- `, a `[`, a `{`, a `,` or a `?` (not in a plain
/// scalar's words, `use {x}`, nor a quoted one's, `"{{ … }}"`).
fn opens_a_flow(bytes: &[u8], open: usize) -> bool {
    let blank = blanks_before(bytes, open);
    match open.checked_sub(blank + 1).map(|at| bytes[at]) {
        None | Some(b'\n' | b'\r' | b':' | b'[' | b'{' | b',' | b'?') => true,
        Some(b'-') => blank > 0,
        _ => false,
    }
}

/// How many spaces and tabs end `bytes[..at]`.
fn blanks_before(bytes: &[u8], at: usize) -> usize {
    bytes[..at]
        .iter()
        .rev()
        .take_while(|&&b| matches!(b, b' ' | b'\t'))
        .count()
}

/// A YAML flow collection being read (see [`flow_values`]).
struct Flow<'t> {
    text: &'t str,
    /// The indentation of its opener's line: a line indented no more ends it.
    indent: usize,
}

impl Flow<'_> {
    /// Reads the flow collection opened at `open`, pushing the spans of its sensitive keys'
    /// values; returns where the reading stopped.
    fn read(
        &self,
        open: usize,
        keys: &KeyRules,
        keybuf: &mut String,
        spans: &mut Vec<(usize, usize)>,
    ) -> usize {
        let bytes = self.text.as_bytes();
        let mut depth = 1_usize;
        let mut at = open + 1;
        loop {
            at = match self.skip(at) {
                Ok(at) => at,
                Err(end) => return end,
            };
            let Some(&b) = bytes.get(at) else {
                return bytes.len();
            };
            match b {
                b'{' | b'[' => {
                    depth += 1;
                    at += 1;
                }
                b'}' | b']' => {
                    depth -= 1;
                    at += 1;
                    if depth == 0 {
                        return at;
                    }
                }
                b',' => at += 1,
                _ => {
                    let (key, after) = self.scalar(at);
                    let colon = after + blanks(&bytes[after..]);
                    let quoted = matches!(b, b'"' | b'\'');
                    let Some((start, end)) = key.filter(|_| self.separates(colon, quoted)) else {
                        at = after.max(at + 1);
                        continue;
                    };
                    at = colon + 1;
                    if !keys.is_sensitive(&self.text[start..end], keybuf) {
                        continue;
                    }
                    let value = match self.skip(at) {
                        Ok(value) => value,
                        Err(end) => return end,
                    };
                    if matches!(bytes.get(value), None | Some(b',' | b'}' | b']')) {
                        at = value;
                        continue;
                    }
                    let (end, resume) = self.value_end(value);
                    if end > value {
                        spans.push((value, end));
                    }
                    at = match resume {
                        Ok(at) => at,
                        Err(end) => return end,
                    };
                }
            }
        }
    }

    /// Whether the line after the line break at `at` ends the flow: it holds more than blanks
    /// and a comment, does not start with a closer, and is indented no more than the opener's.
    fn ends_at_break(&self, at: usize) -> bool {
        let bytes = self.text.as_bytes();
        let start = at + 1;
        let content = start + blanks(&bytes[start..]);
        match bytes.get(content) {
            None | Some(b'\n' | b'\r' | b'#' | b'}' | b']') => false,
            Some(_) => content - start <= self.indent,
        }
    }

    /// Where the next token starts from `at`, past blanks, line breaks and comments; `Err`
    /// with where the flow ends when a line that ends it comes first.
    fn skip(&self, at: usize) -> Result<usize, usize> {
        let bytes = self.text.as_bytes();
        let mut at = at;
        loop {
            match bytes.get(at) {
                Some(b' ' | b'\t' | b'\r') => at += 1,
                Some(b'\n') if self.ends_at_break(at) => return Err(at + 1),
                Some(b'\n') => at += 1,
                Some(b'#') if at > 0 && bytes[at - 1].is_ascii_whitespace() => {
                    at += memchr(b'\n', &bytes[at..]).unwrap_or(bytes.len() - at);
                }
                _ => return Ok(at),
            }
        }
    }

    /// The scalar that starts at `at`: its text, when it is on one line (a key may be), and
    /// where it ends. A plain one ends at a flow indicator, a line's end, a comment or a `:`
    /// that separates (see [`Self::separates`]).
    fn scalar(&self, at: usize) -> (Option<(usize, usize)>, usize) {
        let bytes = self.text.as_bytes();
        if let quote @ (b'"' | b'\'') = bytes[at] {
            let end = quoted_end(bytes, at, quote);
            let closed = end > at + 1 && bytes[end - 1] == quote;
            let one_line = memchr(b'\n', &bytes[at..end]).is_none();
            return ((closed && one_line).then_some((at + 1, end - 1)), end);
        }
        let mut end = at;
        while let Some(&b) = bytes.get(end) {
            let stops = match b {
                b',' | b'[' | b']' | b'{' | b'}' | b'\n' | b'\r' => true,
                b':' => self.separates(end, false),
                b'#' => end > at && matches!(bytes[end - 1], b' ' | b'\t'),
                _ => false,
            };
            if stops {
                break;
            }
            end += 1;
        }
        let trimmed = end - blanks_before(&bytes[..end], end).min(end - at);
        ((trimmed > at).then_some((at, trimmed)), end)
    }

    /// Whether a `:` at `at` separates a key from its value: a space, a line's end or a flow
    /// indicator follows it, or anything after a quoted key (`"a":b`, as JSON writes it).
    fn separates(&self, at: usize, quoted: bool) -> bool {
        let bytes = self.text.as_bytes();
        bytes.get(at) == Some(&b':')
            && (quoted
                || matches!(
                    bytes.get(at + 1),
                    None | Some(b' ' | b'\t' | b'\n' | b'\r' | b',' | b'[' | b']' | b'{' | b'}')
                ))
    }

    /// Where the value that starts at `at` ends, its trailing blanks left out, and where to
    /// read on: `Err` with where the flow ends when a line that ends it comes first. A quoted
    /// value runs to its closing quote (or the end of the text), a collection to its closer,
    /// a plain one to a flow indicator or a comment, over lines.
    fn value_end(&self, at: usize) -> (usize, Result<usize, usize>) {
        let bytes = self.text.as_bytes();
        if let quote @ (b'"' | b'\'') = bytes[at] {
            let end = quoted_end(bytes, at, quote);
            return (end, Ok(end));
        }
        let collection = matches!(bytes[at], b'{' | b'[');
        let mut depth = 0_usize;
        let mut content = at;
        let mut i = at;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'\n' if self.ends_at_break(i) => return (content, Err(i + 1)),
                b' ' | b'\t' | b'\r' | b'\n' => {
                    i += 1;
                    continue;
                }
                b'#' if i > at && bytes[i - 1].is_ascii_whitespace() => {
                    if !collection {
                        return (content, Ok(i));
                    }
                    i += memchr(b'\n', &bytes[i..]).unwrap_or(bytes.len() - i);
                    continue;
                }
                b'"' | b'\'' if collection => {
                    i = quoted_end(bytes, i, b);
                    content = i;
                    continue;
                }
                b'{' | b'[' if collection => depth += 1,
                b'}' | b']' if collection => {
                    depth -= 1;
                    if depth == 0 {
                        return (i + 1, Ok(i + 1));
                    }
                }
                b',' | b'[' | b']' | b'{' | b'}' if !collection && depth == 0 => {
                    return (content, Ok(i));
                }
                _ => {}
            }
            i += 1;
            content = i;
        }
        (content, Ok(bytes.len()))
    }
}

/// What a value read in a block is to be: redacted, or waiting for its mapping's name.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Redacted,
    /// A `value` member: decided by the `name` member of the mapping at this place in
    /// [`Reader::mappings`].
    Named(usize),
    /// A value of a `data` or `stringData` mapping: decided by the `kind` of the mapping at
    /// this place in [`Reader::mappings`].
    SecretData(usize),
}

/// A sensitive key's (or a `value` member's) value that runs on the lines after its key.
#[derive(Debug)]
struct Block {
    /// The key's column: a line indented no more ends the value.
    column: usize,
    /// Whether a `- ` line at the key's own column continues it (a sequence).
    sequence: bool,
    /// Where the value starts: its tag, anchor or indicator on the key's line, or else the
    /// first line after it.
    start: Option<usize>,
    fate: Fate,
}

/// How a mapping has been named so far by its `name` member (see [`role_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Named {
    Not,
    Plainly,
    Sensitively,
}

/// How a mapping's `kind` member makes it a Kubernetes `Secret`, so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unread,
    Secret,
    Other,
}

/// A mapping whose keys start at `column`: one list item's, or a document's level.
#[derive(Debug)]
struct Mapping {
    column: usize,
    named: Named,
    /// Its `value` members read before any name.
    waiting: Vec<(usize, usize)>,
    kind: Kind,
    /// Its last key was `data` or `stringData`, its value on the lines after it.
    opens_data: bool,
    /// It is the `data` or `stringData` of the mapping at this place in
    /// [`Reader::mappings`]: its values are a `Secret`'s when that one's `kind` says so.
    data_of: Option<usize>,
    /// The values of its `data` and `stringData` read before its `kind`.
    data_waiting: Vec<(usize, usize)>,
}

/// The state of the scan: the blocks and mappings open at the line being read.
#[derive(Debug, Default)]
struct Reader {
    blocks: Vec<Block>,
    mappings: Vec<Mapping>,
    spans: Vec<(usize, usize)>,
    /// The end of the last line that belongs to the blocks still open.
    last_end: usize,
    /// A plain value on its key's line runs on over the lines indented more than the key, as
    /// YAML folds them into it (`password: a` then `  b` is `a b`). Only in a YAML body: in
    /// prose those lines are the text's (`token: expired` then `  at 10:00`).
    plain_runs_on: bool,
}

/// The shape of what follows a key's `:` on its line.
enum Shape {
    /// Nothing but a comment, tags, anchors or a block scalar's indicator: the value is on the
    /// next lines, from `start` when those came first.
    Block {
        start: Option<usize>,
        sequence: bool,
    },
    /// A value on the key's line.
    Inline,
}

impl Reader {
    /// Reads the line from `start` to `end` (its line break excluded); returns where the
    /// reading stopped, past `end` when a quoted value runs on.
    fn line(
        &mut self,
        text: &str,
        start: usize,
        end: usize,
        keys: &KeyRules,
        keybuf: &mut String,
    ) -> usize {
        let bytes = text.as_bytes();
        // Tabs indent too: YAML forbids them there, but a stack trace's `\tat …` lines are
        // what an error's `password:` may be followed by.
        let content = start + blanks(&bytes[start..end]);
        if content == end {
            return end;
        }
        let indent = content - start;
        if bytes[content] == b'#' {
            // A comment ends nothing; inside a block scalar it is the value's.
            if self.blocks.last().is_some_and(|b| indent > b.column) {
                return self.extend(bytes, content, end);
            }
            return end;
        }
        let dashed = is_dash(bytes, content, end);
        while let Some(top) = self.blocks.last() {
            if indent > top.column || (indent == top.column && top.sequence && dashed) {
                break;
            }
            if let Some(block) = self.blocks.pop() {
                self.settle(block.start, self.last_end, block.fate);
            }
        }
        while self.mappings.last().is_some_and(|m| m.column > indent) {
            self.mappings.pop();
        }
        if self.blocks.last().is_some_and(|b| b.start.is_none()) {
            let read_to = self.extend(bytes, content, end);
            if read_to > end {
                return read_to;
            }
        }
        self.last_end = end;
        let mut at = content;
        while is_dash(bytes, at, end) {
            at += 1;
            while at < end && bytes[at] == b' ' {
                at += 1;
            }
        }
        let Some((key, colon)) = yaml_key(text, at, end) else {
            // A document's start ends the mappings of the one before (a `ConfigMap`'s `kind`
            // is not the next document's).
            if indent == 0 && is_document_start(&bytes[content..end]) {
                self.mappings.clear();
            }
            return end;
        };
        let column = at - start;
        if at != content || self.mappings.last().is_none_or(|m| m.column != column) {
            // The mapping under a `data:` key.
            let parent = self.mappings.len().checked_sub(1);
            let data_of = parent.filter(|&at| {
                let parent = &mut self.mappings[at];
                std::mem::take(&mut parent.opens_data) && parent.column < column
            });
            self.mappings.push(Mapping {
                column,
                named: Named::Not,
                waiting: Vec::new(),
                kind: Kind::Unread,
                opens_data: false,
                data_of,
                data_waiting: Vec::new(),
            });
        }
        let mut value = colon + 1;
        while value < end && matches!(bytes[value], b' ' | b'\t') {
            value += 1;
        }
        let role = role_of(key);
        let by_key = keys.is_sensitive(key, keybuf);
        let data = self.secret_member(text, key, value, end);
        let fate = if by_key {
            Fate::Redacted
        } else if let Some(fate) = data {
            fate
        } else {
            let Some(mapping) = self.mappings.last_mut() else {
                return end;
            };
            match (role, mapping.named) {
                (Role::Name, _) => {
                    let name = name_text(&text[value..end]);
                    if keys.is_sensitive(name, keybuf) {
                        mapping.named = Named::Sensitively;
                        let waiting = std::mem::take(&mut mapping.waiting);
                        self.spans.extend(waiting);
                    } else if mapping.named == Named::Not {
                        mapping.named = Named::Plainly;
                    }
                    return end;
                }
                (Role::Value, Named::Sensitively) => Fate::Redacted,
                (Role::Value, Named::Not) => Fate::Named(self.mappings.len() - 1),
                _ => return end,
            }
        };
        match shape(bytes, value, end) {
            Shape::Block { start, sequence } => {
                self.blocks.push(Block {
                    column,
                    sequence,
                    start,
                    fate,
                });
                end
            }
            Shape::Inline => match bytes[value] {
                quote @ (b'"' | b'\'') => {
                    let closed = quoted_end(bytes, value, quote);
                    if closed <= end && by_key {
                        // One line: the pair rules' value.
                        return end;
                    }
                    let read_to = if closed <= end {
                        end
                    } else {
                        line_end(bytes, closed)
                    };
                    self.settle(Some(value), read_to, fate);
                    self.last_end = read_to;
                    read_to
                }
                // Quoted with a character reference or a JSON escape (`&quot;…&quot;, …`,
                // `\u0022…`): the pair rules know where that ends. In a YAML body an anchor
                // (`&pw hunter`) is no reference: its value runs on as any plain one.
                b'&' if by_key && !(self.plain_runs_on && is_anchor(bytes, value, end)) => end,
                b'\\' if by_key => end,
                // A plain value runs to the end of its line, where the pair rules stop at a `,`
                // or `;`, and in a YAML body on over the more indented lines after it; a
                // JSON-shaped line (`"pin": 1234,`) keeps its closing `,`.
                _ => {
                    let mut value_end = end;
                    while value_end > value && matches!(bytes[value_end - 1], b' ' | b'\t') {
                        value_end -= 1;
                    }
                    if bytes[at] == b'"' && bytes[value_end - 1] == b',' {
                        value_end -= 1;
                    }
                    if self.plain_runs_on {
                        // Settled when a line indented no more than the key ends it: up to
                        // `value_end` unless a line ran on.
                        self.blocks.push(Block {
                            column,
                            sequence: false,
                            start: Some(value),
                            fate,
                        });
                        self.last_end = value_end;
                    } else {
                        self.settle(Some(value), value_end, fate);
                    }
                    end
                }
            },
        }
    }

    /// Reads the key `key` of the top mapping, its value from `value` to the line's `end`, for
    /// a Kubernetes `Secret`: a `kind` says whether the mapping is one (its data waiting for
    /// it go, or are kept), a `data` or `stringData` key opens its data, on the lines after it
    /// or in a flow mapping on its line (`data: {tls.key: …}`). Returns the fate of the
    /// value of such data, or of such a flow mapping, unless its mapping is known to be no
    /// `Secret`.
    fn secret_member(&mut self, text: &str, key: &str, value: usize, end: usize) -> Option<Fate> {
        let top = self.mappings.len().checked_sub(1)?;
        let data_fate = |mappings: &[Mapping], of: usize| match mappings[of].kind {
            Kind::Secret => Some(Fate::Redacted),
            Kind::Unread => Some(Fate::SecretData(of)),
            Kind::Other => None,
        };
        let data_of = self.mappings[top].data_of;
        let mapping = &mut self.mappings[top];
        mapping.opens_data = false;
        match key {
            "kind" => {
                let secret = name_text(&text[value..end]) == "Secret";
                mapping.kind = if secret { Kind::Secret } else { Kind::Other };
                let waiting = std::mem::take(&mut mapping.data_waiting);
                if secret {
                    self.spans.extend(waiting);
                }
            }
            "data" | "stringData" => {
                let bytes = text.as_bytes();
                if value == end || bytes[value] == b'#' {
                    mapping.opens_data = true;
                } else if bytes[value] == b'{' {
                    return data_fate(&self.mappings, top);
                }
            }
            _ => {}
        }
        data_fate(&self.mappings, data_of?)
    }

    /// The line from `content` to `end` belongs to the open blocks: it starts the top one's
    /// value when none has started yet, and a quoted scalar there runs on to its closing quote.
    fn extend(&mut self, bytes: &[u8], content: usize, end: usize) -> usize {
        let mut read_to = end;
        if let Some(top) = self.blocks.last_mut()
            && top.start.is_none()
        {
            top.start = Some(content);
            if let quote @ (b'"' | b'\'') = bytes[content] {
                read_to = line_end(bytes, quoted_end(bytes, content, quote)).max(end);
            }
        }
        self.last_end = read_to;
        read_to
    }

    /// Decides the value from `start` to `end`.
    fn settle(&mut self, start: Option<usize>, end: usize, fate: Fate) {
        let Some(start) = start.filter(|&start| start < end) else {
            return;
        };
        match fate {
            Fate::Redacted => self.spans.push((start, end)),
            Fate::Named(at) => match self.mappings.get_mut(at) {
                Some(mapping) if mapping.named == Named::Plainly => {}
                Some(mapping) if mapping.named == Named::Not => mapping.waiting.push((start, end)),
                _ => self.spans.push((start, end)),
            },
            Fate::SecretData(at) => match self.mappings.get_mut(at) {
                Some(mapping) if mapping.kind == Kind::Other => {}
                Some(mapping) if mapping.kind == Kind::Unread => {
                    mapping.data_waiting.push((start, end));
                }
                _ => self.spans.push((start, end)),
            },
        }
    }

    /// Ends the blocks open at the end of the text; a cut text's waiting values go.
    fn finish(&mut self, cut: bool) {
        while let Some(block) = self.blocks.pop() {
            let fate = match block.fate {
                Fate::Named(_) | Fate::SecretData(_) if cut => Fate::Redacted,
                fate => fate,
            };
            self.settle(block.start, self.last_end, fate);
        }
        if cut {
            for mapping in self.mappings.drain(..) {
                self.spans.extend(mapping.waiting);
                self.spans.extend(mapping.data_waiting);
            }
        }
    }
}

/// Whether `line`, from its first character, starts a YAML document: `---`, alone or before a
/// space.
fn is_document_start(line: &[u8]) -> bool {
    line.strip_prefix(b"---")
        .is_some_and(|rest| rest.is_empty() || rest[0] == b' ')
}

/// Whether a sequence's `-` is at `at`: followed by a space or the end of the line.
fn is_dash(bytes: &[u8], at: usize, end: usize) -> bool {
    at < end && bytes[at] == b'-' && (at + 1 == end || bytes[at + 1] == b' ')
}

/// The key that starts at `at` and the place of its `:`, followed by a space, a tab or the
/// end of the line: quoted, or plain (`db password`, `user.pin`, not starting with one of YAML's
/// indicators) of the characters a key is written with, so that markup and code
/// (`<pre>password:`, `f(x) token:`) are none; at most [`LONGEST_KEY`] bytes.
fn yaml_key(text: &str, at: usize, end: usize) -> Option<(&str, usize)> {
    let bytes = text.as_bytes();
    // A key's `:` is at most `LONGEST_KEY` bytes past it, a quoted one's one byte further.
    let last = end.min(at + LONGEST_KEY + 2);
    let separates = |colon: usize| {
        bytes.get(colon) == Some(&b':')
            && (colon + 1 == end || matches!(bytes[colon + 1], b' ' | b'\t'))
    };
    match *bytes.get(at)? {
        quote @ (b'"' | b'\'') => {
            let close = at + 1 + memchr(quote, &bytes[at + 1..last])?;
            separates(close + 1).then(|| (&text[at + 1..close], close + 1))
        }
        b'-' | b'?' | b':' | b'[' | b']' | b'@' | b' ' => None,
        _ => {
            // The separating `:` first, with `memchr`: most lines of prose and logs have none
            // near their start, and are left without a look at each byte.
            let last = last.min(at + LONGEST_KEY + 1);
            let mut colon = at + memchr(b':', &bytes[at..last])?;
            while !separates(colon) {
                colon += 1 + memchr(b':', &bytes[colon + 1..last])?;
            }
            bytes[at..colon]
                .iter()
                .all(|&b| KEY_BYTE[usize::from(b)])
                .then(|| (text[at..colon].trim_end_matches(' '), colon))
        }
    }
}

/// The bytes a plain key is written with: ASCII letters and digits, ` _-./[]$@+:` and every
/// byte of a character past ASCII.
const KEY_BYTE: [bool; 256] = {
    let mut table = super::byte_set(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 _-./[]$@+:",
    );
    let mut b = 0x80;
    while b < 256 {
        table[b] = true;
        b += 1;
    }
    table
};

/// The shape of what follows a key's `:` from `at` to the end of its line `end`.
fn shape(bytes: &[u8], at: usize, end: usize) -> Shape {
    let mut start = None;
    let mut i = at;
    loop {
        match bytes.get(i).filter(|_| i < end) {
            None | Some(b'#') => {
                return Shape::Block {
                    start,
                    sequence: true,
                };
            }
            Some(b'&' | b'!') => {
                start.get_or_insert(i);
                while i < end && !matches!(bytes[i], b' ' | b'\t') {
                    i += 1;
                }
                while i < end && matches!(bytes[i], b' ' | b'\t') {
                    i += 1;
                }
            }
            Some(b'|' | b'>') => {
                let indicator = i;
                i += 1;
                while i < end && matches!(bytes[i], b'-' | b'+' | b'0'..=b'9') {
                    i += 1;
                }
                let header_ends = i;
                while i < end && matches!(bytes[i], b' ' | b'\t') {
                    i += 1;
                }
                return if i == end || (bytes[i] == b'#' && i > header_ends) {
                    Shape::Block {
                        start: Some(start.unwrap_or(indicator)),
                        sequence: false,
                    }
                } else {
                    Shape::Inline
                };
            }
            Some(_) => return Shape::Inline,
        }
    }
}

/// The end of the quoted scalar opened by `quote` at `at`, past its closing quote (`\"` does
/// not close a double-quoted one, `''` is a single-quoted one's quote), or the end of `bytes`
/// when it has none.
fn quoted_end(bytes: &[u8], at: usize, quote: u8) -> usize {
    let mut i = at + 1;
    while let Some(found) = memchr::memchr2(quote, b'\\', &bytes[i..]) {
        let q = i + found;
        match bytes[q] {
            b'\\' if quote == b'"' => i = q + 2,
            b'\\' => i = q + 1,
            _ if quote == b'\'' && bytes.get(q + 1) == Some(&b'\'') => i = q + 2,
            _ => return q + 1,
        }
        if i >= bytes.len() {
            break;
        }
    }
    bytes.len()
}

/// Whether the `&` at `at` opens an anchor (`&pw hunter`), a name glued to it up to a blank,
/// rather than a character reference (`&quot;…`), whose name ends at a `;`.
fn is_anchor(bytes: &[u8], at: usize, end: usize) -> bool {
    let name = bytes[at + 1..end]
        .iter()
        .take_while(|&&b| !matches!(b, b' ' | b'\t'))
        .count();
    name > 0 && !bytes[at + 1..at + 1 + name].contains(&b';')
}

/// The end of the line `at` is on, its `\r\n` or `\n` excluded.
fn line_end(bytes: &[u8], at: usize) -> usize {
    let end = memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
    if end > at && bytes[end - 1] == b'\r' {
        end - 1
    } else {
        end
    }
}

/// A `name` member's value as its text: quotes and a comment after it dropped.
fn name_text(value: &str) -> &str {
    let value = value.trim_end();
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote)
            && let Some(close) = inner.find(quote)
        {
            return &inner[..close];
        }
    }
    value.split(" #").next().unwrap_or(value).trim_end()
}

#[cfg(test)]
mod tests {
    use crate::sanitize::{BodyInput, Redactor};

    fn yaml(text: &str) -> String {
        Redactor::default()
            .redact_body(&BodyInput::new(Some("text/yaml"), text.as_bytes()))
            .unwrap_or_default()
    }

    fn cut(text: &str) -> String {
        let body = BodyInput {
            content_type: Some("application/yaml"),
            content_encoding: None,
            bytes: text.as_bytes(),
            total_len: 70_000,
            truncated: true,
            route: None,
        };
        Redactor::default().redact_body(&body).unwrap_or_default()
    }

    /// A block scalar's lines are its value, whatever its indicators, tag or comments.
    #[test]
    fn block_scalars_go_whole() {
        for (text, expected) in [
            (
                "db:\n  password: |\n    hunter2\n    more\n  user: ann\n",
                "db:\n  password: [REDACTED]\n  user: ann\n",
            ),
            (
                "password: >-\n  hunter2\n  more\nuser: ann",
                "password: [REDACTED]\nuser: ann",
            ),
            (
                "password: |+\n  hunter2\n\nuser: ann",
                "password: [REDACTED]\n\nuser: ann",
            ),
            (
                "password: |2\n    hunter2\nuser: ann",
                "password: [REDACTED]\nuser: ann",
            ),
            (
                "password: >2- # folded\n   hunter2\nuser: ann",
                "password: [REDACTED]\nuser: ann",
            ),
            (
                "token: !!binary |\n  aHVudGVyMg==\nuser: ann",
                "token: [REDACTED]\nuser: ann",
            ),
            (
                "password: |\n  # hunter2\nuser: ann",
                "password: [REDACTED]\nuser: ann",
            ),
            (
                "- password: |\r\n    hunter2\r\n  user: ann\r\n",
                "- password: [REDACTED]\r\n  user: ann\r\n",
            ),
        ] {
            assert_eq!(yaml(text), expected, "{text:?}");
        }
    }

    /// Everything more indented than a sensitive key is its value: a plain scalar, a sequence
    /// (also at the key's own indentation), a nested mapping, blank lines among them.
    #[test]
    fn more_indented_lines_are_the_value() {
        for (text, expected) in [
            (
                "password:\n  hunter2\nuser: ann\n",
                "password:\n  [REDACTED]\nuser: ann\n",
            ),
            ("secret:\n  - hunter2\n", "secret:\n  [REDACTED]\n"),
            ("password:\n  - a\n  - b", "password:\n  [REDACTED]"),
            (
                "password:\n- a\n- b\nuser: ann",
                "password:\n[REDACTED]\nuser: ann",
            ),
            (
                "password:\n  current: a\n  previous:\n    - b\nhost: h",
                "password:\n  [REDACTED]\nhost: h",
            ),
            (
                "- password:\n    hunter2\n- user: ann",
                "- password:\n    [REDACTED]\n- user: ann",
            ),
            (
                "password:\n  a\n\n  b\n\nuser: ann",
                "password:\n  [REDACTED]\n\nuser: ann",
            ),
            (
                "DB Password:\n  hunter2\nuser: ann",
                "DB Password:\n  [REDACTED]\nuser: ann",
            ),
            (
                "\"api_key\":\n  hunter2\nuser: ann",
                "\"api_key\":\n  [REDACTED]\nuser: ann",
            ),
            (
                "password: &pw\n  hunter2\nuser: ann",
                "password: [REDACTED]\nuser: ann",
            ),
            // A sequence item at the key's indentation ends a block scalar.
            (
                "- password: |\n    hunter2\n- user: ann",
                "- password: [REDACTED]\n- user: ann",
            ),
            // No value: the next key stays.
            ("password:\nuser: ann", "password:\nuser: ann"),
            // Tabs indent too, as a stack trace's `\tat …` lines.
            (
                "invalid password:\n\tat foo\nnext",
                "invalid password:\n\t[REDACTED]\nnext",
            ),
        ] {
            assert_eq!(yaml(text), expected, "{text:?}");
        }
        let out = yaml("password: # the db's\n  hunter2\nuser: ann");
        assert!(
            !out.contains("hunter2") && out.ends_with("\nuser: ann"),
            "{out}"
        );
    }

    /// A plain value on its key's line goes to the end of the line, `,` and `;` included; a
    /// JSON-shaped line (its key in double quotes) keeps its closing `,`.
    #[test]
    fn plain_values_run_to_the_end_of_their_line() {
        for (text, expected) in [
            (
                "password: abc,def\nuser: ann",
                "password: [REDACTED]\nuser: ann",
            ),
            (
                "  api_key: a;b c # x\nuser: ann",
                "  api_key: [REDACTED]\nuser: ann",
            ),
            (
                "- name: DB_PASSWORD\n  value: a, b\n",
                "- name: DB_PASSWORD\n  value: [REDACTED]\n",
            ),
            (
                "x {\n  \"pin\": 1234,\n  \"user\": \"ann\"\n}",
                "x {\n  \"pin\": [REDACTED],\n  \"user\": \"ann\"\n}",
            ),
        ] {
            assert_eq!(yaml(text), expected, "{text:?}");
        }
    }

    /// Found by a probe: a text of one line (an error, a JSON string, a YAML body without its
    /// last line break) kept what followed a `,`, `;` or `&` of a sensitive key's plain value,
    /// where the same line with a line break after it lost it all.
    #[test]
    fn a_text_of_one_line_loses_its_key_lines_rest() {
        let r = Redactor::default();
        let body = |ct: &str, text: &str| {
            r.redact_body(&BodyInput::new(Some(ct), text.as_bytes()))
                .unwrap_or_default()
        };
        assert_eq!(
            r.redact_error("password: too short, min 8"),
            "password: [REDACTED]"
        );
        assert_eq!(
            r.redact_error("password: Tr0ub4dor;hunter2XYZ"),
            "password: [REDACTED]"
        );
        assert_eq!(
            body("application/yaml", "password: Tr0ub4dor, hunter2XYZ"),
            "password: [REDACTED]"
        );
        assert_eq!(
            body("text/plain", "api_key: abc&hunter2XYZ"),
            "api_key: [REDACTED]"
        );
        assert_eq!(
            body(
                "application/json",
                r#"{"msg":"DB_PASSWORD: Tr0ub4dor;hunter2XYZ"}"#
            ),
            r#"{"msg":"DB_PASSWORD: [REDACTED]"}"#
        );
        // A key that is not one, or not at the line's start, keeps the pair rules' reading.
        assert_eq!(
            r.redact_error("error: password: too short, min 8"),
            "error: password: [REDACTED], min 8"
        );
        assert_eq!(
            r.redact_error("user: ann, role: admin"),
            "user: ann, role: admin"
        );
    }

    /// In a YAML body a plain scalar runs on over the lines indented more than its key, as
    /// YAML folds them into it (`password: hunter\n  2more` is `hunter 2more`), blank lines and
    /// comments among them; a line at the key's indentation or less ends it.
    #[test]
    fn plain_scalars_run_on_in_yaml_bodies() {
        for (text, expected) in [
            (
                "password: hunter\n  2more\nuser: ann",
                "password: [REDACTED]\nuser: ann",
            ),
            (
                "db:\n  password: hunter\n    2more\n\n    3more\n  user: ann\n",
                "db:\n  password: [REDACTED]\n  user: ann\n",
            ),
            (
                "password: hunter\n  # a comment\n  2more\nuser: ann",
                "password: [REDACTED]\nuser: ann",
            ),
            (
                "- password: hunter\r\n    2more\r\n- user: ann\r\n",
                "- password: [REDACTED]\r\n- user: ann\r\n",
            ),
            (
                "- name: DB_PASSWORD\n  value: hunter\n    2more\n  other: x",
                "- name: DB_PASSWORD\n  value: [REDACTED]\n  other: x",
            ),
            (
                "- value: hunter\n    2more\n  name: api_key\n",
                "- value: [REDACTED]\n  name: api_key\n",
            ),
            // Not more indented than the key: the next key, a sequence's next item.
            (
                "password: hunter2\nuser: ann",
                "password: [REDACTED]\nuser: ann",
            ),
            (
                "- password: hunter2\n  user: ann",
                "- password: [REDACTED]\n  user: ann",
            ),
            ("token: a\n- b", "token: [REDACTED]\n- b"),
            // A JSON-shaped line keeps its closing `,` when nothing runs on.
            (
                "x:\n  \"pin\": 1234,\n  \"user\": \"ann\"",
                "x:\n  \"pin\": [REDACTED],\n  \"user\": \"ann\"",
            ),
        ] {
            assert_eq!(yaml(text), expected, "{text:?}");
        }
        let out = cut("db:\n  password: hunter\n    2more\n    3mo");
        assert!(!out.contains("more"), "{out}");
    }

    /// Found by review: in a YAML body a flow mapping written over lines kept a sensitive
    /// key's value when it did not end on its key's line: on the next line
    /// (`{user: b, password:⏎    hunter2}`), a plain scalar folded over lines
    /// (`{password: hunter⏎  2more, …}`) or a quoted one (`{password: "a,⏎  b", …}`). A flow
    /// mapping's value runs to its `,` or closer, over lines indented more than its opener's.
    #[test]
    fn flow_mappings_over_lines() {
        for (text, expected) in [
            (
                "db: {user: b, password:\n    hunter2}\nport: 1",
                "db: {user: b, password:\n    [REDACTED]}\nport: 1",
            ),
            (
                "{password:\n  hunter2, user: b}",
                "{password:\n  [REDACTED], user: b}",
            ),
            (
                "db: {password: hunter\n    2more, user: c}",
                "db: {password: [REDACTED], user: c}",
            ),
            (
                "db: {password: \"a,\n  b\", user: c}",
                "db: {password: [REDACTED], user: c}",
            ),
            (
                "- {name: ann, api_key:\n\n     # the key\n     'k-1', other: [x,\n   y]}",
                "- {name: ann, api_key:\n\n     # the key\n     [REDACTED], other: [x,\n   y]}",
            ),
            (
                "x: [{a: 1}, {secret: {k: v,\n  w: z}}]\n",
                "x: [{a: 1}, {secret: [REDACTED]}]\n",
            ),
            // On its key's line, as before.
            (
                "{password: a,\n  user: b}",
                "{password: [REDACTED],\n  user: b}",
            ),
        ] {
            assert_eq!(yaml(text), expected, "{text:?}");
        }
        // Other keys' values, braces inside scalars and templates, and a line indented no
        // more than the opener's (the flow was never closed) stay.
        for plain in [
            "db: {user: ann,\n  port: 5432}",
            "note: see {x} and {y,\n  z}\nuser: ann",
            "tpl: \"{{ .Values.password }}\"\nuser: '{a'\nb: {{ token }}",
        ] {
            assert_eq!(yaml(plain), plain, "{plain:?}");
        }
        assert_eq!(
            yaml("a: {b: 1\ntoken: abc\nuser: ann\n"),
            "a: {b: 1\ntoken: [REDACTED]\nuser: ann\n"
        );
        let unclosed = "a: {password:\nuser: ann\n";
        assert_eq!(yaml(unclosed), unclosed);
    }

    /// Found by review: a plain value after an anchor (`password: &pw hunter`) was left to the
    /// pair rules, as a character reference is (`&quot;…`), so its more indented lines were
    /// stored.
    #[test]
    fn anchored_plain_scalars_run_on_in_yaml_bodies() {
        for (text, expected) in [
            (
                "password: &pw hunter\n  2more\nuser: ann",
                "password: [REDACTED]\nuser: ann",
            ),
            (
                "db:\n  password: &pw !!str hunter\r\n    2more\r\n  user: ann",
                "db:\n  password: [REDACTED]\r\n  user: ann",
            ),
            // A character reference is no anchor.
            (
                "password: &quot;hunter2&quot;\nuser: ann",
                "password: [REDACTED]\nuser: ann",
            ),
        ] {
            assert_eq!(yaml(text), expected, "{text:?}");
        }
    }

    /// Prose is no YAML: a plain value's more indented lines stay in a text body and an error
    /// (`token: expired\n  at 10:00`).
    #[test]
    fn plain_values_keep_their_lines_in_prose() {
        let text = "token: expired\n  at 10:00\nuser: ann";
        let expected = "token: [REDACTED]\n  at 10:00\nuser: ann";
        let out = Redactor::default()
            .redact_body(&BodyInput::new(Some("text/plain"), text.as_bytes()))
            .unwrap_or_default();
        assert_eq!(out, expected);
        assert_eq!(Redactor::default().redact_error(text), expected);
    }

    /// YAML in a JSON string is read as YAML is, up to the cut when the body was cut inside the
    /// string: a `value` still waiting for its mapping's name goes then, as in a cut YAML body.
    #[test]
    fn yaml_in_json_strings() {
        let json = |text: &str, truncated: bool| {
            let body = BodyInput {
                truncated,
                ..BodyInput::new(Some("application/json"), text.as_bytes())
            };
            Redactor::default().redact_body(&body).unwrap_or_default()
        };
        assert_eq!(
            json(r#"{"config":"password: |\n  hunter2\nuser: ann"}"#, false),
            r#"{"config":"password: [REDACTED]\nuser: ann"}"#
        );
        assert_eq!(
            json(r#"{"config":"- value: keep\n  other: x\n"}"#, false),
            r#"{"config":"- value: keep\n  other: x\n"}"#
        );
        for text in [
            r#"{"config":"db:\n  password: |\n    hunter2\n    hunter3"#,
            r#"{"config":"- value: hunter2\n  other: x\n  na"#,
            r#"{"config":"- value: |\n    hunter2\n  other: x\n  na"#,
            r#"{"a":{"config":"- value: hunter2\n  na"#,
        ] {
            let out = json(text, true);
            assert!(!out.contains("hunter"), "{text}: {out}");
            assert!(out.starts_with(&text[..8]), "{text}: {out}");
        }
    }

    /// A quoted scalar runs on to its closing quote, whatever the indentation of its lines.
    #[test]
    fn quoted_scalars_run_to_their_closing_quote() {
        for (text, expected) in [
            (
                "password: \"multi\n  line\"\nuser: ann",
                "password: [REDACTED]\nuser: ann",
            ),
            (
                "password: \"multi\nline\"\nuser: ann",
                "password: [REDACTED]\nuser: ann",
            ),
            (
                "password: 'it''s\n  multi'\nuser: ann",
                "password: [REDACTED]\nuser: ann",
            ),
            (
                "password: \"a \\\"b\n  c\\\"d\"\nuser: ann",
                "password: [REDACTED]\nuser: ann",
            ),
            (
                "password:\n  \"multi\nline\"\nuser: ann",
                "password:\n  [REDACTED]\nuser: ann",
            ),
            // Unclosed: to the end.
            ("password: 'multi\nuser: ann", "password: [REDACTED]"),
        ] {
            assert_eq!(yaml(text), expected, "{text:?}");
        }
    }

    /// A `value` member goes when its mapping's `name` member holds a sensitive key, in either
    /// order, any case, as the JSON rule reads `{"name":…,"value":…}`.
    #[test]
    fn values_named_by_a_sibling_name() {
        for (text, expected) in [
            (
                "env:\n- name: DB_PASSWORD\n  value: hunter2\n- name: PORT\n  value: \"80\"\n",
                "env:\n- name: DB_PASSWORD\n  value: [REDACTED]\n- name: PORT\n  value: \"80\"\n",
            ),
            (
                "- value: hunter2\n  name: DB_PASSWORD\n- value: x\n  name: PORT",
                "- value: [REDACTED]\n  name: DB_PASSWORD\n- value: x\n  name: PORT",
            ),
            (
                "        env:\n        - name: \"API_TOKEN\" # the token\n          value: \"hunter2\"\n        - name: DB_PASSWORD\n          valueFrom:\n            secretKeyRef:\n              name: db\n              key: password\n",
                "        env:\n        - name: \"API_TOKEN\" # the token\n          value: [REDACTED]\n        - name: DB_PASSWORD\n          valueFrom:\n            secretKeyRef:\n              name: db\n              key: password\n",
            ),
            (
                "- name: DB_PASSWORD\n  value: |\n    hunter2\n    more\n- name: X",
                "- name: DB_PASSWORD\n  value: [REDACTED]\n- name: X",
            ),
            (
                "- value: 'multi\n    line'\n  name: api_key\n",
                "- value: [REDACTED]\n  name: api_key\n",
            ),
            (
                "- Name: db_password\n  VALUE: hunter2",
                "- Name: db_password\n  VALUE: [REDACTED]",
            ),
            (
                "Parameters:\n  - ParameterKey: DbPassword\n    ParameterValue: hunter2\n",
                "Parameters:\n  - ParameterKey: DbPassword\n    ParameterValue: [REDACTED]\n",
            ),
            // Named plainly, in another item, or never: kept.
            ("- name: Ann\n  value: 3", "- name: Ann\n  value: 3"),
            (
                "- name: DB_PASSWORD\n- value: keep",
                "- name: DB_PASSWORD\n- value: keep",
            ),
            ("- value: keep\n  other: x\n", "- value: keep\n  other: x\n"),
        ] {
            assert_eq!(yaml(text), expected, "{text:?}");
        }
    }

    /// Only a line shaped like a key that opens a block runs on: prose keeps its lines, a
    /// sensitive key ending an error's line loses the indented lines after it.
    #[test]
    fn prose_keeps_its_lines() {
        for (text, expected) in [
            (
                "note: see below\n  indented line",
                "note: see below\n  indented line",
            ),
            (
                "password: too short\n  at validate (x.js:1)",
                "password: [REDACTED]\n  at validate (x.js:1)",
            ),
            (
                "error: password:\n  at foo\nnext",
                "error: password:\n  at foo\nnext",
            ),
            (
                "invalid password:\n  at foo\nnext",
                "invalid password:\n  [REDACTED]\nnext",
            ),
            (
                "the request was refused because of an invalid, expired or revoked password:\n  at foo",
                "the request was refused because of an invalid, expired or revoked password:\n  at foo",
            ),
            ("Caused by: token:\n  at foo", "Caused by: token:\n  at foo"),
            (
                "<pre>password:\n  at foo</pre>",
                "<pre>password:\n  at foo</pre>",
            ),
            (
                "password: &quot;a&quot;, user: ann\nnext",
                "password: [REDACTED], user: ann\nnext",
            ),
        ] {
            let out = Redactor::default().redact_error(text);
            assert_eq!(out, expected, "{text:?}");
        }
    }

    /// A body cut inside a block is redacted to the cut, and a value still waiting for its
    /// name goes.
    #[test]
    fn cut_bodies_fail_closed() {
        let out = cut("db:\n  password: |\n    hunter2\n    more hunter3");
        assert!(out.starts_with("db:\n  password:"), "{out}");
        assert!(!out.contains("hunter"), "{out}");
        let out = cut("- value: hunter2\n  other: x\n  na");
        assert!(!out.contains("hunter2"), "{out}");
        assert_eq!(
            yaml("- value: hunter2\n  other: x\n"),
            "- value: hunter2\n  other: x\n"
        );
    }

    /// YAML media types are text, so the rules above apply to them.
    #[test]
    fn yaml_media_types_are_text() {
        for content_type in [
            "application/yaml",
            "application/x-yaml",
            "application/vnd.oai.openapi+yaml; charset=utf-8",
        ] {
            let out = Redactor::default()
                .redact_body(&BodyInput::new(
                    Some(content_type),
                    b"password:\n  hunter2\nuser: ann",
                ))
                .unwrap_or_default();
            assert_eq!(out, "password:\n  [REDACTED]\nuser: ann", "{content_type}");
        }
    }

    /// Hostile YAML stays linear: each line is read once, a key's look is bounded, a quoted
    /// scalar's lines are skipped past. The bound is loose so that only a quadratic scan can
    /// miss it.
    #[test]
    fn hostile_yaml_stays_linear() {
        let deep: String = (0..700).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
        let long_line = format!("password:\n  {}\n", "a: ".repeat(80_000));
        let long_key = format!("{}:\n", "a".repeat(256 << 10));
        for body in [
            deep,
            long_line,
            long_key,
            "- name: PASSWORD\n".repeat(16_000),
            "- value: x\n".repeat(24_000),
            "- value: |\n".repeat(24_000),
            "password: |\n".repeat(20_000),
            "  password:\n - a\n".repeat(14_000),
            "password: \"a\n".repeat(20_000),
            format!("password: '{}", "''\n".repeat(80_000)),
            "- - - - - - - - - - - - - - - - name: x\n".repeat(6_000),
            "&a !b &c !d |".repeat(20_000),
            "- password: a\n    token: b\n      c\n".repeat(12_000),
            (0..700)
                .map(|i| format!("{}password: a\n", " ".repeat(i)))
                .collect(),
            // Flow mappings: nested, unclosed, one a line, a long line of them.
            "{password: [{".repeat(20_000),
            "a: {password:\n".repeat(20_000),
            "- {token: a\n  b, c: {d: '\n".repeat(10_000),
            format!("x: {}\n", "a: {b: {".repeat(30_000)),
            format!("{}{}", " ".repeat(100_000), ": {a".repeat(30_000)),
        ] {
            let text = format!("password:\n  SECRET\n{body}");
            let started = std::time::Instant::now();
            let out = yaml(&text);
            let took = started.elapsed();
            assert!(took.as_secs() < 10, "{:?}: {took:?}", &body[..20]);
            assert!(!out.contains("SECRET"), "{:?}", &body[..20]);
        }
    }
    /// Found by a probe on 2026-12-07: a Kubernetes `Secret` written as YAML kept the values
    /// of its `data` and `stringData` that no sensitive key names. They go now, whatever
    /// their keys, its `kind` before them or after (as `kubectl get -o yaml` sorts keys), also
    /// in a `List`'s items and in a document after another.
    #[test]
    fn a_kubernetes_secrets_data_goes() {
        for (text, expected) in [
            (
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\ndata:\n  username: YWRtaW4=\n  tls.key: LS0tLS1CRUdJTg==\nstringData:\n  config.yaml: |\n    url: postgres://x\n    mode: fast\n  note: \"plain text\"\n",
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\ndata:\n  username: [REDACTED]\n  tls.key: [REDACTED]\nstringData:\n  config.yaml: [REDACTED]\n  note: [REDACTED]\n",
            ),
            (
                "apiVersion: v1\ndata:\n  DATABASE_URL: cG9zdGdyZXM=\n  username: YWRtaW4=\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\ntype: Opaque\n",
                "apiVersion: v1\ndata:\n  DATABASE_URL: [REDACTED]\n  username: [REDACTED]\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\ntype: Opaque\n",
            ),
            (
                "apiVersion: v1\nitems:\n- apiVersion: v1\n  data:\n    ca.crt: LS0tQ1JU\n  kind: Secret\n  metadata:\n    name: a\n- data:\n    mode: fast\n  kind: ConfigMap\nkind: List\n",
                "apiVersion: v1\nitems:\n- apiVersion: v1\n  data:\n    ca.crt: [REDACTED]\n  kind: Secret\n  metadata:\n    name: a\n- data:\n    mode: fast\n  kind: ConfigMap\nkind: List\n",
            ),
            (
                "kind: ConfigMap\ndata:\n  mode: fast\n---\ndata:\n  user: YW5u\nkind: \"Secret\" # db\n",
                "kind: ConfigMap\ndata:\n  mode: fast\n---\ndata:\n  user: [REDACTED]\nkind: \"Secret\" # db\n",
            ),
            (
                "kind: Secret\ndata: {user: YW5u, host: ZGI=}\n",
                "kind: Secret\ndata: [REDACTED]\n",
            ),
        ] {
            assert_eq!(yaml(text), expected, "{text:?}");
        }
        // In a text body and a JSON string too.
        let r = Redactor::default();
        let text = "applying:\nkind: Secret\ndata:\n  user: YW5u\n";
        assert_eq!(
            r.redact_body(&BodyInput::new(Some("text/plain"), text.as_bytes()))
                .as_deref(),
            Some("applying:\nkind: Secret\ndata:\n  user: [REDACTED]\n")
        );
        let json = br#"{"manifest":"kind: Secret\ndata:\n  user: YW5u\n"}"#;
        assert_eq!(
            r.redact_body(&BodyInput::new(Some("application/json"), json))
                .as_deref(),
            Some(r#"{"manifest":"kind: Secret\ndata:\n  user: [REDACTED]\n"}"#)
        );
        // Cut before its `kind`: the data waiting goes.
        assert_eq!(
            cut("apiVersion: v1\ndata:\n  user: YW5u\n  host: ZGI=\n"),
            "apiVersion: v1\ndata:\n  user: [REDACTED]\n  host: [REDACTED]\n …[truncated, 70000 bytes total]"
        );
    }

    /// Another kind's `data`, a `data` that is no `Secret`'s own (under its `metadata`), and
    /// a `kind` that only starts with `Secret` stay.
    #[test]
    fn other_kinds_data_stays() {
        for text in [
            "kind: ConfigMap\ndata:\n  mode: fast\n  user: ann\n",
            "data:\n  mode: fast\nkind: ConfigMap\n",
            "kind: Deployment\nspec:\n  template:\n    data:\n      x: y\n",
            "kind: Secret\nmetadata:\n  data:\n    x: y\n  labels:\n    app: db\n",
            "kind: Secretive\ndata:\n  x: y\n",
            "kind: SealedSecret\nspec:\n  encryptedData:\n    x: AgBy\n",
            "data:\n  x: y\n",
        ] {
            assert_eq!(yaml(text), text, "{text:?}");
        }
    }

    /// Found by a probe on 2026-12-07: the JSON of a YAML `Secret`'s
    /// `last-applied-configuration` annotation, which kubectl writes with the whole manifest,
    /// kept the values of its `data`.
    #[test]
    fn a_secrets_last_applied_configuration_loses_its_data() {
        let annotation = r#"{"apiVersion":"v1","data":{"db_url":"cG9zdGdyZXM6Ly9hOmJAZGI="},"kind":"Secret","metadata":{"annotations":{},"name":"db"},"stringData":{"note":"plain"},"type":"Opaque"}"#;
        let text = format!(
            "apiVersion: v1\ndata:\n  db_url: cG9zdGdyZXM6Ly9hOmJAZGI=\nkind: Secret\nmetadata:\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: |\n      {annotation}\n  name: db\ntype: Opaque\n"
        );
        let expected = "apiVersion: v1\ndata:\n  db_url: [REDACTED]\nkind: Secret\nmetadata:\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: |\n      {\"apiVersion\":\"v1\",\"data\":{\"db_url\":\"[REDACTED]\"},\"kind\":\"Secret\",\"metadata\":{\"annotations\":{},\"name\":\"db\"},\"stringData\":{\"note\":\"[REDACTED]\"},\"type\":\"Opaque\"}\n  name: db\ntype: Opaque\n";
        assert_eq!(yaml(&text), expected);
        // A manifest quoted in a log line too.
        let r = Redactor::default();
        assert_eq!(
            r.redact_error(&format!("applied {annotation} to prod")),
            "applied {\"apiVersion\":\"v1\",\"data\":{\"db_url\":\"[REDACTED]\"},\"kind\":\"Secret\",\"metadata\":{\"annotations\":{},\"name\":\"db\"},\"stringData\":{\"note\":\"[REDACTED]\"},\"type\":\"Opaque\"} to prod"
        );
    }

    /// Another kind's annotation, and a `Secret` named only in a string of another kind,
    /// stay.
    #[test]
    fn other_kinds_last_applied_configuration_stays() {
        for text in [
            "kind: ConfigMap\nmetadata:\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: |\n      {\"apiVersion\":\"v1\",\"data\":{\"mode\":\"fast\"},\"kind\":\"ConfigMap\"}\n",
            "log: {\"data\":{\"mode\":\"fast\"},\"kind\":\"ConfigMap\",\"note\":\"Secret\"}\n",
        ] {
            assert_eq!(yaml(text), text, "{text:?}");
        }
    }
}
