package contracts

import (
	"cmp"
	"fmt"
	"slices"
)

// Calendar events.
const (
	// EventExpiration: a contract without auto-renewal reaches its
	// expiration date.
	EventExpiration = "expiration"
	// EventRenewalNotice: the last day to give renewal (or non-renewal)
	// notice, renewal_notice_days before the end of the current term.
	EventRenewalNotice = "renewal_notice_deadline"
	// EventAutoRenewal: an auto-renewing contract's current term ends and
	// it rolls into another renewal_term_months term.
	EventAutoRenewal = "auto_renewal"
)

// DefaultRenewalNoticeDays applies when a contract has no renewal_notice_days.
const DefaultRenewalNoticeDays = 30

// CalendarEntry is one dated event of a contract.
type CalendarEntry struct {
	Date           Date   `json:"-"`
	Day            string `json:"date"`
	DaysLeft       int    `json:"days_left"`
	Event          string `json:"event"`
	ContractID     string `json:"contract_id"`
	ContractNumber string `json:"contract_number"`
	VendorID       string `json:"vendor_id"`
	Status         Status `json:"status"`
	Detail         string `json:"detail"`
}

// Calendar lists the contract events that fall in the window today ..
// today+within days (inclusive), sorted by date, then contract, then event:
//
//   - expirations of Draft, Pending and Active contracts without
//     auto-renewal;
//   - renewal notice deadlines: the end of the current term minus
//     renewal_notice_days (DefaultRenewalNoticeDays when not set);
//   - auto-renewals: for Active or Expired contracts with auto_renewal and
//     renewal_term_months, the end of the current term — the expiration, or
//     when that has passed, the expiration plus as many renewal terms as it
//     takes to reach today — unless another priceable contract of the same
//     vendor takes effect after the expiration and by the day after that
//     term end, which stops the roll (docs/pricing.md step 1b).
//
// Expired and Terminated contracts without auto-renewal have no events: they
// are over. A contract rejected by validation is listed with the reason in
// Detail.
func Calendar(v *Validated, today Date, within int) []CalendarEntry {
	if within < 0 {
		within = 0
	}
	last := today + Date(within)
	var out []CalendarEntry
	add := func(c *Contract, d Date, event, detail string) {
		if d < today || d > last {
			return
		}
		if why := v.Rejected[c.ID]; why != "" {
			detail += "; rejected by validation: " + why
		}
		out = append(out, CalendarEntry{
			Date: d, Day: d.String(), DaysLeft: int(d - today), Event: event,
			ContractID: c.ID, ContractNumber: c.Number, VendorID: c.VendorID, Status: c.Status, Detail: detail,
		})
	}
	for i := range v.Contracts {
		c := &v.Contracts[i]
		if c.Expiration.IsZero() {
			continue
		}
		notice, dflt := c.RenewalNoticeDays, ""
		if notice <= 0 {
			notice, dflt = DefaultRenewalNoticeDays, " (the default)"
		}
		noticeNote := func(end Date) string {
			return fmt.Sprintf("%d days%s before the term ends %s", notice, dflt, end)
		}
		switch {
		case c.AutoRenewal && c.RenewalTermMonths > 0 && (c.Status == Active || c.Status == Expired):
			end, terms := c.Expiration, 0
			for end < today {
				terms++
				end = c.Expiration.AddMonths(terms * c.RenewalTermMonths)
			}
			if v.successor(c, end) != nil {
				continue
			}
			term := "the original term"
			if terms > 0 {
				term = fmt.Sprintf("renewal term %d", terms)
			}
			add(c, end, EventAutoRenewal, fmt.Sprintf("%s ends; rolls into a new %d-month term on %s unless notice is given", term, c.RenewalTermMonths, end+1))
			add(c, end-Date(notice), EventRenewalNotice, noticeNote(end)+"; last day to stop the auto-renewal")
		case c.Status == Active || c.Status == Pending || c.Status == Draft:
			add(c, c.Expiration, EventExpiration, fmt.Sprintf("%s contract expires (term %s..%s); no auto-renewal", c.Status, c.Effective, c.Expiration))
			add(c, c.Expiration-Date(notice), EventRenewalNotice, noticeNote(c.Expiration)+"; last day to give renewal notice")
		}
	}
	slices.SortStableFunc(out, func(a, b CalendarEntry) int {
		if c := cmp.Compare(a.Date, b.Date); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ContractID, b.ContractID); c != 0 {
			return c
		}
		return cmp.Compare(a.Event, b.Event)
	})
	return out
}

// successor returns a priceable contract of c's vendor that takes effect
// after c's expiration and no later than the day after end, or nil.
func (v *Validated) successor(c *Contract, end Date) *Contract {
	for i := range v.Contracts {
		o := &v.Contracts[i]
		if o != c && o.VendorID == c.VendorID && o.Status.Priceable() && o.Effective > c.Expiration && o.Effective <= end+1 {
			return o
		}
	}
	return nil
}
