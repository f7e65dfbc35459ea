//! Tables whose header names a sensitive column: CSV and TSV (`text/csv` bodies, an export
//! pasted into text), Markdown tables and the result tables of the `psql` and `mysql` clients.
//! The header names the column once; the secrets are the cells below it, which no key stands
//! beside.
//!
//! A CSV or TSV header is read only on the text's first line, and only when every cell of it
//! is a name (`user,password,role`), so prose with commas is no header. A Markdown table's
//! header is the line before its `|---|` line, wherever it is, and so is a `psql` table's
//! before its `----+----` line and a `mysql` table's between its `+----+----+` borders.
//!
//! A cell replaced loses its padding too (`| [REDACTED] |`), which would tell its length;
//! the column's width, which the header's padding and the border show, still tells the
//! longest cell's when it is longer than the header's name.

use super::keys::KeyRules;

/// The longest header line read, and the most columns: a header is a short line.
const LONGEST_HEADER: usize = 4096;

/// The spans of the cells of `text`'s tables that sit in a sensitive column, in order, apart.
pub(super) fn table_values(
    text: &str,
    keys: &KeyRules,
    keybuf: &mut String,
) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    csv_values(text, keys, keybuf, &mut spans);
    if memchr::memchr(b'|', text.as_bytes()).is_some()
        && memchr::memmem::find(text.as_bytes(), b"--").is_some()
    {
        markdown_values(text, keys, keybuf, &mut spans);
    }
    spans.sort_unstable();
    spans
}

/// Whether `cell` may name a column: a short word of a key's characters, or up to three such
/// words set apart by single spaces, as spreadsheets and consoles name them (`User name`,
/// `Secret access key`). Four words or more are prose.
fn is_column_name(cell: &str) -> bool {
    let bytes = cell.as_bytes();
    if !(1..=64).contains(&bytes.len()) || bytes[0] == b' ' || bytes[bytes.len() - 1] == b' ' {
        return false;
    }
    // One pass: a header is read on every text with a delimiter on its first line.
    let mut spaces = 0;
    let mut after_space = false;
    for &b in bytes {
        if b == b' ' {
            if after_space {
                return false;
            }
            spaces += 1;
            after_space = true;
        } else if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.') {
            after_space = false;
        } else {
            return false;
        }
    }
    spaces <= 2
}

/// The sensitive columns of a CSV or TSV header on `text`'s first line, then the cells below
/// them, field by field (a quoted field may hold the delimiter, `""` and line breaks).
fn csv_values(text: &str, keys: &KeyRules, keybuf: &mut String, spans: &mut Vec<(usize, usize)>) {
    let bytes = text.as_bytes();
    let line_end = memchr::memchr(b'\n', &bytes[..bytes.len().min(LONGEST_HEADER + 1)]);
    let Some(line_end) = line_end else {
        return;
    };
    let header = &bytes[..line_end];
    let delimiter = if memchr::memchr(b'\t', header).is_some() {
        b'\t'
    } else if memchr::memchr(b',', header).is_some() {
        b','
    } else if memchr::memchr(b';', header).is_some() {
        b';'
    } else {
        return;
    };
    let mut sensitive = Vec::new();
    let mut column = 0;
    let mut named = 0;
    let mut at = 0;
    let mut all_names = true;
    while at <= line_end {
        let (cell, next) = field(bytes, at, line_end, delimiter);
        // The byte order mark Excel writes first, and empty cells: a data frame's index
        // column (`,user,password`), a delimiter ending the line.
        let cell = &text[cell.0..cell.1];
        let name = cell
            .strip_prefix('\u{feff}')
            .unwrap_or(cell)
            .trim_matches([' ', '\r']);
        if !name.is_empty() {
            if !is_column_name(name) {
                all_names = false;
                break;
            }
            if keys.is_sensitive(name, keybuf) {
                sensitive.push(column);
            }
            named += 1;
        }
        column += 1;
        at = next;
    }
    if !all_names || named < 2 || sensitive.is_empty() {
        return;
    }
    // The rows: fields in order, a line break outside quotes ending a row.
    let mut at = line_end + 1;
    let mut column = 0;
    while at < bytes.len() {
        let row_end = bytes.len();
        let (cell, next) = field(bytes, at, row_end, delimiter);
        if sensitive.contains(&column) {
            let (start, mut end) = cell;
            if end > start && bytes[end - 1] == b'\r' {
                end -= 1;
            }
            if end > start {
                spans.push((start, end));
            }
        }
        column += 1;
        // `field` stops at the delimiter or the line's end.
        if next > 0 && bytes.get(next - 1) == Some(&b'\n') {
            column = 0;
        }
        at = next;
    }
}

