package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// webhookCA signs the managers' webhook serving certificates; kube-apiserver trusts it through
// the caBundle of every webhook configuration. It plays cert-manager's part in a real install.
type webhookCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	pem  []byte
}

func newWebhookCA(dir string) (*webhookCA, error) {
	key, cert, err := newCA("testcluster-webhook-ca")
	if err != nil {
		return nil, err
	}
	ca := &webhookCA{key: key, cert: cert, pem: pemBlock("CERTIFICATE", cert.Raw)}
	return ca, os.WriteFile(filepath.Join(dir, "webhook-ca.crt"), ca.pem, 0o644)
}

// issue writes tls.crt and tls.key (controller-runtime's default names) into certDir, for a
// server that kube-apiserver reaches at ip.
func (ca *webhookCA) issue(certDir, name string, ip net.IP) error {
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{ip},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return err
	}
	keyData, err := keyPEM(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(certDir, "tls.key"), keyData, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(certDir, "tls.crt"), pemBlock("CERTIFICATE", der), 0o644)
}
