//! Paging of every list (ETSI SOL013 5.4): at most `--page-size` items, a `Link` header with
//! `rel="next"` while more follow, whose `nextpage_opaque_marker` the server alone can make:
//! changed, or carried to another list or query, it is a 400 naming the parameter.

mod support;

use serde_json::{Value, json};
use support::*;
use testcluster::TestCluster;

/// Five sites of one host each: five resource pools.
fn inventory() -> Value {
    let hosts: Vec<Value> = (1..=5)
        .map(|n| json!({"id": format!("pg-h{n}"), "hostname": format!("pg-node-{n}"), "address": format!("10.8.0.{n}"), "labels": {"site": format!("site-{n}")}}))
        .collect();
    json!({"hosts": hosts, "clusters": []})
}

struct Page {
    items: Vec<Value>,
    next: Option<String>,
}

async fn page(server: &Checked, token: &str, url: &str) -> anyhow::Result<Page> {
    let response = server.0.http()?.get(url).bearer_auth(token).send().await?;
    anyhow::ensure!(response.status() == 200, "{url}: {}", response.status());
    let next = response
        .headers()
        .get("link")
        .and_then(|v| v.to_str().ok())
        .and_then(lcm_core::rest::paging::next_link);
    let items: Vec<Value> = response.json().await?;
    Ok(Page { items, next })
}

#[tokio::test]
async fn lists_come_in_pages_linked_by_markers_only_the_server_makes() -> anyhow::Result<()> {
    let cluster = TestCluster::shared().await?;
    let client = cluster.admin_client()?;
    let namespace = cluster
        .namespace("o2ims-api-paging")
        .await?
        .name()
        .to_string();
    write_inventory(&client, &namespace, &inventory()).await?;
    let server = start_with(cluster, &namespace, &["--page-size", "2"]).await?;
    let reader =
        token_with_roles(cluster, &namespace, "reader", &["oran-lcm-o2ims-reader"]).await?;
    let first = format!("{}{INVENTORY}/resourcePools", server.0.base);
    let names = |page: &Page| -> Vec<String> {
        page.items
            .iter()
            .filter_map(|p| p["name"].as_str().map(String::from))
            .collect()
    };
    let all = testcluster::wait_for(
        "every pool, page by page",
        std::time::Duration::from_secs(10),
        || async {
            let mut seen = Vec::new();
            let mut url = Some(first.clone());
            while let Some(at) = url {
                let page = page(&server, &reader, &at).await?;
                anyhow::ensure!(page.items.len() <= 2, "{:?}", page.items);
                // Each page is a valid list of the document.
                server
                    .call(
                        "GET",
                        at.trim_start_matches(&server.0.base),
                        Some(&reader),
                        None,
                    )
                    .await?;
                seen.extend(names(&page));
                url = page.next;
            }
            Ok((seen.len() == 5).then_some(seen))
        },
    )
    .await?;
    assert_eq!(all, ["site-1", "site-2", "site-3", "site-4", "site-5"]);

    // The query goes along: a filtered list pages over its matches.
    let filtered = page(
        &server,
        &reader,
        &format!("{first}?filter=(neq,name,site-1)&fields=name"),
    )
    .await?;
    assert_eq!(names(&filtered), ["site-2", "site-3"]);
    let next = filtered.next.expect("a second page");
    assert!(
        next.contains("filter=") && next.contains("nextpage_opaque_marker="),
        "{next}"
    );
    assert_eq!(
        names(&page(&server, &reader, &next).await?),
        ["site-4", "site-5"]
    );

    // A marker changed, or used for another query or list, is refused naming the parameter.
    let marker = next
        .split("nextpage_opaque_marker=")
        .nth(1)
        .expect("marker");
    let tampered = marker.replacen(|c: char| c.is_ascii_alphanumeric(), "A", 1);
    let tampered = if tampered == marker {
        marker.replacen('A', "B", 1)
    } else {
        tampered
    };
    for query in [
        format!("?filter=(neq,name,site-1)&fields=name&nextpage_opaque_marker={tampered}"),
        format!("?nextpage_opaque_marker={marker}"),
        "?nextpage_opaque_marker=not-a-marker".to_string(),
    ] {
        let reply = server
            .call(
                "GET",
                &format!("{INVENTORY}/resourcePools{query}"),
                Some(&reader),
                None,
            )
            .await?;
        assert_eq!(reply.status, 400, "{query}: {reply:?}");
        assert!(
            reply.detail().starts_with("nextpage_opaque_marker:"),
            "{reply:?}"
        );
    }
    Ok(())
}
