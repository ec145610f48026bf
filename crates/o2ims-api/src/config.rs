//! The server's configuration (flags, each also an environment variable).

use std::net::SocketAddr;
use std::path::PathBuf;

use lcm_core::rest::inventory::Cloud;
use operator_kit::RuntimeOptions;

#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    #[command(flatten)]
    pub runtime: RuntimeOptions,
    /// Address the O2ims API listens on (HTTPS).
    #[arg(long, env = "API_ADDR", default_value = "0.0.0.0:8443")]
    pub api_addr: SocketAddr,
    /// PEM certificate chain of the API (the chart mounts it from a TLS Secret).
    #[arg(long, env = "TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of that certificate.
    #[arg(long, env = "TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// Serve plain HTTP, bearer tokens in clear text (behind a TLS-terminating proxy only).
    #[arg(long, env = "PLAIN_HTTP", conflicts_with = "tls_cert_file")]
    pub plain_http: bool,
    /// The O-Cloud's id (a UUID); default: derived from its name.
    #[arg(long, env = "OCLOUD_ID", value_parser = parse_uuid)]
    pub ocloud_id: Option<String>,
    /// The id the SMO assigned this O-Cloud (a UUID); default: the nil UUID (none assigned).
    #[arg(long, env = "GLOBAL_CLOUD_ID", value_parser = parse_uuid, default_value = "00000000-0000-0000-0000-000000000000")]
    pub global_cloud_id: String,
    /// The O-Cloud's name.
    #[arg(long, env = "OCLOUD_NAME", default_value = "o-cloud")]
    pub ocloud_name: String,
    /// The O-Cloud's description.
    #[arg(long, env = "OCLOUD_DESCRIPTION", default_value = "")]
    pub ocloud_description: String,
    /// The URL SMOs reach this API at (the O-Cloud's `serviceUri`), e.g. `https://o2ims.example:8443`.
    #[arg(long, env = "EXTERNAL_URL")]
    pub external_url: String,
    /// ConfigMap (in the server's namespace, key `input.json`) of the O-Cloud's hosts: the same
    /// host inventory the O2IMS operator prepares hosts from.
    #[arg(
        long,
        env = "HOST_INVENTORY_CONFIGMAP",
        default_value = "lcm-inventory"
    )]
    pub host_inventory_configmap: String,
    /// Accept `templateParameters.hostAccess` in requests, as the O2IMS operator's flag of the
    /// same name; off, such a request is refused here as the operator would refuse it.
    #[arg(long, env = "ALLOW_REQUEST_HOST_ACCESS")]
    pub allow_request_host_access: bool,
    /// Hosts subscription callbacks may be on (`smo.example.com`, or `*.example.com` for its
    /// subdomains), comma-separated; none: no subscription can be made.
    #[arg(long, env = "ALLOWED_CALLBACK_HOSTS", value_delimiter = ',')]
    pub allowed_callback_hosts: Vec<String>,
    /// Accept `http://` callbacks, whose notifications travel in clear text (a lab only).
    #[arg(long, env = "ALLOW_HTTP_CALLBACKS")]
    pub allow_http_callbacks: bool,
    /// Most items a list answers at once; a `Link` header with `rel="next"` leads to the rest.
    #[arg(long, env = "PAGE_SIZE", default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub page_size: u16,
    /// Days a cleared alarm is kept (`retentionPeriod` of the alarm service configuration).
    #[arg(long, env = "ALARM_RETENTION_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..))]
    pub alarm_retention_days: u64,
    /// Most alarms kept: beyond, the oldest cleared ones go first (active ones stay).
    #[arg(long, env = "ALARM_HISTORY_MAX", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub alarm_history_max: u64,
    /// Part of a stage's timeout after which a request still waiting in it raises an alarm.
    #[arg(long, env = "STAGE_TIMEOUT_WARNING_FRACTION", default_value_t = 0.8, value_parser = parse_fraction)]
    pub stage_timeout_warning_fraction: f64,
    /// The stage timeouts of the O2IMS operator (the same flags: the chart gives both its values).
    #[command(flatten)]
    pub timeouts: lcm_core::status::provisioning::StageTimeouts,
    /// The Lease (in the server's namespace) whose holder sends the notifications and raises
    /// and clears alarms: one replica does, whichever serves the API.
    #[arg(long, env = "NOTIFIER_LEASE", default_value = "o2ims-api-notifier")]
    pub notifier_lease: String,
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if f > 0.0 && f <= 1.0 => Ok(f),
        _ => Err(format!("`{text}` is not a fraction in (0, 1]")),
    }
}

fn parse_uuid(text: &str) -> Result<String, String> {
    if lcm_core::rest::is_object_uuid(text) {
        Ok(text.to_string())
    } else {
        Err(format!("`{text}` is not a lower-case UUID"))
    }
}

impl Config {
    pub fn cloud(&self) -> Cloud {
        let derived = || {
            uuid::Uuid::new_v5(
                &uuid::Uuid::NAMESPACE_OID,
                format!("o-cloud/{}", self.ocloud_name).as_bytes(),
            )
            .hyphenated()
            .to_string()
        };
        Cloud {
            ocloud_id: self.ocloud_id.clone().unwrap_or_else(derived),
            global_cloud_id: self.global_cloud_id.clone(),
            name: self.ocloud_name.clone(),
            description: self.ocloud_description.clone(),
            service_uri: self.external_url.trim_end_matches('/').to_string(),
        }
    }
}
