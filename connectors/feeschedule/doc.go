// Package feeschedule imports published fee schedules (a CSV with one line per
// procedure code and a non-facility and a facility maximum allowable fee) as
// contracted Amount rates of one contract.
//
// It is built on the Washington State Health Care Authority physician fee
// schedules (testdata/feeschedules/wa-medicaid-physician) but reads any file
// laid out the same way:
//
//   - Preamble rows come before the header. The header is found by its column
//     names (Code, Mod, ... NFS, ... FS, PA Req'd, Comments) wherever it is,
//     and columns are taken by name, not position.
//   - Bytes are Windows-1252: every field that is not valid UTF-8 is decoded
//     as Windows-1252 (so the Agency’s apostrophe, byte 0x92, comes out as
//     U+2019), and fields that already are valid UTF-8 are kept, so a UTF-8
//     export reads the same.
//   - Fees are dollar amounts such as "$38.39" or "$1,066.16" and are parsed
//     exactly into money.Cents. Any other fee text makes the row (or, when only
//     one of the two fees is affected, that fee) a skip with a Reason.
//   - The effective date comes from the preamble ("Effective January 1,
//     2014"); when the preamble has none, from a MMDDYY run of digits in the
//     file name (physician_010114.csv); when neither has one, Parse fails with
//     ErrNoEffectiveDate.
//
// # Skip reasons
//
// Every record after the header is either a Row or a Skip, so
// len(Rows)+len(Skipped) is the number of records after the header. A Row
// may still lack one of its two fees; NFSReason or FSReason then says why.
//
//	NOT_A_DOLLAR_AMOUNT  a number that is not money, e.g. "5 Base"
//	                     (anesthesia base units) or "12.50" without "$"
//	BY_REPORT            "B.R.", "BR", "By Report": priced case by case
//	ACQUISITION_COST     "A.C.": paid at the provider's acquisition cost
//	BUNDLED              "Bundled": paid as part of another service
//	NOT_COVERED          "NC", "CNC", "Not Covered"
//	DELETED_CODE         "DC": the code was deleted
//	OTHER_PROGRAM        "DP": priced under another program's schedule
//	NO_FEE               both fees blank, "N/A", "NA" or "-"
//	ZERO_FEE             a dollar amount of $0.00 (a rate must be > 0)
//	MALFORMED            a code, modifier or fee that cannot be read
//	                     (e.g. "$1,23.4", "9921"), unknown fee text, or a
//	                     CSV syntax error
//	NO_CODE              a non-blank record without a procedure code
//	                     (footnote, section title)
//	BLANK_ROW            a record with only blank fields
//	AGE_RESTRICTED       a second row for a code and modifier already read
//	                     from this file whose comment restricts it to an age
//	                     group ("0-20 years of age only"): a Rate cannot
//	                     carry an age, so the general (first) fee is kept
//	DUPLICATE_CODE       any other second row for a code and modifier
//
// When a fee column is not a dollar amount the row is skipped with that
// column's reason (the non-facility fee is looked at first; the facility fee
// decides only when the non-facility fee is blank). When exactly one of the
// two fees is a dollar amount the row is kept with that fee only. A MALFORMED
// fee always skips the whole row.
//
// # Rates
//
// ToRates turns a Schedule into rates of kind CPT (Modifier set for modifier
// lines such as 26 and TC), Type Amount, Active, effective on the schedule's
// date and open-ended. The non-facility fee is given the non-facility places
// of service (NonFacilityPOS) and the facility fee the facility places of
// service (FacilityPOS); when both fees are equal one rate without places of
// service is emitted instead, unless SplitEqualFees is given. A row whose PA
// column asks for any kind of prior authorization (PA, EPA or CPA, for any
// age group) gives RequiresAuth rates.
//
// Chain and History apply several schedules as successive versions: each
// schedule's rates end the day before the next schedule's effective date.
package feeschedule
