package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// store is an in-memory API for Secrets: pages by index, checks the resourceVersion precondition.
type store struct {
	mu      sync.Mutex
	names   []string
	rv      map[string]int
	deleted map[string]bool
	bumped  map[string]bool // changed once after the list (a concurrent writer)
}

type nsClient struct {
	s  *store
	ns string
}

var gr = schema.GroupResource{Resource: "secrets"}

func (c nsClient) List(_ context.Context, opts metav1.ListOptions) (*corev1.SecretList, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	from, _ := strconv.Atoi(opts.Continue)
	to := min(from+int(opts.Limit), len(c.s.names))
	list := &corev1.SecretList{}
	for _, n := range c.s.names[from:to] {
		list.Items = append(list.Items, corev1.Secret{ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: n, ResourceVersion: strconv.Itoa(c.s.rv[n]),
		}})
	}
	if to < len(c.s.names) {
		list.Continue = strconv.Itoa(to)
	}
	return list, nil
}

func (c nsClient) Get(_ context.Context, name string, _ metav1.GetOptions) (*corev1.Secret, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.s.deleted[name] {
		return nil, apierrors.NewNotFound(gr, name)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Namespace: c.ns, Name: name, ResourceVersion: strconv.Itoa(c.s.rv[name]),
	}}, nil
}

func (c nsClient) Update(_ context.Context, obj *corev1.Secret, _ metav1.UpdateOptions) (*corev1.Secret, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.ns != "ns" {
		return nil, fmt.Errorf("update in namespace %q", c.ns)
	}
	if c.s.deleted[obj.Name] {
		return nil, apierrors.NewNotFound(gr, obj.Name)
	}
	if c.s.bumped[obj.Name] {
		c.s.rv[obj.Name]++ // written by someone else since the list
		delete(c.s.bumped, obj.Name)
	}
	if obj.ResourceVersion != strconv.Itoa(c.s.rv[obj.Name]) {
		return nil, apierrors.NewConflict(gr, obj.Name, fmt.Errorf("the object has been modified"))
	}
	c.s.rv[obj.Name]++
	return obj, nil
}

func TestRun(t *testing.T) {
	s := &store{rv: map[string]int{}, deleted: map[string]bool{"s-7": true}, bumped: map[string]bool{"s-3": true, "s-11": true}}
	for i := range 25 {
		n := fmt.Sprintf("s-%d", i)
		s.names = append(s.names, n)
		s.rv[n] = 1
	}
	got, err := run(context.Background(), resource[*corev1.Secret, *corev1.SecretList]{
		in:    func(ns string) client[*corev1.Secret, *corev1.SecretList] { return nsClient{s, ns} },
		items: func(l *corev1.SecretList) []*corev1.Secret { return pointers(l.Items) },
	}, 4, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := result{Listed: 25, Updated: 24, Conflicts: 2, NotFound: 1}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
