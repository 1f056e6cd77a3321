package runtime

import (
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipfailover/sipfailover/fsm"
	"github.com/sipfailover/sipfailover/runtime/wire"
)

// The failback probe (R10, R11) and the backup's de-registration after
// failback (R12).

// SendProbe sends an independent REGISTER, with its own Call-ID, to the
// primary (R10); it is retransmitted until the model's probe timer ends it.
// The primary is the first server of the list as located now (R20): the
// records may have changed since the line's round began.
func (a *lineActions) SendProbe() {
	l := (*Line)(a)
	l.probeDlg = newDialog()
	l.probeTargets = l.list()
	l.sendProbe(nil)
}

// SendProbeAuth resends the probe with digest credentials.
func (a *lineActions) SendProbeAuth() {
	l := (*Line)(a)
	l.sendProbe(l.probeChallenge)
}

// SendProbeAgain resends the probe as the primary asked: with the
// Min-Expires of its 423, or credentials for its fresh nonce.
func (a *lineActions) SendProbeAgain() {
	l := (*Line)(a)
	l.sendProbe(l.probeChallenge)
}

// sendProbe sends the probe REGISTER, answering challenge if given, else
// with the primary's reused credentials if it has challenged before.
// While the primary's name is being looked up, the probe waits for it; a
// lookup that failed, or the primary's Retry-After, is probe.failed (R1,
// I3, R20).
func (l *Line) sendProbe(challenge *wire.Answer) {
	l.probeTargets = l.expand(l.probeTargets, 0)
	primary := l.probeTargets[0]
	l.probeWaiting = primary.pending
	switch {
	case primary.pending:
		l.finish(l.probe)
		return
	case primary.err != nil:
		l.finish(l.probe)
		l.post(fsm.LineEventProbeFailed, primary.err.Error())
		return
	}
	if held := l.heldOff(primary.ep); held != "" {
		l.finish(l.probe)
		l.post(fsm.LineEventProbeFailed, held)
		return
	}
	s := l.spec(sip.REGISTER, primary.ep, l.ttlOf(primary))
	s.stale = l.bound[addrOf(primary.ep)]
	l.probeChallenge = nil
	if err := l.authorize(&s, challenge); err != nil {
		l.finish(l.probe)
		l.post(fsm.LineEventProbeFailed, err.Error())
		return
	}
	l.start(&l.probe, txnProbe, &l.probeDlg, s, 0, 0, l.postLine(fsm.LineEventProbeFailed))
}

// AbandonProbe forgets the probe, or that it waits for a lookup.
func (a *lineActions) AbandonProbe() {
	l := (*Line)(a)
	l.finish(l.probe)
	l.probeWaiting = false
}

// AdoptProbe makes the probe's dialog the line's registration on the
// primary (R10), and the list the probe was sent from the line's; the
// backup's registration is kept only for DeregisterBackup.
func (a *lineActions) AdoptProbe() {
	l := (*Line)(a)
	l.prevServer, l.prevReg, l.regServer = l.regServer, l.reg, l.probeTargets[0].ep
	l.prevRegistrar, l.regRegistrar = l.regRegistrar, 0 // the probe's is the primary
	l.finish(l.probe)
	l.reg, l.probeDlg = l.probeDlg, dialog{}
	l.setList(l.probeTargets)
}

// DeregisterBackup sends Expires 0, once, to the server the line left,
// through that registration's dialog (R12). Its answer is not awaited, and
// a lost one only leaves the binding to expire, as when the setting is off,
// so it is never retransmitted: no server gets more than its budget (I4).
func (a *lineActions) DeregisterBackup() {
	l := (*Line)(a)
	l.deregister(nil)
}

// deregister sends the Expires 0 of DeregisterBackup, with the server's
// reused credentials, or answering challenge.
func (l *Line) deregister(challenge *wire.Answer) {
	server := l.prevServer
	if server == l.regServer && l.prevRegistrar == l.regRegistrar || l.heldOff(server) != "" {
		// The records now put the backup first, and the line registered
		// there again; or it is held off (R1): the binding is left to
		// expire.
		return
	}
	s := l.spec(sip.REGISTER, server, 0)
	if l.cfg.Proxied() {
		s.registrar = registrarURI(l.cfg.Servers[l.prevRegistrar]) // the registrar it was on (R22)
	}
	s.stale = l.bound[addrOf(server)]
	delete(l.bound, addrOf(server)) // its answer is not awaited
	if l.authorize(&s, challenge) != nil {
		return
	}
	l.start(&l.dereg, txnDeregister, &l.prevReg, s, -1, 1, nil)
	if t := l.dereg; t != nil {
		t.deadline = l.agent.clock.AfterFunc(64*time.Duration(l.cfg.T1)+t.pending(l.agent.clock.Now()), func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.dereg == t {
				l.finish(t)
			}
		})
	}
}
