package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// cookieName is the session cookie: HttpOnly and SameSite=Strict, so no
// script reads it and no other site's form sends it.
const cookieName = "sipfailover_session"

// sessionLife is how long a login lasts.
const sessionLife = 12 * time.Hour

type sessionInfo struct {
	csrf    string // the token every form of the session carries
	expires time.Time
}

// sessions are the logged-in browsers, in memory: a restart logs them out.
type sessions struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*sessionInfo
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, m: map[string]*sessionInfo{}}
}

func token() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

func (s *sessions) create() (string, *sessionInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for id, si := range s.m {
		if now.After(si.expires) {
			delete(s.m, id)
		}
	}
	id, si := token(), &sessionInfo{csrf: token(), expires: now.Add(sessionLife)}
	s.m[id] = si
	return id, si
}

func (s *sessions) get(id string) *sessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	si := s.m[id]
	if si == nil || s.now().After(si.expires) {
		delete(s.m, id)
		return nil
	}
	return si
}

func (s *sessions) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

type sessionKey struct{}

// session returns the request's session; auth put it there.
func session(r *http.Request) *sessionInfo {
	si, _ := r.Context().Value(sessionKey{}).(*sessionInfo)
	if si == nil {
		return &sessionInfo{}
	}
	return si
}

// auth lets a request through only with a live session; every request
// that changes something must also carry the session's CSRF token (the
// form field csrf, or the header X-CSRF-Token) and come from this origin. A page
// without one goes to the login page; the API gets 401.
func (s *Server) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var si *sessionInfo
		if c, err := r.Cookie(cookieName); err == nil {
			si = s.sessions.get(c.Value)
		}
		if si == nil {
			if r.Method == http.MethodGet && r.URL.Path != "/events" && r.URL.Path != "/metrics" && !isAPI(r) {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			token := r.Header.Get("X-CSRF-Token") // scripts; forms send the field
			if token == "" {
				token = r.PostFormValue("csrf")
			}
			if !sameOrigin(r) || subtle.ConstantTimeCompare([]byte(token), []byte(si.csrf)) != 1 {
				http.Error(w, "the form is stale or from another site: reload the page and submit again", http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, si)))
	})
}

func isAPI(r *http.Request) bool { return len(r.URL.Path) >= 5 && r.URL.Path[:5] == "/api/" }

// sameOrigin checks the Origin header, where the browser sent one.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

type loginData struct {
	Next  string
	Error string
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "login.html", loginData{Next: safeNext(r.FormValue("next"))})
}

// login checks the password against its bcrypt hash; the password is
// neither logged nor shown again.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	if !sameOrigin(r) {
		s.render(w, http.StatusForbidden, "login.html", loginData{Next: next, Error: "a login from another site is refused"})
		return
	}
	client := clientOf(r)
	if wait := s.throttle.wait(client); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
		s.render(w, http.StatusTooManyRequests, "login.html", loginData{Next: next,
			Error: fmt.Sprintf("too many wrong passwords: try again in %v", wait.Round(time.Second))})
		return
	}
	if bcrypt.CompareHashAndPassword([]byte(s.PasswordHash), []byte(r.PostFormValue("password"))) != nil {
		s.throttle.failed(client)
		s.render(w, http.StatusUnauthorized, "login.html", loginData{Next: next, Error: "wrong password"})
		return
	}
	s.throttle.passed(client)
	id, _ := s.sessions.create()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, MaxAge: int(sessionLife.Seconds())})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		s.sessions.drop(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a redirect after login on this site.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if next == "" || err != nil || u.IsAbs() || u.Host != "" || len(u.Path) == 0 || u.Path[0] != '/' || (len(u.Path) > 1 && u.Path[1] == '/') {
		return "/status"
	}
	return u.RequestURI()
}

// scraper lets a request read the metrics with the metrics token as a
// bearer token, or with a session as the pages are.
func (s *Server) scraper(h http.Handler) http.Handler {
	withSession := s.auth(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if ok && s.MetricsToken != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.MetricsToken)) == 1 {
			h.ServeHTTP(w, r)
			return
		}
		if ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sipfailover"`)
			http.Error(w, "wrong metrics token", http.StatusUnauthorized)
			return
		}
		withSession.ServeHTTP(w, r)
	})
}

// clientOf names the client of a request for the login throttle: its IP
// address (the pages are not meant to sit behind a proxy).
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// throttle slows password guessing: after a wrong password a client waits
// 1 s before the next try, and twice as long after each further one, up to
// 5 minutes; a right one clears it. Each try is a bcrypt check, so without
// it parallel guesses also load the machine.
type throttle struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*strikes
}

type strikes struct {
	n     int
	until time.Time
}

// Login throttle bounds.
const (
	throttleFirst = time.Second
	throttleMax   = 5 * time.Minute
	throttleKeep  = 10000 // clients remembered; the oldest go first
)

func newThrottle(now func() time.Time) *throttle {
	return &throttle{now: now, m: map[string]*strikes{}}
}

// wait says how long client must still wait before it may try again.
func (t *throttle) wait(client string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.m[client]; st != nil {
		return max(st.until.Sub(t.now()), 0)
	}
	return 0
}

func (t *throttle) failed(client string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.m) >= throttleKeep {
		for c, st := range t.m {
			if st.until.Before(now.Add(-throttleMax)) {
				delete(t.m, c)
			}
		}
	}
	st := t.m[client]
	if st == nil {
		st = &strikes{}
		t.m[client] = st
	}
	st.n++
	st.until = now.Add(min(throttleFirst<<min(st.n-1, 20), throttleMax))
}

func (t *throttle) passed(client string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, client)
}

// HashPassword returns the bcrypt hash to put in the settings' web section.
func HashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(h), err
}
