//! How the `<`, `>` and quotes of markup are written in free text: plainly, as Go's
//! encoding/json writes them (`\u003c`, `\u003e`), or as HTML character references (`&lt;`,
//! `&#60;`, `&#x3C;`, `&quot;`, and escaped twice, `&amp;lt;`, or written by Go's encoder,
//! `\u0026lt;`), as in an HTML page quoted in an error or a template in a log line.
//!
//! The form field and element rules read tags through these, and decode the references in a
//! field's `name` before they look it up, and the pair rule reads text escaped with HTML5's
//! names (`api&lowbar;key&equals;…`) decoded; what they store is the text as it came.

use memchr::{memchr_iter, memchr2};

use super::keys::dropped_from_key;

/// How a tag's `<` is written. Its `>`, and its end tag's `<` and `>`, are looked for written
/// the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Spelling {
    /// `<`.
    Plain,
    /// `\u003c`, as Go's encoding/json writes `<`.
    Go,
    /// A character reference: `&lt;`, `&#60;`, `&#x3c;`, `&amp;lt;`, `\u0026lt;`.
    Reference,
    /// `‹` (U+2039), as typographic substitution writes `<`; closed by `>`.
    Guillemet,
}

/// `‹` (U+2039) in UTF-8.
const GUILLEMET: &[u8] = "\u{2039}".as_bytes();

/// Whether `bytes` holds at `at` the escape `\u003` + `last` (either case): `c` for `<`, `e`
/// for `>`.
pub(super) fn go_escape(bytes: &[u8], at: usize, last: u8) -> bool {
    bytes
        .get(at..at + GO_ESCAPE_LEN)
        .is_some_and(|found| found[..5] == *b"\\u003" && found[5] | 0x20 == last)
}

/// Length of `\u003c`.
pub(super) const GO_ESCAPE_LEN: usize = 6;

/// The `<` at `at`, in any spelling, with its length.
pub(super) fn open_at(bytes: &[u8], at: usize) -> Option<(Spelling, usize)> {
    match bytes.get(at)? {
        b'<' => Some((Spelling::Plain, 1)),
        b'\\' if go_escape(bytes, at, b'c') => Some((Spelling::Go, GO_ESCAPE_LEN)),
        b'&' | b'\\' => match whole_char_ref(bytes, at) {
            Some(('<', len)) => Some((Spelling::Reference, len)),
            _ => None,
        },
        _ => None,
    }
}

/// The `<` of an element at `at` as [`open_at`] reads it, or `‹`: the element rule reads
/// elements written with it, which the form field rule does not take for tags (a `‹` among a
/// tag's attributes does not end the tag).
pub(super) fn element_open_at(bytes: &[u8], at: usize) -> Option<(Spelling, usize)> {
    match bytes.get(at)? {
        0xE2 if bytes[at..].starts_with(GUILLEMET) => Some((Spelling::Guillemet, GUILLEMET.len())),
        _ => open_at(bytes, at),
    }
}

/// The length of the `>` at `at` that closes a tag whose `<` is spelled `spelling`: `>` and
/// `\u003e` close any tag, a reference to `>` one opened by a reference.
pub(super) fn close_at(bytes: &[u8], at: usize, spelling: Spelling) -> Option<usize> {
    match bytes.get(at)? {
        b'>' => Some(1),
        b'\\' if go_escape(bytes, at, b'e') => Some(GO_ESCAPE_LEN),
        b'&' | b'\\' if spelling == Spelling::Reference => match whole_char_ref(bytes, at) {
            Some(('>', len)) => Some(len),
            _ => None,
        },
        _ => None,
    }
}

/// How many times an `&amp;` may wrap a reference (`&amp;lt;`, `&amp;amp;lt;`): text escaped
/// once more per level. The bound keeps every look at a reference short.
const MAX_AMP_LEVELS: usize = 2;

