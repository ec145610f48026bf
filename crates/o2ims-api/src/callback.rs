//! Where the server may send notifications: only to hosts the admin allows, over HTTPS unless
//! allowed otherwise, without following redirects (each could point anywhere), and only to a
//! callback that proved it listens by answering a GET with 204.

use std::time::Duration;

use crate::config::Config;

/// The client notifications are sent with.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

/// Why `callback` may not be used, if it may not.
pub fn refusal(allowed_hosts: &[String], allow_http: bool, callback: &str) -> Option<String> {
    let url = match reqwest::Url::parse(callback) {
        Ok(url) => url,
        Err(e) => return Some(format!("callback: `{callback}` is not a URL: {e}")),
    };
    let scheme_allowed = url.scheme() == "https" || (allow_http && url.scheme() == "http");
    if !scheme_allowed {
        return Some(format!(
            "callback: `{callback}` must be an https URL{}",
            if allow_http { " or an http one" } else { "" }
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some(format!("callback: `{callback}` may not carry credentials"));
    }
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let allowed = allowed_hosts
        .iter()
        .any(|entry| match entry.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => *entry == host,
        });
    (!allowed).then(|| {
        format!(
            "callback: host `{host}` is not allowed; the O-Cloud admin allows {} (--allowed-callback-hosts)",
            if allowed_hosts.is_empty() { "none".to_string() } else { allowed_hosts.join(", ") }
        )
    })
}

/// Checks `callback` and that it answers a GET with 204.
pub async fn verify(config: &Config, callback: &str) -> Result<(), String> {
    if let Some(refusal) = refusal(
        &config.allowed_callback_hosts,
        config.allow_http_callbacks,
        callback,
    ) {
        return Err(refusal);
    }
    match client().get(callback).send().await {
        Ok(response) if response.status() == reqwest::StatusCode::NO_CONTENT => Ok(()),
        Ok(response) => Err(format!(
            "callback: GET {callback} answered {}, not 204 No Content",
            response.status()
        )),
        Err(e) => Err(format!("callback: GET {callback} failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_hosts_and_schemes_are_callbacks() {
        let allowed = [
            "smo.example.com".to_string(),
            "*.smo.example.net".to_string(),
        ];
        let ok = |url: &str, http| refusal(&allowed, http, url).is_none();
        assert!(ok("https://smo.example.com/notify", false));
        assert!(ok("https://a.b.smo.example.net:8443/x", false));
        assert!(
            !ok("https://smo.example.net/x", false),
            "the wildcard needs a subdomain"
        );
        assert!(!ok("https://evil.example.com/x", false));
        assert!(!ok("https://smo.example.com.evil.org/x", false));
        assert!(!ok("http://smo.example.com/x", false));
        assert!(ok("http://smo.example.com/x", true));
        assert!(!ok("ftp://smo.example.com/x", true));
        assert!(!ok("https://user:pw@smo.example.com/x", false));
        assert!(!ok("https://169.254.169.254/latest", false));
        assert!(
            refusal(&[], false, "https://smo.example.com/x").is_some_and(|r| r.contains("none"))
        );
        assert!(refusal(&allowed, false, "not a url").is_some_and(|r| r.starts_with("callback:")));
    }
}
