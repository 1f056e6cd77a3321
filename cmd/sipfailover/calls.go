package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/settings"
)

// api is the agent's call API under /api/calls, used by `sipfailover call`
// and `sipfailover hangup`.
type api struct {
	agent *runtime.Agent

	mu         sync.Mutex
	cfg        settings.Config
	lines      map[string]*runtime.Line
	ended      map[string]runtime.CallInfo // the latest ended calls, for whoever asks how they ended
	endedOrder []string
}

// maxEnded bounds how many ended calls the API remembers.
const maxEnded = 200

// set takes the running settings and lines, after a start or a reload.
func (a *api) set(cfg settings.Config, lines map[string]*runtime.Line) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg, a.lines = cfg, lines
}

// statuses returns every line's status in the order of the settings, the
// order the pages number them in.
func (a *api) statuses() []runtime.Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []runtime.Status{}
	for i, lc := range a.cfg.Lines {
		if l := a.lines[lineKey(i, lc)]; l != nil {
			out = append(out, l.Status())
		}
	}
	return out
}

// settings returns the running settings.
func (a *api) settings() settings.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// noteCall remembers how calls end.
func (a *api) noteCall(info runtime.CallInfo) {
	if info.State != fsm.CallStateEnded.String() {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ended[info.ID] = info
	a.endedOrder = append(a.endedOrder, info.ID)
	if len(a.endedOrder) > maxEnded {
		delete(a.ended, a.endedOrder[0])
		a.endedOrder = a.endedOrder[1:]
	}
}

// line finds a line by its number in the settings (1 and up) or its name.
func (a *api) line(sel string) (*runtime.Line, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := sel
	if n, err := strconv.Atoi(sel); err == nil {
		if n < 1 || n > len(a.cfg.Lines) {
			return nil, fmt.Errorf("line %d: the settings have lines 1 to %d", n, len(a.cfg.Lines))
		}
		key = lineKey(n-1, a.cfg.Lines[n-1])
	}
	l := a.lines[key]
	if l == nil {
		return nil, fmt.Errorf("no line %q", sel)
	}
	return l, nil
}

// call finds a call by its Call-ID, live or recently ended.
func (a *api) call(id string) (*runtime.Call, runtime.CallInfo, bool) {
	for _, l := range a.agent.Lines() {
		for _, c := range l.Calls() {
			if c.ID() == id {
				return c, c.Info(), true
			}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	info, ok := a.ended[id]
	return nil, info, ok
}

func (a *api) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/calls", func(w http.ResponseWriter, r *http.Request) {
		out := []runtime.CallInfo{}
		for _, l := range a.agent.Lines() {
			for _, c := range l.Calls() {
				out = append(out, c.Info())
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /api/calls/{id}", func(w http.ResponseWriter, r *http.Request) {
		if _, info, ok := a.call(r.PathValue("id")); ok {
			writeJSON(w, http.StatusOK, info)
			return
		}
		writeJSON(w, http.StatusNotFound, apiError{"no call " + r.PathValue("id")})
	})
	// POST /api/calls {"line": "1", "to": "sip:..."} places a call (R6).
	mux.HandleFunc("POST /api/calls", func(w http.ResponseWriter, r *http.Request) {
		var req dialRequest
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{"body: " + err.Error()})
			return
		}
		l, err := a.line(req.Line)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{"line: " + err.Error()})
			return
		}
		c, err := l.Dial(req.To)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{"to: " + err.Error()})
			return
		}
		writeJSON(w, http.StatusCreated, c.Info())
	})
	// POST /api/lines/{line}/events {"event": "user.register"} delivers a
	// user's event of the line model, as a phone's menu does; an event added
	// to the model is there with no code of its own.
	mux.HandleFunc("POST /api/lines/{line}/events", func(w http.ResponseWriter, r *http.Request) {
		var req eventRequest
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{"body: " + err.Error()})
			return
		}
		l, err := a.line(r.PathValue("line"))
		if err != nil {
			writeJSON(w, http.StatusNotFound, apiError{"line: " + err.Error()})
			return
		}
		if err := l.UserEvent(req.Event); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{"event: " + err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, l.Status())
	})
	// POST /api/calls/{id}/hangup ends a call (R7).
	mux.HandleFunc("POST /api/calls/{id}/hangup", func(w http.ResponseWriter, r *http.Request) {
		c, info, ok := a.call(r.PathValue("id"))
		switch {
		case !ok:
			writeJSON(w, http.StatusNotFound, apiError{"no call " + r.PathValue("id")})
		case c == nil:
			writeJSON(w, http.StatusOK, info) // it had ended
		default:
			c.Hangup()
			writeJSON(w, http.StatusOK, c.Info())
		}
	})
}

