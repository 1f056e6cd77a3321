package main

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/sipfailover/sipfailover/runtime/settings"
)

// The status port serves /api/status to anyone on the machine, and the
// call API (/api/calls: place, list, hang up) only to whoever can read the
// control token: a random secret the agent writes at start to a file only
// its user can read, and `sipfailover call`, `hangup` and `status` read. A
// web page in a local browser cannot read the file, cannot send the
// Authorization header across origins without CORS, and is refused by
// origin and by Host (DNS rebinding) besides (toll fraud through the
// status port was possible before).

// tokenPath is where the agent serving addr keeps its control token unless
// -token-file says otherwise: in the user's runtime or cache folder, one
// file per status address.
func tokenPath(addr string) string {
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		if d, err := os.UserCacheDir(); err == nil {
			dir = d
		} else {
			dir = os.TempDir()
		}
	}
	name := strings.NewReplacer(":", "_", "[", "", "]", "", "/", "_").Replace(addr)
	return filepath.Join(dir, "sipfailover", "status-"+name+".token")
}

// writeToken makes a new control token and stores it at path, readable by
// the user only (0600 in a 0700 folder), replacing any older one whole.
func writeToken(path string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("control token: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".token.*")
	if err != nil {
		return "", fmt.Errorf("control token: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return "", fmt.Errorf("control token: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("control token: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("control token: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", fmt.Errorf("control token: %w", err)
	}
	return tok, nil
}

// readToken reads the control token at path.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("control token (is the agent running, as this user?): %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// errRemote refuses a listen address anyone on the network can reach.
var errRemote = errors.New("is not a loopback address; anyone on the network could reach it")

// loopback says whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && settings.Loopback(host)
}

// guard lets a request to the call API through only with the control
// token, from no other origin, to a Host the port answers as, and with a
// JSON body when it has one.
func guard(token string, hosts []string, h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(r.Host, hosts) {
			writeJSON(w, http.StatusMisdirectedRequest, apiError{"host " + r.Host + " is not this agent's"})
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			writeJSON(w, http.StatusForbidden, apiError{"requests from web pages are refused"})
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sipfailover"`)
			writeJSON(w, http.StatusUnauthorized, apiError{"the control token is missing or wrong (see -token-file)"})
			return
		}
		if r.Method == http.MethodPost {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				writeJSON(w, http.StatusUnsupportedMediaType, apiError{"the body must be JSON (Content-Type: application/json)"})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		}
		h.ServeHTTP(w, r)
	}))
}

// hostAllowed checks the Host header against the names the port answers
// as, so that a DNS name rebound to 127.0.0.1 is refused.
func hostAllowed(host string, hosts []string) bool {
	for _, h := range hosts {
		if strings.EqualFold(host, h) {
			return true
		}
	}
	return false
}

// hostsFor lists the Host values a listener at addr answers to: its
// address, and localhost on its port.
func hostsFor(addr net.Addr) []string {
	_, port, _ := net.SplitHostPort(addr.String())
	return []string{addr.String(), "localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port}
}