/// The HTML character reference at `at`, the character it stands for and its length.
///
/// A reference starts with `&` (or `\u0026`, as Go writes it) and is a decimal (`&#119;`) or
/// hexadecimal (`&#x77;`) number or a name, in any case: each name HTML5 gives an ASCII
/// character (`&lowbar;`, `&period;`, `&equals;`, `&NewLine;`, as PHP's `htmlentities` writes
/// them with `ENT_HTML5`) and each it gives a character keys lose, as `&nbsp;`, `&ensp;`,
/// `&hyphen;` and `&ZeroWidthSpace;` (see [`named`]). Browsers take a number and the legacy
/// names `quot`, `amp`, `lt`, `gt` and `nbsp` without their `;`, so it is optional for those
/// here too. An `&amp;` before another reference (`&amp;quot;`) is that reference, escaped
/// twice.
pub(super) fn char_ref(bytes: &[u8], at: usize) -> Option<(char, usize)> {
    char_ref_wrapped(bytes, at).map(|(c, len, _)| (c, len))
}

/// [`char_ref`], and how many `&amp;`s wrap the reference: 0 for `&lt;`, 1 for `&amp;lt;`.
/// A tag's own characters are escaped as often as its `<`; a reference escaped once more
/// is one of the escaped page's, inside a value.
pub(super) fn char_ref_wrapped(bytes: &[u8], at: usize) -> Option<(char, usize, usize)> {
    let start = match bytes.get(at)? {
        b'&' => at + 1,
        b'\\'
            if bytes
                .get(at..at + 6)
                .is_some_and(|found| found.eq_ignore_ascii_case(b"\\u0026")) =>
        {
            at + 6
        }
        _ => return None,
    };
    let (mut c, mut end) = reference_body(bytes, start)?;
    let mut wraps = 0;
    for _ in 0..MAX_AMP_LEVELS {
        match (c, reference_body(bytes, end)) {
            ('&', Some((inner, inner_end))) => (c, end) = (inner, inner_end),
            _ => break,
        }
        wraps += 1;
    }
    Some((c, end - at, wraps))
}

/// The longest name HTML5 gives a character: `CounterClockwiseContourIntegral`.
const LONGEST_HTML5_NAME: usize = 31;

/// The length of the named reference at `at` written whole, `&name;` (or with `&amp;`s before
/// its name, escaped again: `&amp;auml;`), whether or not [`char_ref`] knows the name; `None`
/// when no such reference starts there. A name [`char_ref`] does not know (`&auml;`,
/// `&euro;`) or knows only the start of (`&ltimes;` is `⋉`, not `&lt` and `imes;`) stands for
/// a character that no key, separator or tag is written with.
pub(super) fn whole_name_len(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'&') {
        return None;
    }
    // Where the name that starts at `from` ends, after its `;`.
    let name_end = |from: usize| {
        let rest = bytes.get(from..)?;
        let len = rest
            .iter()
            .take(LONGEST_HTML5_NAME + 1)
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        (rest.first().is_some_and(u8::is_ascii_alphabetic)
            && len <= LONGEST_HTML5_NAME
            && rest.get(len) == Some(&b';'))
        .then_some(from + len + 1)
    };
    let (mut start, mut end) = (at + 1, name_end(at + 1)?);
    for _ in 0..MAX_AMP_LEVELS {
        match name_end(end) {
            Some(next) if bytes[start..end].eq_ignore_ascii_case(b"amp;") => {
                (start, end) = (end, next);
            }
            _ => break,
        }
    }
    Some(end - at)
}

/// The names browsers read without their `;`, among those [`named`] knows: `&ltx` is `<x`.
const LEGACY_NAMES: [(&[u8], char); 5] = [
    (b"quot", '"'),
    (b"amp", '&'),
    (b"lt", '<'),
    (b"gt", '>'),
    (b"nbsp", '\u{A0}'),
];

/// The longest name [`named`] knows: `NegativeVeryThinSpace`.
const LONGEST_NAME: usize = 21;

/// The reference whose name or number starts at `at` (after its `&`), and where it ends.
fn reference_body(bytes: &[u8], at: usize) -> Option<(char, usize)> {
    if bytes.get(at) == Some(&b'#') {
        let hex = matches!(bytes.get(at + 1), Some(b'x' | b'X'));
        let radix = if hex { 16 } else { 10 };
        let digits = at + 1 + usize::from(hex);
        let mut end = digits;
        let mut value = 0_u32;
        while let Some(digit) = bytes.get(end).and_then(|&b| char::from(b).to_digit(radix)) {
            value = value.saturating_mul(radix).saturating_add(digit);
            end += 1;
        }
        if end == digits {
            return None;
        }
        if bytes.get(end) == Some(&b';') {
            end += 1;
        }
        let c = char::from_u32(value)
            .filter(|&c| c != '\0')
            .unwrap_or('\u{FFFD}');
        return Some((c, end));
    }
    // A name is letters and digits; one longer than any known is read only for a legacy name
    // at its start.
    let rest = bytes.get(at..).unwrap_or_default();
    let name_len = rest
        .iter()
        .take(LONGEST_NAME + 1)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    let name = &rest[..name_len];
    if rest.get(name_len) == Some(&b';')
        && let Some(c) = named(name)
    {
        return Some((c, at + name_len + 1));
    }
    LEGACY_NAMES.iter().find_map(|&(legacy, c)| {
        name.get(..legacy.len())
            .is_some_and(|found| found.eq_ignore_ascii_case(legacy))
            .then_some((c, at + legacy.len()))
    })
}