// eventRequest is the body of POST /api/lines/{line}/events.
type eventRequest struct {
	Event string `json:"event"` // a user's event of model/line.yaml: "user.register"
}

// dialRequest is the body of POST /api/calls.
type dialRequest struct {
	Line string `json:"line"` // the line's number in the settings (1 and up) or its name
	To   string `json:"to"`   // a sip: or sips: URI
}

type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// callCmd is `sipfailover call -line N URI`: place a call through a running
// agent and wait until it is answered or ends.
func callCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := agentAddr(fs)
	tokenFile := fs.String("token-file", "", "the agent's -token-file (default: the one for -status-addr)")
	line := fs.String("line", "1", "the line: its number in the settings (1 and up) or its name")
	wait := fs.Duration("wait", 3*time.Minute, "how long to wait for the answer")
	if code, ok := parse(fs, args, "call [-line N] [-status-addr HOST:PORT] NUMBER|user@host|sip:user@host", 1, 1, stdout, stderr); !ok {
		return code
	}
	c, err := newAPIClient(*addr, *tokenFile)
	if err != nil {
		fmt.Fprintln(stderr, "call:", err)
		return 1
	}
	var info runtime.CallInfo
	if err := c.do("POST", "/api/calls", dialRequest{Line: *line, To: fs.Arg(0)}, &info); err != nil {
		fmt.Fprintln(stderr, "call:", err)
		return 1
	}
	id := info.ID
	info, err = c.waitCall(id, *wait, fsm.CallStateConfirmed, fsm.CallStateEnded)
	if err != nil {
		fmt.Fprintln(stderr, "call:", err)
		if info.State != "" && info.State != fsm.CallStateEnded.String() {
			fmt.Fprintf(stderr, "call: the call goes on; end it with: sipfailover hangup %s\n", id)
		}
		return 1
	}
	printCall(stdout, info)
	if info.State != fsm.CallStateConfirmed.String() {
		return 1
	}
	return 0
}

// hangupCmd is `sipfailover hangup [ID]`: end a call, or every call of a
// running agent, and wait until each has ended.
func hangupCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hangup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := agentAddr(fs)
	tokenFile := fs.String("token-file", "", "the agent's -token-file (default: the one for -status-addr)")
	wait := fs.Duration("wait", 2*time.Minute, "how long to wait for the call to end")
	if code, ok := parse(fs, args, "hangup [-status-addr HOST:PORT] [CALL-ID...]", 0, -1, stdout, stderr); !ok {
		return code
	}
	c, err := newAPIClient(*addr, *tokenFile)
	if err != nil {
		fmt.Fprintln(stderr, "hangup:", err)
		return 1
	}
	ids := fs.Args()
	if len(ids) == 0 {
		var calls []runtime.CallInfo
		if err := c.do("GET", "/api/calls", nil, &calls); err != nil {
			fmt.Fprintln(stderr, "hangup:", err)
			return 1
		}
		for _, ci := range calls {
			ids = append(ids, ci.ID)
		}
		if len(ids) == 0 {
			fmt.Fprintln(stdout, "no calls")
			return 0
		}
	}
	code := 0
	for _, id := range ids {
		var info runtime.CallInfo
		err := c.do("POST", "/api/calls/"+url.PathEscape(id)+"/hangup", struct{}{}, &info)
		if err == nil {
			info, err = c.waitCall(id, *wait, fsm.CallStateEnded)
		}
		if err != nil {
			fmt.Fprintln(stderr, "hangup:", err)
			code = 1
			continue
		}
		printCall(stdout, info)
	}
	return code
}

