package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCaptureSettingsOfAProxiedLine: a line behind outbound proxies is
// judged on the wire by where it sends, its proxies, not its registrar
// (R22); a proxy given by name is named by its place in the file.
func TestCaptureSettingsOfAProxiedLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "lines.yaml")
	src := `lines:
  - name: sbc
    user: "1001"
    servers: [{addr: 127.0.0.1, port: 5090}]
    outbound_proxies: [{addr: 127.0.0.2, port: 5070}, {addr: 127.0.0.3, port: 5072}]
  - name: named
    user: "1002"
    servers: [{addr: 127.0.0.1, port: 5090}]
    outbound_proxies: [{addr: 127.0.0.2}, {addr: sbc2.example.test}]
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := lineCaptureSettings(file, "sbc")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(s.Servers); got != "[127.0.0.2:5070 127.0.0.3:5072]" {
		t.Errorf("servers on the wire %s, want the two proxies", got)
	}
	if _, err := lineCaptureSettings(file, "named"); err == nil || !strings.Contains(err.Error(), `outbound_proxies[1]: "sbc2.example.test" is a name`) {
		t.Errorf("a proxy by name: %v", err)
	}
}
