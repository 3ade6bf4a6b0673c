// x509verify: an X509-SVID verifier for lanyard's interop tests that uses only Go's standard
// library (a pure-Go certificate parser and path validator, independent of lanyard's and of
// OpenSSL's).
//
// Usage: x509verify ROOTS_PEM CHAIN_PEM [--at RFC3339]
//
// ROOTS_PEM holds the trust anchors (one or more CERTIFICATE blocks). CHAIN_PEM holds the leaf
// first, then any intermediates. The leaf is path-validated twice, once for the clientAuth and
// once for the serverAuth extended key usage, at --at (default: now). Then the SPIFFE rules
// that path validation does not cover are checked: exactly one URI SAN, scheme spiffe, a trust
// domain and a non-empty path, leaf not a CA, leaf keyUsage with digitalSignature and without
// keyCertSign/cRLSign, and every signing certificate in the chain a CA with keyCertSign.
//
// On success prints the SPIFFE ID and exits 0. On rejection prints the reason on stderr and
// exits 1. Usage errors exit 2; unreadable files exit 3.
package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

func usage(msg string) {
	if msg == "" {
		fmt.Println("usage: x509verify ROOTS_PEM CHAIN_PEM [--at RFC3339]")
		os.Exit(0)
	}
	fmt.Fprintf(os.Stderr, "x509verify: %s\nusage: x509verify ROOTS_PEM CHAIN_PEM [--at RFC3339]\n", msg)
	os.Exit(2)
}

func reject(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "x509verify: rejected: "+format+"\n", args...)
	os.Exit(1)
}

func loadCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %v", path, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

func spiffeID(leaf *x509.Certificate) (string, error) {
	if len(leaf.URIs) == 0 {
		return "", errors.New("leaf has no URI SAN")
	}
	if len(leaf.URIs) > 1 {
		return "", fmt.Errorf("leaf has %d URI SANs, exactly one is allowed", len(leaf.URIs))
	}
	u := leaf.URIs[0]
	if u.Scheme != "spiffe" {
		return "", fmt.Errorf("URI SAN %q does not have the spiffe scheme", u.String())
	}
	if u.Host == "" || u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("URI SAN %q is not a valid SPIFFE ID", u.String())
	}
	if u.Path == "" || u.Path == "/" {
		return "", fmt.Errorf("URI SAN %q has an empty path (a leaf SVID needs a workload path)", u.String())
	}
	return (&url.URL{Scheme: "spiffe", Host: u.Host, Path: u.Path}).String(), nil
}

func main() {
	var pos []string
	at := time.Now()
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--at":
			if i+1 >= len(args) {
				usage("--at needs a value")
			}
			t, err := time.Parse(time.RFC3339, args[i+1])
			if err != nil {
				usage(fmt.Sprintf("bad --at: %v", err))
			}
			at = t
			i++
		case args[i] == "--help" || args[i] == "-h":
			usage("")
		case strings.HasPrefix(args[i], "--"):
			usage("unknown option " + args[i])
		default:
			pos = append(pos, args[i])
		}
	}
	if len(pos) != 2 {
		usage("need ROOTS_PEM and CHAIN_PEM")
	}
	roots, err := loadCerts(pos[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "x509verify: %v\n", err)
		os.Exit(3)
	}
	chain, err := loadCerts(pos[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "x509verify: %v\n", err)
		os.Exit(3)
	}
	if len(roots) == 0 {
		reject("no root certificate in %s", pos[0])
	}
	if len(chain) == 0 {
		reject("no certificate in %s", pos[1])
	}
	rootPool := x509.NewCertPool()
	for _, r := range roots {
		rootPool.AddCert(r)
	}
	interPool := x509.NewCertPool()
	for _, c := range chain[1:] {
		interPool.AddCert(c)
	}
	leaf := chain[0]

	// SPIFFE leaf rules first, so their reasons are not hidden by path-validation errors.
	id, err := spiffeID(leaf)
	if err != nil {
		reject("%v", err)
	}
	if leaf.BasicConstraintsValid && leaf.IsCA {
		reject("leaf certificate has the CA flag set")
	}
	if leaf.KeyUsage == 0 {
		reject("leaf certificate has no keyUsage")
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		reject("leaf keyUsage lacks digitalSignature")
	}
	if leaf.KeyUsage&x509.KeyUsageCertSign != 0 {
		reject("leaf keyUsage has keyCertSign")
	}
	if leaf.KeyUsage&x509.KeyUsageCRLSign != 0 {
		reject("leaf keyUsage has cRLSign")
	}

	for _, eku := range []struct {
		name  string
		usage x509.ExtKeyUsage
	}{{"clientAuth", x509.ExtKeyUsageClientAuth}, {"serverAuth", x509.ExtKeyUsageServerAuth}} {
		chains, err := leaf.Verify(x509.VerifyOptions{
			Roots:         rootPool,
			Intermediates: interPool,
			CurrentTime:   at,
			KeyUsages:     []x509.ExtKeyUsage{eku.usage},
		})
		if err != nil {
			reject("path validation for %s failed: %v", eku.name, err)
		}
		for _, ch := range chains {
			for _, signer := range ch[1:] {
				if !signer.BasicConstraintsValid || !signer.IsCA {
					reject("signing certificate %q is not a CA", signer.Subject.String())
				}
				if signer.KeyUsage != 0 && signer.KeyUsage&x509.KeyUsageCertSign == 0 {
					reject("signing certificate %q lacks keyCertSign", signer.Subject.String())
				}
			}
		}
	}
	fmt.Println(id)
}
