// sandbox-kubelet-exec serves the kubelet's exec endpoint for one sandbox node:
//
//	POST|GET https://<node IP>:10250/exec/<namespace>/<pod>/<container>?command=…&stdout=1…
//
// which is where kube-apiserver sends `kubectl exec` (pods/exec) for a pod bound to this node. The
// stream handling (SPDY and WebSocket upgrade, protocol negotiation, the exit status frame) is
// Kubernetes' own: k8s.io/cri-streaming's remotecommand.ServeExec, the code the kubelet's streaming
// server runs. Only the "container runtime" is ours: the command runs as a plain process in this
// node's mount namespace (the sandbox node's /etc/kubernetes), with --path as its PATH, so
// `kubectl exec etcd-cp-1 -- etcdctl …` runs the sandbox's etcdctl.
//
// Like the kubelet, it requires a client certificate signed by the cluster CA (kube-apiserver
// presents apiserver-kubelet-client.crt) and answers 404 "pod does not exist" for a pod that is not
// in --pods-file (written by the sandbox kubelet: {"<ns>/<pod>": ["<container>", …]}).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

type processRuntime struct {
	path string
}

// ExecInContainer runs cmd without a shell, as the container runtime would, and reports a non-zero
// exit as utilexec.ExitError so that ServeExec sends the NonZeroExitCode status kubectl turns into
// "command terminated with exit code N".
func (r processRuntime) ExecInContainer(ctx context.Context, name, uid, container string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, timeout time.Duration) error {
	if len(cmd) == 0 {
		return errors.New("no command given")
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	c.Env = []string{"PATH=" + r.path, "HOME=/root"}
	c.Dir = "/"
	if in != nil {
		c.Stdin = in
	}
	if out != nil {
		c.Stdout = out
	}
	if errOut != nil {
		c.Stderr = errOut
	}
	if lp, err := lookPath(cmd[0], r.path); err != nil {
		// containerd's answer for a missing executable; the exit code kubectl shows is 126/127-like.
		return utilexec.CodeExitError{Err: fmt.Errorf("exec: %q: %v", cmd[0], err), Code: 127}
	} else {
		c.Path = lp
	}
	err := c.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return utilexec.CodeExitError{Err: err, Code: exitErr.ExitCode()}
	}
	return err
}

func lookPath(file, path string) (string, error) {
	if strings.Contains(file, "/") {
		if _, err := os.Stat(file); err != nil {
			return "", err
		}
		return file, nil
	}
	for _, dir := range strings.Split(path, ":") {
		p := dir + "/" + file
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("executable file not found in $PATH")
}

func podContainers(podsFile, key string) ([]string, bool) {
	data, err := os.ReadFile(podsFile)
	if err != nil {
		return nil, false
	}
	pods := map[string][]string{}
	if json.Unmarshal(data, &pods) != nil {
		return nil, false
	}
	containers, ok := pods[key]
	return containers, ok
}

func main() {
	address := flag.String("address", "", "host:port to listen on (the node IP and kubelet port 10250)")
	certFile := flag.String("tls-cert-file", "", "serving certificate")
	keyFile := flag.String("tls-private-key-file", "", "serving key")
	clientCA := flag.String("client-ca-file", "", "CA that signs the clients allowed to exec (the cluster CA)")
	podsFile := flag.String("pods-file", "", "JSON map of \"<ns>/<pod>\" to container names on this node")
	path := flag.String("path", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PATH for exec'd commands")
	flag.Parse()

	caPEM, err := os.ReadFile(*clientCA)
	if err != nil {
		log.Fatalf("reading --client-ca-file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		log.Fatalf("--client-ca-file %s holds no certificate", *clientCA)
	}
	runtime := processRuntime{path: *path}
	mux := http.NewServeMux()
	mux.HandleFunc("/exec/{namespace}/{pod}/{container}", func(w http.ResponseWriter, req *http.Request) {
		ns, pod, container := req.PathValue("namespace"), req.PathValue("pod"), req.PathValue("container")
		containers, ok := podContainers(*podsFile, ns+"/"+pod)
		if !ok {
			http.Error(w, "pod does not exist", http.StatusNotFound)
			return
		}
		found := false
		for _, c := range containers {
			found = found || c == container
		}
		if !found {
			http.Error(w, fmt.Sprintf("container not found (%q)", container), http.StatusNotFound)
			return
		}
		opts, err := remotecommand.NewOptions(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cmd := req.URL.Query()["command"]
		log.Printf("exec %s/%s/%s %q", ns, pod, container, cmd)
		remotecommand.ServeExec(w, req, runtime, ns+"_"+pod, "", container, cmd, opts, 4*time.Hour, 30*time.Second, remotecommand.SupportedStreamingProtocols)
	})
	server := &http.Server{
		Addr:    *address,
		Handler: mux,
		TLSConfig: &tls.Config{
			ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs:  pool,
			MinVersion: tls.VersionTLS12,
		},
		ReadHeaderTimeout: 30 * time.Second,
	}
	log.Printf("serving exec on https://%s", *address)
	log.Fatal(server.ListenAndServeTLS(*certFile, *keyFile))
}
