// Package docs holds the project's guides and the diagrams the generator
// draws from model/*.yaml; it embeds the diagrams for the program's status
// page.
//
//	svg := docs.LineOverviewSVG // the line machine; each state's node has the id state_<name>
package docs

import _ "embed"

// LineOverviewSVG is docs/line-overview.svg, the overview of the line
// machine of model/line.yaml as Graphviz draws it: the status page shows
// it with the line's state highlighted.
//
//go:embed line-overview.svg
var LineOverviewSVG []byte
