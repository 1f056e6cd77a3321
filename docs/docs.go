// Package docs holds the project's guides and the diagrams the generator
// draws from model/*.yaml; it embeds the diagrams for the program's status
// page.
//
//	svg := docs.LineSVG // the line machine; each state's node has the id state_<name>
package docs

import _ "embed"

// LineSVG is docs/line.svg, the line machine of model/line.yaml as Graphviz
// draws it.
//
//go:embed line.svg
var LineSVG []byte
