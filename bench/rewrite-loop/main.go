// Command rewrite-loop writes every object of one core/v1 resource back unchanged with client-go, as
// the storage-version migrator does: lists in pages across all namespaces, then one Update per
// object with the object as listed, its resourceVersion kept as the precondition, so the API server
// re-encrypts a stale value and never overwrites a newer one. bench/rewrite.ts times it next to
// `kubectl encryption rewrite -A` on the same data: the same work with no CLI around it.
//
// It prints one JSON line (listed, updated, conflicts, notFound, errors, elapsedMs) and exits 1 when
// any object could not be written.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// maxConflictRetries bounds the re-reads of one object (the plugin's default): an object that
// changes faster than it can be written is then an error, not an endless loop.
const maxConflictRetries = 10

// client is what the loop needs of a typed client (SecretInterface, ConfigMapInterface, ...).
type client[T metav1.Object, L metav1.ListInterface] interface {
	List(ctx context.Context, opts metav1.ListOptions) (L, error)
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
}

// resource binds the loop to one typed client: the client for a namespace and a list's items.
type resource[T metav1.Object, L metav1.ListInterface] struct {
	in    func(namespace string) client[T, L]
	items func(L) []T
}

type result struct {
	Listed    int64 `json:"listed"`
	Updated   int64 `json:"updated"`
	Conflicts int64 `json:"conflicts"`
	NotFound  int64 `json:"notFound"`
	Errors    int64 `json:"errors"`
	ElapsedMs int64 `json:"elapsedMs"`
}

func (r *result) add(o result) {
	r.Updated += o.Updated
	r.Conflicts += o.Conflicts
	r.NotFound += o.NotFound
	r.Errors += o.Errors
}

// run lists page by page and hands each object to `concurrency` workers. The channel holds at most
// `concurrency` objects, so the next page is asked for only when the workers are near the end of
// this one: memory stays at a page or two whatever the size, as in the plugin.
func run[T metav1.Object, L metav1.ListInterface](ctx context.Context, r resource[T, L], concurrency int, chunk int64) (result, error) {
	work := make(chan T, concurrency)
	done := make(chan result)
	for range concurrency {
		go func() {
			var c result // per worker, summed at the end: no shared counters
			for obj := range work {
				update(ctx, r, obj, &c)
			}
			done <- c
		}()
	}
	var total result
	var listErr error
	all := r.in(metav1.NamespaceAll)
	for opts := (metav1.ListOptions{Limit: chunk}); ctx.Err() == nil; {
		list, err := all.List(ctx, opts)
		if err != nil {
			listErr = err
			break
		}
		for _, obj := range r.items(list) {
			total.Listed++
			work <- obj
		}
		if opts.Continue = list.GetContinue(); opts.Continue == "" {
			break
		}
	}
	close(work)
	for range concurrency {
		total.add(<-done)
	}
	if listErr == nil {
		listErr = ctx.Err() // interrupted: the run is incomplete
	}
	return total, listErr
}

// update writes obj back as listed. A 409 means it changed since the list: the current version is
// read and written instead (as the migrator does); a 404 means it is gone, nothing to rewrite.
func update[T metav1.Object, L metav1.ListInterface](ctx context.Context, r resource[T, L], obj T, c *result) {
	ns, name := obj.GetNamespace(), obj.GetName()
	in := r.in(ns)
	for attempt := 0; ; attempt++ {
		_, err := in.Update(ctx, obj, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) && attempt < maxConflictRetries {
			c.Conflicts++
			if obj, err = in.Get(ctx, name, metav1.GetOptions{}); err == nil {
				continue
			}
		}
		switch {
		case err == nil:
			c.Updated++
		case apierrors.IsNotFound(err):
			c.NotFound++
		default:
			c.Errors++
			fmt.Fprintf(os.Stderr, "%s/%s: %v\n", ns, name, err)
		}
		return
	}
}

// pointers gives the list's items as the typed client's object type, without copying them.
func pointers[E any](items []E) []*E {
	out := make([]*E, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	res := flag.String("resource", "secrets", "core/v1 resource to rewrite: secrets or configmaps")
	concurrency := flag.Int("concurrency", 32, "updates in flight")
	qps := flag.Float64("qps", 300, "client-side limit on requests per second (rest.Config QPS)")
	burst := flag.Int("burst", 0, "rate limiter burst (rest.Config Burst; default: qps)")
	chunk := flag.Int64("chunk-size", 500, "objects per list page")
	protobuf := flag.Bool("protobuf", false, "talk protobuf, as client-go's typed clients do for built-in types by default (default: JSON)")
	flag.Parse()
	if *concurrency < 1 || *qps <= 0 || *chunk < 1 {
		fmt.Fprintln(os.Stderr, "--concurrency, --qps and --chunk-size must be positive")
		os.Exit(2)
	}

	// the typed client of the chosen resource; everything else is the same code
	var loop func(ctx context.Context, cs *kubernetes.Clientset) (result, error)
	switch *res {
	case "secrets":
		loop = func(ctx context.Context, cs *kubernetes.Clientset) (result, error) {
			return run(ctx, resource[*corev1.Secret, *corev1.SecretList]{
				in:    func(ns string) client[*corev1.Secret, *corev1.SecretList] { return cs.CoreV1().Secrets(ns) },
				items: func(l *corev1.SecretList) []*corev1.Secret { return pointers(l.Items) },
			}, *concurrency, *chunk)
		}
	case "configmaps":
		loop = func(ctx context.Context, cs *kubernetes.Clientset) (result, error) {
			return run(ctx, resource[*corev1.ConfigMap, *corev1.ConfigMapList]{
				in:    func(ns string) client[*corev1.ConfigMap, *corev1.ConfigMapList] { return cs.CoreV1().ConfigMaps(ns) },
				items: func(l *corev1.ConfigMapList) []*corev1.ConfigMap { return pointers(l.Items) },
			}, *concurrency, *chunk)
		}
	default:
		fmt.Fprintf(os.Stderr, "--resource %s: secrets or configmaps\n", *res)
		os.Exit(2)
	}

	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = *kubeconfig
	config, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubeconfig:", err)
		os.Exit(1)
	}
	// One token bucket for every request of the run, as client-go's own throttling does.
	config.QPS = float32(*qps)
	config.Burst = *burst
	if config.Burst <= 0 {
		config.Burst = int(math.Ceil(*qps))
	}
	// Set either way: with no ContentType, client-go 0.37's typed clients pick protobuf for
	// built-in types on their own.
	if *protobuf {
		config.ContentType = runtime.ContentTypeProtobuf
		config.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	} else {
		config.ContentType = runtime.ContentTypeJSON
	}
	cs, err := kubernetes.NewForConfig(config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}

	// SIGTERM (the bench's timeout) stops the list; the JSON line still reports what was done.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	out, err := loop(ctx, cs)
	out.ElapsedMs = time.Since(start).Milliseconds()
	if err != nil {
		out.Errors++
		fmt.Fprintln(os.Stderr, "list:", err)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
	if out.Errors > 0 {
		os.Exit(1)
	}
}