/// The field that starts at `at`, before `end`: its span (inside its quotes when quoted) and
/// where the next field starts (past its delimiter, or past the line break that ends the row).
fn field(bytes: &[u8], at: usize, end: usize, delimiter: u8) -> ((usize, usize), usize) {
    if bytes.get(at) == Some(&b'"') {
        let mut i = at + 1;
        while i < end {
            if bytes[i] == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                break;
            }
            i += 1;
        }
        let close = i.min(end);
        // Past the closing quote, to the delimiter or the line's end.
        let mut next = (close + 1).min(end);
        while next < end && bytes[next] != delimiter && bytes[next] != b'\n' {
            next += 1;
        }
        return ((at + 1, close), next + 1);
    }
    let mut i = at;
    while i < end && bytes[i] != delimiter && bytes[i] != b'\n' {
        i += 1;
    }
    ((at, i), i + 1)
}

/// The cells below a Markdown table's sensitive columns: a `|` line, then a line of `-`
/// (`|---|:--:|`), then the `|` lines after it. A `psql` or `mysql` client's result table is
/// read so too, its rule a border of `-` and `+` (`----+----`, and `mysql`'s `+----+----+`
/// over its header too); a border after its rows ends it.
fn markdown_values(
    text: &str,
    keys: &KeyRules,
    keybuf: &mut String,
    spans: &mut Vec<(usize, usize)>,
) {
    let mut sensitive: Vec<usize> = Vec::new();
    // The line before, when it may be a header: its cells' sensitivity.
    let mut header: Option<Vec<usize>> = None;
    let mut in_table = false;
    // Whether the header line, and so the rows of a client's table, start with a `|`: in one
    // that does not (`psql`'s) a row that starts with `|` starts with an empty cell (the line
    // of a cell wrapped over lines). A Markdown row may have its outer pipes or not whatever
    // its header has.
    let mut header_outer = false;
    let mut outer = false;
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let line_start = start;
        start += line.len();
        let trimmed = line.trim();
        let border = is_border(trimmed);
        // GitHub's tables may leave out the outer pipes (`user | password`).
        if border || !trimmed.contains('|') {
            in_table = false;
            if border && let Some(columns) = header.take() {
                sensitive = columns;
                in_table = !sensitive.is_empty();
                outer = header_outer;
            }
            header = None;
            continue;
        }
        if in_table {
            for (column, cell) in cells(line, outer).enumerate() {
                if sensitive.contains(&column) && cell.1 > cell.0 {
                    let (cell_start, cell_end) = padded(line.as_bytes(), cell);
                    spans.push((line_start + cell_start, line_start + cell_end));
                }
            }
            continue;
        }
        let is_rule = trimmed
            .bytes()
            .all(|b| matches!(b, b'|' | b'-' | b':' | b' ' | b'\t'))
            && trimmed.contains("---");
        if is_rule && let Some(columns) = header.take() {
            sensitive = columns;
            in_table = !sensitive.is_empty();
            outer = true;
            continue;
        }
        header_outer = trimmed.starts_with('|');
        header = (line.len() <= LONGEST_HEADER).then(|| {
            cells(line, header_outer)
                .enumerate()
                .filter(|&(_, (s, e))| {
                    let name = &line[s..e];
                    is_column_name(&name.replace(' ', "_")) && keys.is_sensitive(name, keybuf)
                })
                .map(|(column, _)| column)
                .collect()
        });
    }
}

/// Whether `line`, trimmed, is a `psql` or `mysql` table's border: runs of `-` joined by `+`,
/// with a `+` at both ends (`+----+-----+`) or at neither (`----+-----`), a run of three `-`
/// among them.
fn is_border(line: &str) -> bool {
    let inner = line
        .strip_prefix('+')
        .and_then(|inner| inner.strip_suffix('+'));
    let joined = inner.unwrap_or(line);
    (inner.is_some() || !line.starts_with('+') && !line.ends_with('+'))
        && (inner.is_some() || joined.contains('+'))
        && joined.contains("---")
        && !joined.contains("++")
        && joined.bytes().all(|b| matches!(b, b'-' | b'+'))
}

/// A cell's span (trimmed) widened over its padding, but for the one blank a table sets
/// between a cell and each of its `|`: the padding to the column's width a client sets
/// (`| hunter2  |`, a number's before it, `|   1234 |`) would tell the length of what the
/// cell's replacement stands for.
fn padded(line: &[u8], (start, end): (usize, usize)) -> (usize, usize) {
    let blank = |at: usize| matches!(line.get(at), Some(b' ' | b'\t'));
    let mut start = start;
    while start > 1 && blank(start - 1) && blank(start - 2) {
        start -= 1;
    }
    let mut end = end;
    while blank(end) && blank(end + 1) {
        end += 1;
    }
    (start, end)
}

