// Package fsm holds the state machines generated from the models in model/:
// one <model>_gen.go per model, plus fsm_gen.go with what they share. Every
// other file here is generated; edit the model and regenerate.
//
// Each machine is pure: Fire takes an event and returns the effects to
// perform (actions, timers to arm or cancel), and the runtime performs them.
//
//	m := fsm.NewLineMachine(params, guards)
//	effects, _ := m.Start()
//	step, err := m.Fire(fsm.LineEventUserRegister)
//	for _, e := range step.Effects {
//		// perform e: an action, or a timer to arm or cancel
//	}
package fsm

//go:generate go run ../gen/cmd/fsmgen -root ..
