// kstatus prints the kstatus verdict on one Kubernetes object, as Flux, kpt and Config Sync
// compute it: sigs.k8s.io/cli-utils' status.Compute, on the object read as JSON or YAML.
//
//	kstatus [FILE]     (standard input without FILE)
//
// It prints one JSON line, {"status":"Current|InProgress|Failed|Terminating|...","message":"..."}.
// The tests feed it the objects the operator wrote and the shared fixtures of tests/fixtures/health,
// and compare with the Argo CD health check (charts/workos-convex-auth/files/argocd-health.lua).
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	in := io.Reader(os.Stdin)
	switch len(os.Args) {
	case 1:
	case 2:
		f, err := os.Open(os.Args[1])
		if err != nil {
			fail(err)
		}
		defer f.Close()
		in = f
	default:
		fmt.Fprintln(os.Stderr, "usage: kstatus [FILE]")
		os.Exit(2)
	}
	data, err := io.ReadAll(in)
	if err != nil {
		fail(err)
	}
	v, err := compute(data)
	if err != nil {
		fail(err)
	}
	out := json.NewEncoder(os.Stdout)
	out.SetEscapeHTML(false) // messages quote URLs and hosts: keep them readable
	if err := out.Encode(v); err != nil {
		fail(err)
	}
}

func compute(data []byte) (verdict, error) {
	// JSON is YAML. Unstructured's own JSON decoding keeps integers as int64, which kstatus
	// needs to read metadata.generation and status.observedGeneration (a float64 would be
	// an error there).
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return verdict{}, err
	}
	var u unstructured.Unstructured
	if err := u.UnmarshalJSON(j); err != nil {
		return verdict{}, err
	}
	res, err := status.Compute(&u)
	if err != nil {
		return verdict{}, err
	}
	return verdict{string(res.Status), res.Message}, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kstatus:", err)
	os.Exit(1)
}