/// The spans of a Markdown table line's cells, trimmed, in the line (`\|` is inside a cell).
/// The outer pipes may be left out: the line's start and end then bound its first and last
/// cells, and unless `outer` (the table is written with them) a `|` that starts the line
/// follows an empty first cell.
fn cells(line: &str, outer: bool) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bytes = line.as_bytes();
    let content = line.len() - line.trim_start().len();
    let end = line.trim_end().len();
    let mut at = if outer && bytes.get(content) == Some(&b'|') {
        content + 1
    } else {
        content
    };
    let mut done = false;
    std::iter::from_fn(move || {
        if done || at > end {
            return None;
        }
        let start = at;
        let mut i = at;
        while i < end && bytes[i] != b'|' {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        let i = i.min(end);
        if i == end {
            // The last cell, closed by the line's end: none after a closing `|`.
            done = true;
            if start >= end {
                return None;
            }
        }
        at = i + 1;
        let cell = &line[start..i];
        let lead = cell.len() - cell.trim_start().len();
        let trimmed = cell.trim();
        Some((start + lead, start + lead + trimmed.len()))
    })
}

#[cfg(test)]
mod tests {
    use super::super::{BodyInput, Redactor};

    fn body(ct: &str, body: &str) -> String {
        let input = BodyInput::new(Some(ct), body.as_bytes());
        Redactor::default().redact_body(&input).unwrap_or_default()
    }

    /// Found by a probe: the cells under a `password` column of a CSV body, a TSV or a
    /// Markdown table were stored as they came.
    #[test]
    fn cells_of_a_sensitive_column() {
        let cases = [
            (
                "text/csv",
                "username,password,email\nann,hunter2,a@b\nbob,,b@c\n",
                "username,password,email\nann,[REDACTED],a@b\nbob,,b@c\n",
            ),
            (
                "text/csv",
                "\"username\",\"password\"\r\n\"ann\",\"hun,\"\"ter2\"\r\n\"bob\",\"x\"",
                "\"username\",\"password\"\r\n\"ann\",\"[REDACTED]\"\r\n\"bob\",\"[REDACTED]\"",
            ),
            // A quoted cell over lines.
            (
                "text/csv",
                "id,api_key\n1,\"ab\ncd\"\n2,ef\n",
                "id,api_key\n1,\"[REDACTED]\"\n2,[REDACTED]\n",
            ),
            (
                "text/tab-separated-values",
                "user\tpassword\trole\nann\thunter2\tadmin\n",
                "user\tpassword\trole\nann\t[REDACTED]\tadmin\n",
            ),
            // Found by a probe: a header with a byte order mark, names of words, an empty
            // cell or a delimiter at its end was no header, and its passwords stayed.
            (
                "text/csv",
                "\u{feff}user,password\r\nann,hunter2\r\n",
                "\u{feff}user,password\r\nann,[REDACTED]\r\n",
            ),
            (
                "text/csv",
                "User name,Password,Access key ID,Console login link\nann,hunter2,AK,https://x\n",
                "User name,Password,Access key ID,Console login link\nann,[REDACTED],AK,https://x\n",
            ),
            (
                "text/csv",
                ",user,password\n0,ann,hunter2\n1,bob,x\n",
                ",user,password\n0,ann,[REDACTED]\n1,bob,[REDACTED]\n",
            ),
            (
                "text/csv",
                "id,password,\n1,hunter2,\n",
                "id,password,\n1,[REDACTED],\n",
            ),
            (
                "text/tab-separated-values",
                "Client ID\tClient Secret\nabc\thunter2\n",
                "Client ID\tClient Secret\nabc\t[REDACTED]\n",
            ),
            // Found by a probe: without its outer pipes, a table's passwords stayed.
            (
                "text/markdown",
                "user | password\n--- | ---\nann | hunter2\nbob | x\n| cy | z |\n\nend",
                "user | password\n--- | ---\nann | [REDACTED]\nbob | [REDACTED]\n| cy | [REDACTED] |\n\nend",
            ),
            (
                "text/plain",
                "users:\n\n| user | password |\n|---|---|\n| ann | hunter2 |\n| bob | x y |\n\nend",
                "users:\n\n| user | password |\n|---|---|\n| ann | [REDACTED] |\n| bob | [REDACTED] |\n\nend",
            ),
        ];
        for (ct, input, want) in cases {
            assert_eq!(body(ct, input), want, "{input}");
        }
    }

