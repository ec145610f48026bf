//! What a remote O-Cloud's kubeconfig may hold. It comes from a Secret, so it must carry its
//! credentials inline: anything that makes the operator run a command (`exec`, `auth-provider`)
//! or read a file of its own pod (its ServiceAccount token, keys) is refused before a client is
//! built.

use kube::config::Kubeconfig;

/// Every field of `kubeconfig` that would run a command or read a file, as
/// `users[<name>].user.exec`; empty when everything is inline.
pub fn forbidden_fields(kubeconfig: &Kubeconfig) -> Vec<String> {
    let users = kubeconfig.auth_infos.iter().flat_map(|user| {
        let info = user.auth_info.as_ref();
        [
            ("exec", info.is_some_and(|i| i.exec.is_some())),
            (
                "auth-provider",
                info.is_some_and(|i| i.auth_provider.is_some()),
            ),
            ("tokenFile", info.is_some_and(|i| i.token_file.is_some())),
            (
                "client-certificate",
                info.is_some_and(|i| i.client_certificate.is_some()),
            ),
            ("client-key", info.is_some_and(|i| i.client_key.is_some())),
        ]
        .into_iter()
        .filter(|(_, present)| *present)
        .map(|(field, _)| format!("users[{}].user.{field}", user.name))
        .collect::<Vec<_>>()
    });
    let clusters = kubeconfig
        .clusters
        .iter()
        .filter(|c| {
            c.cluster
                .as_ref()
                .is_some_and(|c| c.certificate_authority.is_some())
        })
        .map(|c| format!("clusters[{}].cluster.certificate-authority", c.name));
    users.chain(clusters).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(user: &str, cluster: &str) -> Kubeconfig {
        Kubeconfig::from_yaml(&format!(
            "apiVersion: v1\nkind: Config\n\
             clusters: [{{name: far, cluster: {{server: 'https://192.0.2.1:6443', {cluster}}}}}]\n\
             users: [{{name: admin, user: {user}}}]\n\
             contexts: [{{name: x, context: {{cluster: far, user: admin}}}}]\ncurrent-context: x\n"
        ))
        .expect("a kubeconfig")
    }

    #[test]
    fn inline_credentials_are_accepted() {
        let kubeconfig = parse(
            "{token: abc, client-certificate-data: Y2VydA==, client-key-data: a2V5}",
            "certificate-authority-data: Y2E=",
        );
        assert_eq!(forbidden_fields(&kubeconfig), Vec::<String>::new());
    }

    #[test]
    fn commands_and_files_are_named() {
        let cases = [
            (
                "{exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh}}",
                "",
                "users[admin].user.exec",
            ),
            (
                "{auth-provider: {name: gcp}}",
                "",
                "users[admin].user.auth-provider",
            ),
            (
                "{tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}",
                "",
                "users[admin].user.tokenFile",
            ),
            (
                "{client-certificate: /pki/admin.crt}",
                "",
                "users[admin].user.client-certificate",
            ),
            (
                "{client-key: /pki/admin.key}",
                "",
                "users[admin].user.client-key",
            ),
            (
                "{token: abc}",
                "certificate-authority: /pki/ca.crt",
                "clusters[far].cluster.certificate-authority",
            ),
        ];
        for (user, cluster, field) in cases {
            assert_eq!(
                forbidden_fields(&parse(user, cluster)),
                [field],
                "{user} {cluster}"
            );
        }
        // Every offending field is named, not just the first.
        assert_eq!(
            forbidden_fields(&parse(
                "{client-certificate: /a.crt, client-key: /a.key}",
                "certificate-authority: /ca.crt"
            )),
            [
                "users[admin].user.client-certificate",
                "users[admin].user.client-key",
                "clusters[far].cluster.certificate-authority"
            ]
        );
    }
}
