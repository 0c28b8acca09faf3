//! The node's `/state` page: its name, how many keys it holds, and every key with its
//! value, sorted by key, in type large enough for a projector.
//!
//! askama escapes everything it prints, so a key like `<script>` is shown, never run.
//! The page then updates itself every second from `/dump?limit=...` (the script in
//! `static/node_state.js` writes text only, never markup), and still reads as a plain
//! page without JavaScript.

use askama::Template;

use crate::db::Db;

/// Rows shown at most; the count above the table is always the full one. The script
/// asks `/dump` for the same number.
pub const MAX_ROWS: usize = 2000;

/// Values longer than this are cut on the page, with their full size beside them.
const MAX_SHOWN_CHARS: usize = 120;

#[derive(Template)]
#[template(path = "node_state.html")]
struct NodeState<'a> {
    name: &'a str,
    count: usize,
    /// Bytes of keys and values held, and the budget (`--max-bytes`), in MiB for people.
    used_mib: String,
    budget_mib: String,
    rows: Vec<Row>,
    max_rows: usize,
    /// Deletions remembered (tombstones) and copies held for other nodes (hints): shown
    /// only when there are some, as "N tombstones, M hints held for others".
    tombstones: usize,
    hints: usize,
}

struct Row {
    key: String,
    value: String,
    /// The value's full size in bytes when it was cut for the page.
    cut_from: Option<usize>,
}

/// Renders the page for the data the node holds right now.
pub fn render(name: &str, db: &Db) -> String {
    let rows = db
        .sorted(MAX_ROWS)
        .into_iter()
        .map(|(key, value)| {
            let (value, cut_from) = shorten(value);
            Row {
                key,
                value,
                cut_from,
            }
        })
        .collect();
    let (used, budget) = db.bytes();
    let counts = db.counts();
    let mib = |b: usize| format!("{:.1}", b as f64 / (1024.0 * 1024.0));
    let page = NodeState {
        name,
        count: db.len(),
        used_mib: mib(used),
        budget_mib: mib(budget),
        rows,
        max_rows: MAX_ROWS,
        tombstones: counts.tombstones,
        hints: counts.hints,
    };
    page.render()
        .unwrap_or_else(|e| format!("the page failed to render: {e}"))
}

/// Cuts a long value to [`MAX_SHOWN_CHARS`] characters (never inside a UTF-8 sequence).
pub fn shorten(value: String) -> (String, Option<usize>) {
    match value.char_indices().nth(MAX_SHOWN_CHARS) {
        Some((at, _)) => {
            let full = value.len();
            let mut cut = value;
            cut.truncate(at);
            cut.push('…');
            (cut, Some(full))
        }
        None => (value, None),
    }
}

/// The page's script, served as a file so the page carries no inline code.
pub fn script() -> crate::http::Response {
    crate::http::script(include_str!("../static/node_state.js"))
}
