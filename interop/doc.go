// Package interop runs the sipfailover program against real SIP software
// that this project did not write: two Kamailio registrars that share one
// registration database, and SIPp as the far end of calls, all on
// loopback. interop/setup installs them from Debian's packages; interop/kam
// starts them and breaks them (kill, freeze, 503). The tests carry the
// build tag interop:
//
//	interop/setup && go test -tags interop -v ./interop
package interop
