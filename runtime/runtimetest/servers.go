package runtimetest

import "github.com/sipfailover/sipfailover/internal/labserver"

// The real SIP servers on loopback are the fault lab's (sipfailover lab):
// a registrar that is also a record-routing proxy, its registration
// database, and a far-end phone. Tests reach them under these names.
type (
	// Registrar is a SIP registrar with digest authentication (MD5 or
	// SHA-256) that a test can stop, silence or make answer 503.
	Registrar = labserver.Registrar
	// Mode is how a Registrar treats requests.
	Mode = labserver.Mode
	// Seen is one request a Registrar received.
	Seen = labserver.Seen
	// Location is a registration database that Registrars may share.
	Location = labserver.Location
	// Phone is the far end of calls.
	Phone = labserver.Phone
	// PhoneSeen is one request that reached a Phone.
	PhoneSeen = labserver.PhoneSeen
)

// The modes of a Registrar.
const (
	Up        = labserver.Up
	Silent    = labserver.Silent
	Answering = labserver.Answering
)

// NewLocation returns an empty registration database.
func NewLocation() *Location { return labserver.NewLocation() }

// Blackhole is a TCP port whose connection attempts are never answered.
type Blackhole = labserver.Blackhole

// NewBlackhole opens a blackhole on a free port of 127.0.0.1.
func NewBlackhole() (*Blackhole, error) { return labserver.NewBlackhole("127.0.0.1:0") }
