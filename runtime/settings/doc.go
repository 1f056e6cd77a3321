// Package settings is a line's settings and the file that holds them (R2,
// R15 of docs/requirements.md): the seed's names and defaults (Config,
// LineConfig, ServerConfig), the file's syntax checked with line and column
// (Parse, Load), every value checked at once (Config.Validate), and an
// atomic save (Save).
//
// The bounds of the values are the models' own: LineConfig.LineParams and
// its siblings map a line's settings onto the params of model/*.yaml, and
// the generated Params.Validate of each model judges them, so whatever the
// loader, the pages or the API accept, a line can start with. The policies
// that turn settings into model params (RefreshAfter, RingTimeout) live
// here for the same reason.
//
// It reads files and nothing else: it never opens a socket, starts a line
// or logs. runtime, the pages and the commands import it; it imports only
// the generated machines (for their params) and runtime/locate (to check a
// DNS server setting and build the resolver it names).
package settings
