package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipfailover/sipfailover/cmd/sipfailover/web"
	"github.com/sipfailover/sipfailover/runtime"
	"github.com/sipfailover/sipfailover/runtime/settings"
	"github.com/sipfailover/sipfailover/runtime/transport"
)

const defaultStatusAddr = "127.0.0.1:5380"

// runCmd is `sipfailover run -config FILE`: the agent for real servers.
func runCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "settings file (YAML); see docs/settings.md")
	var o serveOptions
	fs.StringVar(&o.statusAddr, "status-addr", defaultStatusAddr, "where to serve /api/status and the call API (loopback)")
	fs.StringVar(&o.tokenFile, "token-file", "", "where to write the call API's control token (default: one per status address in the user's runtime folder)")
	fs.BoolVar(&o.remote, "status-remote", false, "allow a -status-addr that is not loopback (anyone who reaches it sees the lines' status)")
	if code, ok := parse(fs, args, "run -config FILE", 0, 0, stdout, stderr); !ok {
		return code
	}
	o.config = *config
	if *config == "" {
		fmt.Fprintln(stderr, "run: -config is required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reload := make(chan os.Signal, 1)
	signal.Notify(reload, syscall.SIGHUP)
	defer signal.Stop(reload)
	hup := make(chan struct{}, 1)
	go func() {
		for range reload {
			select {
			case hup <- struct{}{}:
			default:
			}
		}
	}()
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	// sipgo logs through its own default logger: into the program's log.
	sip.SetDefaultLogger(log.With("lib", "sipgo"))
	if err := serve(ctx, o, hup, log); err != nil {
		fmt.Fprintln(stderr, "run:", err)
		return 1
	}
	return 0
}

// lineKey names a line across reloads: its name, else its position.
func lineKey(i int, c settings.LineConfig) string {
	if c.Name != "" {
		return c.Name
	}
	return "#" + strconv.Itoa(i+1)
}

// serve runs the agent until ctx ends, then de-registers every line. Each
// value on reload re-reads the settings: a bad file is reported and the
// running settings stay; otherwise only lines whose settings changed are
// re-registered (R15). With a web section in the settings it also serves
// the configuration and status pages, whose Submit stores the settings
// atomically and applies them the same way.
func serve(ctx context.Context, o serveOptions, reload <-chan struct{}, log *slog.Logger) error {
	path := o.config
	if !o.remote && !loopback(o.statusAddr) {
		return fmt.Errorf("-status-addr %s %w; use -status-remote to allow it", o.statusAddr, errRemote)
	}
	cfg, err := settings.Load(path)
	if err != nil {
		return err
	}
	warn(log, cfg)
	tlsConf, err := cfg.TLSConfig()
	if err != nil {
		return err
	}
	network := transport.NewSocketNetwork(tlsConf, log)
	defer network.Close()
	api := &api{ended: map[string]runtime.CallInfo{}}
	metrics := web.NewMetrics(nil)
	applyReqs := make(chan applyReq)
	pages := &web.Server{
		Settings: api.settings,
		Counters: func() runtime.Counters { return api.agent.Counters() },
		Apply: func(next settings.Config) error {
			done := make(chan error, 1)
			select {
			case applyReqs <- applyReq{next, done}:
				return <-done
			case <-ctx.Done():
				return ctx.Err()
			}
		},
		Metrics: metrics,
	}
	agent := runtime.NewAgent(network, runtime.WithLogger(log), runtime.WithCallWatcher(api.noteCall), runtime.WithResolver(cfg.Resolver()),
		runtime.WithMaxCalls(cmp.Or(cfg.MaxCalls, runtime.DefaultMaxCalls)), runtime.WithPacing(cfg.PacingOrDefault()),
		runtime.WithWatcher(func(t runtime.Transition) {
			metrics.Observe(t)
			pages.Changed()
		}))
	api.agent = agent
	statuses := func() []runtime.Status { return api.statuses() }
	pages.Lines = statuses
	lines := map[string]*runtime.Line{}
	for i, lc := range cfg.Lines {
		l, err := agent.AddLine(lc)
		if err != nil {
			return err
		}
		lines[lineKey(i, lc)] = l
		l.Register()
	}
	api.set(cfg, lines)

	ln, err := net.Listen("tcp", o.statusAddr)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	tokenFile := cmp.Or(o.tokenFile, tokenPath(ln.Addr().String()))
	token, err := writeToken(tokenFile)
	if err != nil {
		ln.Close()
		return err
	}
	defer os.Remove(tokenFile)
	hosts := hostsFor(ln.Addr())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(r.Host, hosts) {
			writeJSON(w, http.StatusMisdirectedRequest, apiError{"host " + r.Host + " is not this agent's"})
			return
		}
		writeJSON(w, http.StatusOK, statuses())
	})
	calls := http.NewServeMux()
	api.routes(calls)
	mux.Handle("/api/calls", guard(token, hosts, calls))
	mux.Handle("/api/calls/", guard(token, hosts, calls))
	mux.Handle("/api/lines/", guard(token, hosts, calls))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 64 << 10}
	go srv.Serve(ln)
	defer srv.Close()
	log.Info("agent running", "lines", len(lines), "status", "http://"+ln.Addr().String()+"/api/status", "token_file", tokenFile)

	if w := cfg.Web; w != nil {
		listen := cmp.Or(w.Listen, settings.DefaultWebListen)
		wl, err := net.Listen("tcp", listen)
		if err != nil {
			return fmt.Errorf("web: %w", err)
		}
		pages.PasswordHash, pages.MetricsToken = w.PasswordHash, w.MetricsToken
		wsrv := &http.Server{Handler: pages.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
			IdleTimeout: time.Minute, MaxHeaderBytes: 64 << 10} // no write timeout: /events streams; it sets its own
		scheme := "http"
		if w.TLSCert != "" {
			scheme = "https"
			go wsrv.ServeTLS(wl, w.TLSCert, w.TLSKey)
		} else {
			go wsrv.Serve(wl)
		}
		defer wsrv.Close()
		log.Info("pages served", "url", scheme+"://"+wl.Addr().String()+"/")
	}

	for {
		select {
		case <-ctx.Done():
			log.Info("stopping: de-registering every line")
			unregisterAll(agent.Lines())
			return nil
		case <-reload:
			next, err := settings.Load(path)
			if err != nil {
				log.Error("reload refused; the running settings stay", "err", err)
				continue
			}
			warn(log, next)
			agentSettings(agent, cfg, next)
			lines = apply(agent, lines, next, log, metrics.Forget)
			cfg = next
			api.set(cfg, lines)
		case req := <-applyReqs:
			// The page's Submit: stored whole first, then applied (R15).
			if err := settings.Save(path, req.next); err != nil {
				log.Error("settings from the page refused; the running settings stay", "err", err)
				req.done <- err
				continue
			}
			log.Info("settings from the page stored", "path", path)
			agentSettings(agent, cfg, req.next)
			lines = apply(agent, lines, req.next, log, metrics.Forget)
			cfg = req.next
			api.set(cfg, lines)
			req.done <- nil
		}
	}
}

