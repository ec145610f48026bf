package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkThousandClusters creates 1000 clusters of two nodes (a control plane and a worker)
// through the control API and reports the process's resident memory:
//
//	go test -run '^$' -bench ThousandClusters -benchtime 1x
//
// The CAs are RSA-2048 as KCP makes them, one pair shared by every cluster (generating 2000
// keys would dominate the run and changes nothing in what the server holds per cluster).
func BenchmarkThousandClusters(b *testing.B) {
	const clusters = 1000
	caCert, caKey := rsaCA(b, "kubernetes")
	etcdCert, etcdKey := rsaCA(b, "etcd-ca")
	for range b.N {
		st := startStack(b, Options{})
		start := time.Now()
		for i := range clusters {
			vip := fmt.Sprintf("127.1.%d.%d", i/250, i%250+1)
			c := st.newCluster(fmt.Sprintf("c%04d", i), vip)
			init := c.request(true, true)
			init["pki"] = map[string]string{"ca.crt": caCert, "ca.key": caKey, "etcd/ca.crt": etcdCert, "etcd/ca.key": etcdKey}
			c.mustPut("cp-"+strconv.Itoa(i), init, http.StatusCreated)
			c.mustPut("worker-"+strconv.Itoa(i), c.request(false, false), http.StatusCreated)
		}
		elapsed := time.Since(start)
		runtime.GC()
		var mem runtime.MemStats
		runtime.ReadMemStats(&mem)
		b.ReportMetric(float64(rssBytes(b))/(1<<20), "RSS-MiB")
		b.ReportMetric(float64(mem.HeapInuse)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(elapsed.Milliseconds())/clusters, "ms/cluster")
	}
}

// rssBytes reads VmRSS of this process.
func rssBytes(b *testing.B) int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

func rsaCA(b *testing.B, name string) (certPEM, keyPEM string) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		b.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}
