package runtime

import (
	"github.com/sipfailover/sipfailover/runtime/pace"
	"github.com/sipfailover/sipfailover/runtime/settings"
)

// WithPacing sets the agent's pacing; a zero Rate turns it off.
func WithPacing(p settings.Pacing) Option { return func(a *Agent) { a.pace.Store(newPacer(p)) } }

// SetPacing changes the agent's pacing (the settings' pacing block
// changed); requests already given a turn keep it.
func (a *Agent) SetPacing(p settings.Pacing) { a.pace.Store(newPacer(p)) }

// newPacer is a token bucket per server (by address, port and transport).
func newPacer(p settings.Pacing) *pace.Pacer[serverAddr] {
	return pace.New[serverAddr](p.Rate, p.Burst)
}