/// The character of the named reference `name` (between its `&` and `;`), in any case: every
/// name the WHATWG table gives an ASCII character, and those it gives the characters a key
/// loses as it loses `_`, `-` and spaces (see [`normalize_key`](super::keys::normalize_key)):
/// Unicode's spaces (`&nbsp;`, `&ensp;`, `&thinsp;`), dashes (`&hyphen;`, `&ndash;`,
/// `&minus;`) and invisible characters (`&ZeroWidthSpace;`, `&zwj;`, `&NoBreak;`, `&shy;`), so
/// that `api&ensp;key` is a key. Other names stand for characters no key or tag is written
/// with.
///
/// One `match` on the bytes, not a scan of a table: this runs at every `&` of a text body.
fn named(name: &[u8]) -> Option<char> {
    let mut lower = [0_u8; LONGEST_NAME];
    let lower = lower.get_mut(..name.len())?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    Some(match &*lower {
        b"tab" => '\t',
        b"newline" => '\n',
        b"excl" => '!',
        b"quot" => '"',
        b"num" => '#',
        b"dollar" => '$',
        b"percnt" => '%',
        b"amp" => '&',
        b"apos" => '\'',
        b"lpar" => '(',
        b"rpar" => ')',
        b"ast" | b"midast" => '*',
        b"plus" => '+',
        b"comma" => ',',
        b"period" => '.',
        b"sol" => '/',
        b"colon" => ':',
        b"semi" => ';',
        b"lt" => '<',
        b"equals" => '=',
        b"gt" => '>',
        b"quest" => '?',
        b"commat" => '@',
        b"lsqb" | b"lbrack" => '[',
        b"bsol" => '\\',
        b"rsqb" | b"rbrack" => ']',
        b"hat" => '^',
        b"lowbar" | b"underbar" => '_',
        b"grave" | b"diacriticalgrave" => '`',
        b"lcub" | b"lbrace" => '{',
        b"verbar" | b"vert" | b"verticalline" => '|',
        b"rcub" | b"rbrace" => '}',
        b"nbsp" | b"nonbreakingspace" => '\u{A0}',
        b"shy" => '\u{AD}',
        b"ensp" => '\u{2002}',
        b"emsp" => '\u{2003}',
        b"emsp13" => '\u{2004}',
        b"emsp14" => '\u{2005}',
        b"numsp" => '\u{2007}',
        b"puncsp" => '\u{2008}',
        b"thinsp" | b"thinspace" => '\u{2009}',
        b"hairsp" | b"verythinspace" => '\u{200A}',
        b"zerowidthspace"
        | b"negativeverythinspace"
        | b"negativethinspace"
        | b"negativemediumspace"
        | b"negativethickspace" => '\u{200B}',
        b"zwnj" => '\u{200C}',
        b"zwj" => '\u{200D}',
        b"lrm" => '\u{200E}',
        b"rlm" => '\u{200F}',
        b"hyphen" | b"dash" => '\u{2010}',
        b"ndash" => '\u{2013}',
        b"mdash" => '\u{2014}',
        b"horbar" => '\u{2015}',
        // `&ThickSpace;` is U+205F and U+200A: a key loses both.
        b"mediumspace" | b"thickspace" => '\u{205F}',
        b"nobreak" => '\u{2060}',
        b"applyfunction" | b"af" => '\u{2061}',
        b"invisibletimes" | b"it" => '\u{2062}',
        b"invisiblecomma" | b"ic" => '\u{2063}',
        b"minus" => '\u{2212}',
        _ => return None,
    })
}