// serveOptions are the run subcommand's flags.
type serveOptions struct {
	config     string // the settings file
	statusAddr string // where the status port listens
	tokenFile  string // where the control token goes; "" for tokenPath
	remote     bool   // a status address off loopback is allowed
}

// applyReq is settings from the page, for the agent's loop to store and
// apply.
type applyReq struct {
	next settings.Config
	done chan error
}

// apply moves the agent from its lines to next's: unchanged lines are left
// alone, changed ones are de-registered and registered anew; forget is
// told the names of lines that are gone, for their metrics. It logs what
// changed ("settings applied").
func apply(agent *runtime.Agent, lines map[string]*runtime.Line, next settings.Config, log *slog.Logger,
	forget func(name string)) map[string]*runtime.Line {
	out := map[string]*runtime.Line{}
	var gone []*runtime.Line
	var changed []string // new or changed lines, which register anew
	for i, lc := range next.Lines {
		key := lineKey(i, lc)
		if old := lines[key]; old != nil && reflect.DeepEqual(old.Config(), lc.Defaults()) {
			out[key] = old
			delete(lines, key)
			continue
		}
		if old := lines[key]; old != nil {
			gone = append(gone, old)
			delete(lines, key)
		}
		l, err := agent.AddLine(lc)
		if err != nil { // validated already; a failure here is a bug
			log.Error("reload: line", "line", key, "err", err)
			continue
		}
		out[key] = l
		changed = append(changed, key)
		log.Info("reload: line (re)registers", "line", key)
	}
	var removed []string
	for key, l := range lines {
		gone = append(gone, l)
		removed = append(removed, key)
		forget(l.Name())
	}
	slices.Sort(removed)
	log.Info("settings applied", "lines", len(next.Lines), "changed", len(changed), "changed_lines", changed, "removed", removed)
	unregisterAll(gone)
	for _, l := range gone {
		agent.RemoveLine(l)
	}
	for _, l := range out {
		if l.State().String() == "idle" {
			l.Register()
		}
	}
	return out
}