    /// A first line that is no header of names, a table without a sensitive column, and a
    /// `|` line without its rule stay.
    #[test]
    fn tables_without_a_sensitive_column_stay() {
        for (ct, input) in [
            ("text/csv", "username,email\nann,a@b\n"),
            // One name is no header; four words are prose.
            ("text/csv", ",password,\nann,x\n"),
            ("text/plain", "Note, the password was reset\nann,x\n"),
            (
                "text/plain",
                "Hi, your password was reset, thanks\nann,x,y\n",
            ),
            ("text/plain", "| user | role |\n|---|---|\n| ann | admin |"),
            ("text/plain", "| password | x |\n| ann | y |"),
        ] {
            assert_eq!(body(ct, input), input, "{input}");
        }
    }
    /// Found by a probe on 2026-12-07: the result tables the `psql` and `mysql` clients print,
    /// logged as text, kept the cells under a sensitive column.
    #[test]
    fn cells_of_a_client_result_table() {
        let cases = [
            (
                " id | email | password_hash\n----+-------+--------------\n  1 | a@b.c | $2b$12$abc\n  2 | d@e.f | $2b$12$def\n(2 rows)\n\nnext",
                " id | email | password_hash\n----+-------+--------------\n  1 | a@b.c | [REDACTED]\n  2 | d@e.f | [REDACTED]\n(2 rows)\n\nnext",
            ),
            (
                "+----+----------+-------+\n| id | password | role  |\n+----+----------+-------+\n|  1 | hunter2  | admin |\n|  2 | a b      | user  |\n+----+----------+-------+\n2 rows in set (0.00 sec)\n",
                "+----+----------+-------+\n| id | password | role  |\n+----+----------+-------+\n|  1 | [REDACTED] | admin |\n|  2 | [REDACTED] | user  |\n+----+----------+-------+\n2 rows in set (0.00 sec)\n",
            ),
            // A `psql` prompt and query before it, a cell wrapped over lines.
            (
                "app=> select id, api_key from keys;\r\n id |  api_key\r\n----+-----------\r\n  1 | abc      +\r\n    | def\r\n(1 row)\r\n",
                "app=> select id, api_key from keys;\r\n id |  api_key\r\n----+-----------\r\n  1 | [REDACTED]\r\n    | [REDACTED]\r\n(1 row)\r\n",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(body("text/plain", input), want, "{input}");
        }
    }

    /// A client's table without a sensitive column, a border before no header, and the rows
    /// after a table's closing border stay.
    #[test]
    fn client_tables_without_a_sensitive_column_stay() {
        for input in [
            " id | email\n----+------\n  1 | a@b.c\n(1 row)\n",
            "+----+-------+\n| id | email |\n+----+-------+\n|  1 | a@b.c |\n+----+-------+\n",
            "+----+\n| 1 | hunter2 |\n",
            "+----+----------+\n| id | password |\n+----+----------+\n+----+----------+\n| 1 | hunter2 |\n",
            "a | password\n+---\nb | x\n",
            "a | password\n---+\nb | x\n",
            "a | password\n--++--\nb | x\n",
        ] {
            assert_eq!(body("text/plain", input), input, "{input}");
        }
    }

    /// Found on 2026-12-07: a redacted cell of a client's table or a padded Markdown table
    /// kept the padding to its column's width, which told the length of its secret.
    #[test]
    fn a_redacted_cell_loses_its_padding() {
        let cases = [
            (
                " id | pin  | role\n----+------+------\n  1 |   12 | a\n  2 | 1234 | b\n(2 rows)\n",
                " id | pin  | role\n----+------+------\n  1 | [REDACTED] | a\n  2 | [REDACTED] | b\n(2 rows)\n",
            ),
            (
                "+----+----------------+\n| id | api_key        |\n+----+----------------+\n|  1 | ab             |\n|  2 | abcdefghijklmn |\n+----+----------------+\n",
                "+----+----------------+\n| id | api_key        |\n+----+----------------+\n|  1 | [REDACTED] |\n|  2 | [REDACTED] |\n+----+----------------+\n",
            ),
            (
                "| user | password   |\n|------|------------|\n| ann  | x          |\n",
                "| user | password   |\n|------|------------|\n| ann  | [REDACTED] |\n",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(body("text/plain", input), want, "{input}");
        }
        // The other cells keep theirs, an empty cell stays.
        let input = "+----+----------+-------+\n| id | password | role  |\n+----+----------+-------+\n|  1 |          | admin |\n+----+----------+-------+\n";
        assert_eq!(body("text/plain", input), input);
    }
}