/// `raw` with its character references and `\uXXXX` escapes decoded, into `out`; `raw` itself
/// when it has neither.
pub(super) fn decode<'a>(raw: &'a str, out: &'a mut String) -> &'a str {
    let bytes = raw.as_bytes();
    let Some(first) = memchr2(b'&', b'\\', bytes) else {
        return raw;
    };
    out.clear();
    out.push_str(&raw[..first]);
    let mut i = first;
    while let Some(at) = memchr2(b'&', b'\\', &bytes[i..]).map(|at| i + at) {
        out.push_str(&raw[i..at]);
        if let Some((c, len)) = char_ref(bytes, at) {
            out.push(c);
            i = at + len;
        } else if let Some(c) = json_escape(bytes, at) {
            out.push(c);
            i = at + 6;
        } else {
            out.push(char::from(bytes[at]));
            i = at + 1;
        }
    }
    out.push_str(&raw[i..]);
    out
}

/// Free text with its character references decoded, and where its bytes came from.
#[derive(Debug)]
pub(super) struct Decoded {
    /// The text, each reference replaced by its character.
    pub(super) text: String,
    /// Where each reference ends, in `text` and in the text as it came.
    ends: Vec<(usize, usize)>,
}

impl Decoded {
    /// `raw` with its character references decoded, when one of them stands for a character
    /// that `wanted` accepts, given the bytes after the reference; `None` (and nothing copied)
    /// when none does.
    ///
    /// A reference to a character a key loses when normalized (a Unicode space, dash or
    /// invisible character, see [`dropped_from_key`]) reads as `_`, which keys lose too: the
    /// rules that read this text take only ASCII for a key's characters, and `api&ensp;key`
    /// is one key.
    pub(super) fn references(raw: &str, wanted: impl Fn(char, &[u8]) -> bool) -> Option<Self> {
        let bytes = raw.as_bytes();
        let mut from = 0;
        loop {
            let at = from + memchr2(b'&', b'\\', &bytes[from..])?;
            match whole_char_ref(bytes, at) {
                Some((c, len)) if wanted(c, &bytes[at + len..]) => break,
                Some((_, len)) => from = at + len,
                None => from = at + 1,
            }
        }
        // The references before the first wanted one are decoded too: a quote written `&quot;`
        // must read as one.
        let mut decoded = Self {
            text: String::with_capacity(raw.len()),
            ends: Vec::new(),
        };
        let mut i = 0;
        while let Some(at) = memchr2(b'&', b'\\', &bytes[i..]).map(|at| i + at) {
            decoded.text.push_str(&raw[i..at]);
            match whole_char_ref(bytes, at) {
                Some((c, len)) => {
                    decoded.text.push(if !c.is_ascii() && dropped_from_key(c) {
                        '_'
                    } else {
                        c
                    });
                    i = at + len;
                    decoded.ends.push((decoded.text.len(), i));
                }
                None => {
                    decoded.text.push(char::from(bytes[at]));
                    i = at + 1;
                }
            }
        }
        decoded.text.push_str(&raw[i..]);
        Some(decoded)
    }

    /// Where the byte at `at` of the decoded text (or its end, at its length) was in the text
    /// as it came: a character boundary of one maps to one of the other.
    pub(super) fn original(&self, at: usize) -> usize {
        match self.ends.partition_point(|&(end, _)| end <= at) {
            0 => at,
            i => {
                let (end, original_end) = self.ends[i - 1];
                original_end + (at - end)
            }
        }
    }
}

/// [`char_ref`], but not the legacy name at the start of a longer whole name: `&ltimes;` (`⋉`)
/// is no `<` followed by `imes;`, which would end the value it is in, nor `&gtdot;` (`⋗`) the
/// end of a tag.
fn whole_char_ref(bytes: &[u8], at: usize) -> Option<(char, usize)> {
    let found = char_ref(bytes, at)?;
    match whole_name_len(bytes, at) {
        Some(whole) if whole > found.1 => None,
        _ => Some(found),
    }
}

/// The character of the JSON escape `\uXXXX` at `at` (a lone surrogate is U+FFFD).
fn json_escape(bytes: &[u8], at: usize) -> Option<char> {
    let hex = bytes.get(at + 2..at + 6)?;
    if bytes.get(at + 1) != Some(&b'u') || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let value = hex
        .iter()
        .filter_map(|&b| char::from(b).to_digit(16))
        .fold(0, |value, digit| value * 16 + digit);
    Some(char::from_u32(value).unwrap_or('\u{FFFD}'))
}

