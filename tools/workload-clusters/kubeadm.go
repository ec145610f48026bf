package main

// What `kubeadm init` leaves in a new cluster, besides the first Node and its static pods:
// the objects its upload-config, bootstrap-token RBAC and addon phases create
// (kubernetes/cmd/kubeadm/app/phases/{uploadconfig,bootstraptoken,addons}), and what
// kube-apiserver creates on its first start (the system namespaces, the kubernetes Service).
// Each is here because a Cluster API controller reads or updates it (named per object).

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/blang/semver/v4"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	bootstrapv1 "sigs.k8s.io/cluster-api/bootstrap/kubeadm/api/v1beta1"
	kubeadmtypes "sigs.k8s.io/cluster-api/bootstrap/kubeadm/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Images kubeadm v1.33.0 deploys for CoreDNS and etcd unless the ClusterConfiguration names
// others (cmd/kubeadm/app/constants: CoreDNSVersion, SupportedEtcdVersion); KCP reads the
// CoreDNS tag to decide on a Corefile migration.
const (
	defaultCoreDNSTag = "v1.12.0"
	defaultEtcdTag    = "3.5.21-0"
)

// uploadedClusterConfiguration defaults the ClusterConfiguration a host's `kubeadm init` was
// given as kubeadm does (SetDefaults_ClusterConfiguration and the init-time defaults), and
// encodes it in the kubeadm API version of that Kubernetes version, as `kubeadm init` uploads it.
// It goes through Cluster API's own kubeadm types, those KCP reads and rewrites it with.
func uploadedClusterConfiguration(doc string, endpoint netip.AddrPort, kubernetesVersion string) (*bootstrapv1.ClusterConfiguration, string, error) {
	cfg, err := kubeadmtypes.UnmarshalClusterConfiguration(doc)
	if err != nil {
		return nil, "", fmt.Errorf("clusterConfiguration: %w", err)
	}
	setDefault(&cfg.KubernetesVersion, kubernetesVersion)
	setDefault(&cfg.ControlPlaneEndpoint, endpoint.String())
	setDefault(&cfg.Networking.ServiceSubnet, "10.96.0.0/12")
	setDefault(&cfg.Networking.DNSDomain, "cluster.local")
	setDefault(&cfg.CertificatesDir, "/etc/kubernetes/pki")
	setDefault(&cfg.ImageRepository, "registry.k8s.io")
	setDefault(&cfg.ClusterName, "kubernetes")
	if cfg.Etcd.External == nil {
		if cfg.Etcd.Local == nil {
			cfg.Etcd.Local = &bootstrapv1.LocalEtcd{}
		}
		setDefault(&cfg.Etcd.Local.DataDir, "/var/lib/etcd")
	}
	v, err := semver.ParseTolerant(cfg.KubernetesVersion)
	if err != nil {
		return nil, "", fmt.Errorf("clusterConfiguration.kubernetesVersion: %w", err)
	}
	out, err := kubeadmtypes.MarshalClusterConfigurationForVersion(cfg, v)
	if err != nil {
		return nil, "", err
	}
	return cfg, out, nil
}

func setDefault(field *string, value string) {
	if *field == "" {
		*field = value
	}
}

// networkOf derives the Service addresses kubeadm derives from the service subnet.
func networkOf(cfg *bootstrapv1.ClusterConfiguration) (clusterNetwork, error) {
	first, _, _ := strings.Cut(cfg.Networking.ServiceSubnet, ",")
	prefix, err := netip.ParsePrefix(strings.TrimSpace(first))
	if err != nil {
		return clusterNetwork{}, fmt.Errorf("networking.serviceSubnet: %w", err)
	}
	base := prefix.Masked().Addr()
	nth := func(n int) net.IP {
		a := base
		for range n {
			a = a.Next()
		}
		return net.IP(a.AsSlice())
	}
	return clusterNetwork{serviceIP: nth(1), dnsIP: nth(10), dnsDomain: cfg.Networking.DNSDomain, podSubnet: cfg.Networking.PodSubnet}, nil
}

// skipped tells whether `kubeadm init --skip-phases` names phase or its parent.
func skipped(skipPhases []string, phase string) bool {
	parent, _, _ := strings.Cut(phase, "/")
	return slices.Contains(skipPhases, phase) || slices.Contains(skipPhases, parent+"/all") || slices.Contains(skipPhases, parent)
}

// initObjects lists what kube-apiserver and `kubeadm init` create at cluster creation.
func initObjects(c *cluster, cfg *bootstrapv1.ClusterConfiguration, cfgYAML string, skipPhases []string) []client.Object {
	ns := metav1.NamespaceSystem
	objs := []client.Object{}
	for _, name := range []string{metav1.NamespaceDefault, ns, metav1.NamespacePublic, corev1.NamespaceNodeLease} {
		objs = append(objs, &corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelMetadataName: name}},
			Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
		})
	}
	objs = append(objs,
		// Read by the ClusterResourceSet controller before it applies anything (ensureKubernetesServiceCreated).
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: "kubernetes", Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeClusterIP, ClusterIP: c.network.serviceIP.String(), ClusterIPs: []string{c.network.serviceIP.String()},
				Ports: []corev1.ServicePort{{Name: "https", Protocol: corev1.ProtocolTCP, Port: 443, TargetPort: intstr.FromInt32(int32(c.endpoint.Port()))}},
			},
		},
		// KCP sets Initialized once it can read this, and rewrites it on upgrades (UpdateClusterConfiguration).
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kubeadm-config"}, Data: map[string]string{"ClusterConfiguration": cfgYAML}},
		// KCP's UpdateKubeletConfigMap finds it (unversioned name since Kubernetes 1.24) and reads cgroupDriver.
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kubelet-config"}, Data: map[string]string{"kubelet": kubeletConfiguration(c.network)}},
	)
	objs = append(objs, kubeadmRBAC()...)
	if !skipped(skipPhases, "addon/kube-proxy") {
		objs = append(objs, kubeProxy(c, cfg)...)
	}
	if !skipped(skipPhases, "addon/coredns") {
		objs = append(objs, coreDNS(c, cfg)...)
	}
	return objs
}