// agentSettings gives the agent next's resolver when its dns block differs
// from prev's, and next's pacing when that differs.
func agentSettings(agent *runtime.Agent, prev, next settings.Config) {
	if !reflect.DeepEqual(prev.DNS, next.DNS) {
		agent.SetResolver(next.Resolver())
	}
	if prev.PacingOrDefault() != next.PacingOrDefault() {
		agent.SetPacing(next.PacingOrDefault())
	}
}

// warn logs what in the settings is valid but likely a mistake.
func warn(log *slog.Logger, cfg settings.Config) {
	for _, w := range cfg.Warnings() {
		log.Warn("settings: " + w)
	}
}

// unregisterAll de-registers lines and waits until each is idle or its
// de-registration budget (64*T1 at most) has run out.
func unregisterAll(lines []*runtime.Line) {
	var wait time.Duration
	for _, l := range lines {
		l.Unregister()
		wait = max(wait, 64*time.Duration(l.Config().T1)+time.Second)
	}
	deadline := time.Now().Add(wait)
	for _, l := range lines {
		for l.State().String() != "idle" && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // the program's own shutdown wait, not line logic
		}
	}
}

// statusCmd is `sipfailover status`: the lines of a running agent.
func statusCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := agentAddr(fs)
	tokenFile := fs.String("token-file", "", "the agent's -token-file, to list its calls (default: the one for -status-addr)")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := parse(fs, args, "status [-status-addr HOST:PORT] [-token-file FILE] [-json]", 0, 0, stdout, stderr); !ok {
		return code
	}
	client := &http.Client{Timeout: 5 * time.Second}
	res, err := client.Get("http://" + *addr + "/api/status")
	if err != nil {
		fmt.Fprintln(stderr, "status:", noAgent(*addr, err))
		return 1
	}
	defer res.Body.Close()
	var lines []runtime.Status
	if err := json.NewDecoder(res.Body).Decode(&lines); err != nil {
		fmt.Fprintln(stderr, "status:", errors.Join(errors.New("bad answer"), err))
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(lines)
		return 0
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "LINE\tSTATE\tSERVER\tCALLS\tSINCE\tLAST FAILURE")
	calls := 0
	for _, s := range lines {
		state := s.State
		if s.Waiting != "" {
			state += " (" + s.Waiting + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%d %s\t%d\t%s\t%s\n", s.Line, state, s.Server, s.Where, s.Calls, s.Since.Local().Format("2006-01-02 15:04:05 MST"), s.LastReason)
		calls += s.Calls
	}
	w.Flush()
	if calls == 0 {
		return 0
	}
	// The calls are the call API's, behind the control token: listed when
	// this user can read it.
	fmt.Fprintln(stdout)
	list, err := listCalls(*addr, *tokenFile)
	if err != nil {
		fmt.Fprintf(stdout, "%d calls; `sipfailover calls` lists them as the agent's user (%v)\n", calls, err)
		return 0
	}
	printCalls(stdout, list, time.Now())
	return 0
}
