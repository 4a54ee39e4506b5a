// Pins the cel-spec release (Go module cel.dev/expr, github.com/google/cel-spec) whose
// conformance cases (tests/simple/testdata/*.textproto) tests/cel_conformance runs, and
// builds the converter (main.go) scripts/cel-spec turns them into JSON with.
module edgewarden.dev/tests/kube/cel-spec

go 1.26.0

require (
	cel.dev/expr v0.26.0
	google.golang.org/protobuf v1.36.12
)
