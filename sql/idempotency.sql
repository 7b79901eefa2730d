-- Idempotent creates (README, Idempotent creates; data-model.md, idempotency_keys).

-- name: try-lock-idempotency-key$
-- Claim (tenant, principal, key) for this transaction without waiting; false while another request holds it.
SELECT pg_try_advisory_xact_lock(hashtextextended(:lock_text, 0));

-- name: get-idempotency-key^
-- The remembered response for a key of this tenant and credential, if stored within the last 24 hours.
SELECT route, request_hash, status, response, created_at
FROM idempotency_keys
WHERE tenant_id = :tenant_id AND principal = :principal AND key = :key
  AND created_at > now() - interval '24 hours';

-- name: save-idempotency-key!
-- Remember a 2xx response in the transaction that created its rows (replacing a row older than 24 hours).
INSERT INTO idempotency_keys (tenant_id, principal, key, route, request_hash, status, response, created_at)
VALUES (:tenant_id, :principal, :key, :route, :request_hash, :status, :response, now())
ON CONFLICT (tenant_id, principal, key) DO UPDATE
SET route = EXCLUDED.route, request_hash = EXCLUDED.request_hash, status = EXCLUDED.status,
    response = EXCLUDED.response, created_at = EXCLUDED.created_at
WHERE idempotency_keys.created_at <= now() - interval '24 hours';

-- name: delete-expired-idempotency-keys$
-- Sweep up to :batch keys older than 24 hours (index on created_at); returns how many were deleted.
WITH expired AS (
    SELECT tenant_id, principal, key
    FROM idempotency_keys
    WHERE created_at <= now() - interval '24 hours'
    ORDER BY created_at
    LIMIT :batch
), deleted AS (
    DELETE FROM idempotency_keys AS k
    USING expired AS e
    WHERE k.tenant_id = e.tenant_id AND k.principal = e.principal AND k.key = e.key
    RETURNING 1
)
SELECT count(*) FROM deleted;