// kubeadmRBAC is what KCP ensures exists (workload_cluster_rbac.go) and kubeadm creates first.
func kubeadmRBAC() []client.Object {
	ns := metav1.NamespaceSystem
	bootstrappers := rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:bootstrappers:kubeadm:default-node-token"}
	nodes := rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}
	roleRef := func(kind, name string) rbacv1.RoleRef {
		return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: name}
	}
	return []client.Object{
		&rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:get-nodes"},
			Rules:      []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"nodes"}}},
		},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:get-nodes"}, RoleRef: roleRef("ClusterRole", "kubeadm:get-nodes"), Subjects: []rbacv1.Subject{bootstrappers}},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:cluster-admins"}, RoleRef: roleRef("ClusterRole", "cluster-admin"),
			Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "kubeadm:cluster-admins"}},
		},
		&rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kubeadm:kubelet-config"},
			Rules:      []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"kubelet-config"}}},
		},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kubeadm:kubelet-config"}, RoleRef: roleRef("Role", "kubeadm:kubelet-config"), Subjects: []rbacv1.Subject{nodes, bootstrappers}},
	}
}

func kubeletConfiguration(n clusterNetwork) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
clusterDNS:
- %s
clusterDomain: %s
rotateCertificates: true
staticPodPath: /etc/kubernetes/manifests
`, n.dnsIP, n.dnsDomain)
}

// kubeProxy: KCP's UpdateKubeProxyImageInfo patches the image of the container named kube-proxy on upgrades.
func kubeProxy(c *cluster, cfg *bootstrapv1.ClusterConfiguration) []client.Object {
	ns := metav1.NamespaceSystem
	labels := map[string]string{"k8s-app": "kube-proxy"}
	return []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kube-proxy", Labels: map[string]string{"app": "kube-proxy"}}, Data: map[string]string{
			"config.conf": fmt.Sprintf("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclusterCIDR: %q\nclientConnection:\n  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\n", c.network.podSubnet),
			"kubeconfig.conf": fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt\n    server: https://%s\n  name: default\ncontexts:\n- context:\n    cluster: default\n    namespace: default\n    user: default\n  name: default\ncurrent-context: default\nusers:\n- name: default\n  user:\n    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token\n",
				c.endpoint),
		}},
		&appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kube-proxy", Labels: labels},
			Spec: appsv1.DaemonSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						HostNetwork: true, PriorityClassName: "system-node-critical", ServiceAccountName: "kube-proxy",
						Containers:  []corev1.Container{{Name: "kube-proxy", Image: fmt.Sprintf("%s/kube-proxy:%s", cfg.ImageRepository, cfg.KubernetesVersion)}},
						Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					},
				},
			},
		},
	}
}

// coreDNS: KCP's UpdateCoreDNS reads the Corefile and the coredns container's image, migrates the
// Corefile and patches the Deployment when the KubeadmControlPlane asks for another CoreDNS.
func coreDNS(c *cluster, cfg *bootstrapv1.ClusterConfiguration) []client.Object {
	ns := metav1.NamespaceSystem
	labels := map[string]string{"k8s-app": "kube-dns"}
	repo := cfg.ImageRepository + "/coredns"
	if cfg.DNS.ImageRepository != "" {
		repo = cfg.DNS.ImageRepository
	}
	tag := defaultCoreDNSTag
	if cfg.DNS.ImageTag != "" {
		tag = cfg.DNS.ImageTag
	}
	return []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "coredns"}, Data: map[string]string{"Corefile": corefile(c.network.dnsDomain)}},
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "coredns", Labels: labels},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptrTo(int32(2)),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						PriorityClassName: "system-cluster-critical", ServiceAccountName: "coredns",
						Containers: []corev1.Container{{
							Name: "coredns", Image: fmt.Sprintf("%s:%s", repo, tag), Args: []string{"-conf", "/etc/coredns/Corefile"},
							VolumeMounts: []corev1.VolumeMount{{Name: "config-volume", MountPath: "/etc/coredns", ReadOnly: true}},
						}},
						Volumes: []corev1.Volume{{Name: "config-volume", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: "coredns"},
							Items:                []corev1.KeyToPath{{Key: "Corefile", Path: "Corefile"}},
						}}}},
						Tolerations: []corev1.Toleration{{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists}, {Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}},
					},
				},
			},
		},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kube-dns", Labels: labels},
			Spec: corev1.ServiceSpec{
				Selector: labels, ClusterIP: c.network.dnsIP.String(), ClusterIPs: []string{c.network.dnsIP.String()},
				Ports: []corev1.ServicePort{
					{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
					{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
				},
			},
		},
		// KCP's updateCoreDNSClusterRole reads it when it moves CoreDNS across 1.8.1.
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		}},
	}
}

// corefile is kubeadm's default CoreDNS configuration; KCP's CoreDNS migration parses it.
func corefile(dnsDomain string) string {
	return fmt.Sprintf(`.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes %[1]s in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success %[1]s
       disable denial %[1]s
    }
    loop
    reload
    loadbalance
}
`, dnsDomain)
}

func ptrTo[T any](v T) *T { return &v }

// deref is *p, or T's zero value for nil.
func deref[T any](p *T) (v T) {
	if p != nil {
		v = *p
	}
	return v
}
