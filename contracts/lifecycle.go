package contracts

import "fmt"

// transitions lists the allowed status changes.
var transitions = map[Status][]Status{
	Draft:      {Pending},
	Pending:    {Active},
	Active:     {Active, Expired, Terminated},
	Expired:    {Active, Pending},
	Terminated: {Pending},
}

// TransitionError is a status change the lifecycle does not allow.
type TransitionError struct {
	ContractID string
	From, To   Status
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("contract %s: status change %s -> %s is not allowed (allowed from %s: %v)",
		e.ContractID, e.From, e.To, e.From, transitions[e.From])
}

// CanTransition reports whether a contract may move from one status to another.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Transition moves c to status to, with a reason (required for Terminated).
// It returns a *TransitionError for a change the lifecycle does not allow.
func (c *Contract) Transition(to Status, reason string) error {
	if !CanTransition(c.Status, to) {
		return &TransitionError{ContractID: c.ID, From: c.Status, To: to}
	}
	if to == Terminated && reason == "" {
		return fmt.Errorf("contract %s: terminating needs a status reason", c.ID)
	}
	c.Status, c.StatusReason = to, reason
	return nil
}
