// kube-apiserver, built from the release source: the same main as k8s.io/kubernetes/cmd/kube-apiserver,
// which cannot be built by its import path because the release requires its staging modules at
// v0.0.0 (see ../../add-release.sh).
//
// One test knob, off unless set: SANDBOX_ENCRYPTION_RELOAD_INTERVAL (a Go duration) sets how often
// --encryption-provider-config-automatic-reload polls the config file (upstream: every minute,
// encryptionconfig/controller.EncryptionConfigFileChangePollDuration), so reload tests take seconds.
package main

import (
	"fmt"
	"os"
	"time"
	_ "time/tzdata"

	encryptionconfigcontroller "k8s.io/apiserver/pkg/server/options/encryptionconfig/controller"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	if v := os.Getenv("SANDBOX_ENCRYPTION_RELOAD_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			fmt.Fprintf(os.Stderr, "SANDBOX_ENCRYPTION_RELOAD_INTERVAL=%q: want a positive Go duration such as 500ms\n", v)
			os.Exit(1)
		}
		encryptionconfigcontroller.EncryptionConfigFileChangePollDuration = d
	}
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
