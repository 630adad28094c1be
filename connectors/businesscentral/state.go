package businesscentral

import (
	"context"
	"maps"
	"sync"
	"time"
)

// ContractState is what the sync knows about one contract in Business
// Central: what it last wrote and Business Central confirmed.
type ContractState struct {
	ContractID string // source contract id (the key)
	Number     string // contractNumber in Business Central
	BCID       string // SystemId of the providerContracts entity
	ETag       string // ETag of the header as last confirmed
	HeaderHash string // hash of the header payload last confirmed
	// Hash is the hash of header and rates together after a complete sync;
	// "" while a sync of the contract is incomplete.
	Hash         string
	BCModifiedAt string // lastModifiedDateTime of the header as last confirmed
	SyncedAt     time.Time
	Rates        map[string]RateState // by source rate id
}

// RateState is what the sync knows about one rate in Business Central.
type RateState struct {
	BCID         string // SystemId of the contractRates entity
	ETag         string
	Hash         string // hash of the rate payload last confirmed
	BCModifiedAt string
}

// Clone returns a deep copy of s.
func (s ContractState) Clone() ContractState {
	s.Rates = maps.Clone(s.Rates)
	return s
}

// StateStore keeps the sync state between runs.
//
// Load returns every saved state keyed by ContractID. Save replaces the
// state of s.ContractID (rates included) atomically: after Save returns nil
// a later Load must return s, and after it fails the previous state must
// remain. Save is called concurrently for different contracts, never
// concurrently for the same one. Implementations must not modify s.Rates.
// Forget removes the states of the given contracts (rates included) at
// once and returns how many it removed; the sync calls it after deleting
// a contract from Business Central (Options.Prune).
type StateStore interface {
	Load(ctx context.Context) (map[string]ContractState, error)
	Save(ctx context.Context, s ContractState) error
	Forget(ctx context.Context, contractIDs ...string) (int, error)
}

// MemoryState is an in-memory StateStore, for tests and dry runs.
type MemoryState struct {
	mu sync.Mutex
	m  map[string]ContractState
}

var _ StateStore = (*MemoryState)(nil)

// NewMemoryState returns an empty MemoryState.
func NewMemoryState() *MemoryState { return &MemoryState{m: map[string]ContractState{}} }

// Load returns copies of all states.
func (m *MemoryState) Load(ctx context.Context) (map[string]ContractState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]ContractState, len(m.m))
	for k, v := range m.m {
		out[k] = v.Clone()
	}
	return out, nil
}

// Save stores a copy of s.
func (m *MemoryState) Save(ctx context.Context, s ContractState) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	m.m[s.ContractID] = s.Clone()
	m.mu.Unlock()
	return nil
}

// Forget removes the states of the contracts.
func (m *MemoryState) Forget(ctx context.Context, contractIDs ...string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, id := range contractIDs {
		if _, ok := m.m[id]; ok {
			delete(m.m, id)
			n++
		}
	}
	return n, nil
}
