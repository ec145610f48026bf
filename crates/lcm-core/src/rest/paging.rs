//! Paging of lists (ETSI SOL013 5.4, which the O2ims interface follows): the server answers at
//! most a page of items and, when more follow, a `Link` header with `rel="next"` whose URL
//! carries `nextpage_opaque_marker`. The marker names where the next page starts: after the
//! item with a key, which stood at an offset. A page computed from that survives changes of the
//! list between two requests: it continues after that item wherever it now stands, or at its
//! old offset once it is gone. (Sealing the marker against tampering is the server's business.)

use serde::{Deserialize, Serialize};

/// The query parameter carrying the marker.
pub const MARKER: &str = "nextpage_opaque_marker";

/// Where a page starts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// The offset of the first item of the page when the marker was made.
    #[serde(rename = "o")]
    pub offset: usize,
    /// The key of the item before it.
    #[serde(rename = "a")]
    pub after: String,
}

/// One page of `items` (each with its key), from `start` (the first page without one), at most
/// `size` long; and where the next page starts, if any item is left.
pub fn page<T>(
    items: Vec<(String, T)>,
    start: Option<&Position>,
    size: usize,
) -> (Vec<T>, Option<Position>) {
    let size = size.max(1);
    let from = match start {
        None => 0,
        Some(position) => items
            .iter()
            .position(|(key, _)| *key == position.after)
            .map_or(position.offset, |at| at + 1),
    }
    .min(items.len());
    let until = from.saturating_add(size).min(items.len());
    let next = (until < items.len()).then(|| Position {
        offset: until,
        after: items[until - 1].0.clone(),
    });
    let page = items
        .into_iter()
        .skip(from)
        .take(until - from)
        .map(|(_, item)| item)
        .collect();
    (page, next)
}

/// The URL of the `rel="next"` link of a `Link` header value (RFC 8288), if it has one.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, parameters) = link.trim().split_once('>')?;
        let target = target.trim().strip_prefix('<')?;
        parameters
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .any(|(name, value)| {
                name.trim().eq_ignore_ascii_case("rel")
                    && value
                        .trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|rel| rel.eq_ignore_ascii_case("next"))
            })
            .then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(keys: &[&str]) -> Vec<(String, String)> {
        keys.iter()
            .map(|k| (k.to_string(), k.to_string()))
            .collect()
    }

    fn all_pages(keys: &[&str], size: usize) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut start = None;
        loop {
            let (page, next) = page(items(keys), start.as_ref(), size);
            pages.push(page);
            match next {
                Some(next) => start = Some(next),
                None => return pages,
            }
        }
    }

    #[test]
    fn pages_cover_the_list_once_in_order() {
        assert_eq!(
            all_pages(&["a", "b", "c", "d", "e"], 2),
            [vec!["a", "b"], vec!["c", "d"], vec!["e"]]
        );
        assert_eq!(all_pages(&["a", "b"], 2), [vec!["a", "b"]]);
        assert_eq!(all_pages(&[], 2), [Vec::<String>::new()]);
    }

    #[test]
    fn a_page_continues_after_its_item_wherever_it_now_stands() {
        let (first, next) = page(items(&["b", "c", "d", "e"]), None, 2);
        assert_eq!(first, ["b", "c"]);
        let next = next.expect("more");
        // An item inserted before the page's start shifts nothing into a second showing.
        let (second, _) = page(items(&["a", "b", "c", "d", "e"]), Some(&next), 2);
        assert_eq!(second, ["d", "e"]);
        // The item it followed is gone: its old offset.
        let (second, _) = page(items(&["b", "d", "e"]), Some(&next), 2);
        assert_eq!(second, ["e"]);
        let past_the_end = Position {
            offset: 99,
            after: "zz".into(),
        };
        assert_eq!(page(items(&["a"]), Some(&past_the_end), 2), (vec![], None));
    }

    #[test]
    fn the_next_link_is_found_among_others() {
        assert_eq!(
            next_link(r#"<https://a/x?m=1>; rel="prev", <https://a/x?m=2>; rel="next""#),
            Some("https://a/x?m=2".into())
        );
        assert_eq!(
            next_link("<https://a/x>;rel=next"),
            Some("https://a/x".into())
        );
        assert_eq!(next_link(r#"<https://a/x>; rel="last""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