/// Offset in `rest` of the first end tag of element `name` (`</name>`, `</name >`), its `<` and
/// `>` spelled as `spelling`; its name in any case when `any_case` (HTML's names have none).
///
/// An element that has no end tag is looked for again at each of its start tags (`Vec<Token>`
/// in an error text): the look goes from `/` to `/`, rare in text, and reads back from each to
/// its `<`, rather than reading every `<`, `\` and `&` on the way.
pub(super) fn end_tag(rest: &str, name: &str, spelling: Spelling, any_case: bool) -> Option<usize> {
    let bytes = rest.as_bytes();
    memchr_iter(b'/', bytes).find_map(|slash| {
        let name_end = slash + 1 + name.len();
        let named = bytes.get(slash + 1..name_end).is_some_and(|found| {
            if any_case {
                found.eq_ignore_ascii_case(name.as_bytes())
            } else {
                found == name.as_bytes()
            }
        });
        let closed = named
            && (bytes.get(name_end).is_some_and(u8::is_ascii_whitespace)
                || close_at(bytes, name_end, spelling).is_some());
        closed
            .then(|| opener_before(bytes, slash, spelling))
            .flatten()
    })
}

/// The longest `<` looked for before an end tag's `/`: `\u0026amp;amp;#x003c;` is 21 bytes. A
/// reference padded with more zeros is not read as an end tag's `<` (the element then runs to
/// the end of the text).
const MAX_OPENER_LEN: usize = 32;

