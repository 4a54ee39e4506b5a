// Command cel-spec-json reads cel-spec's simple conformance files (text format of
// cel.expr.conformance.test.SimpleTestFile) and writes each as JSON, with the protobuf
// module's own parser and encoder, so the Python test reads them with nothing but json.
//
//	cel-spec-json OUT_DIR FILE.textproto...
//
// Writes OUT_DIR/NAME.json for each FILE; field names stay as written in the .proto
// (int64_value, eval_error). The messages the cases embed in google.protobuf.Any
// (TestAllTypes of proto2 and proto3, their extensions) are linked in so they resolve.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	_ "cel.dev/expr/conformance/proto2"
	_ "cel.dev/expr/conformance/proto3"
	"cel.dev/expr/conformance/test"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: cel-spec-json OUT_DIR FILE.textproto...")
		os.Exit(2)
	}
	out := os.Args[1]
	for _, path := range os.Args[2:] {
		if err := convert(out, path); err != nil {
			fmt.Fprintf(os.Stderr, "cel-spec-json: %s: %v\n", path, err)
			os.Exit(1)
		}
	}
}

func convert(out, path string) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var file test.SimpleTestFile
	if err := prototext.Unmarshal(text, &file); err != nil {
		return err
	}
	data, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(&file)
	if err != nil {
		return err
	}
	name := strings.TrimSuffix(filepath.Base(path), ".textproto") + ".json"
	return os.WriteFile(filepath.Join(out, name), data, 0o644)
}
