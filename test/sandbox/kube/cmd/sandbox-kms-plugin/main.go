// sandbox-kms-plugin is a KMS v2 plugin for the sandbox, served with Kubernetes' own gRPC service
// (k8s.io/kms/pkg/service), on a unix socket as users run theirs:
//
//	sandbox-kms-plugin --socket /var/run/kmsplugin/socket.sock --kek-file /var/lib/kmsplugin/kek
//
// The key-encryption keys live in --kek-file (mode 0600, one base64 32-byte key per line, the current
// one first), read on every call, so a test rotates the KEK by writing a new first line: the key ID
// changes, and values under older KEKs still decrypt while their line stays. The key ID is
// "kek-" + the first 16 hex digits of the KEK's SHA-256 (never the key itself).
// While a file "<kek-file>.unhealthy" exists, Status answers that text as its healthz, and
// Encrypt/Decrypt fail: a plugin outage as the apiserver sees it.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/kms/pkg/service"
)

type kek struct {
	id  string
	key []byte
}

type plugin struct {
	kekFile string
}

func keyID(key []byte) string {
	sum := sha256.Sum256(key)
	return "kek-" + hex.EncodeToString(sum[:8])
}

func (p plugin) keks() ([]kek, error) {
	st, err := os.Stat(p.kekFile)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %o); want 0600", p.kekFile, st.Mode().Perm())
	}
	data, err := os.ReadFile(p.kekFile)
	if err != nil {
		return nil, err
	}
	var out []kek
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(line)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("%s: line %d is not a base64 32-byte key", p.kekFile, len(out)+1)
		}
		out = append(out, kek{id: keyID(key), key: key})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no key", p.kekFile)
	}
	return out, nil
}

func (p plugin) unhealthy() string {
	data, err := os.ReadFile(p.kekFile + ".unhealthy")
	if err != nil {
		return ""
	}
	if msg := strings.TrimSpace(string(data)); msg != "" {
		return msg
	}
	return "unhealthy"
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (p plugin) Encrypt(_ context.Context, _ string, data []byte) (*service.EncryptResponse, error) {
	if msg := p.unhealthy(); msg != "" {
		return nil, errors.New(msg)
	}
	keks, err := p.keks()
	if err != nil {
		return nil, err
	}
	aead, err := gcm(keks[0].key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return &service.EncryptResponse{Ciphertext: aead.Seal(nonce, nonce, data, []byte(keks[0].id)), KeyID: keks[0].id}, nil
}

func (p plugin) Decrypt(_ context.Context, _ string, req *service.DecryptRequest) ([]byte, error) {
	if msg := p.unhealthy(); msg != "" {
		return nil, errors.New(msg)
	}
	keks, err := p.keks()
	if err != nil {
		return nil, err
	}
	for _, k := range keks {
		if k.id != req.KeyID {
			continue
		}
		aead, err := gcm(k.key)
		if err != nil {
			return nil, err
		}
		if len(req.Ciphertext) < aead.NonceSize() {
			return nil, errors.New("ciphertext too short")
		}
		n := aead.NonceSize()
		return aead.Open(nil, req.Ciphertext[:n], req.Ciphertext[n:], []byte(k.id))
	}
	return nil, fmt.Errorf("no key-encryption key with ID %q", req.KeyID)
}

func (p plugin) Status(context.Context) (*service.StatusResponse, error) {
	if msg := p.unhealthy(); msg != "" {
		return &service.StatusResponse{Version: "v2", Healthz: msg}, nil
	}
	keks, err := p.keks()
	if err != nil {
		return &service.StatusResponse{Version: "v2", Healthz: err.Error()}, nil
	}
	return &service.StatusResponse{Version: "v2", Healthz: "ok", KeyID: keks[0].id}, nil
}

func main() {
	socket := flag.String("socket", "/var/run/kmsplugin/socket.sock", "unix socket to serve on")
	kekFile := flag.String("kek-file", "", "file with the key-encryption keys (0600), current first")
	flag.Parse()
	if *kekFile == "" {
		log.Fatal("--kek-file is required")
	}
	p := plugin{kekFile: *kekFile}
	if _, err := p.keks(); err != nil {
		log.Fatal(err)
	}
	_ = os.Remove(*socket)
	svc := service.NewGRPCService(*socket, 5*time.Second, p)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		svc.Shutdown()
	}()
	log.Printf("KMS v2 plugin serving on %s", *socket)
	if err := svc.ListenAndServe(); err != nil {
		log.Fatal(err)
	}
}