/// Where the `<` spelled `spelling` that ends right at `end` starts, if one does.
fn opener_before(bytes: &[u8], end: usize, spelling: Spelling) -> Option<usize> {
    (end.saturating_sub(MAX_OPENER_LEN)..end)
        .find(|&at| element_open_at(bytes, at) == Some((spelling, end - at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(raw: &str) -> String {
        let mut out = String::new();
        decode(raw, &mut out).to_owned()
    }

    #[test]
    fn references_decode() {
        for (raw, want) in [
            ("pass&#119;ord", "password"),
            ("&#x70;assword", "password"),
            ("&#X50;ASS&#0000087ORD", "PASSWORD"),
            ("&quot;a&QUOT;&amp;&lt;&gt;&apos;&#39;", "\"a\"&<>''"),
            ("&amp;quot;&amp;amp;#119;\\u0026lt;", "\"w<"),
            ("pass\\u0077ord", "password"),
            (
                "a &apos b &unknown; &# &#x; &#0; &#99999999;",
                "a &apos b &unknown; &# &#x; \u{FFFD} \u{FFFD}",
            ),
            ("no references", "no references"),
            // Every name HTML5 gives an ASCII character, in any case, and the no-break space.
            (
                concat!(
                    "&Tab;&NewLine;&excl;&num;&dollar;&percnt;&lpar;&rpar;&ast;&midast;&plus;",
                    "&comma;&period;&sol;&colon;&semi;&equals;&quest;&commat;&lsqb;&lbrack;",
                    "&bsol;&rsqb;&rbrack;&Hat;&lowbar;&UnderBar;&grave;&DiacriticalGrave;",
                    "&lcub;&lbrace;&verbar;&vert;&VerticalLine;&rcub;&rbrace;&AMP;&QUOT;&LT;&GT;"
                ),
                "\t\n!#$%()**+,./:;=?@[[\\]]^__``{{|||}}&\"<>",
            ),
            (
                "api&LOWBAR;key&amp;period;\\u0026colon;&nbsp;&NonBreakingSpace;&nbspx",
                "api_key.:\u{A0}\u{A0}\u{A0}x",
            ),
            // The names of the characters keys lose: spaces, dashes, invisible characters.
            (
                concat!(
                    "&ensp;&emsp;&emsp13;&emsp14;&numsp;&puncsp;&thinsp;&ThinSpace;&hairsp;",
                    "&VeryThinSpace;&MediumSpace;&ThickSpace;&ZeroWidthSpace;",
                    "&NegativeVeryThinSpace;&zwnj;&zwj;&lrm;&rlm;&shy;&NoBreak;&af;&it;&ic;",
                    "&hyphen;&dash;&ndash;&mdash;&horbar;&minus;&NegativeVeryThinSpacex;"
                ),
                concat!(
                    "\u{2002}\u{2003}\u{2004}\u{2005}\u{2007}\u{2008}\u{2009}\u{2009}\u{200A}",
                    "\u{200A}\u{205F}\u{205F}\u{200B}",
                    "\u{200B}\u{200C}\u{200D}\u{200E}\u{200F}\u{AD}\u{2060}\u{2061}\u{2062}\u{2063}",
                    "\u{2010}\u{2010}\u{2013}\u{2014}\u{2015}\u{2212}&NegativeVeryThinSpacex;"
                ),
            ),
            // Only the legacy names go without their `;`, and a longer name is not one of them.
            (
                "&lowbar &lowbarx; &period &ltimes; &quotx; &ampersand; &apos",
                "&lowbar &lowbarx; &period <imes; \"x; &ersand; &apos",
            ),
            (
                "&DiacriticalGravex; &abcdefghijklmnopq; &",
                "&DiacriticalGravex; &abcdefghijklmnopq; &",
            ),
            ("\\ & \\u00", "\\ & \\u00"),
        ] {
            assert_eq!(decoded(raw), want, "{raw}");
        }
    }

    /// Decoded text maps each of its character boundaries back to the text as it came.
    #[test]
    fn decoded_text_maps_back() {
        let raw = "api&lowbar;key&equals;x&amp;amp;y &#233;t\\u0026period;";
        let decoded = Decoded::references(raw, |c, _| c == '=').unwrap();
        assert_eq!(decoded.text, "api_key=x&y ét.");
        for (at, want) in [
            (0, 0),
            (3, 3),
            (4, 11),
            (7, 14),
            (8, 22),
            (9, 23),
            (10, 32),
            (12, 34),
        ] {
            assert_eq!(decoded.original(at), want, "{at}");
        }
        assert_eq!(decoded.original(decoded.text.len()), raw.len());
        // A character keys lose reads as `_`, which the rules take for a key's.
        let decoded = Decoded::references("api&ensp;key&#8203;id=&mdash;x", |_, _| true).unwrap();
        assert_eq!(decoded.text, "api_key_id=_x");
        assert_eq!(decoded.original(4), "api&ensp;".len());
        assert!(
            Decoded::references("a &lt; b &amp; &#34; \\u0026quot;", |c, _| c == '=').is_none()
        );
        assert!(Decoded::references("no references", |_, _| true).is_none());
    }

    #[test]
    fn delimiters_in_every_spelling() {
        for (text, spelling) in [
            ("<", Spelling::Plain),
            ("\\u003c", Spelling::Go),
            ("\\u003C", Spelling::Go),
            ("&lt;", Spelling::Reference),
            ("&LT", Spelling::Reference),
            ("&#60;", Spelling::Reference),
            ("&#x3c;", Spelling::Reference),
            ("&amp;lt;", Spelling::Reference),
            ("\\u0026lt;", Spelling::Reference),
        ] {
            assert_eq!(
                open_at(text.as_bytes(), 0),
                Some((spelling, text.len())),
                "{text}"
            );
        }
        for text in ["&gt;", "&#62;", "&amp;gt;"] {
            assert_eq!(
                close_at(text.as_bytes(), 0, Spelling::Reference),
                Some(text.len())
            );
            assert_eq!(close_at(text.as_bytes(), 0, Spelling::Plain), None);
        }
        assert_eq!(open_at(b"&amp;", 0), None);
        for text in [
            "&lowbar;",
            "&lsqb;",
            "&sol;",
            "&equals;",
            "&amp;lowbar;",
            "&lt",
        ] {
            let spelled = open_at(text.as_bytes(), 0).is_some();
            assert_eq!(spelled, text == "&lt", "{text}");
            assert_eq!(close_at(text.as_bytes(), 0, Spelling::Reference), None);
        }
        assert_eq!(
            end_tag(
                "a&lt;/b&gt; &lt;/Pin &gt;",
                "pin",
                Spelling::Reference,
                true
            ),
            Some(12)
        );
        assert_eq!(end_tag("</pin>", "pin", Spelling::Reference, true), None);
        assert_eq!(
            end_tag("\\u003c/pin\\u003e", "pin", Spelling::Go, false),
            Some(0)
        );
    }
}
