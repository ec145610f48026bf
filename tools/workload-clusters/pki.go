package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// authority is a CA given by a cluster's owner (Cluster API's `<cluster>-ca` and `-etcd` Secrets):
// it signs the serving certificates and verifies client certificates.
type authority struct {
	cert   *x509.Certificate
	signer crypto.Signer
	pool   *x509.CertPool
	pem    string // as given, to tell a re-sent CA from another one
}

func parseAuthority(certPEM, keyPEM string) (*authority, error) {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, errors.New("certificate is not a CA")
	}
	signer, err := parsePrivateKey(keyPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &authority{cert: cert, signer: signer, pool: pool, pem: certPEM}, nil
}

// parsePrivateKey accepts the encodings Cluster API and kubeadm write (PKCS#1 RSA, SEC 1 EC, PKCS#8).
func parsePrivateKey(keyPEM string) (crypto.Signer, error) {
	block, _ := pem.Decode([]byte(keyPEM))
	if block == nil {
		return nil, errors.New("no PEM key block")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("unsupported private key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("private key cannot sign")
	}
	return signer, nil
}

// servingKey is shared by every serving certificate this process issues, as Cluster API's
// in-memory provider does: one key per certificate would cost a key generation per cluster and
// per etcd member, and nothing checks that keys differ.
var servingKey = mustECDSAKey()

func mustECDSAKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// certSpec is what a serving certificate names.
type certSpec struct {
	commonName string
	dnsNames   []string
	ips        []net.IP
	clientAuth bool // etcd member certificates also authenticate as clients (peer traffic), as kubeadm's do
}

// issue signs a one-year certificate for servingKey, kubeadm's validity for leaf certificates.
func (a *authority) issue(spec certSpec) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	usages := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	if spec.clientAuth {
		usages = append(usages, x509.ExtKeyUsageClientAuth)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: spec.commonName},
		DNSNames:     spec.dnsNames,
		IPAddresses:  spec.ips,
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  usages,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, servingKey.Public(), a.signer)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, a.cert.Raw}, PrivateKey: servingKey, Leaf: leaf}, nil
}
