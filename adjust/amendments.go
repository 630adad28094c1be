package adjust

import (
	"github.com/repricer/repricer/amendment"
	"github.com/repricer/repricer/contracts"
)

// Amendment names the amendment behind a change.
type Amendment struct {
	ID            string `json:"amendment_id"`
	ContractID    string `json:"contract_id"`
	Reason        string `json:"reason"`
	EffectiveDate string `json:"effective_date"`
}

// AmendmentLog knows, per rate id, the amendment that added the rate and
// the one that ended it (end-dated or deactivated).
type AmendmentLog struct {
	added, ended map[string]*Amendment
}

// NewAmendmentLog indexes an amendment log (amendment.ReadLog or
// amendment.ReadLogDB) by rate.
func NewAmendmentLog(l *amendment.Log) *AmendmentLog {
	al := &AmendmentLog{added: map[string]*Amendment{}, ended: map[string]*Amendment{}}
	byID := map[string]*Amendment{}
	for _, r := range l.Amendments {
		byID[r.ID] = &Amendment{ID: r.ID, ContractID: r.ContractID, Reason: r.Reason, EffectiveDate: r.EffectiveDate.String()}
	}
	for _, ra := range l.Rates {
		a := byID[ra.AmendmentID]
		if a == nil {
			continue
		}
		switch ra.Action {
		case amendment.ActionAdded:
			al.added[ra.RateID] = a
		case contracts.ActionEndDated, contracts.ActionDeactivated:
			al.ended[ra.RateID] = a
		}
	}
	return al
}

// Cause returns the amendment that explains a changed line: the one that
// added the rate pricing it now, else the one that ended the rate that
// priced it before; nil when the line kept its rate, when the log knows
// neither, or when l is nil.
func (l *AmendmentLog) Cause(line *Line) *Amendment {
	if l == nil {
		return nil
	}
	if line.Old.RateID == line.New.RateID {
		return nil // the same rate: no amendment replaced it
	}
	if line.New.Status == StatusPriced {
		if a := l.added[line.New.RateID]; a != nil {
			return a
		}
	}
	if line.Old.Status == StatusPriced {
		if a := l.ended[line.Old.RateID]; a != nil {
			return a
		}
	}
	return nil
}