// eventCmd is `sipfailover event [-line N] EVENT`: deliver a user's event
// of the line model to a line of a running agent (user.register re-registers
// it at once), and print how the line stands then.
func eventCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("event", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := agentAddr(fs)
	tokenFile := fs.String("token-file", "", "the agent's -token-file (default: the one for -status-addr)")
	line := fs.String("line", "1", "the line: its number in the settings (1 and up) or its name")
	if code, ok := parse(fs, args, "event [-line N] [-status-addr HOST:PORT] EVENT", 1, 1, stdout, stderr); !ok {
		return code
	}
	name := fs.Arg(0)
	if !slices.Contains(runtime.UserEvents(), name) {
		fmt.Fprintf(stderr, "event: %q is not a user's event of the line model; those are %s\n", name, strings.Join(runtime.UserEvents(), ", "))
		return 2
	}
	c, err := newAPIClient(*addr, *tokenFile)
	if err != nil {
		fmt.Fprintln(stderr, "event:", err)
		return 1
	}
	var st runtime.Status
	if err := c.do("POST", "/api/lines/"+url.PathEscape(*line)+"/events", eventRequest{Event: name}, &st); err != nil {
		fmt.Fprintln(stderr, "event:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s delivered; the line is %s (server %d %s)\n", st.Line, name, st.State, st.Server, st.Where)
	return 0
}

// callsCmd is `sipfailover calls`: list the calls of a running agent that
// have not ended, with their server, state and age.
func callsCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("calls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := agentAddr(fs)
	tokenFile := fs.String("token-file", "", "the agent's -token-file (default: the one for -status-addr)")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := parse(fs, args, "calls [-status-addr HOST:PORT] [-token-file FILE] [-json]", 0, 0, stdout, stderr); !ok {
		return code
	}
	calls, err := listCalls(*addr, *tokenFile)
	if err != nil {
		fmt.Fprintln(stderr, "calls:", err)
		return 1
	}
	switch {
	case *asJSON:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(calls)
	case len(calls) == 0:
		fmt.Fprintln(stdout, "no calls")
	default:
		printCalls(stdout, calls, time.Now())
	}
	return 0
}

// listCalls asks the agent at addr for its calls, with its control token.
func listCalls(addr, tokenFile string) ([]runtime.CallInfo, error) {
	c, err := newAPIClient(addr, tokenFile)
	if err != nil {
		return nil, err
	}
	var calls []runtime.CallInfo
	if err := c.do("GET", "/api/calls", nil, &calls); err != nil {
		return nil, err
	}
	return calls, nil
}

// printCalls writes calls as a table: each with its line, direction, far
// end, state, server and age at now; the ID is what `hangup` takes.
func printCalls(w io.Writer, calls []runtime.CallInfo, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CALL\tLINE\tDIRECTION\tFAR END\tSTATE\tSERVER\tAGE")
	for _, c := range calls {
		dir := "incoming"
		if c.Outgoing {
			dir = "outgoing"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d %s\t%v\n", c.ID, c.Line, dir, c.Remote, c.State, c.Server, c.ServerAddr, now.Sub(c.Started).Round(time.Second))
	}
	tw.Flush()
}

func printCall(w io.Writer, i runtime.CallInfo) {
	fmt.Fprintf(w, "call %s on %s to %s: %s through server %d %s", i.ID, i.Line, i.Remote, i.State, i.Server, i.ServerAddr)
	if i.Reason != "" {
		fmt.Fprintf(w, " (%s)", i.Reason)
	}
	fmt.Fprintln(w)
}

// apiClient talks to a running agent's call API, with its control token.
type apiClient struct{ addr, token string }

// newAPIClient reads the control token of the agent at addr.
func newAPIClient(addr, tokenFile string) (*apiClient, error) {
	tok, err := readToken(cmp.Or(tokenFile, tokenPath(addr)))
	if err != nil {
		return nil, err
	}
	return &apiClient{addr: addr, token: tok}, nil
}

// do sends a request, with body as JSON when there is one, and decodes the
// answer into out.
func (c *apiClient) do(method, path string, body, out any) error {
	client := &http.Client{Timeout: 10 * time.Second}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+c.addr+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := client.Do(req)
	if err != nil {
		return noAgent(c.addr, err)
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		var e apiError
		if json.NewDecoder(res.Body).Decode(&e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("agent answered %s", res.Status)
	}
	return json.NewDecoder(res.Body).Decode(out)
}

// waitCall polls a call until it is in one of states, or wait runs out.
func (c *apiClient) waitCall(id string, wait time.Duration, states ...fsm.CallState) (runtime.CallInfo, error) {
	deadline := time.Now().Add(wait)
	for {
		var info runtime.CallInfo
		if err := c.do("GET", "/api/calls/"+url.PathEscape(id), nil, &info); err != nil {
			return info, err
		}
		for _, s := range states {
			if info.State == s.String() {
				return info, nil
			}
		}
		if time.Now().After(deadline) {
			return info, fmt.Errorf("call %s still %s after %v", id, info.State, wait)
		}
		time.Sleep(50 * time.Millisecond) // polling the agent, not line logic
	}
}
