package main

import "strings"

// matchSQL is the rate-candidate test of docs/pricing.md step 3 for a line t and a
// rate r: dates, modifier, specialty, visit kind and place of service (the
// code is tested by each join).
const matchSQL = `r.eff <= t.d AND (r.end_date IS NULL OR r.end_date >= t.d)
      AND (r.modifier IS NULL OR list_contains(t.mods, r.modifier))
      AND (r.spec IS NULL OR r.spec = t.spec)
      AND (r.vk IS NULL OR r.vk = t.vk)
      AND (r.pos IS NULL OR contains(r.pos, ',' || t.pos || ','))`

// pricingSQL is the whole repricing as one query over the claims file.
// Money is integer cents (HUGEINT for products) rounded half away from
// zero exactly as the engine does; the admin fee uses DuckDB's ROUND on
// DECIMAL, which also rounds half away from zero.
func pricingSQL(claimsPath string, ordered bool) string {
	order := ""
	if ordered {
		order = "ORDER BY seq"
	}
	q := `
WITH l AS (
  SELECT file_row_number AS seq,
    claim_id, line_number, vendor_id, member_id, provider_npi, cpt_code, modifiers, specialty,
    visit_kind, place_of_service, service_date, units, billed_amount, prior_auth_number,
    trim(claim_id) AS cid, trim(vendor_id) AS vid, upper(trim(cpt_code)) AS cpt,
    string_split_regex(upper(coalesce(modifiers, '')), '[, ]') AS mods,
    nullif(upper(trim(specialty)), '') AS spec, nullif(upper(trim(visit_kind)), '') AS vk,
    nullif(upper(trim(place_of_service)), '') AS pos, service_date AS d,
    coalesce(units, 1) AS u, CAST(billed_amount * 100 AS BIGINT) AS billed_c,
    nullif(trim(prior_auth_number), '') AS pa,
    CASE
      WHEN billed_amount IS NULL OR billed_amount < 0 OR billed_amount > 1000000000 THEN 'billed_amount'
      WHEN claim_id IS NULL OR trim(claim_id) = '' THEN 'claim_id'
      WHEN line_number IS NULL THEN 'line_number'
      WHEN vendor_id IS NULL OR trim(vendor_id) = '' THEN 'vendor_id'
      WHEN cpt_code IS NULL OR trim(cpt_code) = '' THEN 'cpt_code'
      WHEN service_date IS NULL THEN 'service_date'
      WHEN units IS NOT NULL AND (units <= 0 OR units > 1000000) THEN 'units'
    END AS invalid_field
  FROM read_parquet(` + quote(claimsPath) + `, file_row_number = true)
),
-- Valid lines; the second and later (claim_id, line_number) are duplicates.
firsts AS (
  SELECT cid, line_number, min(seq) AS first_seq FROM l WHERE invalid_field IS NULL GROUP BY cid, line_number
),
v AS (
  SELECT l.*, l.seq <> f.first_seq AS dup
  FROM l JOIN firsts f ON f.cid = l.cid AND f.line_number = l.line_number
  WHERE l.invalid_field IS NULL
),
-- docs/pricing.md step 1: the vendor's priceable contracts in force on the date, else
-- the one with the latest expiration before it.
sel AS (
  SELECT v.seq,
    count(*) FILTER (WHERE c.eff <= v.d AND v.d <= c.exp) AS n_in,
    max(c.cidx) FILTER (WHERE c.eff <= v.d AND v.d <= c.exp) AS in_cidx,
    arg_max(c.cidx, c.exp) FILTER (WHERE c.exp < v.d) AS prev_cidx
  FROM v JOIN contracts c ON c.vendor_id = v.vid AND c.priceable
  WHERE NOT v.dup
  GROUP BY v.seq
),
lc AS (
  SELECT v.*, coalesce(s.n_in, 0) AS n_in,
    CASE WHEN s.n_in = 1 THEN s.in_cidx WHEN coalesce(s.n_in, 0) = 0 THEN s.prev_cidx END AS cidx,
    coalesce(s.n_in, 0) = 0 AND s.prev_cidx IS NOT NULL AS after_term
  FROM v LEFT JOIN sel s USING (seq)
),
lc2 AS (
  SELECT lc.*, c.contract_id, c.contract_number, c.auto_renew, c.lesser, c.tpa_mn, c.tpa_pa,
    c.def_type, c.def_value, c.stop_loss, c.admin_micro,
    CASE
      WHEN lc.dup THEN 'DUPLICATE_LINE'
      WHEN lc.n_in > 1 THEN 'CONTRACT_OVERLAP'
      WHEN lc.cidx IS NULL AND EXISTS (SELECT 1 FROM contracts i WHERE NOT i.priceable
        AND i.vendor_id = lc.vid AND i.eff <= lc.d AND lc.d <= i.exp) THEN 'CONTRACT_NOT_ACTIVE'
      WHEN lc.cidx IS NULL THEN 'NO_CONTRACT'
      WHEN lc.after_term AND c.terminated THEN 'CONTRACT_TERMINATED'
      WHEN c.rejected THEN 'CONTRACT_INVALID'
      WHEN EXISTS (SELECT 1 FROM exclusions x WHERE x.cidx = lc.cidx AND lc.cpt BETWEEN x.lo AND x.hi) THEN 'EXCLUDED_SERVICE'
    END AS code0
  FROM lc LEFT JOIN contracts c ON c.cidx = lc.cidx
),
todo AS (SELECT seq, cidx, cpt, mods, spec, vk, pos, d FROM lc2 WHERE code0 IS NULL),
-- docs/pricing.md step 3 candidates: exact code, code range, or no code (specialty or
-- visit kind), each matching every populated criterion.
cand AS (
  SELECT t.seq, r.* FROM todo t JOIN rates_exact r ON r.cidx = t.cidx AND r.cpt = t.cpt WHERE MATCH
  UNION ALL
  SELECT t.seq, r.* FROM todo t JOIN rates_range r ON r.cidx = t.cidx AND t.cpt BETWEEN r.rs AND r.re WHERE MATCH
  UNION ALL
  SELECT t.seq, r.* FROM todo t JOIN rates_crit r ON r.cidx = t.cidx AND r.spec = t.spec WHERE MATCH
  UNION ALL
  SELECT t.seq, r.* FROM todo t JOIN rates_crit r ON r.cidx = t.cidx AND r.spec IS NULL AND r.vk = t.vk WHERE MATCH
),
-- The winner by the tie-break order; RATE_CONFLICT when rates tied on
-- (a)-(d) differ in type or value.
ranked AS (
  SELECT seq, rate_id, kind, priority, rtype, rvalue, min_units, max_units, req_auth, req_review,
    row_number() OVER (PARTITION BY seq ORDER BY priority, class, rs DESC, re, optional DESC, eff DESC, id_rank) AS rn,
    min(rvalue) OVER tie <> max(rvalue) OVER tie OR min(rtype) OVER tie <> max(rtype) OVER tie AS conflict
  FROM cand
  WINDOW tie AS (PARTITION BY seq, priority, class, rs, re, optional, eff)
),
best AS (SELECT * FROM ranked WHERE rn = 1),
-- docs/pricing.md steps 4-6: units, amount, lesser-of, authorization.
p AS (
  SELECT lc2.*, b.rate_id, b.conflict, b.req_review,
    CASE WHEN b.seq IS NOT NULL THEN b.kind WHEN lc2.def_type IS NOT NULL THEN 'CONTRACT_DEFAULT' END AS rate_kind,
    CASE WHEN b.seq IS NOT NULL THEN b.priority WHEN lc2.def_type IS NOT NULL THEN 7 END AS match_priority,
    CASE WHEN b.seq IS NOT NULL THEN b.rtype ELSE lc2.def_type END AS rtype,
    CASE WHEN b.seq IS NOT NULL THEN b.rvalue ELSE lc2.def_value END AS rvalue,
    CASE WHEN b.max_units > 0 AND lc2.u > b.max_units THEN b.max_units ELSE lc2.u END AS pu,
    CASE
      WHEN lc2.code0 IS NOT NULL THEN lc2.code0
      WHEN b.seq IS NULL AND lc2.def_type IS NULL THEN 'NO_RATE'
      WHEN b.min_units > 0 AND lc2.u < b.min_units THEN 'UNITS_BELOW_MINIMUM'
      WHEN lc2.pa IS NULL AND (coalesce(b.req_auth, false) OR lc2.tpa_pa) THEN 'PRIOR_AUTH_MISSING'
    END AS code
  FROM lc2 LEFT JOIN best b USING (seq)
),
a AS (
  SELECT *,
    CASE WHEN code IS NULL THEN
      CASE rtype
        WHEN 'Percentage' THEN
          (2 * CAST(billed_c AS HUGEINT) * (CASE WHEN lesser AND rvalue > 100000000 THEN 100000000 ELSE rvalue END) * pu
            + CAST(u AS HUGEINT) * 100000000) // (2 * CAST(u AS HUGEINT) * 100000000)
        ELSE
          CASE WHEN lesser AND CAST(rvalue AS HUGEINT) * u > CAST(billed_c AS HUGEINT) * 10000
            THEN (2 * CAST(billed_c AS HUGEINT) * pu + u) // (2 * CAST(u AS HUGEINT))
            ELSE (2 * CAST(rvalue AS HUGEINT) * pu + 10000) // 20000
          END
      END
    END AS pre
  FROM p
),
-- docs/pricing.md step 7: stop loss per case (claim, contract) over the cases above
-- their contract's stop loss; the largest remainders get the cents left.
cases AS (
  SELECT cid, cidx, any_value(stop_loss) AS s, sum(pre) AS total
  FROM a WHERE code IS NULL AND stop_loss > 0
  GROUP BY cid, cidx HAVING sum(pre) > any_value(stop_loss)
),
capl AS (
  SELECT a.seq, a.cid, a.cidx, a.line_number, c.s,
    (a.pre * c.s) // c.total AS q, (a.pre * c.s) % c.total AS rem
  FROM a JOIN cases c ON c.cid = a.cid AND c.cidx = a.cidx
  WHERE a.code IS NULL
),
capq AS (
  SELECT seq, q + CASE WHEN row_number() OVER (PARTITION BY cid, cidx ORDER BY rem DESC, line_number)
                      <= s - sum(q) OVER (PARTITION BY cid, cidx) THEN 1 ELSE 0 END AS capped_c
  FROM capl
),
sl3 AS (
  SELECT a.*, cq.seq IS NOT NULL AS capped, coalesce(cq.capped_c, a.pre) AS allowed_c
  FROM a LEFT JOIN capq cq USING (seq)
),
out AS (
  SELECT *,
    CAST(CAST(allowed_c AS DECIMAL(18,0)) * 0.01 AS DECIMAL(18,2)) AS allowed_amount,
    CAST(ROUND(CAST(CAST(allowed_c AS DECIMAL(18,0)) * 0.01 AS DECIMAL(18,2)) * (CAST(admin_micro AS DECIMAL(18,0)) * 0.00000001), 2) AS DECIMAL(18,2)) AS admin_fee
  FROM sl3
)
SELECT claim_id, line_number, vendor_id, member_id, provider_npi, cpt_code, modifiers, specialty,
  visit_kind, place_of_service, service_date, units, billed_amount, prior_auth_number,
  coalesce(code, CASE WHEN invalid_field IS NOT NULL THEN 'INVALID_ROW' END) AS code,
  invalid_field,
  contract_id, contract_number, rate_id, rate_kind, match_priority, rtype AS rate_type,
  CAST(CAST(rvalue AS DECIMAL(18,0)) * 0.000001 AS DECIMAL(18,6)) AS rate_value,
  CASE WHEN code IS NULL THEN pu END AS priced_units,
  CAST(CAST(pre AS DECIMAL(18,0)) * 0.01 AS DECIMAL(18,2)) AS allowed_before_stop_loss,
  CAST(CAST(pre - allowed_c AS DECIMAL(18,0)) * 0.01 AS DECIMAL(18,2)) AS stop_loss_reduction,
  allowed_amount, admin_fee, allowed_amount - admin_fee AS net_payable,
  CASE WHEN code IS NULL THEN concat_ws(';',
    CASE WHEN after_term AND auto_renew THEN 'AUTO_RENEWED_TERM' END,
    CASE WHEN rate_kind = 'CONTRACT_DEFAULT' THEN 'CONTRACT_DEFAULT_RATE' END,
    CASE WHEN after_term AND NOT auto_renew THEN 'EXPIRED_CONTRACT_HONORED' END,
    CASE WHEN conflict THEN 'RATE_CONFLICT' END,
    CASE WHEN coalesce(req_review, false) OR tpa_mn THEN 'REVIEW_REQUIRED' END,
    CASE WHEN capped THEN 'STOP_LOSS_APPLIED' END,
    CASE WHEN pu < u THEN 'UNITS_CAPPED' END) END AS flags
FROM (
  SELECT * FROM out
  UNION ALL BY NAME
  SELECT * FROM l WHERE invalid_field IS NOT NULL
)
` + order
	return strings.ReplaceAll(q, "MATCH", matchSQL)
}
